//! Every error in Tideline says whether retrying can help.
//!
//! The batch contracts depend on it: a retryable failure is reported back to the
//! event source so the record is redelivered, while a permanent one is moved
//! aside (DLQ, `processing-failed/`, rejected table) so it never blocks the
//! records behind it (INVARIANTS.md #1, #5).

/// Whether an operation that failed may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Throttling, timeouts, unavailable services: try again with backoff.
    Retryable,
    /// Bad input or a broken contract: retrying gives the same answer.
    Permanent,
}

impl ErrorClass {
    /// `Retryable` when `retryable`, else `Permanent`: for errors that carry
    /// the class as a flag.
    pub const fn retryable_if(retryable: bool) -> Self {
        if retryable {
            Self::Retryable
        } else {
            Self::Permanent
        }
    }
}

/// Implemented by every error type that crosses a stage boundary.
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;

    /// Shorthand for `class() == Retryable`.
    fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }
}
