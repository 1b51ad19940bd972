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
    fn derived_id_is_stable_and_valid() {
        let a = EventId::derive(b"{\"x\":1}");
        assert_eq!(a, EventId::derive(b"{\"x\":1}"));
        assert_ne!(a, EventId::derive(b"{\"x\":2}"));
        assert!(EventId::new(a.as_str()).is_ok());
    }
}
