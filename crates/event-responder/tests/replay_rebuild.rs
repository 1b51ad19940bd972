//! Rebuilding the read model by replay gives the same result as the live
//! build: local mode in-process, events ingested through the Firehose API,
//! the responder fed with what the bus published (shuffled and duplicated, as
//! EventBridge may deliver), then a replay that is ignored, a checkpoint reset,
//! and a replay that rebuilds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use event_responder::{Config, Responder, Summary};
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use std::time::Duration;
use tideline_consumer::{CheckpointStore, SqliteCheckpoints};
use tideline_core::Classify;
use tideline_local::LocalStack;
use tideline_testkit::local::{LocalHarness, log_lines, log_rule};

const TYPES: [&str; 5] = [
    "OrderPlaced",
    "OrderPaid",
    "OrderPacked",
    "OrderShipped",
    "OrderDelivered",
];

/// Delivers the events published after the first `position` (read from a
/// log target that takes every event) like EventBridge might: shuffled,
/// some twice, retried events redelivered until none is left.
async fn deliver(
    stack: &LocalStack,
    responder: &Responder,
    position: usize,
) -> (usize, Vec<Value>) {
    stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    let published = log_lines(&stack.shared().config.data_dir.join("published.jsonl"));
    let last = published.len();
    let events: Vec<Value> = published[position..].to_vec();
    let mut queue: Vec<Value> = events
        .iter()
        .chain(events.iter().step_by(3))
        .cloned()
        .collect();
    queue.shuffle(&mut rand::rng());
    let mut queue: std::collections::VecDeque<Value> = queue.into();
    let mut rounds = 0;
    while let Some(e) = queue.pop_front() {
        rounds += 1;
        assert!(rounds < 100_000);
        match responder.handle(e.clone()).await {
            Ok(_) => {}
            Err(err) if err.is_retryable() => queue.push_back(e),
            Err(err) => panic!("{err}"),
        }
    }
    (last, events)
}

async fn replay(addr: std::net::SocketAddr, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/_tideline/replay"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_by_replay_equals_live_build() {
    let stack = LocalHarness::start_with(|c, _| {
        c.rules = log_rule("all", &c.data_dir.join("published.jsonl"));
    })
    .await;
    let addr = stack.local_addr();

    // 6 orders, each through its life (some cancelled), plus a test event.
    let mut records = Vec::new();
    for o in 0..6 {
        let steps = if o % 3 == 0 { 2 } else { TYPES.len() };
        for (i, t) in TYPES.iter().take(steps).enumerate() {
            records.push(json!({"entity_id": format!("order-{o}"), "type": t, "id": format!("o{o}-{i}"), "data": {"step": i}}));
        }
        if o % 3 == 0 {
            records.push(json!({"entity_id": format!("order-{o}"), "type": "OrderCancelled", "id": format!("o{o}-x"), "data": {}}));
        }
    }
    records.push(json!({"entity_id": "order-test", "type": "OrderPlaced", "id": "t-1", "test": true, "data": {}}));
    stack.ingest(&records).await;
    stack.wait_idle(Duration::from_secs(30)).await;

    let db = stack.dir().join("responder.db");
    let config = Config::load(|k| match k {
        "TIDELINE_CONSUMER_NAME" => Some("event-responder".into()),
        "TIDELINE_CHECKPOINT_TABLE" => Some(format!("sqlite:{}", db.display())),
        "TIDELINE_READ_MODEL_TABLE" => Some("read_model".into()),
        _ => None,
    })
    .unwrap();
    let responder = Responder::new(&config).await.unwrap();

    // Live build.
    let (position, live_events) = deliver(&stack, &responder, 0).await;
    assert_eq!(live_events.len(), records.len());
    let live: Vec<Summary> = responder.sqlite_summaries().unwrap();
    assert_eq!(live.len(), 6, "the test event is skipped: {live:?}");
    let o1 = live.iter().find(|s| s.entity_id == "order-1").unwrap();
    assert_eq!(
        (
            o1.last_sequence,
            o1.count,
            o1.status.as_str(),
            o1.last_type.as_str()
        ),
        (5, 5, "delivered", "OrderDelivered")
    );
    let o0 = live.iter().find(|s| s.entity_id == "order-0").unwrap();
    assert_eq!((o0.count, o0.status.as_str()), (3, "cancelled"));
    // The test event is skipped each time it is delivered (every third
    // published event is delivered twice, so which ones depends on positions).
    let test_deliveries = live_events
        .iter()
        .chain(live_events.iter().step_by(3))
        .filter(|e| e["detail"]["metadata"]["test"] == true)
        .count();
    assert!(test_deliveries >= 1);
    assert_eq!(responder.counts().test_skipped, test_deliveries as u64);

    // A replay without a reset is ignored.
    let out = replay(addr, json!({"since": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(out["published"], records.len() as u64);
    let (position, replayed) = deliver(&stack, &responder, position).await;
    assert!(
        replayed
            .iter()
            .all(|e| e["detail"]["metadata"]["replay"] == true)
    );
    assert_eq!(responder.sqlite_summaries().unwrap(), live);

    // Reset the checkpoints, replay, and the rebuilt read model is the live one.
    let store = SqliteCheckpoints::open(&db).unwrap();
    assert_eq!(store.reset("event-responder", None).await.unwrap(), 6);
    let out = replay(addr, json!({"since": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(out["failed"], 0);
    deliver(&stack, &responder, position).await;
    assert_eq!(responder.sqlite_summaries().unwrap(), live);

    // One entity's range, by sequence.
    let out = replay(
        addr,
        json!({"entity": "order-1", "from_seq": 2, "to_seq": 4}),
    )
    .await;
    assert_eq!(out["published"], 3);
    stack.shutdown().await;
}
