//! The append protocol of decision 0009 over the in-memory item table:
//! gapless `seq`, stored once, under concurrent writers, crashes between its
//! two writes, tables written by the transactional design, and expiry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_core::item::{self, AttrValue, Item, decode_event, lookup};
use tideline_core::{AppendOutcome, EntityId, ExpectedSeq, NewEvent};
use tideline_stages::store::slot::{
    CondPut, ConditionFailed, ItemPage, ItemTable, MemoryItemTable, SlotStore,
};
use tideline_stages::{EventStore, PortError};

fn ev(entity: &str, id: &str) -> NewEvent {
    let rec = format!(r#"{{"entity_id":"{entity}","type":"T","data":{{"n":"{id}"}},"id":"{id}"}}"#);
    normalize_record(&IngestConfig::default(), rec.as_bytes(), chrono::Utc::now()).unwrap()
}

fn events_of(table: &MemoryItemTable, entity: &str) -> Vec<tideline_core::StoredEvent> {
    // In key order: never sorted here, so the order checked is the table's.
    table
        .items()
        .iter()
        .filter(|i| i.get("pk") == Some(&AttrValue::S(entity.into())))
        .filter(|i| i.get("kind") == Some(&AttrValue::S("event".into())))
        .map(|i| decode_event(lookup(i)).unwrap())
        .collect()
}

fn assert_gapless_in_sk_order(table: &MemoryItemTable, entity: &str, n: usize) {
    let events = events_of(table, entity);
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>(), "seq in sk order");
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids.len(), n, "each id stored once");
}

#[tokio::test]
async fn appends_are_gapless_in_sk_order_and_redeliveries_are_stored_once() {
    let store = SlotStore::new(MemoryItemTable::default(), "memory");
    let entity = EntityId::new("order-1").unwrap();
    for i in 0..20 {
        let out = store
            .append(
                &entity,
                vec![ev("order-1", &format!("ev-{i}"))],
                ExpectedSeq::Any,
            )
            .await
            .unwrap();
        assert!(
            matches!(&out[0], AppendOutcome::Stored { seq, .. } if *seq == i + 1),
            "{out:?}"
        );
    }
    // Redelivered, late: a duplicate, nothing new written.
    let out = store
        .append(&entity, vec![ev("order-1", "ev-3")], ExpectedSeq::Any)
        .await
        .unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Duplicate { .. }),
        "{out:?}"
    );
    assert_gapless_in_sk_order(store.table(), "order-1", 20);
    assert_eq!(store.head(&entity).await.unwrap().unwrap().last_seq, 20);
    let tail = store.read_events(&entity, 15, 3).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![16, 17, 18]
    );
}

/// An item table that yields between calls, so concurrent appends interleave
/// at every step of the protocol, and can fail chosen calls (a crash).
#[derive(Default)]
struct Interleaving {
    inner: MemoryItemTable,
    fail_event_puts: AtomicUsize,
}

impl ItemTable for Interleaving {
    async fn latest_event(&self, pk: &str) -> Result<Option<Item>, PortError> {
        tokio::task::yield_now().await;
        self.inner.latest_event(pk).await
    }
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, PortError> {
        tokio::task::yield_now().await;
        self.inner.get(pk, sk).await
    }
    async fn put(&self, put: CondPut) -> Result<Result<(), ConditionFailed>, PortError> {
        tokio::task::yield_now().await;
        let is_event = put.item.get("kind") == Some(&AttrValue::S("event".into()));
        if is_event
            && self
                .fail_event_puts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(PortError::retryable(
                "memory",
                "connection reset (injected)",
            ));
        }
        self.inner.put(put).await
    }
    async fn transact(&self, puts: Vec<CondPut>) -> Result<Result<(), Vec<usize>>, PortError> {
        tokio::task::yield_now().await;
        self.inner.transact(puts).await
    }
    async fn events_after(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ItemPage, PortError> {
        self.inner.events_after(pk, after, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_one_entity_never_share_a_seq() {
    let store = Arc::new(SlotStore::new(Interleaving::default(), "memory"));
    let entity = EntityId::new("hot").unwrap();
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        let entity = entity.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                // Writer w also redelivers writer (w+1)'s events: same ids race too.
                for id in [format!("w{w}-{i}"), format!("w{}-{i}", (w + 1) % 6)] {
                    loop {
                        match store
                            .append(&entity, vec![ev("hot", &id)], ExpectedSeq::Any)
                            .await
                        {
                            Ok(_) => break,
                            Err(e) => assert!(e.to_string().contains("concurrent"), "{e}"),
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_gapless_in_sk_order(&store.table().inner, "hot", 90);
}

#[tokio::test]
async fn a_crash_between_marker_and_event_is_completed_by_the_redelivery() {
    let store = SlotStore::new(Interleaving::default(), "memory");
    let entity = EntityId::new("e").unwrap();
    store
        .append(&entity, vec![ev("e", "a")], ExpectedSeq::Any)
        .await
        .unwrap();
    store.table().fail_event_puts.store(1, Ordering::SeqCst);
    let err = store
        .append(&entity, vec![ev("e", "b")], ExpectedSeq::Any)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected"));
    // The intent is there, the event is not.
    assert_eq!(events_of(&store.table().inner, "e").len(), 1);
    // Another event takes the slot first (the message of "b" went to a DLQ
    // and was redriven later), then "b" is redelivered: it moves its intent.
    store
        .append(&entity, vec![ev("e", "c")], ExpectedSeq::Any)
        .await
        .unwrap();
    let out = store
        .append(&entity, vec![ev("e", "b")], ExpectedSeq::Any)
        .await
        .unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Stored { seq: 3, .. }),
        "{out:?}"
    );
    let again = store
        .append(&entity, vec![ev("e", "b")], ExpectedSeq::Any)
        .await
        .unwrap();
    assert!(
        matches!(&again[0], AppendOutcome::Duplicate { .. }),
        "{again:?}"
    );
    assert_gapless_in_sk_order(&store.table().inner, "e", 3);
}

fn s(v: &str) -> AttrValue {
    AttrValue::S(v.into())
}

#[tokio::test]
async fn a_table_written_by_the_transactional_design_keeps_working() {
    let table = MemoryItemTable::default();
    // Before 0009: head with last_seq, events at `<time>#<id>`, markers without event_sk.
    for (seq, id) in [(1u64, "old-1"), (2, "old-2")] {
        let t = format!("2026-01-01T00:00:00.00000{seq}Z");
        table.seed(Item::from([
            ("pk".into(), s("legacy")),
            ("sk".into(), s(&format!("{t}#{id}"))),
            ("seq".into(), AttrValue::N(seq.to_string())),
            ("kind".into(), s("event")),
            ("event_id".into(), s(id)),
            ("event_type".into(), s("T")),
            ("data".into(), s("{}")),
            ("occurred_at".into(), s(&t)),
            ("received_at".into(), s(&t)),
            ("stored_at".into(), s(&t)),
            ("test".into(), AttrValue::Bool(false)),
            ("schema_version".into(), AttrValue::N("1".into())),
        ]));
        table.seed(Item::from([
            ("pk".into(), s("legacy")),
            ("sk".into(), s(&format!("id#{id}"))),
            ("kind".into(), s("dedup")),
            ("event_seq".into(), AttrValue::N(seq.to_string())),
        ]));
    }
    table.seed(Item::from([
        ("pk".into(), s("legacy")),
        ("sk".into(), s("#head")),
        ("kind".into(), s("head")),
        ("last_seq".into(), AttrValue::N("2".into())),
        ("last_stored_at".into(), s("2026-01-01T00:00:00.000002Z")),
    ]));
    let store = SlotStore::new(table, "memory");
    let entity = EntityId::new("legacy").unwrap();
    let dup = store
        .append(&entity, vec![ev("legacy", "old-1")], ExpectedSeq::Any)
        .await
        .unwrap();
    assert!(
        matches!(&dup[0], AppendOutcome::Duplicate { .. }),
        "{dup:?}"
    );
    let out = store
        .append(
            &entity,
            vec![ev("legacy", "new-3")],
            ExpectedSeq::Exactly(2),
        )
        .await
        .unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Stored { seq: 3, .. }),
        "{out:?}"
    );
    assert_gapless_in_sk_order(store.table(), "legacy", 3);
}

#[tokio::test]
async fn with_a_retention_seq_continues_after_every_event_expired() {
    let store = SlotStore::new(MemoryItemTable::default(), "memory")
        .with_ttl(Some(chrono::Duration::days(1)));
    let entity = EntityId::new("short-lived").unwrap();
    for id in ["a", "b"] {
        store
            .append(&entity, vec![ev("short-lived", id)], ExpectedSeq::Any)
            .await
            .unwrap();
    }
    for e in events_of(store.table(), "short-lived") {
        store.table().remove("short-lived", &e.sk);
    }
    let out = store
        .append(&entity, vec![ev("short-lived", "c")], ExpectedSeq::Any)
        .await
        .unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Stored { seq: 3, .. }),
        "{out:?}"
    );
}

#[tokio::test]
async fn several_events_are_appended_all_or_none() {
    let store = SlotStore::new(MemoryItemTable::default(), "memory");
    let entity = EntityId::new("cmd").unwrap();
    let out = store
        .append(
            &entity,
            vec![ev("cmd", "x"), ev("cmd", "y"), ev("cmd", "x")],
            ExpectedSeq::Exactly(0),
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    let conflict = store
        .append(
            &entity,
            vec![ev("cmd", "z"), ev("cmd", "w")],
            ExpectedSeq::Exactly(0),
        )
        .await;
    assert!(conflict.is_err());
    assert_gapless_in_sk_order(store.table(), "cmd", 2);
    let before = store.table().counters();
    store
        .append(
            &entity,
            vec![ev("cmd", "z"), ev("cmd", "w")],
            ExpectedSeq::Exactly(2),
        )
        .await
        .unwrap();
    // Transactional: twice the units of each item.
    assert!(store.table().counters().units.write - before.units.write >= 8);
    assert_gapless_in_sk_order(store.table(), "cmd", 4);
}

#[tokio::test]
async fn one_event_costs_one_read_and_two_single_unit_writes() {
    let store = SlotStore::new(MemoryItemTable::default(), "memory");
    let entity = EntityId::new("steady").unwrap();
    store
        .append(&entity, vec![ev("steady", "first")], ExpectedSeq::Any)
        .await
        .unwrap();
    let before = store.table().counters();
    store
        .append(&entity, vec![ev("steady", "second")], ExpectedSeq::Any)
        .await
        .unwrap();
    let after = store.table().counters();
    assert_eq!(after.units.read - before.units.read, 1);
    assert_eq!(after.units.write - before.units.write, 2);
    assert_eq!(after.items_written - before.items_written, 2);
    let kinds = tideline_stages::store::slot::kinds(&store.table().items());
    assert_eq!(kinds.get("event"), Some(&2));
    assert_eq!(kinds.get("dedup"), Some(&2));
    assert_eq!(kinds.get("head"), Some(&1));
    let _ = item::write_units(0);
}

/// `tideline cost` prices DynamoDB from `cost::store_units`; this holds it
/// equal to what appends against the in-memory table (billed as DynamoDB
/// bills) consume, item sizes included.
#[tokio::test]
async fn the_cost_model_bills_what_an_append_consumes() {
    use tideline_core::cost::{Payload, representative_event, representative_record, store_units};
    for payload in [Payload::Json, Payload::Random] {
        for size in [300, 1024, 2500, 9000] {
            let record = representative_record(size, payload);
            let (model_event, data_json) = representative_event(&record).unwrap();
            let model = store_units(&model_event, &data_json, false).unwrap();
            let store = SlotStore::new(MemoryItemTable::default(), "memory");
            let entity = model_event.entity_id.clone();
            let mut ids = Vec::new();
            for last in ['1', '2', '3'] {
                // Same-length ids, so every event item has the model's size.
                let mut id = model_event.event_id.to_string();
                id.pop();
                id.push(last);
                let text = record.replace(model_event.event_id.as_str(), &id);
                let e = normalize_record(
                    &IngestConfig::default(),
                    text.as_bytes(),
                    chrono::Utc::now(),
                )
                .unwrap();
                let before = store.table().counters();
                store
                    .append(&entity, vec![e], ExpectedSeq::Any)
                    .await
                    .unwrap();
                let after = store.table().counters();
                ids.push((
                    after.units.write - before.units.write,
                    after.units.read - before.units.read,
                ));
            }
            let first = (model.creation_write_units, model.creation_read_units);
            assert_eq!(
                ids[0], first,
                "{payload:?} {size} B: creating append, model {model:?}"
            );
            for steady in &ids[1..] {
                assert_eq!(
                    *steady,
                    (model.write_units, model.read_units),
                    "{payload:?} {size} B, model {model:?}"
                );
            }
            let written = store.table().items();
            let event_item = written
                .iter()
                .rev()
                .find(|i| i.get("kind") == Some(&AttrValue::S("event".into())))
                .unwrap();
            // The model's event sits at seq 1000, these at 3: the number's size differs by at most a byte.
            assert!(
                item::size_of(event_item).abs_diff(model.event_item_bytes) <= 2,
                "{payload:?} {size} B"
            );
        }
    }
}
