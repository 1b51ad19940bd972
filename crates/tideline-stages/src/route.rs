//! The route stage: each integration event is parsed once and matched
//! against every rule at once with the compiled rule set
//! ([`tideline_core::route::Router`] over `tideline_pattern::RuleSet`).
//!
//! On AWS, EventBridge rules do this; locally, the local host's bus calls
//! [`route_event`] for every entry it accepts and hands the event to the
//! targets of the rules it matched. An event that cannot be parsed (nested
//! deeper than serde_json's 128 levels, which EventBridge itself accepts up
//! to 1,100) is never skipped silently: the caller dead-letters it for every
//! rule with the reason (INVARIANTS.md #1).

use tideline_core::route::Router;

/// Where one event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// The indexes of the rules it matched, in rule order (possibly none).
    Matched(Vec<usize>),
    /// It cannot be read; the reason names the limit.
    Unreadable(String),
}

/// Parses `event_json` once and matches it against every rule of `router`.
pub fn route_event(router: &Router, event_json: &str) -> Routed {
    match serde_json::from_str::<serde_json::Value>(event_json) {
        Ok(event) => Routed::Matched(router.route(&event)),
        Err(error) => Routed::Unreadable(format!(
            "the event cannot be read: {error} (serde_json reads at most {} levels of nesting; EventBridge accepts more)",
            tideline_core::limits::JSON_READER_DEPTH
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tideline_core::route::parse_rules;

    /// Matching itself is the core router's (tested there); this stage adds
    /// the one parse, and says why an event cannot be read.
    #[test]
    fn an_event_is_parsed_once_or_refused_with_the_reason() {
        let rules = parse_rules(
            r#"[{"name":"all","event_pattern":{"source":["tideline"]},"target":{"type":"log","path":"-"}}]"#,
        )
        .unwrap();
        let router = Router::new(rules);
        let event = r#"{"source":"tideline","detail-type":"OrderPlaced","detail":{}}"#;
        assert_eq!(route_event(&router, event), Routed::Matched(vec![0]));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        match route_event(&router, &deep) {
            Routed::Unreadable(reason) => assert!(reason.contains("recursion"), "{reason}"),
            matched => panic!("{matched:?}"),
        }
    }
}
