//! EventBridge event patterns, evaluated as AWS evaluates them.
//!
//! Tideline routes change events with EventBridge rules on AWS and with the
//! same rules in local mode. Local mode must route exactly as AWS would, or a
//! rule that works locally silently drops events in production. So this crate
//! implements EventBridge content filtering with the semantics of
//! [event-ruler](https://github.com/aws/event-ruler), the engine EventBridge
//! runs, and rejects the patterns EventBridge rejects, with a message that
//! names the JSON path at fault (INVARIANTS.md #8).
//!
//! A pattern is compiled once ([`Pattern::parse`], [`Pattern::from_value`])
//! into a tree of matchers; [`Pattern::matches`] walks that tree against a
//! `serde_json::Value` without allocating. [`RuleSet`] holds many rules and
//! indexes them by their pinned top-level values, so an event only evaluates
//! the rules that can match it. `docs/decisions/0002-pattern-engine.md` records
//! the semantics, including how numbers compare.
//!
//! ```
//! use tideline_pattern::Pattern;
//! let p = Pattern::parse(r#"{"source": ["tideline"], "detail": {"price": [{"numeric": [">", 0, "<=", 5]}]}}"#)?;
//! assert!(p.matches(&serde_json::json!({"source": "tideline", "detail": {"price": 5.0}})));
//! assert!(!p.matches(&serde_json::json!({"source": "tideline", "detail": {"price": "5"}})));
//! # Ok::<(), tideline_pattern::PatternError>(())
//! ```

#![deny(missing_docs)]

mod compile;
mod error;
mod event;
mod json;
mod matcher;
mod ruleset;

pub use error::{EventError, PatternError};
pub use ruleset::RuleSet;

/// A compiled EventBridge event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    root: matcher::Node,
}

impl Pattern {
    /// Compiles a pattern from its JSON text; number literals are kept as written.
    pub fn parse(pattern_json: &str) -> Result<Pattern, PatternError> {
        let value = json::parse(pattern_json).map_err(|e| match e {
            EventError::Syntax {
                line,
                column,
                message,
            } => PatternError::Syntax {
                line,
                column,
                message,
            },
        })?;
        Ok(Pattern {
            root: compile::compile(&value)?,
        })
    }

    /// Compiles a pattern from a parsed JSON value.
    ///
    /// Number literals are serde_json's rendering of each number; this only
    /// matters for numbers beyond ±5e9, which EventBridge compares by literal.
    pub fn from_value(pattern: &serde_json::Value) -> Result<Pattern, PatternError> {
        let value = json::JsonValue::from_serde(pattern, 0)
            .ok_or_else(|| PatternError::invalid("", "the pattern is nested too deeply"))?;
        Ok(Pattern {
            root: compile::compile(&value)?,
        })
    }

    /// Whether `event` matches this pattern.
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        self.root.matches(Some(event))
    }

    /// Matches event JSON text, keeping each number's literal form (e.g. for `tideline pattern test`).
    pub fn matches_json(&self, event_json: &str) -> Result<bool, EventError> {
        let event = json::parse(event_json)?;
        Ok(self.root.matches(Some(&event)))
    }

    /// Matches event JSON text like [`Pattern::matches_json`], and says what
    /// decided it: the first field, in pattern order, that the event fails,
    /// or, for a match, every field the pattern tests (all of which passed).
    /// For the console's pattern tester, where "false" alone leaves the
    /// reader to diff the pattern against the event by eye.
    pub fn explain_json(&self, event_json: &str) -> Result<Verdict, EventError> {
        let event = json::parse(event_json)?;
        let first_miss = self.root.first_miss(Some(&event), "");
        let mut tested = Vec::new();
        self.root.paths("", &mut tested);
        Ok(Verdict {
            matched: first_miss.is_none(),
            first_miss,
            tested,
        })
    }
}

/// Why an event matched a pattern or not ([`Pattern::explain_json`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the event matches.
    pub matched: bool,
    /// The first field, in pattern order, the event fails, as a dotted path
    /// (`detail.total`; `detail.$or` when no alternative of an `$or` group
    /// matches); `None` on a match.
    pub first_miss: Option<String>,
    /// Every field path the pattern tests, in pattern order.
    pub tested: Vec<String>,
}
