//! Consumer errors, classed retryable or permanent.

use tideline_core::{Classify, ErrorClass};

/// Why an event was not applied. Each variant says how to handle it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerError {
    /// The event is ahead of the checkpoint and the policy is `retry` (or the
    /// buffer is full). Retryable: fail the invocation so the event is
    /// redelivered once the missing ones have arrived.
    #[error("gap for {entity}: expected sequence {expected}, got {got}; retry later")]
    Gap {
        /// The entity.
        entity: String,
        /// The next sequence the checkpoint expects.
        expected: u64,
        /// The sequence received.
        got: u64,
    },
    /// Another delivery moved the checkpoint first. Retryable; the guard
    /// re-reads the checkpoint a few times before returning it.
    #[error("checkpoint of {entity} moved concurrently (expected last {expected})")]
    Conflict {
        /// The entity.
        entity: String,
        /// The last sequence the write was conditional on.
        expected: u64,
    },
    /// The event is not a Tideline integration event of the expected shape.
    /// Permanent: it goes to the consumer's DLQ.
    #[error("bad event: {0}")]
    BadEvent(String),
    /// The handler refused the event. Permanent.
    #[error("handler refused the event: {0}")]
    Rejected(String),
    /// The checkpoint store or the handler's store failed transiently
    /// (throttling, timeouts, a busy database). Retryable.
    #[error("{service}: {message}")]
    Unavailable {
        /// Which service.
        service: &'static str,
        /// What happened.
        message: String,
    },
    /// The store refused the request (bad table, permissions, schema). Permanent
    /// until an operator fixes it.
    #[error("{service}: {message}")]
    Store {
        /// Which service.
        service: &'static str,
        /// What happened.
        message: String,
    },
}

impl ConsumerError {
    /// A retryable handler failure.
    pub fn retryable(service: &'static str, message: impl Into<String>) -> Self {
        Self::Unavailable {
            service,
            message: message.into(),
        }
    }
    /// A permanent store failure.
    pub fn permanent(service: &'static str, message: impl Into<String>) -> Self {
        Self::Store {
            service,
            message: message.into(),
        }
    }
}

impl Classify for ConsumerError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Gap { .. } | Self::Conflict { .. } | Self::Unavailable { .. } => {
                ErrorClass::Retryable
            }
            Self::BadEvent(_) | Self::Rejected(_) | Self::Store { .. } => ErrorClass::Permanent,
        }
    }
}
