//! terraform/README.md's table of the calls each role makes is generated from
//! `terraform/iam-calls.json`, the list `deployed_roles.rs` recorded by
//! running the functions against the applied example (scripts/apply-terraform.sh),
//! so the documentation cannot drift from the code again.
//! `TIDELINE_BLESS=1 cargo test -p tideline-lambdas --test least_privilege_table`
//! rewrites the table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::fmt::Write;

const BEGIN: &str =
    "<!-- iam-calls:begin (generated from terraform/iam-calls.json; do not edit) -->";
const END: &str = "<!-- iam-calls:end -->";

fn render(calls: &Value) -> String {
    let mut out = String::new();
    out.push_str("| Role | Caller: resource | Actions the recorded calls need |\n|---|---|---|\n");
    for (role, by_resource) in calls.as_object().unwrap() {
        for (i, (caller, actions)) in by_resource.as_object().unwrap().iter().enumerate() {
            let actions: Vec<String> = actions
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!("`{}`", a.as_str().unwrap()))
                .collect();
            let role = if i == 0 { role.as_str() } else { "" };
            writeln!(out, "| {role} | {caller} | {} |", actions.join(", ")).unwrap();
        }
    }
    out
}

#[test]
fn the_readme_table_is_generated_from_the_recorded_calls() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../terraform");
    let calls: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/iam-calls.json")).unwrap())
            .unwrap();
    let readme_path = format!("{root}/README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("README lacks the iam-calls markers")
        + BEGIN.len();
    let end = readme.find(END).unwrap();
    let generated = format!("\n{}", render(&calls));
    if std::env::var("TIDELINE_BLESS").as_deref() == Ok("1") {
        let text = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(&readme_path, text).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        generated,
        "terraform/README.md's recorded-calls table differs from terraform/iam-calls.json; rerun with TIDELINE_BLESS=1"
    );
}
