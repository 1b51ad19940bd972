//! Many patterns matched against one event.
//!
//! Most rules pin top-level fields to a few exact strings (`"source":
//! ["tideline"], "detail-type": ["OrderPlaced"]`). The set keeps, for each
//! such field, a bitset of the rules it constrains and, for each pinned
//! value, a bitset of the rules that accept it. An event is then narrowed with
//! one hash lookup per indexed field and a few word-wide ANDs, and only the
//! surviving candidates are evaluated. The index only narrows: every candidate
//! is still matched in full, so results equal matching the rules one by one.

use std::collections::HashMap;

use crate::Pattern;
use crate::matcher::{Field, FieldKind, ValueMatcher};

/// One indexed top-level field.
#[derive(Debug, Clone)]
struct KeyIndex {
    key: Box<str>,
    /// Rules that pin this field to exact strings.
    constrained: Vec<u64>,
    /// Exact value → rules that accept it.
    by_value: HashMap<Box<str>, Vec<u64>, FnvBuild>,
}

/// Compiled patterns, each with a payload, matched in insertion order.
#[derive(Debug, Clone)]
pub struct RuleSet<T> {
    rules: Vec<(Pattern, T)>,
    index: Vec<KeyIndex>,
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

/// The exact strings a top-level field requires, if its pattern is only exact strings.
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
            // An IP-address string also matches other spellings of the address: not indexable.
            ValueMatcher::String { value, ip: None } => Some(&**value),
            _ => None,
        })
        .collect()
}

impl<T> RuleSet<T> {
    /// An empty rule set.
    pub fn new() -> Self {
        RuleSet {
            rules: Vec::new(),
            index: Vec::new(),
        }
    }

    /// Adds a rule; rules are reported in the order they were added.
    pub fn add(&mut self, pattern: Pattern, payload: T) {
        let i = self.rules.len();
        for field in &pattern.root.fields {
            let Some(values) = exact_strings(field) else {
                continue;
            };
            let slot = match self.index.iter().position(|k| k.key == field.key) {
                Some(slot) => slot,
                None => {
                    self.index.push(KeyIndex {
                        key: field.key.clone(),
                        constrained: Vec::new(),
                        by_value: HashMap::default(),
                    });
                    self.index.len() - 1
                }
            };
            if let Some(k) = self.index.get_mut(slot) {
                set_bit(&mut k.constrained, i);
                for value in values {
                    set_bit(k.by_value.entry(value.into()).or_default(), i);
                }
            }
        }
        self.rules.push((pattern, payload));
    }

    /// The payloads of the rules that match `event`, in insertion order.
    pub fn matching<'a>(
        &'a self,
        event: &serde_json::Value,
    ) -> impl Iterator<Item = &'a T> + use<'a, T> {
        let n = self.rules.len();
        let mut candidates = vec![u64::MAX; n.div_ceil(64)];
        if let Some(last) = candidates.last_mut()
            && !n.is_multiple_of(64)
        {
            *last = (1u64 << (n % 64)) - 1;
        }
        // Per indexed field: a rule stays a candidate if it does not pin the
        // field, or if it accepts one of the event's strings there.
        for k in &self.index {
            let value = match event {
                serde_json::Value::Object(map) => crate::event::member(map, &k.key),
                _ => None,
            };
            match value {
                Some(serde_json::Value::Array(items)) => {
                    let mut hits = vec![0u64; candidates.len()];
                    strings_in(items, 0, &mut |s| {
                        if let Some(bits) = k.by_value.get(s) {
                            for (h, b) in hits.iter_mut().zip(bits) {
                                *h |= *b;
                            }
                        }
                    });
                    narrow(&mut candidates, &k.constrained, &hits);
                }
                Some(serde_json::Value::String(s)) => {
                    let hits = k.by_value.get(s.as_str()).map_or(&[][..], Vec::as_slice);
                    narrow(&mut candidates, &k.constrained, hits);
                }
                _ => narrow(&mut candidates, &k.constrained, &[]),
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

/// `candidates &= !constrained | hits`; missing words of the shorter sets are zero.
fn narrow(candidates: &mut [u64], constrained: &[u64], hits: &[u64]) {
    for (w, c) in candidates.iter_mut().enumerate() {
        let constrained = constrained.get(w).copied().unwrap_or(0);
        let hit = hits.get(w).copied().unwrap_or(0);
        *c &= !constrained | hit;
    }
}

/// FNV-1a: the index is keyed by strings from rules, and looked up with event
/// strings; lookups cannot degrade it, and it is much cheaper than SipHash for
/// short keys.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

/// Strings inside an event array (and nested arrays), which a pattern treats as any-of.
fn strings_in(items: &[serde_json::Value], depth: usize, accept: &mut impl FnMut(&str)) {
    if depth >= crate::json::MAX_DEPTH {
        return;
    }
    for item in items {
        match item {
            serde_json::Value::String(s) => accept(s),
            serde_json::Value::Array(inner) => strings_in(inner, depth + 1, accept),
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
