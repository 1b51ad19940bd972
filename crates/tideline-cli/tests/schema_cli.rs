//! `tideline schema list` and `tideline schema check`, through the built
//! binary, against the checked-in `schemas/registry.json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

const REGISTRY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/registry.json");

fn tideline(args: &[&str]) -> Output {
    tideline_testkit::cli::command(env!("CARGO_BIN_EXE_tideline"))
        .args(args)
        .env_remove("TIDELINE_SCHEMA_REGISTRY")
        .output()
        .unwrap()
}

#[test]
fn list_prints_types_and_versions() {
    let o = tideline(&["schema", "list", "--registry", REGISTRY]);
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.lines().any(|l| l.starts_with("OrderPlaced\tv1\t")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("OrderShipped\tv1\t")),
        "{out}"
    );
}

#[test]
fn check_accepts_a_good_sample_and_names_the_pointer_and_rule_of_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"entity_id":"o-1","type":"OrderShipped","data":{"order_no":"SO-100001","carrier":"ヤマト運輸"}}"#,
    )
    .unwrap();
    let o = tideline(&[
        "schema",
        "check",
        good.to_str().unwrap(),
        "--registry",
        REGISTRY,
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8(o.stdout).unwrap().starts_with("OK"));

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"entity_id":"o-1","type":"OrderPlaced","data":{"order_no":"SO-1","currency":"EUR","items":[],"total":1}}"#,
    )
    .unwrap();
    let o = tideline(&[
        "schema",
        "check",
        bad.to_str().unwrap(),
        "--registry",
        REGISTRY,
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("SchemaViolation"), "{err}");
    assert!(
        err.contains("\"/order_no\"") && err.contains("`pattern`"),
        "{err}"
    );

    let unknown = dir.path().join("unknown.json");
    std::fs::write(
        &unknown,
        r#"{"entity_id":"o-1","type":"NoSuchType","data":{}}"#,
    )
    .unwrap();
    let o = tideline(&[
        "schema",
        "check",
        unknown.to_str().unwrap(),
        "--registry",
        REGISTRY,
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("\"NoSuchType\" has no schema"), "{err}");

    let o = tideline(&["schema", "list", "--json", "--registry", REGISTRY]);
    assert!(o.status.success(), "{o:?}");
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "OrderPlaced" && t["version"] == 1),
        "{list}"
    );

    let o = tideline(&["schema", "list", "--registry", "/nonexistent/registry.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr).unwrap().contains("--registry"));
}
