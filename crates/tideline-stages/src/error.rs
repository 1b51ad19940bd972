//! What a port call can fail with, classed retryable or permanent for the
//! batch contracts (INVARIANTS.md #6).

use tideline_core::event::AppendConflict;
use tideline_core::{Classify, ErrorClass};

/// A failure of an adapter's I/O, classed for the batch contracts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {message}")]
pub struct PortError {
    /// Retryable or permanent.
    pub class: ErrorClass,
    /// Which service or component failed (e.g. `sqs`, `sqlite`).
    pub service: &'static str,
    /// What happened.
    pub message: String,
}

impl PortError {
    /// A retryable failure.
    pub fn retryable(service: &'static str, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Retryable,
            service,
            message: message.into(),
        }
    }
    /// A permanent failure.
    pub fn permanent(service: &'static str, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            service,
            message: message.into(),
        }
    }
}

impl Classify for PortError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// An expected-version append whose expectation was wrong.
    #[error(transparent)]
    Conflict(#[from] AppendConflict),
    /// The store could not be reached or throttled us, or a concurrent writer won.
    #[error(transparent)]
    Port(#[from] PortError),
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            // The storer appends with `ExpectedSeq::Any`; a conflict there is a
            // lost race and retrying re-reads the head. An explicit expectation
            // that is wrong stays wrong.
            Self::Conflict(_) => ErrorClass::Permanent,
            Self::Port(e) => e.class,
        }
    }
}
