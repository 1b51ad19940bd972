//! End-to-end throughput of local mode: events/s from the Firehose API to
//! delivery at a log target, with p50/p99 latency, next to a baseline of raw
//! batched SQLite inserts of the same rows measured in the same run, and a
//! second baseline: the same inserts into a table with the event store's
//! own keys and indexes.
//!
//! `cargo bench -p tideline-local --bench local_throughput`
//! (`TIDELINE_BENCH_EVENTS=N` sets the number of events; default 100,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_core::route::parse_rules;
use tideline_local::{LocalConfig, LocalStack};

/// The `tideline` binary's allocator (crates/tideline-cli/src/main.rs): the
/// bench measures local mode as `tideline up` runs it. The baselines run in
/// this process too, with the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 500;
const ENTITIES: usize = 1000;
const PRODUCERS: usize = 2;
const PACED_BATCH: usize = 50;

fn record(n: usize, batch: usize) -> Vec<u8> {
    json!({
        "entity_id": format!("order-{}", n % ENTITIES),
        "type": "OrderPlaced",
        "id": format!("b{}-{}", n / batch, n % batch),
        "data": {"customer": "Zoë Ålund", "city": "Malmö", "items": [{"sku": "A-1", "qty": 2}], "total": {"amount": 4598, "currency": "EUR"}}
    })
    .to_string()
    .into_bytes()
}

/// The table of the first baseline: the rows as they are, no keys.
const RAW_TABLE: &str = "CREATE TABLE events (entity_id TEXT, seq INTEGER, sk TEXT, event_id TEXT, event_type TEXT, data TEXT, occurred_at TEXT, stored_at TEXT)";

/// The table of the second baseline: the event store's own keys and indexes
/// (`tideline-embedded`'s `events` table: commit-order key, unique
/// `(entity_id, seq)` and `(entity_id, event_id)`).
const KEYED_TABLE: &str = "CREATE TABLE events (feed_id INTEGER PRIMARY KEY AUTOINCREMENT, entity_id TEXT NOT NULL, seq INTEGER NOT NULL, sk TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL, occurred_at TEXT NOT NULL, stored_at TEXT NOT NULL, UNIQUE (entity_id, seq), UNIQUE (entity_id, event_id))";

fn baseline_rows_per_sec(dir: &std::path::Path, total: usize, table: &str) -> f64 {
    let mut conn =
        rusqlite::Connection::open(dir.join(format!("baseline-{}.db", table.len()))).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute_batch(table).unwrap();
    let config = IngestConfig::default();
    let now = chrono::Utc::now();
    let rows: Vec<_> = (0..total)
        .map(|n| normalize_record(&config, &record(n, BATCH), now).unwrap())
        .collect();
    let started = Instant::now();
    for (b, chunk) in rows.chunks(BATCH).enumerate() {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO events (entity_id, seq, sk, event_id, event_type, data, occurred_at, stored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .unwrap();
            for (i, r) in chunk.iter().enumerate() {
                let data = serde_json::to_string(&r.data).unwrap();
                stmt.execute(rusqlite::params![
                    r.entity_id.as_str(),
                    (b * BATCH + i) as i64,
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
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Phase {
    events_per_sec: f64,
    elapsed: f64,
    ingest_secs: f64,
    latencies: Vec<f64>,
    lagged: u64,
    delivered_lines: usize,
}

/// Pushes `total` events through a fresh stack in batches of `batch`; with
/// `pace` (events/s), one producer sends at that rate instead of as fast as possible.
async fn phase(total: usize, batch: usize, pace: Option<f64>) -> Phase {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("delivered.jsonl");
    let rules = parse_rules(&json!([{"name": "log", "event_pattern": {"source": ["tideline"]}, "target": {"type": "log", "path": log}}]).to_string()).unwrap();
    let stack = LocalStack::start(LocalConfig {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        rules,
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    let url = format!("http://{}/", stack.local_addr());
    let batches = total / batch;
    let bodies: Vec<String> = (0..batches)
        .map(|b| {
            let records: Vec<_> = (0..batch)
                .map(|i| json!({"Data": STANDARD.encode(record(b * batch + i, batch))}))
                .collect();
            json!({"DeliveryStreamName": "tideline-ingest", "Records": records}).to_string()
        })
        .collect();
    let sent_at: Arc<Vec<std::sync::OnceLock<Instant>>> =
        Arc::new((0..batches).map(|_| std::sync::OnceLock::new()).collect());

    // Observe deliveries: latency = delivery time - send time of the record's batch.
    let mut deliveries = stack.deliveries();
    let observer = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(total);
            let mut last = Instant::now();
            let mut lagged = 0u64;
            while latencies.len() + (lagged as usize) < total {
                match deliveries.recv().await {
                    Ok(d) => {
                        let batch = d.event.find("\"event_id\":\"b").and_then(|i| {
                            let rest = &d.event[i + 13..];
                            rest.split('-').next().and_then(|n| n.parse::<usize>().ok())
                        });
                        if let Some(start) =
                            batch.and_then(|b| sent_at.get(b)).and_then(|c| c.get())
                        {
                            latencies.push(d.at.duration_since(*start).as_secs_f64() * 1000.0);
                        }
                        last = d.at;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => lagged += n,
                    Err(_) => break,
                }
            }
            (latencies, last, lagged)
        })
    };

    let client = reqwest::Client::new();
    let started = Instant::now();
    let bodies = Arc::new(bodies);
    let producers_n = if pace.is_some() { 1 } else { PRODUCERS };
    let mut producers = Vec::new();
    for p in 0..producers_n {
        let (client, url, bodies, sent_at) =
            (client.clone(), url.clone(), bodies.clone(), sent_at.clone());
        producers.push(tokio::spawn(async move {
            for b in (p..bodies.len()).step_by(producers_n) {
                if let Some(rate) = pace {
                    let due = started + Duration::from_secs_f64((b * batch) as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let _ = sent_at[b].set(Instant::now());
                let resp = client
                    .post(&url)
                    .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
                    .body(bodies[b].clone())
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let (mut latencies, last, lagged) = tokio::time::timeout(Duration::from_secs(600), observer)
        .await
        .unwrap()
        .unwrap();
    let elapsed = last.duration_since(started).as_secs_f64();
    stack.wait_idle(Duration::from_secs(60)).await.unwrap();
    let delivered_lines = std::fs::read_to_string(&log).unwrap().lines().count();
    latencies.sort_by(|a, b| a.total_cmp(b));
    stack.shutdown().await;
    Phase {
        events_per_sec: total as f64 / elapsed,
        elapsed,
        ingest_secs,
        latencies,
        lagged,
        delivered_lines,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = std::env::var("TIDELINE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let total = total.div_ceil(BATCH) * BATCH;
    let dir = tempfile::tempdir().unwrap();
    let baseline = baseline_rows_per_sec(dir.path(), total, RAW_TABLE);
    let keyed = baseline_rows_per_sec(dir.path(), total, KEYED_TABLE);

    let max = phase(total, BATCH, None).await;
    println!(
        "local mode end to end: {total} events, {ENTITIES} entities, batches of {BATCH}, {PRODUCERS} producers"
    );
    println!("  ingest accepted in          {:.2} s", max.ingest_secs);
    println!(
        "  ingest → log target         {:.0} events/s ({:.2} s)",
        max.events_per_sec, max.elapsed
    );
    println!(
        "  latency p50 / p99 / max     {:.1} / {:.1} / {:.1} ms at saturation (the backlog's wait; {} samples, {} observer lags)",
        percentile(&max.latencies, 0.5),
        percentile(&max.latencies, 0.99),
        max.latencies.last().copied().unwrap_or(f64::NAN),
        max.latencies.len(),
        max.lagged
    );
    println!("  delivered lines             {}", max.delivered_lines);
    println!(
        "  baseline raw SQLite inserts {baseline:.0} rows/s (same rows, batches of {BATCH}, WAL, synchronous=NORMAL)"
    );
    println!(
        "  ratio to baseline           {:.1}%",
        max.events_per_sec / baseline * 100.0
    );
    println!(
        "  baseline with the store's keys and indexes {keyed:.0} rows/s (same rows, the events table's unique keys)"
    );
    println!(
        "  ratio to keyed baseline     {:.1}%",
        max.events_per_sec / keyed * 100.0
    );

    // Latency below saturation: half the measured throughput, small batches.
    let rate = (max.events_per_sec / 2.0).max(100.0);
    let paced_total = (total / 5).div_ceil(PACED_BATCH) * PACED_BATCH;
    let paced = phase(paced_total, PACED_BATCH, Some(rate)).await;
    println!(
        "paced at {rate:.0} events/s (half the measured maximum), batches of {PACED_BATCH}, {paced_total} events:"
    );
    println!(
        "  latency p50 / p99 / max     {:.1} / {:.1} / {:.1} ms (ingest call to delivery at the log target)",
        percentile(&paced.latencies, 0.5),
        percentile(&paced.latencies, 0.99),
        paced.latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!("  delivered lines             {}", paced.delivered_lines);
}
