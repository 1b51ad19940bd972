//! What a port call can fail with, classed retryable or permanent for the
//! batch contracts (INVARIANTS.md #6).
//!
//! A [`PortError`] keeps the adapter's underlying error (an SDK error, a
//! SQLite error, an I/O error) as its [`std::error::Error::source`], so a
//! caller that needs more than the class and the message (a CLI printing the
//! chain, a test asserting the cause) can reach it. The source is shared
//! (`Arc`) so the error stays `Clone`, and equality looks at the class,
//! service and message only: two failures that say the same are the same
//! to the batch contracts.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use tideline_core::event::AppendConflict;
use tideline_core::{Classify, ErrorClass};

/// The underlying error of a [`PortError`], shared so the error stays `Clone`.
pub type ErrorSource = Arc<dyn Error + Send + Sync + 'static>;

/// A failure of an adapter's I/O, classed for the batch contracts.
#[derive(Clone)]
pub struct PortError {
    /// Retryable or permanent.
    pub class: ErrorClass,
    /// Which service or component failed (e.g. `sqs`, `sqlite`).
    pub service: &'static str,
    /// What happened.
    pub message: String,
    /// The adapter's own error, when there is one.
    source: Option<ErrorSource>,
}

impl PortError {
    /// A failure of `class`, without an underlying error.
    pub fn new(class: ErrorClass, service: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            service,
            message: message.into(),
            source: None,
        }
    }
    /// A retryable failure.
    pub fn retryable(service: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Retryable, service, message)
    }
    /// A permanent failure.
    pub fn permanent(service: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, service, message)
    }
    /// The same failure, caused by `source` (the adapter's own error).
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }
    /// The same failure and cause, classed `class` (an adapter that knows
    /// better than the layer below, e.g. a failed commit that stored nothing).
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.class = class;
        self
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.service, self.message)
    }
}

impl fmt::Debug for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortError")
            .field("class", &self.class)
            .field("service", &self.service)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl Error for PortError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        // The inner error itself (not the `Arc`), so callers can downcast it.
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Equal when the class, service and message are: the source is the
/// adapter's detail, and two failures that say the same are the same to the
/// batch contracts.
impl PartialEq for PortError {
    fn eq(&self, other: &Self) -> bool {
        self.class == other.class && self.service == other.service && self.message == other.message
    }
}

impl Eq for PortError {}

impl Classify for PortError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// A store failure. Its [`source`](Error::source) is the port error's
/// underlying error (the variants are transparent).
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_underlying_error_is_the_source_and_survives_a_clone() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = PortError::retryable("lake", "write failed").with_source(io);
        let copy = e.clone();
        for e in [&e, &copy] {
            let source = e.source().unwrap();
            let io = source.downcast_ref::<std::io::Error>().unwrap();
            assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        assert_eq!(e.to_string(), "lake: write failed");
        // Through the store error too: the variant is transparent.
        let store = StoreError::from(e);
        assert!(store.source().unwrap().is::<std::io::Error>());
        assert!(store.is_retryable());
    }

    #[test]
    fn equality_is_on_class_service_and_message() {
        let io = std::io::Error::other("x");
        assert_eq!(
            PortError::retryable("sqs", "m").with_source(io),
            PortError::retryable("sqs", "m")
        );
        assert_ne!(
            PortError::retryable("sqs", "m"),
            PortError::permanent("sqs", "m")
        );
        let e = PortError::retryable("sqlite", "m").with_class(ErrorClass::Permanent);
        assert_eq!(e, PortError::permanent("sqlite", "m"));
    }
}
