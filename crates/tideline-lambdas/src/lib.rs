//! Tideline's Lambda functions. Each module is one function: a plain
//! `handler(state, LambdaEvent<...>)` that translates the event to the stage
//! function's input and its result back to the response the AWS contract
//! asks for. The binaries in `src/bin/` build the SDK clients once and run
//! the handler; tests call the handlers with fixtures.
//!
//! No business rule lives here (INVARIANTS.md #7): validation, ordering,
//! de-duplication and the partial-failure rules are the stages'.

#![deny(missing_docs)]

pub mod command;
pub mod emit;
pub mod query;
pub mod realtime;
pub mod store;
pub mod transform;

use lambda_runtime::Diagnostic;
use std::error::Error as StdError;
use std::fmt;
use tideline_core::{Classify, DisplayChain, ErrorClass};

/// What a function's `main` fails with at start-up (a missing variable, a
/// bad schema registry): the process exits before it takes an invocation.
pub type Error = lambda_runtime::Error;

/// The prefix of every handler error's `errorType`.
pub const ERROR_TYPE_PREFIX: &str = "Tideline";

/// What a handler returns on failure. The runtime reports it as the
/// invocation's error, and its `errorType` says whether retrying can help:
/// `Tideline.Retryable.<Kind>` or `Tideline.Permanent.<Kind>`
/// ([`HandlerError::error_type`]). Without it every failure had the
/// runtime's one generic type, so neither an alarm nor an operator reading
/// the logs could tell a throttled queue from a broken contract.
pub struct HandlerError {
    class: ErrorClass,
    kind: &'static str,
    error: Box<dyn StdError + Send + Sync + 'static>,
}

impl HandlerError {
    /// A handler failure of `kind` (a short CamelCase name, the last part of
    /// the `errorType`), classed as `error` classes itself.
    pub fn new<E>(kind: &'static str, error: E) -> Self
    where
        E: StdError + Classify + Send + Sync + 'static,
    {
        Self {
            class: error.class(),
            kind,
            error: Box::new(error),
        }
    }

    /// The kind: the last part of the `errorType`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The error it wraps, to downcast to its own type.
    pub fn error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.error
    }

    /// The Lambda `errorType`: `Tideline.<Retryable|Permanent>.<Kind>`.
    pub fn error_type(&self) -> String {
        format!("{ERROR_TYPE_PREFIX}.{}.{}", self.class.name(), self.kind)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("error_type", &self.error_type())
            .field("error", &self.error)
            .finish()
    }
}

/// Transparent: the wrapped error's own message and cause, so a chain
/// printer shows each once.
impl StdError for HandlerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error.source()
    }
}

impl Classify for HandlerError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// What the runtime sends to Lambda's invocation-error API: the class in
/// `errorType`, the message with its causes in `errorMessage`.
impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Self {
        Diagnostic {
            error_type: error.error_type(),
            error_message: DisplayChain(&error).to_string(),
        }
    }
}

/// The body of every `main`: tracing, config (failing with the variable's
/// name), the SDK config once, then the runtime loop.
pub mod start {
    /// Logs a start-up failure and turns it into the process error.
    pub fn fail(function: &str, error: impl std::fmt::Display) -> crate::Error {
        tracing::error!(function, error = %error, "start-up failed");
        error.to_string().into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tideline_stages::PortError;

    #[test]
    fn error_type_says_the_class_and_the_kind() {
        let cause = std::io::Error::other("connection reset");
        let retryable = HandlerError::new(
            "QueueUnavailable",
            PortError::retryable("sqs", "SendMessageBatch: timed out").with_source(cause),
        );
        let permanent = HandlerError::new(
            "BadConfiguration",
            PortError::permanent("dynamodb", "ResourceNotFoundException"),
        );
        assert!(retryable.is_retryable());
        let d = Diagnostic::from(retryable);
        assert_eq!(d.error_type, "Tideline.Retryable.QueueUnavailable");
        assert_eq!(
            d.error_message,
            "sqs: SendMessageBatch: timed out: connection reset"
        );
        let d = serde_json::to_value(Diagnostic::from(permanent)).unwrap();
        assert_eq!(
            d,
            serde_json::json!({
                "errorType": "Tideline.Permanent.BadConfiguration",
                "errorMessage": "dynamodb: ResourceNotFoundException",
            })
        );
    }
}
