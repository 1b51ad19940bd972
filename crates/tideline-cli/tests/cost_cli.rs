//! `tideline cost`, through the built binary: the JSON contract, Tideline at
//! or below the reference for 1 KiB events, flags that change the bill, and
//! the defaults held equal to the Terraform module's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Output;

fn tideline(args: &[&str]) -> Output {
    tideline_testkit::cli::run(env!("CARGO_BIN_EXE_tideline"), args)
}

fn cost_json(args: &[&str]) -> Value {
    let mut all = vec!["cost", "--json"];
    all.extend_from_slice(args);
    let o = tideline(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn json_has_the_contract_fields_and_lines_add_up() {
    let v = cost_json(&["--events-per-month", "259200000", "--record-bytes", "1024"]);
    let total = v["monthly_usd"].as_f64().unwrap();
    let per_million = v["per_million_usd"].as_f64().unwrap();
    let services = v["services"].as_array().unwrap();
    let sum: f64 = services
        .iter()
        .map(|s| s["monthly_usd"].as_f64().unwrap())
        .sum();
    assert!((sum - total).abs() < 1e-6, "{sum} vs {total}");
    assert!((per_million - total / 259.2).abs() < 1e-6);
    for s in services {
        for field in ["service", "formula"] {
            assert!(s[field].as_str().is_some_and(|t| !t.is_empty()), "{s}");
        }
        assert!(s["per_million_usd"].as_f64().is_some(), "{s}");
    }
    assert_eq!(v["store"]["write_units"], 2);
    assert_eq!(v["store"]["read_units"], 1);
}

#[test]
fn one_kib_events_cost_no_more_than_the_reference_at_both_rates() {
    for per_month in ["259200000", "25920000000"] {
        let v = cost_json(&["--events-per-month", per_month]);
        let ours = v["per_million_usd"].as_f64().unwrap();
        let reference = v["reference"]["per_million_usd"].as_f64().unwrap();
        assert!(ours <= reference, "{per_month}: {ours} > {reference}");
    }
}

#[test]
fn retention_and_incompressible_payloads_raise_the_store_line() {
    let base = cost_json(&["--events-per-month", "1000000"]);
    let with_retention = cost_json(&["--events-per-month", "1000000", "--retention"]);
    let wru = |v: &Value| v["store"]["write_units"].as_u64().unwrap();
    assert_eq!(wru(&with_retention), wru(&base) + 1);
    // Random base64 deflates to about 3/4: at 1.5 KB it no longer fits one unit, business JSON does.
    let json = cost_json(&["--events-per-month", "1000000", "--record-bytes", "1500"]);
    let random = cost_json(&[
        "--events-per-month",
        "1000000",
        "--record-bytes",
        "1500",
        "--payload",
        "random",
    ]);
    assert!(
        wru(&random) > wru(&json),
        "{} vs {}",
        random["store"],
        json["store"]
    );
}

/// `--low-latency` (Terraform `low_latency`) prices the extra invocations
/// and says what it adds to the standard settings' bill.
#[test]
fn low_latency_is_priced_against_the_standard_settings() {
    let standard = cost_json(&["--events-per-month", "259200000"]);
    let low = cost_json(&["--events-per-month", "259200000", "--low-latency"]);
    let adds = low["low_latency_adds_monthly_usd"].as_f64().unwrap();
    let difference =
        low["monthly_usd"].as_f64().unwrap() - standard["monthly_usd"].as_f64().unwrap();
    assert!(adds > 0.0, "{low}");
    assert!((adds - difference).abs() < 1e-6, "{adds} vs {difference}");
    assert_eq!(standard["low_latency_adds_monthly_usd"], Value::Null);
    assert_eq!(low["inputs"]["processor_interval_seconds"], 0.0);
    assert_eq!(low["inputs"]["emitter_window_seconds"], 0.0);
    let o = tideline(&["cost", "--events-per-month", "259200000", "--low-latency"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Low latency"), "{text}");
    for (flag, value) in [
        ("--processor-interval-seconds", "901"),
        ("--emitter-window-seconds", "301"),
    ] {
        let o = tideline(&["cost", "--events-per-month", "10", flag, value]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains(flag));
    }
}

#[test]
fn bad_flags_name_the_flag_and_exit_2() {
    let o = tideline(&["cost", "--events-per-month", "-5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--events-per-month"));
    let o = tideline(&["cost", "--events-per-month", "10", "--record-bytes", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--record-bytes"));
}

/// The defaults the model prices with are the Terraform module's: a change
/// to one without the other fails here.
#[test]
fn defaults_match_the_terraform_module() {
    let default_of = tideline_testkit::fixtures::terraform_default;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../terraform/variables.tf"
    ))
    .unwrap();
    let d = tideline_core::cost::CostInputs::default();
    assert_eq!(
        default_of("firehose_processor_buffer_size_mb")
            .parse::<f64>()
            .unwrap(),
        d.processor_buffer_mb
    );
    assert_eq!(
        default_of("firehose_buffering_size_mb")
            .parse::<f64>()
            .unwrap(),
        d.firehose_buffer_mb
    );
    assert_eq!(
        default_of("firehose_buffering_interval_seconds")
            .parse::<f64>()
            .unwrap(),
        d.firehose_interval_seconds
    );
    assert_eq!(
        default_of("firehose_processor_buffer_interval_seconds")
            .parse::<f64>()
            .unwrap(),
        d.processor_interval_seconds
    );
    assert_eq!(
        default_of("emitter_batching_window_seconds")
            .parse::<f64>()
            .unwrap(),
        d.emitter_window_seconds
    );
    assert_eq!(default_of("low_latency"), "false");
    assert_eq!(
        default_of("storer_batch_size").parse::<f64>().unwrap(),
        d.storer_batch_size
    );
    assert_eq!(
        default_of("emitter_batch_size").parse::<f64>().unwrap(),
        d.emitter_batch_size
    );
    assert_eq!(default_of("legacy_sequence_index"), "false");
    assert_eq!(default_of("event_ttl_days"), "null");
    assert!(!d.retention);
    for function in ["transformer", "event_storer", "event_emitter"] {
        let start = text.find(&format!("variable \"{function}\"")).unwrap();
        let memory = text[start..]
            .lines()
            .find(|l| l.contains("memory_mb"))
            .unwrap();
        assert!(
            memory.contains(&format!("optional(number, {})", d.memory_mb)),
            "{function}: {memory}"
        );
    }
}

/// Every figure table in docs/cost.md is the output of the command written
/// above it (`<!-- tideline cost … -->` … `<!-- end tideline cost -->`), so
/// the docs cannot drift from the model. `TIDELINE_BLESS=1` rewrites them.
#[test]
fn the_figures_in_docs_cost_md_are_the_tools_output() {
    const OPEN: &str = "<!-- tideline cost ";
    const CLOSE: &str = "<!-- end tideline cost -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cost.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    let mut blocks = 0;
    let mut stale = Vec::new();
    while let Some(start) = rest.find(OPEN) {
        let header_end = start + rest[start..].find("-->").unwrap() + 3;
        let args: Vec<&str> = rest[start + OPEN.len()..header_end - 3]
            .split_whitespace()
            .collect();
        let end = header_end + rest[header_end..].find(CLOSE).unwrap();
        let mut all = vec!["cost"];
        all.extend_from_slice(&args);
        all.push("--markdown");
        let o = tideline(&all);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let generated = format!("\n{}", String::from_utf8(o.stdout).unwrap());
        if rest[header_end..end] != generated {
            stale.push(args.join(" "));
        }
        out.push_str(&rest[..header_end]);
        out.push_str(&generated);
        out.push_str(CLOSE);
        rest = &rest[end + CLOSE.len()..];
        blocks += 1;
    }
    out.push_str(rest);
    assert!(blocks >= 2, "docs/cost.md has {blocks} generated blocks");
    if std::env::var("TIDELINE_BLESS").as_deref() == Ok("1") {
        std::fs::write(path, out).unwrap();
        return;
    }
    assert!(
        stale.is_empty(),
        "docs/cost.md differs from `tideline cost … --markdown` for: {stale:?}; rerun with TIDELINE_BLESS=1"
    );
}
