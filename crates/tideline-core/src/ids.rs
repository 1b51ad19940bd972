//! Entity and event ids.
//!
//! Both travel through SQS FIFO as `MessageGroupId` (entity) and
//! `MessageDeduplicationId` (event): at most 128 characters drawn from
//! alphanumerics and ASCII punctuation (AWS-CONTRACTS.md, SQS FIFO). Checking
//! that here, at ingest, turns an SQS error deep in the pipeline into a clear
//! rejection with a reason at the door.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The SQS limit on `MessageGroupId` and `MessageDeduplicationId`.
pub const MAX_ID_CHARS: usize = 128;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty string.
    #[error("must not be empty")]
    Empty,
    /// Longer than the SQS limit.
    #[error("is {0} characters long; the limit is 128 (SQS MessageGroupId/MessageDeduplicationId)")]
    TooLong(usize),
    /// A character SQS does not accept.
    #[error(
        "contains {0:?} at character {1}; only ASCII letters, digits and punctuation are allowed (SQS MessageGroupId rules)"
    )]
    BadChar(char, usize),
}

fn check_sqs_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    let count = s.chars().count();
    if count > MAX_ID_CHARS {
        return Err(IdError::TooLong(count));
    }
    if let Some((i, c)) = s
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || c.is_ascii_punctuation()))
    {
        return Err(IdError::BadChar(c, i));
    }
    Ok(())
}

/// The partition and ordering key of an event: 1–128 SQS-safe characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityId(String);

impl EntityId {
    /// Validates and wraps an entity id.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_sqs_id(&s)?;
        Ok(Self(s))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stable, unique event id: the producer's, or derived from the record's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    /// Validates a producer-supplied id.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        check_sqs_id(&s)?;
        Ok(Self(s))
    }

    /// Derives the id from the record's exact bytes, so a retried record keeps
    /// its id and is de-duplicated (INVARIANTS.md #2). 128 bits of SHA-256 make
    /// an accidental collision negligible; the prefix marks it as derived.
    pub fn derive(record_bytes: &[u8]) -> Self {
        let digest = Sha256::digest(record_bytes);
        Self(format!("sha256-{}", hex::encode(&digest[..16])))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The queue's `MessageDeduplicationId` for an event: derived from the entity
/// *and* the event id, because de-duplication has one scope, the entity. With
/// `DeduplicationScope=queue` SQS suppresses a repeated id in any group, so the
/// event id alone would make `{"entity_id":"A","id":"1"}` hide
/// `{"entity_id":"B","id":"1"}`.
///
/// The pair is length-prefixed, `<entity length>:<entity><event id>`, which is
/// unambiguous although both ids may contain any punctuation. When that would
/// exceed SQS's 128 characters it is hashed instead: 64 hex characters, which
/// contain no `:` and so never equal a prefixed id.
pub fn queue_dedup_id(entity: &EntityId, event: &EventId) -> String {
    let prefix = entity.0.len().to_string();
    if prefix.len() + 1 + entity.0.len() + event.0.len() <= MAX_ID_CHARS {
        let mut id = String::with_capacity(MAX_ID_CHARS);
        id.push_str(&prefix);
        id.push(':');
        id.push_str(&entity.0);
        id.push_str(&event.0);
        return id;
    }
    let mut hasher = Sha256::new();
    // Length-prefixed, so (entity, id) pairs cannot run into each other.
    hasher.update((entity.0.len() as u64).to_be_bytes());
    hasher.update(entity.0.as_bytes());
    hasher.update(event.0.as_bytes());
    hex::encode(hasher.finalize())
}

/// The `SystemMetadata.DeduplicationId` of a bus entry on the enhanced custom
/// event bus (the emitter's ordered mode), derived from the event id.
///
/// Scoped to the entity like [`queue_dedup_id`] (INVARIANTS.md #2: the same id
/// on two entities is two events), and to whether the entry is a replay, so a
/// deliberate `replay` is not swallowed by the bus's 5-minute de-duplication
/// window after the live publish. Always SHA-256 hex (64 characters of
/// `[0-9a-f]`): the bus takes 1–128 characters, and event ids such as an
/// `EventExpired` notice's (`<id> expired`) hold characters and lengths that
/// the id's character rules may refuse, so a hash is the one form that always
/// fits (AWS-CONTRACTS.md, Enhanced custom event bus).
pub fn bus_dedup_id(entity_id: &str, event_id: &str, replay: bool) -> String {
    let mut hasher = Sha256::new();
    // Length-prefixed, so (entity, id) pairs cannot run into each other.
    hasher.update((entity_id.len() as u64).to_be_bytes());
    hasher.update(entity_id.as_bytes());
    hasher.update((event_id.len() as u64).to_be_bytes());
    hasher.update(event_id.as_bytes());
    hasher.update([u8::from(replay)]);
    hex::encode(hasher.finalize())
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
string_newtype_impls!(EntityId);
string_newtype_impls!(EventId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_rules() {
        assert!(EntityId::new("order-42").is_ok());
        assert!(EntityId::new("a:b/c#d").is_ok());
        assert_eq!(EntityId::new(""), Err(IdError::Empty));
        assert_eq!(EntityId::new("x".repeat(129)), Err(IdError::TooLong(129)));
        assert_eq!(EntityId::new("a b"), Err(IdError::BadChar(' ', 1)));
        assert!(matches!(EntityId::new("ü"), Err(IdError::BadChar('ü', 0))));
        assert!(EntityId::new("x".repeat(128)).is_ok());
    }

    #[test]
    fn queue_dedup_id_is_scoped_to_the_entity() {
        let a = EntityId::new("acct-A").unwrap();
        let b = EntityId::new("acct-B").unwrap();
        let id = EventId::new("1").unwrap();
        assert_ne!(queue_dedup_id(&a, &id), queue_dedup_id(&b, &id));
        assert_eq!(queue_dedup_id(&a, &id), queue_dedup_id(&a, &id));
        // The pair that a plain separator would confuse.
        let x = queue_dedup_id(&EntityId::new("a/b").unwrap(), &EventId::new("c").unwrap());
        let y = queue_dedup_id(&EntityId::new("a").unwrap(), &EventId::new("b/c").unwrap());
        assert_ne!(x, y);
        let longest = queue_dedup_id(
            &EntityId::new("e".repeat(128)).unwrap(),
            &EventId::new("i".repeat(128)).unwrap(),
        );
        assert!(
            EventId::new(longest).is_ok(),
            "fits SQS's 128-character rule"
        );
    }

    #[test]
    fn bus_dedup_id_is_scoped_stable_and_within_the_bus_limit() {
        let id = bus_dedup_id("acct-A", "1", false);
        assert_eq!(
            id,
            bus_dedup_id("acct-A", "1", false),
            "stable across retries"
        );
        assert_ne!(
            id,
            bus_dedup_id("acct-B", "1", false),
            "scoped to the entity"
        );
        assert_ne!(
            id,
            bus_dedup_id("acct-A", "1", true),
            "a replay is not a repeat"
        );
        assert_ne!(
            bus_dedup_id("a/b", "c", false),
            bus_dedup_id("a", "b/c", false),
            "length-prefixed"
        );
        let longest = bus_dedup_id(
            &"e".repeat(128),
            &format!("{} expired", "i".repeat(128)),
            false,
        );
        assert_eq!(longest.len(), 64);
        assert!(longest.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn derived_id_is_stable_and_valid() {
        let a = EventId::derive(b"{\"x\":1}");
        assert_eq!(a, EventId::derive(b"{\"x\":1}"));
        assert_ne!(a, EventId::derive(b"{\"x\":2}"));
        assert!(EventId::new(a.as_str()).is_ok());
    }
}
