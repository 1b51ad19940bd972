//! The client against `tideline up` (in-process): the outbox relay publishes
//! to the local Firehose API, and the stored event, read back through the
//! query API, carries the non-ASCII text unchanged under the id `publish` returned.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tideline_client::{Event, Outbox, Publisher, Relay};
use tideline_testkit::local::LocalHarness;

const NON_ASCII: &str = "Zoë ✓ 日本 🚀";

async fn events(stack: &LocalHarness, entity: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = stack.events(entity).await;
        if items.len() >= want || Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_relay_publishes_to_tideline_up_and_text_round_trips() {
    let stack = LocalHarness::start().await;
    let publisher = Publisher::firehose(stack.firehose().await.clone(), "tideline-ingest");

    // Direct publish.
    let direct = Event::new(
        "customer-1",
        "CustomerRenamed",
        json!({ "name": NON_ASCII }),
    );
    let direct_id = publisher.publish(&direct).await.unwrap();

    // Through the outbox: written with the business change, published after commit.
    let db = stack.dir().join("app.db");
    let mut app = rusqlite::Connection::open(&db).unwrap();
    let outbox = Outbox::open(&app).unwrap();
    let tx = app.transaction().unwrap();
    let queued = Event::new("customer-1", "CustomerNoted", json!({ "note": NON_ASCII }));
    let queued_id = outbox.enqueue(&tx, &queued).unwrap();
    tx.commit().unwrap();
    let mut relay = Relay::new(rusqlite::Connection::open(&db).unwrap(), publisher).unwrap();
    assert_eq!(relay.run_until_idle().await.unwrap().published, 1);

    let items = events(&stack, "customer-1", 2).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["metadata"]["event_id"], direct_id.as_str());
    assert_eq!(items[0]["data"]["name"], NON_ASCII);
    assert_eq!(items[1]["metadata"]["event_id"], queued_id.as_str());
    assert_eq!(items[1]["data"]["note"], NON_ASCII);
    stack.shutdown().await;
}
