//! The append protocol's CPU per event (decision record 0009), against the
//! in-memory table that bills like DynamoDB: the steady state (one read,
//! two conditional puts), with and without a retention (the head follows),
//! and a redelivered duplicate. I/O is DynamoDB's on AWS; this measures what
//! the protocol itself adds per event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_core::{EntityId, ExpectedSeq, NewEvent};
use tideline_stages::EventStore;
use tideline_stages::store::slot::{MemoryItemTable, SlotStore};

fn event(id: usize) -> NewEvent {
    let rec = format!(
        r#"{{"entity_id":"order-1","type":"OrderPlaced","id":"ev-{id}","data":{{"sku":"SKU-{id}","qty":2,"price":12.5}}}}"#
    );
    normalize_record(&IngestConfig::default(), rec.as_bytes(), chrono::Utc::now()).unwrap()
}

/// Appends each event, one per call, as the storer does.
async fn append_each(store: &SlotStore<MemoryItemTable>, entity: &EntityId, events: &[NewEvent]) {
    for e in events {
        store
            .append(entity, vec![e.clone()], ExpectedSeq::Any)
            .await
            .unwrap();
    }
}

fn appends(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let entity = EntityId::new("order-1").unwrap();
    let events: Vec<NewEvent> = (0..100).map(event).collect();
    let mut g = c.benchmark_group("slot_append");
    for (name, ttl) in [
        ("100_events", None),
        ("100_events_with_retention", Some(chrono::Duration::days(7))),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || SlotStore::new(MemoryItemTable::default(), "memory").with_ttl(ttl),
                |store| rt.block_on(append_each(&store, &entity, &events)),
                BatchSize::SmallInput,
            )
        });
    }
    g.bench_function("100_duplicates", |b| {
        let store = SlotStore::new(MemoryItemTable::default(), "memory");
        rt.block_on(append_each(&store, &entity, &events));
        b.iter(|| rt.block_on(append_each(&store, &entity, &events)))
    });
    g.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
