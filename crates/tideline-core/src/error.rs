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

/// Implemented by every error type that crosses a stage boundary.
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;

    /// Shorthand for `class() == Retryable`.
    fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }
}

impl ErrorClass {
    /// `Retryable` or `Permanent`: the class as it appears in an error's
    /// type name (a Lambda `errorType`, a log field an alarm matches on).
    pub fn name(self) -> &'static str {
        match self {
            Self::Retryable => "Retryable",
            Self::Permanent => "Permanent",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Displays an error with its sources, `a: b: c`, for the places that print
/// one line (a CLI's last words, a log field, a Lambda `errorMessage`).
///
/// A source whose text the line already shows is left out: adapters keep the
/// cause's text in their own message, so that logs printing one level still
/// say what happened, and the full chain would otherwise say it twice.
pub struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        let mut source = self.0.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            source = s.source();
        }
        f.write_str(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(String, #[source] Option<Box<Layer>>);

    fn layer(text: &str, source: Option<Layer>) -> Layer {
        Layer(text.into(), source.map(Box::new))
    }

    #[test]
    fn chain_shows_each_source_once() {
        let e = layer(
            "reading x",
            Some(layer("io error", Some(layer("connection refused", None)))),
        );
        assert_eq!(
            DisplayChain(&e).to_string(),
            "reading x: io error: connection refused"
        );
        // An adapter's message that already carries its cause's text.
        let e = layer(
            "sqlite: database is locked",
            Some(layer("database is locked", None)),
        );
        assert_eq!(DisplayChain(&e).to_string(), "sqlite: database is locked");
    }

    #[test]
    fn class_names_are_the_error_type_words() {
        assert_eq!(ErrorClass::Retryable.to_string(), "Retryable");
        assert_eq!(ErrorClass::Permanent.name(), "Permanent");
    }
}
