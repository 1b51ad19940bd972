//! The SQLite store's batched `append_each` reports where it stopped, so the
//! store stage rejects the record that failed, not the run's first one
//! (issue "Accounted for at every edge", defect 10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use serde_json::json;
use tideline_core::ingest::{IngestConfig, admit};
use tideline_embedded::store::SqliteStore;
use tideline_stages::EventStore;
use tideline_stages::memory::MemoryRejects;
use tideline_stages::store::{IncomingMessage, store_batch};

fn message(i: usize, id: &str) -> IncomingMessage {
    let admitted = admit(
        &IngestConfig::default(),
        json!({"entity_id": "e", "id": id, "type": "T", "data": i})
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
async fn a_permanent_failure_rejects_the_record_that_failed_and_keeps_those_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path, None).unwrap();
    // A record the database refuses permanently (a constraint), in third place.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_bad BEFORE INSERT ON events WHEN NEW.event_id = 'bad'
         BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END;",
    )
    .unwrap();
    drop(conn);

    let rejects = MemoryRejects::default();
    let out = store_batch(
        &store,
        &rejects,
        vec![
            message(0, "ok-0"),
            message(1, "ok-1"),
            message(2, "bad"),
            message(3, "ok-3"),
        ],
    )
    .await;
    let rejected: Vec<String> = rejects
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.source_id.clone())
        .collect();
    assert_eq!(rejected, ["m2"], "the failing record is the one rejected");
    assert!(out.failed_message_ids.is_empty());
    let entity = tideline_core::EntityId::new("e").unwrap();
    let stored: Vec<String> = store
        .read_events(&entity, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id.to_string())
        .collect();
    // As read back in seq order: gapless, the refused record absent.
    assert_eq!(stored, ["ok-0", "ok-1", "ok-3"]);
}
