//! The compiled form of a pattern and its evaluation against an event.
//!
//! A pattern compiles to a tree that mirrors the pattern's objects: each node
//! ANDs its fields and its `$or` groups; each leaf ORs its value matchers.
//! Evaluation walks the pattern, not the event, so its cost depends on the
//! pattern's size and not on how large the event is.

use std::net::IpAddr;

use crate::event::{Event, View};
use crate::json::MAX_DEPTH;

/// A pattern object: all fields must match, and in each `$or` group one alternative must.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) fields: Vec<Field>,
    pub(crate) ors: Vec<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) key: Box<str>,
    pub(crate) kind: FieldKind,
}

#[derive(Debug, Clone)]
pub(crate) enum FieldKind {
    /// The pattern value is an object: descend into the event's object(s) at this key.
    Object(Node),
    /// The pattern value is an array of values and operators.
    Leaf(Leaf),
}

/// A pattern array: it matches if any of its alternatives matches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Leaf {
    /// `{"exists": true}` is among the alternatives.
    pub(crate) exists_true: bool,
    /// `{"exists": false}` is among the alternatives.
    pub(crate) exists_false: bool,
    pub(crate) values: Vec<ValueMatcher>,
}

/// A number at EventBridge's precision: `(5e9 + x) * 1e6`, truncated, as event-ruler's
/// `ComparableNumber` computes it. Only numbers within -5e9..=5e9 have one.
pub(crate) fn comparable(x: f64) -> Option<i64> {
    if (-5.0e9..=5.0e9).contains(&x) {
        // In range and finite, so the cast neither saturates nor sees NaN.
        Some((1.0e6 * (5.0e9 + x)) as i64)
    } else {
        None
    }
}

#[derive(Debug, Clone)]
pub(crate) enum ValueMatcher {
    /// A string; `ip` is set when the string is an IP address, which event-ruler compares as an address.
    String {
        value: Box<str>,
        ip: Option<IpAddr>,
    },
    /// A number: by value at EventBridge precision when within ±5e9, else by literal text.
    Number {
        literal: Box<str>,
        comparable: Option<i64>,
    },
    Bool(bool),
    Null,
    Prefix(Box<str>),
    PrefixIgnoreCase(Folded),
    Suffix(Box<str>),
    SuffixIgnoreCase(Folded),
    EqualsIgnoreCase(Folded),
    Wildcard(Wildcard),
    Numeric(NumericRange),
    Cidr(Cidr),
    AnythingBut(AnythingBut),
}

/// A numeric condition on comparable numbers; a missing bound means the end of the range.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NumericRange {
    /// Lower bound and whether it is open (`>`), else closed (`>=`).
    pub(crate) low: Option<(i64, bool)>,
    /// Upper bound and whether it is open (`<`), else closed (`<=`).
    pub(crate) high: Option<(i64, bool)>,
}

impl NumericRange {
    fn contains(&self, c: i64) -> bool {
        let low_ok = match self.low {
            None => true,
            Some((b, true)) => c > b,
            Some((b, false)) => c >= b,
        };
        let high_ok = match self.high {
            None => true,
            Some((b, true)) => c < b,
            Some((b, false)) => c <= b,
        };
        low_ok && high_ok
    }
}

/// An address range of one family, as integers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cidr {
    pub(crate) v6: bool,
    pub(crate) first: u128,
    pub(crate) last: u128,
}

impl Cidr {
    fn contains(&self, s: &str) -> bool {
        match (s.parse::<IpAddr>(), self.v6) {
            (Ok(IpAddr::V4(a)), false) => {
                let n = u128::from(u32::from(a));
                self.first <= n && n <= self.last
            }
            (Ok(IpAddr::V6(a)), true) => {
                let n = u128::from(a);
                self.first <= n && n <= self.last
            }
            _ => false,
        }
    }
}

/// What `anything-but` excludes. It matches any present leaf value (string, number,
/// boolean or null) that the exclusion does not match, as event-ruler does.
#[derive(Debug, Clone)]
pub(crate) enum AnythingBut {
    Strings(Vec<Box<str>>),
    Numbers(Vec<i64>),
    Prefixes(Vec<Box<str>>),
    Suffixes(Vec<Box<str>>),
    IgnoreCase(Vec<Folded>),
    Wildcards(Vec<Wildcard>),
}

impl AnythingBut {
    fn matches<E: Event>(&self, value: &View<'_, E>) -> bool {
        match (self, value) {
            (AnythingBut::Numbers(excluded), View::Number(n)) => {
                comparable(n.value()).is_none_or(|c| !excluded.contains(&c))
            }
            (AnythingBut::Strings(excluded), View::String(s)) => {
                !excluded.iter().any(|e| &**e == *s)
            }
            (AnythingBut::Prefixes(excluded), View::String(s)) => {
                !excluded.iter().any(|p| s.starts_with(&**p))
            }
            (AnythingBut::Suffixes(excluded), View::String(s)) => {
                !excluded.iter().any(|p| s.ends_with(&**p))
            }
            (AnythingBut::IgnoreCase(excluded), View::String(s)) => {
                !excluded.iter().any(|f| f.equals(s))
            }
            (AnythingBut::Wildcards(excluded), View::String(s)) => {
                !excluded.iter().any(|w| w.matches(s))
            }
            // A value of another type is never excluded.
            _ => true,
        }
    }
}

/// A string folded for case-insensitive comparison (full Unicode lowercase).
#[derive(Debug, Clone)]
pub(crate) struct Folded {
    folded: Box<str>,
    ascii: bool,
}

impl Folded {
    pub(crate) fn new(s: &str) -> Self {
        Folded {
            folded: s.to_lowercase().into(),
            ascii: s.is_ascii(),
        }
    }

    fn equals(&self, s: &str) -> bool {
        if self.ascii && s.is_ascii() {
            return self.folded.len() == s.len() && self.folded.eq_ignore_ascii_case(s);
        }
        s.chars()
            .flat_map(char::to_lowercase)
            .eq(self.folded.chars())
    }

    fn is_prefix_of(&self, s: &str) -> bool {
        if self.ascii && s.is_ascii() {
            return s
                .get(..self.folded.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(&self.folded));
        }
        let mut event = s.chars().flat_map(char::to_lowercase);
        self.folded.chars().all(|p| event.next() == Some(p))
    }

    fn is_suffix_of(&self, s: &str) -> bool {
        if self.ascii && s.is_ascii() {
            return s
                .len()
                .checked_sub(self.folded.len())
                .and_then(|start| s.get(start..))
                .is_some_and(|p| p.eq_ignore_ascii_case(&self.folded));
        }
        let mut event = s.chars().rev().flat_map(|c| c.to_lowercase().rev());
        self.folded.chars().rev().all(|p| event.next() == Some(p))
    }
}

/// A wildcard pattern split at its unescaped `*`s: `parts[0]` must start the
/// value, the last part must end it, and the others appear in order between.
#[derive(Debug, Clone)]
pub(crate) struct Wildcard {
    /// Literal pieces; there is one more piece than there are stars.
    pub(crate) parts: Vec<Box<str>>,
}

impl Wildcard {
    pub(crate) fn matches(&self, s: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(split) => split,
            None => return false,
        };
        let Some((last, middle)) = rest.split_last() else {
            return s == &**first; // no star
        };
        if s.len() < first.len() + last.len() || !s.starts_with(&**first) || !s.ends_with(&**last) {
            return false;
        }
        // Greedy leftmost placement of the middle pieces is optimal for `*`-only globs.
        let Some(mut window) = s.get(first.len()..s.len() - last.len()) else {
            return false;
        };
        for part in middle {
            match window.find(&**part) {
                Some(at) => window = window.get(at + part.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        true
    }
}

impl ValueMatcher {
    fn matches<E: Event>(&self, value: &View<'_, E>) -> bool {
        match (self, value) {
            (ValueMatcher::String { value: p, ip }, View::String(s)) => {
                &**p == *s || ip.is_some_and(|ip| s.parse::<IpAddr>().is_ok_and(|a| a == ip))
            }
            (
                ValueMatcher::Number {
                    literal,
                    comparable: c,
                },
                View::Number(n),
            ) => match c {
                Some(c) => comparable(n.value()) == Some(*c),
                None => n.literal_is(literal),
            },
            (ValueMatcher::Bool(b), View::Bool(v)) => b == v,
            (ValueMatcher::Null, View::Null) => true,
            (ValueMatcher::Prefix(p), View::String(s)) => s.starts_with(&**p),
            (ValueMatcher::Suffix(p), View::String(s)) => s.ends_with(&**p),
            (ValueMatcher::PrefixIgnoreCase(f), View::String(s)) => f.is_prefix_of(s),
            (ValueMatcher::SuffixIgnoreCase(f), View::String(s)) => f.is_suffix_of(s),
            (ValueMatcher::EqualsIgnoreCase(f), View::String(s)) => f.equals(s),
            (ValueMatcher::Wildcard(w), View::String(s)) => w.matches(s),
            (ValueMatcher::Numeric(r), View::Number(n)) => {
                comparable(n.value()).is_some_and(|c| r.contains(c))
            }
            (ValueMatcher::Cidr(c), View::String(s)) => c.contains(s),
            (ValueMatcher::AnythingBut(a), v) => a.matches(v),
            _ => false,
        }
    }
}

/// Calls `f` on each leaf (non-object, non-array) value in `value`, looking
/// through nested arrays; stops early and returns true when `f` does.
fn any_leaf<'a, E: Event>(
    value: &'a E,
    depth: usize,
    f: &mut impl FnMut(&View<'a, E>) -> bool,
) -> bool {
    match value.view() {
        View::Array(items) => {
            depth < MAX_DEPTH && items.iter().any(|item| any_leaf(item, depth + 1, f))
        }
        View::Object => false,
        leaf => f(&leaf),
    }
}

impl Leaf {
    fn matches<E: Event>(&self, value: Option<&E>) -> bool {
        let Some(value) = value else {
            return self.exists_false;
        };
        // Fast path: a plain leaf value (the common case).
        match value.view() {
            View::Array(_) => {}
            View::Object => return self.exists_false,
            leaf => return self.exists_true || self.values.iter().any(|m| m.matches(&leaf)),
        }
        // An array: the field "exists" if it holds at least one leaf value.
        if !any_leaf(value, 0, &mut |_| true) {
            return self.exists_false;
        }
        self.exists_true
            || any_leaf(value, 0, &mut |leaf| {
                self.values.iter().any(|m| m.matches(leaf))
            })
    }
}

impl Node {
    /// Whether the event object `context` matches; `None` means the object is absent,
    /// where only absence patterns (`exists: false`) can match.
    pub(crate) fn matches<E: Event>(&self, context: Option<&E>) -> bool {
        self.fields.iter().all(|field| field.matches(context))
            && self
                .ors
                .iter()
                .all(|group| group.iter().any(|alt| alt.matches(context)))
    }
}

impl Field {
    fn matches<E: Event>(&self, context: Option<&E>) -> bool {
        let value = context.and_then(|c| c.member(&self.key));
        match &self.kind {
            FieldKind::Leaf(leaf) => leaf.matches(value),
            FieldKind::Object(node) => match value {
                None => node.matches::<E>(None),
                Some(v) => match v.view() {
                    View::Object => node.matches(Some(v)),
                    View::Array(_) => {
                        // Each object in the array is tried on its own, so every field of the
                        // sub-pattern matches within the same element (event-ruler's array consistency).
                        let mut saw_object = false;
                        let hit = any_object(v, 0, &mut |obj| {
                            saw_object = true;
                            node.matches(Some(obj))
                        });
                        hit || (!saw_object && node.matches::<E>(None))
                    }
                    _ => node.matches::<E>(None),
                },
            },
        }
    }
}

/// Calls `f` on each object in `value`, looking through nested arrays; stops when `f` returns true.
fn any_object<E: Event>(value: &E, depth: usize, f: &mut impl FnMut(&E) -> bool) -> bool {
    match value.view() {
        View::Object => f(value),
        View::Array(items) => {
            depth < MAX_DEPTH && items.iter().any(|item| any_object(item, depth + 1, f))
        }
        _ => false,
    }
}

/// `parent.key`, or `key` at the top.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Node {
    /// The path of the first field, in pattern order, that the event object
    /// `context` fails (`detail.total`; `detail.$or` for an `$or` group none
    /// of whose alternatives match), or `None` when the pattern matches.
    /// Agrees with [`Node::matches`]: it is `None` exactly when that is true.
    pub(crate) fn first_miss<E: Event>(&self, context: Option<&E>, path: &str) -> Option<String> {
        for field in &self.fields {
            if field.matches(context) {
                continue;
            }
            let here = join(path, &field.key);
            if let FieldKind::Object(node) = &field.kind {
                let value = context.and_then(|c| c.member(&field.key));
                let deeper = match value.map(Event::view) {
                    Some(View::Object) => node.first_miss(value, &here),
                    // An array of objects: no single element decides, so the
                    // field itself is named.
                    Some(View::Array(_)) => None,
                    _ => node.first_miss::<E>(None, &here),
                };
                if deeper.is_some() {
                    return deeper;
                }
            }
            return Some(here);
        }
        self.ors
            .iter()
            .find(|group| !group.iter().any(|alt| alt.matches(context)))
            .map(|_| join(path, "$or"))
    }

    /// Every field path the pattern tests, in pattern order (`$or`
    /// alternatives included).
    pub(crate) fn paths(&self, path: &str, out: &mut Vec<String>) {
        for field in &self.fields {
            let here = join(path, &field.key);
            match &field.kind {
                FieldKind::Object(node) => node.paths(&here, out),
                FieldKind::Leaf(_) => out.push(here),
            }
        }
        for alt in self.ors.iter().flatten() {
            alt.paths(path, out);
        }
    }
}
