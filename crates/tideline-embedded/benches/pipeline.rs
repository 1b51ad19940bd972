//! Criterion benches of the transform and the append, each next to a baseline
//! measured in the same run:
//! - transform (validate + normalise one record) vs a bare `serde_json` parse
//!   and serialise of the same record;
//! - append (500 records, one SQLite transaction, with de-duplication and
//!   gapless `seq`) vs raw batched inserts of the same rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_embedded::store::SqliteStore;
use tideline_stages::EventStore;

fn record(n: usize) -> Vec<u8> {
    serde_json::json!({
        "entity_id": format!("order-{}", n % 1000),
        "type": "OrderPlaced",
        "id": format!("ev-{n}"),
        "occurred_at": "2026-11-23T08:00:00.123456Z",
        "data": {"customer": "Zoë Ålund", "city": "Malmö", "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}], "total": {"amount": 4598, "currency": "EUR"}}
    })
    .to_string()
    .into_bytes()
}

fn transform(c: &mut Criterion) {
    let rec = record(7);
    let config = IngestConfig::default();
    let now = chrono::Utc::now();
    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_serde_json_parse_serialize", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&rec)).unwrap();
            black_box(serde_json::to_vec(&v).unwrap())
        })
    });
    g.bench_function("normalize_record_and_json_line", |b| {
        b.iter(|| {
            black_box(
                normalize_record(&config, black_box(&rec), now)
                    .unwrap()
                    .to_json_line(),
            )
        })
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    const BATCH: usize = 500;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = IngestConfig::default();
    let now = chrono::Utc::now();
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);

    // Baseline: the same rows, inserted raw in one transaction per batch.
    let raw = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    raw.pragma_update(None, "journal_mode", "WAL").unwrap();
    raw.pragma_update(None, "synchronous", "NORMAL").unwrap();
    raw.execute_batch("CREATE TABLE events (entity_id TEXT, seq INTEGER, sk TEXT, event_id TEXT, event_type TEXT, data TEXT, occurred_at TEXT, stored_at TEXT)").unwrap();
    let mut raw = raw;
    let mut next = 0usize;
    g.bench_function("baseline_raw_batched_sqlite_insert", |b| {
        b.iter(|| {
            let tx = raw.transaction().unwrap();
            {
                let mut stmt = tx
                    .prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                    .unwrap();
                for _ in 0..BATCH {
                    let r = normalize_record(&config, &record(next), now).unwrap();
                    next += 1;
                    let data = serde_json::to_string(&r.data).unwrap();
                    stmt.execute(rusqlite::params![
                        r.entity_id.as_str(),
                        next as i64,
                        r.received_at,
                        r.id.as_str(),
                        r.event_type,
                        data,
                        r.occurred_at,
                        r.received_at
                    ])
                    .unwrap();
                }
            }
            tx.commit().unwrap();
        })
    });

    let store = SqliteStore::open(&dir.path().join("store.db"), None).unwrap();
    let mut next = 0usize;
    g.bench_function("sqlite_store_append_each", |b| {
        b.iter(|| {
            let events: Vec<_> = (0..BATCH)
                .map(|_| {
                    next += 1;
                    normalize_record(&config, &record(next), now).unwrap()
                })
                .collect();
            let (done, err) = rt.block_on(store.append_each(events));
            assert!(err.is_none() && done.len() == BATCH);
        })
    });
    g.finish();
}

criterion_group!(benches, transform, append);
criterion_main!(benches);
