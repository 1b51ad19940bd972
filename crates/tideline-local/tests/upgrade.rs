//! A data directory from before decision 0018 may hold records in
//! `queue.db` that were acknowledged and not yet stored: starting the host
//! stores them once, in order, and keeps the old file as `queue.db.drained`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tideline_core::ingest::{IngestConfig, admit};
use tideline_local::{LocalConfig, LocalStack};

#[tokio::test]
async fn records_left_in_an_old_queue_are_stored_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let conn = rusqlite::Connection::open(data.join("queue.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, group_id TEXT NOT NULL, dedup_id TEXT NOT NULL, body TEXT NOT NULL, sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, last_error TEXT)",
    )
    .unwrap();
    for (n, id) in ["a", "b", "a"].iter().enumerate() {
        let record = serde_json::json!({"entity_id": "order-1", "id": id, "type": "OrderPlaced", "data": {"n": n}});
        let admitted = admit(
            &IngestConfig::default(),
            record.to_string().as_bytes(),
            chrono::Utc::now(),
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages (group_id, dedup_id, body, sent_at, visible_at) VALUES ('order-1', ?1, ?2, 0, 0)",
            rusqlite::params![id, admitted.body],
        )
        .unwrap();
    }
    drop(conn);

    let stack = LocalStack::start(LocalConfig {
        data_dir: data.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    // Two distinct records (the third is a redelivery of the first), in order.
    assert_eq!(stack.shared().store.totals().unwrap(), (2, 1));
    assert!(!data.join("queue.db").exists());
    assert!(data.join("queue.db.drained").exists());
    stack.shutdown().await;

    // A second start finds nothing to drain and stores nothing twice.
    let stack = LocalStack::start(LocalConfig {
        data_dir: data,
        listen: "127.0.0.1:0".parse().unwrap(),
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(stack.shared().store.totals().unwrap(), (2, 1));
    stack.shutdown().await;
}
