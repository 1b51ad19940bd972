//! Errors: a bad pattern says what is wrong and where (INVARIANTS.md #8).

/// A pattern that EventBridge would reject, or pattern text that is not JSON.
///
/// Permanent: fix the pattern; retrying will not help.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// The pattern text is not valid JSON.
    #[error("pattern is not valid JSON: line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The pattern is JSON but not a valid event pattern.
    #[error("at {}: {message}", display_path(path))]
    Invalid {
        /// Where, as a JSON path such as `detail.price[0].numeric`; empty at the top level.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl PatternError {
    pub(crate) fn invalid(path: &str, message: impl Into<String>) -> Self {
        PatternError::Invalid {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// The JSON path of the offending element, if the pattern was valid JSON.
    pub fn path(&self) -> Option<&str> {
        match self {
            PatternError::Syntax { .. } => None,
            PatternError::Invalid { path, .. } => Some(path),
        }
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

/// Event text that is not valid JSON.
///
/// Permanent for that event: the event cannot be matched.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// The event text is not valid JSON.
    #[error("event is not valid JSON: line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
}
