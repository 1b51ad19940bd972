//! `tideline pattern`: try EventBridge patterns and check rules files offline,
//! with the same engine that routes locally (`tideline-pattern`).
//!
//! - `pattern test --pattern <JSON|@file> --event <JSON|@file>` prints `true`
//!   (exit 0) or `false` (exit 1, as `grep` and `test` do, so scripts can use
//!   it in a condition). Both texts are parsed keeping each number's literal
//!   form, as EventBridge compares numbers beyond ±5e9 by literal. The event
//!   must be a JSON object, as every EventBridge event is.
//! - `pattern check <rules file> [--json]` reports every bad rule with its
//!   index and name, not only the first, and exits 2 if there is any. A log
//!   target whose directory does not exist is a problem here, not at the
//!   first delivery.

use crate::CliError;
use clap::{Args, Subcommand};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tideline_core::route::{RuleSpec, TargetSpec, missing_environment, parse_rules};
use tideline_pattern::Pattern;

/// Flags of `tideline pattern`.
#[derive(Args, Debug, Clone)]
pub struct PatternArgs {
    #[command(subcommand)]
    command: PatternCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum PatternCommand {
    /// Does an event match a pattern? Prints `true` (exit 0) or `false` (exit 1).
    Test {
        /// The EventBridge event pattern: JSON text, or @file (@- for standard input).
        #[arg(long)]
        pattern: String,
        /// The event: JSON text, or @file (@- for standard input).
        #[arg(long)]
        event: String,
    },
    /// Validate every rule of a rules file (JSON array of {"name", "event_pattern", "target"}).
    Check {
        /// The rules file.
        rules: PathBuf,
        /// Print the result as one JSON object: {"file", "ok", "rules", "problems"}.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `tideline pattern …`.
pub fn run(args: PatternArgs) -> Result<ExitCode, CliError> {
    match args.command {
        PatternCommand::Test { pattern, event } => {
            let pattern_text = read_arg("--pattern", &pattern)?;
            let event_text = read_arg("--event", &event)?;
            let matched = test(&pattern_text, &event_text)?;
            println!("{matched}");
            Ok(if matched {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        PatternCommand::Check { rules, json } => {
            let text = std::fs::read_to_string(&rules)
                .map_err(|e| CliError::config(format!("{}: cannot read", rules.display()), e))?;
            let result = check(&text);
            if json {
                let (ok, summary, problems) = match &result {
                    Ok(summary) => (true, Some(summary.as_str()), &[][..]),
                    Err(problems) => (false, None, problems.as_slice()),
                };
                println!(
                    "{}",
                    serde_json::json!({"file": rules.display().to_string(), "ok": ok, "rules": summary, "problems": problems})
                );
            }
            match result {
                Ok(summary) => {
                    if !json {
                        println!("{}: OK, {summary}", rules.display());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{}: {p}", rules.display());
                    }
                    Err(CliError::Usage(format!(
                        "{}: {} problem{} found",
                        rules.display(),
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" }
                    )))
                }
            }
        }
    }
}

/// A flag's text: the value itself, or the contents of `@file` (`@-`: standard input).
pub fn read_arg(flag: &str, value: &str) -> Result<String, CliError> {
    match value.strip_prefix('@') {
        Some("-") => std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::config(format!("{flag} @-: cannot read standard input"), e)),
        Some(path) => std::fs::read_to_string(Path::new(path))
            .map_err(|e| CliError::config(format!("{flag} @{path}: cannot read"), e)),
        None => Ok(value.to_string()),
    }
}

/// Whether the event matches the pattern; bad input is a usage error naming the flag.
pub fn test(pattern: &str, event: &str) -> Result<bool, CliError> {
    let pattern = Pattern::parse(pattern).map_err(|e| CliError::config("--pattern", e))?;
    // EventBridge events are objects; `[1,2]` or `3` would otherwise just print `false`.
    if !event.trim_start().starts_with('{') {
        return Err(CliError::Usage(
            "--event: an event is a JSON object ({\"source\": …, \"detail\": …}), not an array, string or number".into(),
        ));
    }
    pattern
        .matches_json(event)
        .map_err(|e| CliError::config("--event", e))
}

/// Whether a log target's file can be created: its directory exists
/// (relative paths are relative to where `tideline up` runs, as here).
fn log_dir_exists(path: &str) -> bool {
    match Path::new(path).parent() {
        None => true,
        Some(dir) if dir.as_os_str().is_empty() => true,
        Some(dir) => dir.is_dir(),
    }
}

/// Checks a rules file; `Ok` is a one-line summary, `Err` lists every problem.
pub fn check(text: &str) -> Result<String, Vec<String>> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        vec![format!(
            "not valid JSON: line {}, column {}: {e}",
            e.line(),
            e.column()
        )]
    })?;
    let Value::Array(items) = doc else {
        return Err(vec![
            "a rules file is a JSON array of {\"name\", \"event_pattern\", \"target\"}".into(),
        ]);
    };
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let (mut log, mut webhook, mut lambda) = (0, 0, 0);
    for (index, item) in items.iter().enumerate() {
        let label = match item.get("name").and_then(Value::as_str) {
            Some(n) => format!("rule {index} ({n:?})"),
            None => format!("rule {index}"),
        };
        let spec: RuleSpec = match serde_json::from_value(item.clone()) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{label}: {e}"));
                continue;
            }
        };
        if spec.name.is_empty() {
            problems.push(format!("{label}: name is empty"));
        } else if !names.insert(spec.name.clone()) {
            problems.push(format!(
                "{label}: name is used by an earlier rule; names must be unique"
            ));
        }
        if let Err(e) = Pattern::from_value(&spec.event_pattern) {
            problems.push(format!("{label}: invalid event_pattern: {e}"));
        }
        match &spec.target {
            TargetSpec::Log { path } if path.is_empty() => {
                problems.push(format!(
                    "{label}: log target: path is empty (use \"-\" for standard output)"
                ));
            }
            TargetSpec::Log { path } if path != "-" && !log_dir_exists(path) => {
                problems.push(format!(
                    "{label}: log target: the directory of {path:?} does not exist; create it first (mkdir -p)"
                ));
            }
            TargetSpec::Log { .. } => log += 1,
            TargetSpec::Webhook { url }
                if !(url.starts_with("http://") || url.starts_with("https://")) =>
            {
                problems.push(format!(
                    "{label}: webhook target: url {url:?} is not http:// or https://"
                ));
            }
            TargetSpec::Webhook { .. } => webhook += 1,
            TargetSpec::Lambda { command, .. } if command.first().is_none_or(String::is_empty) => {
                problems.push(format!("{label}: lambda target: command is empty"));
            }
            TargetSpec::Lambda { .. } => match missing_environment(&spec.target) {
                // The same refusal `tideline up` makes (parse_rules).
                Some((binary, missing)) => problems.push(format!(
                    "{label}: lambda target {binary}: env lacks {}, which {binary} requires (crates/tideline-lambdas/env-contract.json)",
                    missing.join(", ")
                )),
                None => lambda += 1,
            },
        }
    }
    if problems.is_empty() {
        // The loader `tideline up` uses must agree.
        if let Err(e) = parse_rules(text) {
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{} rule{} ({log} log, {webhook} webhook, {lambda} lambda)",
            items.len(),
            if items.len() == 1 { "" } else { "s" }
        ))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_literals_compare_as_written() {
        assert!(
            test(
                r#"{"detail":{"n":[{"numeric":["=",3.0]}]}}"#,
                r#"{"detail":{"n":3}}"#
            )
            .unwrap()
        );
        assert!(!test(r#"{"detail":{"n":[3]}}"#, r#"{"detail":{"n":4}}"#).unwrap());
    }

    #[test]
    fn an_event_that_is_not_an_object_is_refused() {
        for event in ["[1,2]", "3", "\"x\""] {
            let e = test(r#"{"source":["a"]}"#, event).unwrap_err();
            assert!(e.to_string().starts_with("--event"), "{e}");
        }
    }

    #[test]
    fn a_log_target_in_a_missing_directory_is_a_problem() {
        let problems = check(
            r#"[{"name":"l","event_pattern":{"source":["a"]},"target":{"type":"log","path":"/no/such/dir/x.jsonl"}}]"#,
        )
        .unwrap_err();
        assert!(problems[0].contains("does not exist"), "{problems:?}");
        assert!(check(r#"[{"name":"l","event_pattern":{"source":["a"]},"target":{"type":"log","path":"events.jsonl"}}]"#).is_ok());
    }

    #[test]
    fn check_reports_every_bad_rule() {
        let problems = check(
            r#"[{"name":"ok","event_pattern":{"source":["a"]},"target":{"type":"log","path":"-"}},
                {"name":"bad","event_pattern":{"source":"a"},"target":{"type":"log","path":"-"}},
                {"name":"ok","event_pattern":{"source":["a"]},"target":{"type":"log","path":"-"}},
                {"name":"x","event_pattern":{},"target":{"type":"sms"}}]"#,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("rule 1 (\"bad\"): invalid event_pattern: at source"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("rule 2 (\"ok\"): name is used"),
            "{problems:?}"
        );
        assert!(
            problems[2].starts_with("rule 3 (\"x\"): unknown variant `sms`"),
            "{problems:?}"
        );
    }
}
