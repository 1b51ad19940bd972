//! `tideline capacity`, through the built binary: it answers for 100 and
//! 10,000 events/s, its JSON contract, a flag that moves the binding limit,
//! and its defaults held equal to the Terraform module's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Command;

fn capacity(args: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .arg("capacity")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn answers_for_100_and_10000_events_per_second() {
    let low = capacity(&["--events-per-second", "100"]);
    let high = capacity(&["--events-per-second", "10000"]);
    for v in [&low, &high] {
        for stage in ["transformer", "storer", "emitter"] {
            for field in [
                "records_per_batch",
                "chained_calls",
                "batch_ms",
                "invocations_per_second",
                "concurrency",
            ] {
                assert!(v[stage][field].as_f64().is_some(), "{stage}.{field} in {v}");
            }
        }
        for field in [
            "partitions",
            "stream_shards",
            "put_events_per_second",
            "latency_fastest_seconds",
            "latency_slowest_seconds",
        ] {
            assert!(v[field].as_f64().is_some(), "{field}");
        }
        let limits = v["limits"].as_array().unwrap();
        assert_eq!(v["binding"], limits[0]["name"]);
        for l in limits {
            assert!(l["source"].as_str().is_some_and(|s| !s.is_empty()), "{l}");
        }
    }
    assert_eq!(low["fifo_mode_needed"], "standard");
    assert_eq!(high["fifo_mode_needed"], "high-throughput");
    assert!(low["limits"][0]["utilisation"].as_f64().unwrap() < 1.0);
    // At 10,000/s the default storer maximum concurrency (10) binds; raised,
    // Firehose's 5 MiB/s of 1 KiB records binds next.
    assert_eq!(high["binding"], "storer concurrency");
    let raised = capacity(&[
        "--events-per-second",
        "10000",
        "--storer-maximum-concurrency",
        "100",
    ]);
    assert_eq!(raised["binding"], "Firehose bytes");
}

#[test]
fn bad_flags_are_refused_with_the_flag_named() {
    let o = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args([
            "capacity",
            "--events-per-second",
            "100",
            "--storer-batch-size",
            "11",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--storer-batch-size"));
}

/// The defaults are the Terraform module's: a change to one without the
/// other fails here.
#[test]
fn defaults_match_the_terraform_module() {
    let default_of = |name: &str| -> f64 {
        match tideline_testkit::fixtures::terraform_default(name).as_str() {
            "true" => 1.0,
            "false" => 0.0,
            n => n.parse().unwrap(),
        }
    };
    let d = tideline_core::capacity::CapacityInputs::default();
    assert_eq!(
        default_of("firehose_processor_buffer_size_mb"),
        d.processor_buffer_mb
    );
    assert_eq!(
        default_of("firehose_processor_buffer_interval_seconds"),
        d.processor_buffer_interval_seconds
    );
    assert_eq!(default_of("storer_batch_size"), d.storer_batch_size);
    assert_eq!(
        default_of("storer_maximum_concurrency"),
        d.storer_maximum_concurrency
    );
    assert_eq!(
        default_of("storer_max_concurrent_entities"),
        d.storer_max_concurrent_entities
    );
    assert_eq!(
        default_of("transformer_max_concurrent_sends"),
        d.transformer_max_concurrent_sends
    );
    assert_eq!(default_of("emitter_batch_size"), d.emitter_batch_size);
    assert_eq!(
        default_of("emitter_batching_window_seconds"),
        d.emitter_batching_window_seconds
    );
    assert_eq!(
        default_of("emitter_parallelization_factor"),
        d.emitter_parallelization_factor
    );
    assert_eq!(default_of("bundle_max_events"), d.bundle_max_events);
    assert_eq!(
        default_of("queue_high_throughput"),
        f64::from(u8::from(d.queue_high_throughput))
    );
    assert_eq!(
        d.transformer_max_concurrent_sends as usize,
        tideline_stages::transform::DEFAULT_MAX_CONCURRENT_SENDS
    );
}
