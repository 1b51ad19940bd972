//! `tideline up --retention` end to end (issue 19): an event expires, the
//! sweep removes it, `EventExpired` reaches a rule's target as it does from
//! DynamoDB's TTL on AWS, and a re-sent id is stored again at the next `seq`
//! once its event is gone (the de-duplication window is the retention).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tideline_testkit::fixtures::{put_record_batch_body, record};
use tideline_testkit::local::history;
use tideline_testkit::local::{ServerProcess, free_port, wait_healthy};

async fn put(client: &reqwest::Client, base: &str, entity: &str, id: &str) {
    let body = put_record_batch_body(&[record(entity, "Posted").id(id).data(json!({"n": 1}))]);
    let answer: Value = client
        .post(format!("{base}/"))
        .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["FailedPutCount"], 0, "{answer}");
}

/// The log target's lines, as (detail-type, event id, sequence).
fn delivered(log: &std::path::Path) -> Vec<(String, String, u64)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["detail-type"].as_str().unwrap_or_default().to_string(),
                v["detail"]["metadata"]["event_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v["detail"]["metadata"]["sequence"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

async fn wait_for(
    log: &std::path::Path,
    what: &str,
    done: impl Fn(&[(String, String, u64)]) -> bool,
) -> Vec<(String, String, u64)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = delivered(log);
        if done(&lines) {
            return lines;
        }
        assert!(Instant::now() < deadline, "{what}: delivered {lines:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_expired_event_is_removed_and_event_expired_reaches_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("delivered.jsonl");
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        json!([{"name": "log", "event_pattern": {"source": ["tideline"]}, "target": {"type": "log", "path": log}}]).to_string(),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["up", "--retention", "2s", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--rules"])
        .arg(&rules)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(ServerProcess)
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_healthy(&client, &base).await;
    // Unique per run: the entity and ids name nothing another test uses.
    let entity = format!("ret-{}", std::process::id());

    put(&client, &base, &entity, "x").await;
    // Retained: a re-send is a duplicate.
    put(&client, &base, &entity, "x").await;
    let lines = wait_for(&log, "the insert and its expiry", |l| {
        l.iter().any(|(t, _, _)| t == "EventExpired")
    })
    .await;
    assert_eq!(
        lines,
        [
            ("Posted".to_string(), "x".to_string(), 1),
            ("EventExpired".to_string(), "x expired".to_string(), 1),
        ],
        "stored once while retained, then expired"
    );
    let (items, _) = history(&client, &base, &entity, Some(10)).await;
    assert!(items.is_empty(), "the expired event is gone: {items:?}");

    // Gone: the same id is a new event, and its seq continues.
    put(&client, &base, &entity, "x").await;
    let lines = wait_for(&log, "the re-sent id stored again", |l| l.len() >= 3).await;
    assert_eq!(lines[2], ("Posted".to_string(), "x".to_string(), 2));
    let entity_head: Value = client
        .get(format!("{base}/entities/{entity}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entity_head["last_sequence"], 2, "{entity_head}");
    // And it expires in its turn.
    let lines = wait_for(&log, "the second expiry", |l| l.len() >= 4).await;
    assert_eq!(
        lines[3],
        ("EventExpired".to_string(), "x expired".to_string(), 2)
    );
}

#[test]
fn a_bad_retention_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args([
            "up",
            "--retention",
            "7w",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--retention") && stderr.contains("7w"),
        "{stderr}"
    );
}
