//! Rule-bound Lambdas in local mode: a real `lambda_runtime` binary
//! (`crates/test-consumer`) runs behind the local Lambda Runtime API, sees
//! every matching event in per-entity order, and an event it keeps failing
//! ends in the delivery dead-letter table with the reason (INVARIANTS.md #1, #4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tideline_core::retry::RetryPolicy;
use tideline_testkit::local::{LocalHarness, rules};

/// Builds `tideline-test-consumer` into this test's target directory; returns the binary.
fn consumer_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/deps/<test binary>
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-p", "tideline-test-consumer"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p tideline-test-consumer failed"
    );
    let bin = profile_dir.join("tideline-test-consumer");
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_target_runs_a_lambda_runtime_consumer_in_order_and_dead_letters_failures() {
    let bin = consumer_binary();
    let stack = LocalHarness::start_with(|c, dir| {
        let mut env = BTreeMap::new();
        let out = dir.join("seen.txt");
        env.insert("TEST_CONSUMER_OUT".to_string(), out.display().to_string());
        c.rules = rules(json!([{
            "name": "consumer",
            "event_pattern": {"source": ["tideline"]},
            "target": {"type": "lambda", "command": [bin], "env": env},
        }]));
        c.retry = RetryPolicy::fast(3);
    })
    .await;
    let out = stack.dir().join("seen.txt");

    // Three entities, five events each, interleaved; e-2's third event fails every time.
    let entities = ["e-1", "e-2", "e-3"];
    let mut expected: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for round in 0..5u64 {
        let mut batch = Vec::new();
        for e in entities {
            let fail = e == "e-2" && round == 2;
            batch.push(
                json!({"entity_id": e, "type": "Step", "data": {"round": round, "fail": fail}}),
            );
            if !fail {
                expected.entry(e).or_default().push(round + 1);
            }
        }
        stack.ingest(&batch).await;
    }
    stack.wait_idle(Duration::from_secs(120)).await;

    let seen = std::fs::read_to_string(&out).unwrap();
    let mut got: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for line in seen.lines() {
        let (entity, seq) = line.split_once(' ').unwrap();
        let entity = entities.iter().find(|e| **e == entity).unwrap();
        got.entry(entity).or_default().push(seq.parse().unwrap());
    }
    assert_eq!(
        got, expected,
        "per-entity sequences seen by the consumer:\n{seen}"
    );

    let dead = stack.shared().bus.deliveries().dead_letters().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    // The target's counts: one failed (dead-lettered), the rest delivered.
    let route = &stack.shared().metrics()["route"]["consumer"];
    assert_eq!(route["failed"], 1, "{route}");
    assert_eq!(
        route["sent"].as_u64().unwrap() + 1,
        route["received"].as_u64().unwrap(),
        "{route}"
    );
    assert_eq!(dead[0].rule, "consumer");
    assert_eq!(dead[0].event["detail"]["metadata"]["entity_id"], "e-2");
    assert_eq!(dead[0].event["detail"]["metadata"]["sequence"], 3);
    assert_eq!(dead[0].attempts, 3);
    assert!(
        dead[0].reason.contains("asked to fail"),
        "reason: {}",
        dead[0].reason
    );
    tokio::time::timeout(Duration::from_secs(20), stack.shutdown())
        .await
        .expect("shutdown kills the lambda process and stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_process_that_crashes_is_restarted_then_the_event_is_dead_lettered() {
    let stack = LocalHarness::start_with(|c, _| {
        c.rules = rules(json!([{
            "name": "crasher",
            "event_pattern": {"detail-type": ["Boom"]},
            "target": {"type": "lambda", "command": ["sh", "-c", "echo 'early line' >&2; echo 'TIDELINE_X is not set' >&2; exit 3"]},
        }]));
        c.retry = RetryPolicy::fast(3);
    })
    .await;
    stack
        .ingest(&[
            json!({"entity_id": "x", "type": "Boom", "data": {}}),
            json!({"entity_id": "x", "type": "Quiet", "data": {}}),
        ])
        .await;
    stack.wait_idle(Duration::from_secs(60)).await;
    let dead = stack.shared().bus.deliveries().dead_letters().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].event["detail-type"], "Boom");
    assert_eq!(dead[0].attempts, 3);
    assert!(
        dead[0].reason.contains("process exited")
            && dead[0].reason.contains('3')
            // Why it exited is only on its stderr: the reason carries the last lines.
            && dead[0].reason.contains("early line | TIDELINE_X is not set"),
        "reason: {}",
        dead[0].reason
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_lambda_target_with_a_missing_binary_is_refused_at_start() {
    let err = LocalHarness::try_start_with(|c, _| {
        c.rules = rules(json!([{
            "name": "gone",
            "event_pattern": {"source": ["tideline"]},
            "target": {"type": "lambda", "command": ["./target/no-such-bootstrap"]},
        }]));
    })
    .await
    .err()
    .expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("\"gone\"") && message.contains("no-such-bootstrap"),
        "{message}"
    );
}
