//! `tideline pattern test` and `tideline pattern check`, through the built binary:
//! output, exit codes (0, and 2 for bad input), and messages that say what and where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

fn tideline(args: &[&str]) -> Output {
    tideline_testkit::cli::run(env!("CARGO_BIN_EXE_tideline"), args)
}

use tideline_testkit::cli::{stderr, stdout};

#[test]
fn pattern_test_prints_true_exit_0_or_false_exit_1() {
    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        r#"{"source":["tideline"],"detail":{"metadata":{"entity_id":[{"prefix":"order-"}]}}}"#,
        "--event",
        r#"{"source":"tideline","detail":{"metadata":{"entity_id":"order-7"}}}"#,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "true\n");
    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        r#"{"source":["tideline"]}"#,
        "--event",
        r#"{"source":"elsewhere"}"#,
    ]);
    // Like grep and test(1): a script can use it in a condition.
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "false\n");
}

#[test]
fn pattern_test_compares_number_literals_numerically() {
    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        r#"{"detail":{"n":[{"numeric":["=",3.0]}]}}"#,
        "--event",
        r#"{"detail":{"n":3}}"#,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "true\n");
    // Beyond ±5e9 EventBridge compares exact values by literal: 1e10 is not 10000000000.
    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        r#"{"detail":{"n":[10000000000]}}"#,
        "--event",
        r#"{"detail":{"n":1e10}}"#,
    ]);
    // `false` exits 1 (as grep does for no match).
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "false\n");
}

#[test]
fn pattern_test_reads_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.json");
    let e = dir.path().join("e.json");
    std::fs::write(&p, r#"{"detail-type":["OrderPlaced"]}"#).unwrap();
    std::fs::write(&e, r#"{"detail-type":"OrderPlaced"}"#).unwrap();
    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        &format!("@{}", p.display()),
        "--event",
        &format!("@{}", e.display()),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "true\n");
    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        "@/no/such/file",
        "--event",
        "{}",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--pattern @/no/such/file: cannot read"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_invalid_pattern_or_event_exits_2_saying_what_and_where() {
    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        r#"{"detail":{"price":[{"numeric":[">"]}]}}"#,
        "--event",
        "{}",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(err.contains("--pattern"), "{err}");
    assert!(err.contains("at detail.price[0].numeric"), "{err}");
    assert!(err.contains("missing its number"), "{err}");

    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        r#"{"a":[1"#,
        "--event",
        "{}",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--pattern: pattern is not valid JSON: line 1"),
        "{}",
        stderr(&o)
    );

    let o = tideline(&[
        "pattern",
        "test",
        "--pattern",
        r#"{"a":[1]}"#,
        "--event",
        r#"{"a":"#,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--event: event is not valid JSON: line 1, column"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pattern_check_reports_every_bad_rule_with_index_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[
          {"name": "orders", "event_pattern": {"detail-type": ["OrderPlaced"]}, "target": {"type": "log", "path": "-"}},
          {"name": "bad-pattern", "event_pattern": {"source": "tideline"}, "target": {"type": "log", "path": "-"}},
          {"name": "orders", "event_pattern": {"source": ["tideline"]}, "target": {"type": "webhook", "url": "http://127.0.0.1:9/x"}},
          {"name": "typo", "event_pattern": {"source": ["tideline"]}, "target": {"type": "lambda", "comand": ["x"]}}
        ]"#,
    )
    .unwrap();
    let o = tideline(&["pattern", "check", rules.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(r#"rule 1 ("bad-pattern"): invalid event_pattern: at source:"#),
        "{err}"
    );
    assert!(
        err.contains(r#"rule 2 ("orders"): name is used by an earlier rule"#),
        "{err}"
    );
    assert!(
        err.contains(r#"rule 3 ("typo"): unknown field `comand`"#),
        "{err}"
    );
    assert!(!err.contains("rule 0"), "{err}");
    assert!(err.contains("3 problems found"), "{err}");
}

#[test]
fn pattern_check_prints_a_one_line_summary_when_all_rules_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[
          {"name": "orders", "event_pattern": {"detail-type": ["OrderPlaced"]}, "target": {"type": "log", "path": "-"}},
          {"name": "hook", "event_pattern": {"detail": {"data": {"total": [{"numeric": [">", 100]}]}}}, "target": {"type": "webhook", "url": "https://example.invalid/x"}},
          {"name": "fn", "event_pattern": {"source": ["tideline"]}, "target": {"type": "lambda", "command": ["target/debug/my-consumer"], "env": {"A": "1"}}}
        ]"#,
    )
    .unwrap();
    let o = tideline(&["pattern", "check", rules.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("OK, 3 rules (1 log, 1 webhook, 1 lambda)"),
        "{out}"
    );

    let o = tideline(&["pattern", "check", "/no/such/rules.json"]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::write(&rules, "{\"name\": 1}").unwrap();
    let o = tideline(&["pattern", "check", rules.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("JSON array"), "{}", stderr(&o));
}

#[test]
fn pattern_check_json_and_a_log_target_in_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[{"name":"l","event_pattern":{"source":["tideline"]},"target":{"type":"log","path":"/no/such/dir/events.jsonl"}}]"#,
    )
    .unwrap();
    let o = tideline(&["pattern", "check", "--json", rules.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["ok"], false, "{report}");
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .contains("the directory of \"/no/such/dir/events.jsonl\" does not exist"),
        "{report}"
    );
    std::fs::write(
        &rules,
        r#"[{"name":"l","event_pattern":{"source":["tideline"]},"target":{"type":"log","path":"-"}}]"#,
    )
    .unwrap();
    let o = tideline(&["pattern", "check", "--json", rules.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["rules"], "1 rule (1 log, 0 webhook, 0 lambda)");
}

#[test]
fn pattern_check_refuses_a_lambda_target_missing_a_required_variable_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[{"name": "event-responder", "event_pattern": {"source": ["tideline"]},
             "target": {"type": "lambda", "command": ["target/debug/event-responder"],
                        "env": {"TIDELINE_CONSUMER_NAME": "event-responder"}}}]"#,
    )
    .unwrap();
    let o = tideline(&["pattern", "check", rules.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(r#"rule 0 ("event-responder"): lambda target event-responder: env lacks TIDELINE_CHECKPOINT_TABLE, TIDELINE_READ_MODEL_TABLE"#),
        "{err}"
    );
}

#[test]
fn the_shipped_rules_files_pass_pattern_check() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for file in [
        "docs/examples/rules.json",
        "terraform/examples/complete/rules.json",
    ] {
        let path = format!("{root}/{file}");
        let o = tideline(&["pattern", "check", &path]);
        assert_eq!(o.status.code(), Some(0), "{file}: {}", stderr(&o));
    }
}
