//! The DynamoDB store against moto: paging past 1 MB, de-duplication,
//! gapless sequences under concurrent writers, and the item layout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use tideline_aws::DynamoStore;
use tideline_core::{AppendOutcome, EntityId, ExpectedSeq, NewEvent};
use tideline_stages::{EventStore, StoreError};
use tideline_testkit::fixtures::{new_event, record};
use tideline_testkit::moto;

fn event(entity: &str, id: &str, data: serde_json::Value) -> NewEvent {
    new_event(&record(entity, "T").id(id).data(data))
}

async fn store() -> (DynamoStore, aws_sdk_dynamodb::Client) {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("tl-store");
    moto::create_event_table(&ddb, &table, true).await.unwrap();
    (DynamoStore::new(ddb.clone(), table), ddb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_larger_than_one_page_reads_completely() {
    let (store, _) = store().await;
    let entity = EntityId::new("big").unwrap();
    // Random hex: deflate halves it at best, so 15 events still span more
    // than one 1 MB page as stored (a repeated letter would deflate to nothing).
    let blob: String = (0..100_000)
        .map(|_| char::from(b"0123456789abcdef"[rand::random::<u8>() as usize % 16]))
        .collect::<String>()
        .repeat(2);
    for i in 0..15 {
        store
            .append(
                &entity,
                vec![event(
                    "big",
                    &format!("b-{i}"),
                    serde_json::json!({"i": i, "blob": blob}),
                )],
                ExpectedSeq::Any,
            )
            .await
            .unwrap();
    }
    // ~1.5 MB: more than one 1 MB Query page.
    let all = store.read_events(&entity, 0, 1000).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=15).collect::<Vec<_>>()
    );
    let tail = store.read_events(&entity, 10, 3).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![11, 12, 13]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_expected_version() {
    let (store, _) = store().await;
    let entity = EntityId::new("d").unwrap();
    let out = store
        .append(
            &entity,
            vec![
                event("d", "a", serde_json::json!(1)),
                event("d", "b", serde_json::json!(2)),
            ],
            ExpectedSeq::Exactly(0),
        )
        .await
        .unwrap();
    assert!(matches!(
        &out[..],
        [
            AppendOutcome::Stored { seq: 1, .. },
            AppendOutcome::Stored { seq: 2, .. }
        ]
    ));
    // "b" again with a new one: only "c" is stored, as seq 3.
    let out = store
        .append(
            &entity,
            vec![
                event("d", "b", serde_json::json!(2)),
                event("d", "c", serde_json::json!(3)),
            ],
            ExpectedSeq::Any,
        )
        .await
        .unwrap();
    assert!(out.contains(&AppendOutcome::Stored {
        event_id: tideline_core::EventId::new("c").unwrap(),
        seq: 3
    }));
    assert!(
        out.iter().any(
            |o| matches!(o, AppendOutcome::Duplicate { event_id } if event_id.as_str() == "b")
        )
    );
    let err = store
        .append(
            &entity,
            vec![event("d", "z", serde_json::json!(0))],
            ExpectedSeq::Exactly(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(c) if c.actual == 3));
    assert_eq!(store.head(&entity).await.unwrap().unwrap().last_seq, 3);
}

/// Concurrent appends race on single-item conditional puts (decision 0009),
/// which moto applies one at a time; `tests/slot_store.rs` in
/// `tideline-stages` interleaves every step of the protocol in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_keep_the_sequence_gapless() {
    let (store, _) = store().await;
    let store = Arc::new(store);
    let entity = EntityId::new("hot").unwrap();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        let entity = entity.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let mut tries = 0;
                loop {
                    match store
                        .append(
                            &entity,
                            vec![event("hot", &format!("w{w}-{i}"), serde_json::json!(i))],
                            ExpectedSeq::Any,
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(e) => {
                            tries += 1;
                            assert!(tries < 20, "{e}");
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.read_events(&entity, 0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    let mut ids: Vec<_> = all.iter().map(|e| e.event_id.to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

/// A table created before decision 0009 (with the `by-sequence` index,
/// `<time>#<id>` keys, a head and markers without `event_sk`) keeps working:
/// old ids stay duplicates and `seq` continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_written_by_the_transactional_design_keeps_working() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("tl-legacy");
    moto::create_event_table_with(&ddb, &table, false, true).await;
    let s = |v: &str| A::S(v.into());
    for (seq, id) in [(1, "old-1"), (2, "old-2")] {
        let t = format!("2026-01-01T00:00:00.00000{seq}Z");
        ddb.put_item()
            .table_name(&table)
            .item("pk", s("legacy"))
            .item("sk", s(&format!("{t}#{id}")))
            .item("seq", A::N(seq.to_string()))
            .item("kind", s("event"))
            .item("event_id", s(id))
            .item("event_type", s("T"))
            .item("data", s("{}"))
            .item("occurred_at", s(&t))
            .item("received_at", s(&t))
            .item("stored_at", s(&t))
            .item("test", A::Bool(false))
            .item("schema_version", A::N("1".into()))
            .send()
            .await
            .unwrap();
        ddb.put_item()
            .table_name(&table)
            .item("pk", s("legacy"))
            .item("sk", s(&format!("id#{id}")))
            .item("kind", s("dedup"))
            .item("event_seq", A::N(seq.to_string()))
            .send()
            .await
            .unwrap();
    }
    ddb.put_item()
        .table_name(&table)
        .item("pk", s("legacy"))
        .item("sk", s("#head"))
        .item("kind", s("head"))
        .item("last_seq", A::N("2".into()))
        .item("last_stored_at", s("2026-01-01T00:00:00.000002Z"))
        .send()
        .await
        .unwrap();
    let store = DynamoStore::new(ddb, table);
    let entity = EntityId::new("legacy").unwrap();
    let dup = store
        .append(
            &entity,
            vec![event("legacy", "old-2", serde_json::json!({}))],
            ExpectedSeq::Any,
        )
        .await
        .unwrap();
    assert!(
        matches!(&dup[0], AppendOutcome::Duplicate { .. }),
        "{dup:?}"
    );
    let out = store
        .append(
            &entity,
            vec![event("legacy", "new-3", serde_json::json!({"n": 3}))],
            ExpectedSeq::Exactly(2),
        )
        .await
        .unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Stored { seq: 3, .. }),
        "{out:?}"
    );
    let all = store.read_events(&entity, 0, 10).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
}
