//! The example consumer runs unchanged as a rule-bound Lambda under local
//! mode: `tideline up` serves it the Lambda Runtime API, and its read model
//! ends with one summary per entity matching the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use tideline_testkit::local::{LocalHarness, rules};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_responder_runs_as_a_local_lambda_target() {
    let stack = LocalHarness::start_with(|c, dir| {
        let db = dir.join("consumer.db");
        c.rules = rules(json!([{
            "name": "event-responder",
            "event_pattern": {"source": ["tideline"]},
            "target": {"type": "lambda", "command": [env!("CARGO_BIN_EXE_event-responder")], "env": {
                "TIDELINE_CONSUMER_NAME": "event-responder",
                "TIDELINE_CHECKPOINT_TABLE": format!("sqlite:{}", db.display()),
                "TIDELINE_READ_MODEL_TABLE": "read_model"
            }}
        }]));
    })
    .await;

    let types = ["OrderPlaced", "OrderPaid", "OrderShipped", "OrderDelivered"];
    let records: Vec<Value> = (0..40)
        .map(|n| json!({"entity_id": format!("order-{}", n % 10), "type": types[n / 10], "data": {"n": n, "note": "Grüße"}}))
        .collect();
    stack.put_records(&records).await;
    stack.wait_idle(Duration::from_secs(60)).await;
    assert!(
        stack
            .shared()
            .bus
            .deliveries()
            .dead_letters()
            .unwrap()
            .is_empty()
    );
    let dir = stack.shutdown().await;

    let conn = rusqlite::Connection::open(dir.path().join("consumer.db")).unwrap();
    let mut stmt = conn.prepare("SELECT * FROM read_model ORDER BY 1").unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 10);
    for (entity, summary) in rows {
        let s: Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(s["last_sequence"], 4, "{entity}: {s}");
        assert_eq!(s["count"], 4, "{entity}: {s}");
        assert_eq!(s["last_type"], "OrderDelivered");
        assert_eq!(s["status"], "delivered");
    }
}
