//! Many patterns matched against one event.
//!
//! Most rules pin a top-level field to a few exact strings (`"source":
//! ["tideline"]`). The set indexes each such rule under one of those strings,
//! so an event only evaluates the rules whose pinned value it carries, plus the
//! rules that pin nothing. The index only narrows the candidates; every
//! candidate is still matched in full, so results equal matching one by one.

use std::collections::HashMap;

use crate::Pattern;
use crate::matcher::{Field, FieldKind, ValueMatcher};

/// Top-level fields preferred for indexing, most selective first.
const PREFERRED_KEYS: &[&str] = &["source", "detail-type"];

/// Exact value → bitset of the rules pinned to it.
type ValueIndex = HashMap<Box<str>, Vec<u64>>;

/// Compiled patterns, each with a payload, matched in insertion order.
#[derive(Debug, Clone)]
pub struct RuleSet<T> {
    rules: Vec<(Pattern, T)>,
    /// Field → exact value → bitset of rule indices pinned to that value.
    index: Vec<(Box<str>, ValueIndex)>,
    /// Bitset of rules not in the index: always candidates.
    unindexed: Vec<u64>,
}

impl<T> Default for RuleSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn set_bit(bits: &mut Vec<u64>, i: usize) {
    let word = i / 64;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    if let Some(w) = bits.get_mut(word) {
        *w |= 1u64 << (i % 64);
    }
}

fn exact_strings(field: &Field) -> Option<Vec<&str>> {
    let FieldKind::Leaf(leaf) = &field.kind else {
        return None;
    };
    if leaf.exists_true || leaf.exists_false || leaf.values.is_empty() {
        return None;
    }
    leaf.values
        .iter()
        .map(|m| match m {
            ValueMatcher::String { value, ip: None } => Some(&**value),
            _ => None,
        })
        .collect()
}

/// The top-level field and exact strings this pattern requires, if it has such a field.
fn index_key(pattern: &Pattern) -> Option<(&str, Vec<&str>)> {
    let fields = &pattern.root.fields;
    PREFERRED_KEYS
        .iter()
        .filter_map(|k| fields.iter().find(|f| &*f.key == *k))
        .chain(fields.iter())
        .find_map(|f| exact_strings(f).map(|values| (&*f.key, values)))
}

impl<T> RuleSet<T> {
    /// An empty rule set.
    pub fn new() -> Self {
        RuleSet {
            rules: Vec::new(),
            index: Vec::new(),
            unindexed: Vec::new(),
        }
    }

    /// Adds a rule; rules are reported in the order they were added.
    pub fn add(&mut self, pattern: Pattern, payload: T) {
        let i = self.rules.len();
        match index_key(&pattern) {
            Some((key, values)) => {
                let slot = match self.index.iter().position(|(k, _)| &**k == key) {
                    Some(slot) => slot,
                    None => {
                        self.index.push((key.into(), HashMap::new()));
                        self.index.len() - 1
                    }
                };
                if let Some((_, by_value)) = self.index.get_mut(slot) {
                    for value in values {
                        set_bit(by_value.entry(value.into()).or_default(), i);
                    }
                }
            }
            None => set_bit(&mut self.unindexed, i),
        }
        self.rules.push((pattern, payload));
    }

    /// The payloads of the rules that match `event`, in insertion order.
    pub fn matching<'a>(
        &'a self,
        event: &serde_json::Value,
    ) -> impl Iterator<Item = &'a T> + use<'a, T> {
        let mut candidates = vec![0u64; self.rules.len().div_ceil(64)];
        for (c, u) in candidates.iter_mut().zip(&self.unindexed) {
            *c |= *u;
        }
        for (key, by_value) in &self.index {
            let mut add = |s: &str| {
                if let Some(bits) = by_value.get(s) {
                    for (c, b) in candidates.iter_mut().zip(bits) {
                        *c |= *b;
                    }
                }
            };
            match event.get(&**key) {
                Some(serde_json::Value::String(s)) => add(s),
                Some(serde_json::Value::Array(items)) => add_strings(items, 0, &mut add),
                _ => {}
            }
        }
        for (w, word) in candidates.iter_mut().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let matched = self
                    .rules
                    .get(w * 64 + b)
                    .is_some_and(|(p, _)| p.matches(event));
                if !matched {
                    *word &= !(1u64 << b);
                }
            }
        }
        let rules = &self.rules;
        candidates
            .into_iter()
            .enumerate()
            .flat_map(move |(w, word)| {
                BitIter(word).filter_map(move |b| rules.get(w * 64 + b).map(|(_, payload)| payload))
            })
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Strings inside an event array (and nested arrays), which a pattern treats as any-of.
fn add_strings(items: &[serde_json::Value], depth: usize, add: &mut impl FnMut(&str)) {
    if depth >= crate::json::MAX_DEPTH {
        return;
    }
    for item in items {
        match item {
            serde_json::Value::String(s) => add(s),
            serde_json::Value::Array(inner) => add_strings(inner, depth + 1, add),
            _ => {}
        }
    }
}

/// The set bits of a word, lowest first.
struct BitIter(u64);

impl Iterator for BitIter {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let b = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(b)
    }
}
