//! Tideline's Lambda functions. Each module is one function: a plain
//! `handler(state, LambdaEvent<...>)` that translates the event to the stage
//! function's input and its result back to the response the AWS contract
//! asks for. The binaries in `src/bin/` build the SDK clients once and run
//! the handler; tests call the handlers with fixtures.
//!
//! No business rule lives here (INVARIANTS.md #7): validation, ordering,
//! de-duplication and the partial-failure rules are the stages'.

#![deny(missing_docs)]

pub mod emit;
pub mod query;
pub mod store;
pub mod transform;

/// What a handler returns on failure; the runtime reports it as the
/// invocation's error (`errorType` and `errorMessage`).
pub type Error = lambda_runtime::Error;

/// The body of every `main`: tracing, config (failing with the variable's
/// name), the SDK config once, then the runtime loop.
pub mod start {
    /// Logs a start-up failure and turns it into the process error.
    pub fn fail(function: &str, error: impl std::fmt::Display) -> crate::Error {
        tracing::error!(function, error = %error, "start-up failed");
        error.to_string().into()
    }
}
