//! `tideline tail` against `tideline up`: the binary follows the SSE endpoint
//! of an in-process local stack and prints only matching events as JSON Lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tideline_testkit::local::LocalHarness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_matching_events_as_json_lines() {
    let stack = LocalHarness::start().await;
    let endpoint = stack.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args([
            "tail",
            "--endpoint",
            &endpoint,
            "--pattern",
            r#"{"detail-type":["Shipped"]}"#,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the tail is connected (it says so on stderr).
    let stderr = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("following") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("tail connected");

    let records = [
        json!({"entity_id": "a", "type": "Placed", "data": {}}),
        json!({"entity_id": "b", "type": "Shipped", "data": {"n": 1}}),
        json!({"entity_id": "c", "type": "Shipped", "data": {"n": 2}}),
    ];
    stack.put_records(&records).await;

    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(2)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(30), lines)
        .await
        .expect("two events within 30 s")
        .unwrap();
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("one compact JSON object per line"))
        .collect();
    assert_eq!(events[0]["detail"]["metadata"]["entity_id"], "b");
    assert_eq!(events[1]["detail"]["metadata"]["entity_id"], "c");
    assert!(events.iter().all(|e| e["detail-type"] == "Shipped"));

    // When tideline up stops, the tail ends by itself.
    stack.shutdown().await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap());
    let status = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("tail exits when the server stops")
        .unwrap();
    assert!(status.success());
}
