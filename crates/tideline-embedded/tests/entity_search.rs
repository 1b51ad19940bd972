//! The console's entity search: ids by prefix, in id order, paged, with
//! each entity's head; ids that only share bytes after the prefix, or sort
//! just past it, are not found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use serde_json::json;
use tideline_core::ingest::{IngestConfig, admit};
use tideline_embedded::store::SqliteStore;
use tideline_stages::memory::MemoryRejects;
use tideline_stages::store::{IncomingMessage, store_batch};

fn message(i: usize, entity: &str) -> IncomingMessage {
    let admitted = admit(
        &IngestConfig::default(),
        json!({"entity_id": entity, "id": format!("id-{i}"), "type": "T", "data": i})
            .to_string()
            .as_bytes(),
        Utc::now(),
    )
    .unwrap();
    IncomingMessage {
        message_id: format!("m{i}"),
        body: admitted.body,
    }
}

#[tokio::test]
async fn entities_are_found_by_prefix_in_id_order_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db"), None).unwrap();
    let ids = [
        "order-1",
        "order-2",
        "order-2",
        "order-10",
        "orders",
        "order",
        "ordeR-3",
        "customer-1",
        "order-~",
    ];
    let messages = ids.iter().enumerate().map(|(i, e)| message(i, e)).collect();
    let out = store_batch(&store, &MemoryRejects::default(), messages).await;
    assert!(out.failed_message_ids.is_empty(), "{out:?}");

    let found = store.entities_with_prefix("order-", "", 10).unwrap();
    let names: Vec<&str> = found.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(names, ["order-1", "order-10", "order-2", "order-~"]);
    let order_2 = found.iter().find(|(id, _, _)| id == "order-2").unwrap();
    assert_eq!(order_2.1, 2, "the head's last seq");

    // Paged: two, then the rest after the last id shown.
    let first = store.entities_with_prefix("order-", "", 2).unwrap();
    assert_eq!(first.len(), 2);
    let rest = store
        .entities_with_prefix("order-", &first[1].0, 10)
        .unwrap();
    let rest: Vec<&str> = rest.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(rest, ["order-2", "order-~"]);

    // An exact id is its own prefix; the empty prefix lists everything.
    assert_eq!(
        store.entities_with_prefix("orders", "", 10).unwrap().len(),
        1
    );
    assert_eq!(store.entities_with_prefix("", "", 100).unwrap().len(), 8);
    assert!(
        store
            .entities_with_prefix("zzz", "", 10)
            .unwrap()
            .is_empty()
    );
}
