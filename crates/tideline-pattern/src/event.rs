//! One read-only view over the two event representations the matcher accepts:
//! `serde_json::Value` (the hot path) and the literal-keeping `JsonValue`.
//! The matcher is generic over it, so neither is converted into the other.

use crate::json::JsonValue;

/// A JSON number as the matcher needs it: its value, and its literal on request.
#[derive(Clone, Copy)]
pub(crate) enum Num<'a> {
    Serde(&'a serde_json::Number),
    Literal { value: f64, literal: &'a str },
}

impl Num<'_> {
    pub(crate) fn value(self) -> f64 {
        match self {
            Num::Serde(n) => n.as_f64().unwrap_or(f64::NAN),
            Num::Literal { value, .. } => value,
        }
    }

    /// Whether the number's literal text is `literal` (rare path: numbers beyond ±5e9).
    pub(crate) fn literal_is(self, literal: &str) -> bool {
        match self {
            Num::Serde(n) => n.to_string() == literal,
            Num::Literal { literal: l, .. } => l == literal,
        }
    }
}

/// What an event value is.
pub(crate) enum View<'a, E> {
    Null,
    Bool(bool),
    Number(Num<'a>),
    String(&'a str),
    Array(&'a [E]),
    Object,
}

/// An event value the matcher can read.
pub(crate) trait Event: Sized {
    fn view(&self) -> View<'_, Self>;
    /// The member `key` if this is an object that has it.
    fn member(&self, key: &str) -> Option<&Self>;
}

impl Event for serde_json::Value {
    #[inline]
    fn view(&self) -> View<'_, Self> {
        match self {
            serde_json::Value::Null => View::Null,
            serde_json::Value::Bool(b) => View::Bool(*b),
            serde_json::Value::Number(n) => View::Number(Num::Serde(n)),
            serde_json::Value::String(s) => View::String(s),
            serde_json::Value::Array(items) => View::Array(items),
            serde_json::Value::Object(_) => View::Object,
        }
    }

    #[inline]
    fn member(&self, key: &str) -> Option<&Self> {
        match self {
            serde_json::Value::Object(map) => member(map, key),
            _ => None,
        }
    }
}

impl Event for JsonValue {
    #[inline]
    fn view(&self) -> View<'_, Self> {
        match self {
            JsonValue::Null => View::Null,
            JsonValue::Bool(b) => View::Bool(*b),
            JsonValue::Number(n) => View::Number(Num::Literal {
                value: n.value,
                literal: &n.literal,
            }),
            JsonValue::String(s) => View::String(s),
            JsonValue::Array(items) => View::Array(items),
            JsonValue::Object(_) => View::Object,
        }
    }

    #[inline]
    fn member(&self, key: &str) -> Option<&Self> {
        self.get(key)
    }
}

/// Objects at most this large are searched linearly: comparing a few short keys
/// is several times faster than hashing the key with the map's SipHash.
const LINEAR_SCAN_MAX: usize = 16;

/// `map.get(key)`, faster for the small objects events are made of.
#[inline]
pub(crate) fn member<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<&'a serde_json::Value> {
    if map.len() <= LINEAR_SCAN_MAX {
        map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}
