//! Issue 10 in local mode: every record is accounted for at every edge
//! (INVARIANTS.md #1). De-duplication is scoped to the entity; the local
//! dispatcher never skips silently; a lake that cannot be written makes the
//! producer retry instead of acknowledging and losing; `--durability full`
//! reaches every database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::time::Duration;
use tideline_core::envelope::BusEntry;
use tideline_core::retry::RetryPolicy;
use tideline_embedded::sqlite::Durability;
use tideline_stages::Bus;
use tideline_testkit::local::{LocalHarness, log_rule};

/// A stack whose stages retry fast, three times.
async fn start() -> LocalHarness {
    LocalHarness::start_with(|c, _| c.retry = RetryPolicy::fast(3)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_id_in_two_entities_is_stored_twice() {
    let stack = start().await;
    let out = stack
        .put_records(&[
            json!({"entity_id": "acct-A", "id": "1", "type": "Opened", "data": {}}),
            json!({"entity_id": "acct-B", "id": "1", "type": "Opened", "data": {}}),
        ])
        .await;
    assert_eq!(out["FailedPutCount"], 0, "{out}");
    stack.wait_idle(Duration::from_secs(30)).await;
    let a = stack.events("acct-A").await;
    let b = stack.events("acct-B").await;
    assert_eq!(a.len(), 1, "acct-A: {a:?}");
    assert_eq!(b.len(), 1, "acct-B: {b:?}");
    assert_eq!(stack.shared().metrics()["events_stored"], 2);
    stack.shutdown().await;
}

/// `data` nested `depth` levels: `{"d":{"d":...}}`.
fn nested(depth: usize) -> String {
    "{\"d\":".repeat(depth) + "1" + &"}".repeat(depth)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_dispatcher_cannot_read_is_dead_lettered_not_discarded() {
    let stack = LocalHarness::start_with(|c, dir| {
        c.retry = RetryPolicy::fast(3);
        c.rules = log_rule("all", &dir.join("delivered.jsonl"));
    })
    .await;
    // Straight onto the bus, past ingest (which refuses such depth): data 126
    // levels deep inside the envelope is beyond serde_json's 128.
    let deep = BusEntry {
        source: "tideline".into(),
        detail_type: "Deep".into(),
        detail: format!(
            r#"{{"metadata":{{"entity_id":"deep"}},"data":{}}}"#,
            nested(126)
        ),
        entity_id: "deep".into(),
        sequence: 1,
        trace_header: None,
    };
    let fine = BusEntry {
        detail: r#"{"metadata":{"entity_id":"fine"},"data":{}}"#.into(),
        detail_type: "Fine".into(),
        entity_id: "fine".into(),
        ..deep.clone()
    };
    let other = BusEntry {
        source: "someone-else".into(),
        ..fine.clone()
    };
    let bus = &stack.shared().bus;
    let results = bus.put_events(&[deep, fine, other]).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    stack.wait_idle(Duration::from_secs(30)).await;

    let dead = bus.deliveries().dead_letters().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].rule, "all");
    assert!(
        dead[0].reason.contains("cannot be read") && dead[0].reason.contains("recursion"),
        "{}",
        dead[0].reason
    );
    let route = &stack.shared().metrics()["route"]["all"];
    assert_eq!(route["received"], 3, "{route}");
    assert_eq!(route["sent"], 1, "{route}");
    assert_eq!(
        route["failed"], 1,
        "the unreadable event is a failure: {route}"
    );
    assert_eq!(
        route["discarded"], 1,
        "only the non-matching event: {route}"
    );
    stack.shutdown().await;
}

/// The lake's directory for accepted records (`tideline_core::lake_layout`):
/// `events/event_type=<type>/date=<day>/` lies under it.
const EVENTS_DIR: &str = "events";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_the_lake_cannot_take_is_reported_failed() {
    let stack = start().await;
    // `processing-failed` as a regular file: no directory can be made under it
    // (chmod would not stop root, which the tests may run as).
    let lake = stack.lake_dir();
    std::fs::create_dir_all(&lake).unwrap();
    let blocker = lake.join("processing-failed");
    std::fs::write(&blocker, b"").unwrap();

    let not_json = b"this is not JSON".to_vec();
    let valid = json!({"entity_id": "e1", "id": "1", "type": "Placed", "data": {}})
        .to_string()
        .into_bytes();
    let out = stack.put_records(&[not_json.clone(), valid.clone()]).await;
    assert_eq!(out["FailedPutCount"], 1, "{out}");
    let responses = out["RequestResponses"].as_array().unwrap();
    assert_eq!(
        responses[0]["ErrorCode"], "ServiceUnavailableException",
        "{out}"
    );
    assert!(
        responses[0]["ErrorMessage"]
            .as_str()
            .unwrap()
            .contains("processing-failed"),
        "{out}"
    );
    assert!(responses[1]["RecordId"].is_string(), "{out}");

    // The producer retries the failed record once the lake is writable again.
    std::fs::remove_file(&blocker).unwrap();
    let out = stack.put_records(&[not_json]).await;
    assert_eq!(out["FailedPutCount"], 0, "{out}");
    assert!(
        blocker.is_dir() && std::fs::read_dir(&blocker).unwrap().next().is_some(),
        "processing-failed record written on the retry"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_record_the_lake_cannot_take_is_reported_failed_and_stored_once() {
    let stack = start().await;
    let lake = stack.lake_dir();
    std::fs::create_dir_all(&lake).unwrap();
    // `events` as a regular file: no partition directory can be made under it.
    let blocker = lake.join(EVENTS_DIR);
    std::fs::write(&blocker, b"").unwrap();

    let valid = json!({"entity_id": "e1", "id": "1", "type": "Placed", "data": {}});
    let out = stack.put_records(std::slice::from_ref(&valid)).await;
    assert_eq!(out["FailedPutCount"], 1, "{out}");
    assert_eq!(
        out["RequestResponses"][0]["ErrorCode"], "ServiceUnavailableException",
        "{out}"
    );

    std::fs::remove_file(&blocker).unwrap();
    let out = stack.put_records(&[valid]).await;
    assert_eq!(out["FailedPutCount"], 0, "{out}");
    stack.wait_idle(Duration::from_secs(30)).await;
    assert_eq!(stack.events("e1").await.len(), 1, "stored once");
    assert!(blocker.is_dir(), "in the lake after the retry");
    stack.shutdown().await;
}

#[tokio::test]
async fn durability_full_reaches_every_database_and_the_queue_takes_the_ingest_limit() {
    let stack = LocalHarness::start().await;
    let s = stack.shared();
    // 1 = NORMAL, 2 = FULL.
    assert_eq!(s.store.synchronous().unwrap(), 1);
    assert_eq!(s.bus.deliveries().synchronous().unwrap(), 1);
    assert_eq!(
        s.handoff.max_message_bytes(),
        s.config.ingest.limits.sqs_message_bytes
    );
    let stack = stack
        .restart_with(|c, _| {
            c.durability = Durability::Full;
            c.ingest.limits.sqs_message_bytes = 4096;
        })
        .await;
    let s = stack.shared();
    assert_eq!(s.store.synchronous().unwrap(), 2);
    assert_eq!(s.bus.deliveries().synchronous().unwrap(), 2);
    assert_eq!(s.handoff.max_message_bytes(), 4096);
    stack.shutdown().await;
}
