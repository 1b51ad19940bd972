//! `GET /_tideline/tail`: the live bus as server-sent events, filtered on the
//! server with the compiled pattern (what `tideline tail` follows locally).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use tideline_testkit::local::LocalHarness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_streams_only_matching_events_and_ends_at_shutdown() {
    let stack = LocalHarness::start().await;
    let pattern =
        r#"{"detail-type":["Shipped"],"detail":{"data":{"weight":[{"numeric":[">",1.5]}]}}}"#;
    let resp = reqwest::Client::new()
        .get(format!("http://{}/_tideline/tail", stack.local_addr()))
        .query(&[("pattern", pattern)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    stack
        .put_records(&[
            json!({"entity_id": "a", "type": "Placed", "data": {"weight": 9}}),
            json!({"entity_id": "b", "type": "Shipped", "data": {"weight": 2}}),
            json!({"entity_id": "c", "type": "Shipped", "data": {"weight": 1}}),
            json!({"entity_id": "d", "type": "Shipped", "data": {"weight": 3.25}}),
        ])
        .await;

    let mut body = resp.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let read = async {
        while events.len() < 2 {
            let chunk = body.next().await.expect("stream open").unwrap();
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                for line in block.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        events.push(serde_json::from_str::<Value>(data.trim()).unwrap());
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("two matching events within 30 s");
    let entities: Vec<&str> = events
        .iter()
        .map(|e| e["detail"]["metadata"]["entity_id"].as_str().unwrap())
        .collect();
    assert_eq!(entities, ["b", "d"]);

    // Shutdown is not held up by an open tail stream, and the stream ends.
    tokio::time::timeout(Duration::from_secs(10), stack.shutdown())
        .await
        .expect("shutdown with a tail client connected");
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(rest.is_ok(), "the tail stream ends at shutdown");
}

#[tokio::test]
async fn tail_refuses_an_invalid_pattern_with_what_and_where() {
    let stack = LocalHarness::start().await;
    let resp = reqwest::Client::new()
        .get(format!("http://{}/_tideline/tail", stack.local_addr()))
        .query(&[("pattern", r#"{"detail":{"n":[{"numeric":[">"]}]}}"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("detail.n"), "{text}");
    stack.shutdown().await;
}
