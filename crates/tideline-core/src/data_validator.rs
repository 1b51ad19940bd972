//! The ingest hook for per-type validation of `data`.
//!
//! The core knows only this trait; the JSON Schema registry and its validator
//! live in the `tideline-schema` adapter crate and are passed in through
//! [`crate::IngestConfig::data_validator`], so no validator dependency enters
//! the core. With no validator configured, ingest accepts any `data` (the
//! default), as before.

use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// Why a record's `data` does not match its type's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataViolation {
    /// JSON Pointer (RFC 6901) of the first violation, relative to `data`
    /// (`""` is `data` itself).
    pub pointer: String,
    /// The schema keyword broken, e.g. `required`, `type`, `maximum`.
    pub rule: String,
    /// What is wrong, in words.
    pub message: String,
    /// The version of the schema it was checked against.
    pub schema_version: u32,
}

/// Checks `data` against the schema registered for its event type.
pub trait DataValidator: Send + Sync + fmt::Debug {
    /// `Ok` when `data` fits the schema of `event_type` (or the type has no
    /// schema and the validator lets such types through).
    fn validate(&self, event_type: &str, data: &Value) -> Result<(), DataViolation>;
}

/// A shared validator in [`crate::IngestConfig`]. Equality is identity, so the
/// config stays comparable.
#[derive(Clone)]
pub struct SharedDataValidator(pub Arc<dyn DataValidator>);

impl SharedDataValidator {
    /// Wraps a validator.
    pub fn new(validator: impl DataValidator + 'static) -> Self {
        Self(Arc::new(validator))
    }
}

impl fmt::Debug for SharedDataValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for SharedDataValidator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedDataValidator {}
