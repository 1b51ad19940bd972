//! The command API of `tideline up` (`POST /entities/{entity_id}/events`):
//! an appended event flows out like an ingested one (to a rule's target and
//! to the lake), a stale expectation gets 409 with the actual sequence, a
//! refused event refuses the batch with 400, and a form post is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use tideline_testkit::local::{LocalHarness, files_under, log_lines_until, log_rule};

async fn post(stack: &LocalHarness, entity: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/entities/{entity}/events", stack.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appended_event_reaches_a_rule_target_and_the_lake_like_an_ingested_one() {
    let stack = LocalHarness::start_with(|c, dir| {
        c.rules = log_rule("all", &dir.join("delivered.jsonl"));
    })
    .await;
    let entity = format!("order-{}", std::process::id());
    // One ingested event first: the command appends after it, in the same sequence.
    stack
        .ingest(&[json!({"entity_id": entity, "id": "ingested-1", "type": "OrderPlaced", "data": {"total": 10}})])
        .await;
    stack.wait_idle(Duration::from_secs(30)).await;

    let (status, body) = post(
        &stack,
        &entity,
        &json!({"expected_sequence": 1, "events": [
            {"id": "cmd-1", "type": "ItemAdded", "data": {"sku": "A"}},
            {"id": "cmd-2", "type": "ItemAdded", "data": {"sku": "B"}},
        ]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["last_sequence"], 3, "{body}");

    // A writer that read version 1 too loses, and learns the actual version.
    let (status, body) = post(
        &stack,
        &entity,
        &json!({"expected_sequence": 1, "events": [{"id": "cmd-3", "type": "ItemAdded", "data": {"sku": "C"}}]}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["actual_sequence"], 3, "{body}");

    // The first writer's retry (its answer lost) is a no-op with the same answer.
    let (status, body) = post(
        &stack,
        &entity,
        &json!({"expected_sequence": 1, "events": [
            {"id": "cmd-1", "type": "ItemAdded", "data": {"sku": "A"}},
            {"id": "cmd-2", "type": "ItemAdded", "data": {"sku": "B"}},
        ]}),
    )
    .await;
    assert_eq!(
        (status, body["last_sequence"].clone()),
        (201, json!(3)),
        "{body}"
    );

    let delivered = log_lines_until(&stack.dir().join("delivered.jsonl"), |l| l.len() >= 3).await;
    let delivered: Vec<(String, u64)> = delivered
        .iter()
        .map(|e| {
            (
                e["detail"]["metadata"]["event_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["detail"]["metadata"]["sequence"].as_u64().unwrap(),
            )
        })
        .collect();
    // In delivery order, never sorted: the order is part of the check.
    assert_eq!(
        delivered,
        vec![
            ("ingested-1".to_string(), 1),
            ("cmd-1".to_string(), 2),
            ("cmd-2".to_string(), 3)
        ]
    );
    let events = stack.events(&entity).await;
    assert_eq!(events.len(), 3, "stored once: {events:?}");

    let lake: String = files_under(&stack.lake_dir().join("events"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for id in ["ingested-1", "cmd-1", "cmd-2"] {
        assert!(
            lake.contains(&format!(r#""id":"{id}""#)),
            "{id} not in the lake: {lake}"
        );
    }
    assert!(
        lake.lines()
            .filter(|l| l.contains(r#""id":"cmd-1""#))
            .all(|l| l.contains(&format!(r#""entity_id":"{entity}""#))),
        "{lake}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_refuses_the_batch_and_a_form_post_is_refused() {
    let stack = LocalHarness::start().await;
    let (status, body) = post(
        &stack,
        "order-r",
        &json!({"expected_sequence": null, "events": [
            {"id": "ok", "type": "T", "data": {}},
            {"id": "bad", "type": "", "data": {}},
        ]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["index"], 1, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`type`"),
        "{body}"
    );
    let form = reqwest::Client::new()
        .post(format!("{}/entities/order-r/events", stack.url()))
        .header("content-type", "text/plain")
        .body(r#"{"expected_sequence":null,"events":[{"type":"T","data":{}}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 415);
    stack.wait_idle(Duration::from_secs(30)).await;
    assert!(stack.events("order-r").await.is_empty(), "nothing stored");
    // The query API still answers on the same path.
    let get = reqwest::get(format!("{}/entities/order-r/events", stack.url()))
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 200);
    stack.shutdown().await;
}
