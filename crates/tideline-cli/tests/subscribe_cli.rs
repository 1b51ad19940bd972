//! `tideline subscribe` against `tideline up`: the binary speaks the
//! realtime protocol, prints JSON Lines, resumes from `--since`, and after
//! the server restarts mid-stream reconnects and misses nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tideline_realtime::TokenVerifier;
use tideline_testkit::local::{LocalHarness, free_port};

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{name}-{nanos:x}{:x}", std::process::id())
}

fn records(entity: &str, range: std::ops::RangeInclusive<u64>) -> Vec<Value> {
    range
        .map(|n| json!({"entity_id": entity, "type": "OrderPlaced", "data": {"n": n}}))
        .collect()
}

/// The event lines' sequences, in the order printed (never sorted).
fn sequences(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "event")
        .map(|v| v["sequence"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_prints_what_came_after_since_then_live_events() {
    let stack =
        LocalHarness::start_with(|c, _| c.realtime.verifier = Some(TokenVerifier::InsecureDev))
            .await;
    let entity = unique("order");
    stack.ingest(&records(&entity, 1..=4)).await;
    stack.wait_idle(Duration::from_secs(20)).await;
    let endpoint = format!("ws://{}/_tideline/realtime", stack.local_addr());
    let child = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["subscribe", "--topic", "OrderPlaced", "--entity", &entity])
        .args([
            "--since",
            &format!("{entity}=2"),
            "--count",
            "4",
            "--dev-token",
        ])
        .args(["--endpoint", &endpoint])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.ingest(&records(&entity, 5..=6)).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("exits after 4 events")
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines[0].contains("\"subscribed\""), "{lines:?}");
    assert_eq!(sequences(&lines), [3, 4, 5, 6]);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_reconnects_after_a_server_restart_and_misses_nothing() {
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let configure = move |c: &mut tideline_local::LocalConfig, _: &std::path::Path| {
        c.listen = listen;
        c.realtime.verifier = Some(TokenVerifier::InsecureDev);
    };
    let stack = LocalHarness::start_with(configure).await;
    let entity = unique("restart");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["subscribe", "--topic", "OrderPlaced", "--entity", &entity])
        .args(["--count", "10", "--dev-token"])
        .args(["--endpoint", &format!("ws://{listen}/_tideline/realtime")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = line_tx.send(line.unwrap_or_default());
        }
    });
    let mut lines = Vec::new();
    let take_until = |events: usize, lines: &mut Vec<String>| {
        while sequences(lines).len() < events {
            lines.push(
                line_rx
                    .recv_timeout(Duration::from_secs(30))
                    .expect("a line"),
            );
        }
    };
    take_until(0, &mut lines);
    lines.push(line_rx.recv_timeout(Duration::from_secs(30)).unwrap());
    assert!(lines[0].contains("\"subscribed\""), "{lines:?}");
    stack.ingest(&records(&entity, 1..=5)).await;
    take_until(5, &mut lines);
    // A restart: the server closes with 1001; the client reconnects with
    // `since` = 5 once the server is back, and events 6–10 were stored
    // while it was away or after.
    let stack = stack.restart_with(configure).await;
    stack.ingest(&records(&entity, 6..=10)).await;
    take_until(10, &mut lines);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap());
    let status = tokio::time::timeout(Duration::from_secs(30), status)
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert_eq!(sequences(&lines), (1..=10).collect::<Vec<_>>(), "{lines:?}");
    stack.shutdown().await;
}

#[test]
fn subscribe_refused_by_the_server_says_why_and_a_bad_endpoint_is_a_usage_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stack = rt.block_on(LocalHarness::start_with(|c, _| {
        c.realtime.verifier = Some(TokenVerifier::hs256(b"s3cret", None).unwrap());
    }));
    let out = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["subscribe", "--topic", "T", "--dev-token"])
        .args([
            "--endpoint",
            &format!("ws://{}/_tideline/realtime", stack.local_addr()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args([
            "subscribe",
            "--topic",
            "T",
            "--dev-token",
            "--endpoint",
            "http://x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ws://"));
    rt.block_on(stack.shutdown());
}
