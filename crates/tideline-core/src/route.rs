//! Routing: the rules file, and matching integration events to targets.
//!
//! One rules file routes both locally (`tideline up --rules`) and on AWS (the
//! Terraform `consumer` module reads the same file): a JSON array of
//! `{"name", "event_pattern", "target"}`. Patterns are EventBridge event
//! patterns, compiled once by `tideline-pattern`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use tideline_pattern::{Pattern, RuleSet};

/// Where a rule delivers matching events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetSpec {
    /// JSON Lines to a file, or `-` for standard output.
    Log {
        /// File path, or `-`.
        path: String,
    },
    /// POST each event; retried with backoff, then dead-lettered.
    Webhook {
        /// URL to POST to.
        url: String,
    },
    /// A Lambda binary run locally behind the Lambda Runtime API; ignored by `log`/`webhook`-only hosts.
    Lambda {
        /// The program and its arguments (e.g. `["target/debug/event-responder"]`).
        command: Vec<String>,
        /// Extra environment for the process.
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
}

/// One rule as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name; also the target's checkpoint and dead-letter key.
    pub name: String,
    /// An EventBridge event pattern.
    pub event_pattern: Value,
    /// Where matches go.
    pub target: TargetSpec,
}

/// A rule with its compiled pattern.
#[derive(Debug, Clone)]
pub struct Rule {
    /// As written.
    pub spec: RuleSpec,
    /// Compiled once.
    pub pattern: Pattern,
}

/// A rules file that cannot be used, with what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// Not a JSON array of rules.
    #[error("rules file is not a JSON array of {{\"name\", \"event_pattern\", \"target\"}}: {0}")]
    Format(String),
    /// Rule `index` has an invalid pattern.
    #[error("rule {index} ({name:?}): invalid event_pattern: {message}")]
    Pattern {
        /// Position in the file.
        index: usize,
        /// Rule name.
        name: String,
        /// The pattern engine's message.
        message: String,
    },
    /// A name used twice, or empty.
    #[error("rule {index}: name {name:?} is empty or used twice; names must be unique")]
    Name {
        /// Position in the file.
        index: usize,
        /// The name.
        name: String,
    },
    /// A Lambda target runs one of the project's binaries without a variable
    /// its environment contract requires: it would exit on every event.
    #[error(
        "rule {index} ({name:?}): lambda target {binary}: env lacks {}, which {binary} requires (crates/tideline-lambdas/env-contract.json)",
        missing.join(", ")
    )]
    Environment {
        /// Position in the file.
        index: usize,
        /// Rule name.
        name: String,
        /// The binary's name in the contract.
        binary: String,
        /// The required variables the target's `env` does not set.
        missing: Vec<String>,
    },
}

/// The environment contract of the project's Lambda binaries, the file the
/// Terraform checks and the config loaders are tested against.
const ENV_CONTRACT: &str = include_str!("../../tideline-lambdas/env-contract.json");

/// For a Lambda target that runs a binary named in the environment contract
/// (by its file name, e.g. `target/debug/event-responder`), the contract's
/// name and the required variables its `env` does not set; `None` when
/// nothing is missing or the binary is not one of the project's. A binary
/// reads its required variables at start and exits without them, so a rule
/// that lacks one would dead-letter every event with little to say why.
pub fn missing_environment(target: &TargetSpec) -> Option<(String, Vec<String>)> {
    let TargetSpec::Lambda { command, env } = target else {
        return None;
    };
    let program = command.first()?;
    let binary = std::path::Path::new(program).file_name()?.to_str()?;
    let contract: Value = serde_json::from_str(ENV_CONTRACT).ok()?;
    let missing: Vec<String> = contract
        .get(binary)?
        .get("required")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        // The process inherits the host's environment too (tideline up passes
        // it on), but a rules file must not depend on who starts it.
        .filter(|var| !env.contains_key(*var))
        .map(str::to_string)
        .collect();
    (!missing.is_empty()).then(|| (binary.to_string(), missing))
}

/// Parses and compiles a rules file.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RulesError> {
    let specs: Vec<RuleSpec> =
        serde_json::from_str(text).map_err(|e| RulesError::Format(e.to_string()))?;
    let mut names = HashSet::new();
    specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            if spec.name.is_empty() || !names.insert(spec.name.clone()) {
                return Err(RulesError::Name {
                    index,
                    name: spec.name.clone(),
                });
            }
            let pattern =
                Pattern::from_value(&spec.event_pattern).map_err(|e| RulesError::Pattern {
                    index,
                    name: spec.name.clone(),
                    message: e.to_string(),
                })?;
            if let Some((binary, missing)) = missing_environment(&spec.target) {
                return Err(RulesError::Environment {
                    index,
                    name: spec.name.clone(),
                    binary,
                    missing,
                });
            }
            Ok(Rule { spec, pattern })
        })
        .collect()
}

/// Matches events against all rules at once.
#[derive(Debug)]
pub struct Router {
    rules: Vec<Rule>,
    set: RuleSet<usize>,
}

impl Router {
    /// Builds the router.
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut set = RuleSet::new();
        for (i, r) in rules.iter().enumerate() {
            set.add(r.pattern.clone(), i);
        }
        Self { rules, set }
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Indexes of the rules an event matches, in file order.
    pub fn route(&self, event: &Value) -> Vec<usize> {
        self.set.matching(event).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_env_contract_parses_and_names_event_responder() {
        let contract: Value = serde_json::from_str(ENV_CONTRACT).unwrap();
        assert!(contract["event-responder"]["required"].is_array());
    }

    #[test]
    fn a_lambda_target_missing_a_required_variable_is_refused_naming_it() {
        let rules = |env: Value| {
            json!([{"name": "r", "event_pattern": {"source": ["tideline"]},
                "target": {"type": "lambda", "command": ["target/debug/event-responder"], "env": env}}])
            .to_string()
        };
        let err = parse_rules(&rules(json!({"TIDELINE_CONSUMER_NAME": "c"}))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("TIDELINE_CHECKPOINT_TABLE, TIDELINE_READ_MODEL_TABLE")
                && text.contains("event-responder")
                && text.contains("rule 0 (\"r\")"),
            "{text}"
        );
        parse_rules(&rules(json!({
            "TIDELINE_CONSUMER_NAME": "c",
            "TIDELINE_CHECKPOINT_TABLE": "sqlite:c.db",
            "TIDELINE_READ_MODEL_TABLE": "read_model"
        })))
        .unwrap();
        // A binary the contract does not name is the user's business.
        let other = json!([{"name": "r", "event_pattern": {"source": ["tideline"]},
            "target": {"type": "lambda", "command": ["./my-consumer"]}}]);
        parse_rules(&other.to_string()).unwrap();
    }

    #[test]
    fn rules_file_parses_and_routes() {
        let rules = parse_rules(
            r#"[{"name":"orders","event_pattern":{"detail-type":["OrderPlaced"]},"target":{"type":"log","path":"-"}},
                {"name":"all","event_pattern":{"source":["tideline"]},"target":{"type":"webhook","url":"http://127.0.0.1:9/x"}}]"#,
        )
        .unwrap();
        let router = Router::new(rules);
        assert_eq!(
            router.route(&json!({"source":"tideline","detail-type":"OrderPlaced","detail":{}})),
            vec![0, 1]
        );
        assert_eq!(
            router.route(&json!({"source":"tideline","detail-type":"Other","detail":{}})),
            vec![1]
        );
        assert_eq!(
            router.route(&json!({"source":"else","detail-type":"Other"})),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn bad_rules_say_what_and_where() {
        let e = parse_rules(r#"[{"name":"x","event_pattern":{"source":"tideline"},"target":{"type":"log","path":"-"}}]"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("rule 0 (\"x\"): invalid event_pattern"),
            "{e}"
        );
        let e = parse_rules(r#"[{"name":"x","event_pattern":{"a":[1]},"target":{"type":"sms"}}]"#)
            .unwrap_err();
        assert!(matches!(e, RulesError::Format(_)));
        let e = parse_rules(r#"[{"name":"x","event_pattern":{"a":[1]},"target":{"type":"log","path":"-"}},{"name":"x","event_pattern":{"a":[1]},"target":{"type":"log","path":"-"}}]"#).unwrap_err();
        assert!(matches!(e, RulesError::Name { index: 1, .. }));
    }
}
