//! Appends per second at an expected version, locally (issue 23): through
//! the command API of a running local stack (HTTP, the command stage, the
//! SQLite store, the lake), and through the store alone, for one entity and
//! for 1,000 entities; next to a baseline measured in the same run: the same
//! rows inserted with SQLite directly, one transaction per append, each
//! reading the entity's last `seq` first (what an expected-version append
//! must do).
//!
//! `cargo bench -p tideline-local --bench command_append`
//! (`TIDELINE_BENCH_APPENDS=N` sets the appends per case; default 2,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::collections::HashMap;
use std::time::Instant;
use tideline_core::{EntityId, ExpectedSeq};
use tideline_embedded::store::SqliteStore;
use tideline_local::{LocalConfig, LocalStack};
use tideline_stages::EventStore;
use tideline_stages::command::admit_command;

fn event(n: usize) -> serde_json::Value {
    json!({"id": format!("c-{n}"), "type": "ItemAdded", "data": {"sku": "A-1", "qty": 2, "price": {"amount": 4598, "currency": "EUR"}}})
}

fn entity(n: usize, entities: usize) -> String {
    format!("order-{}", n % entities)
}

async fn over_http(appends: usize, entities: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let stack = LocalStack::start(LocalConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", stack.local_addr());
    let client = reqwest::Client::new();
    let mut version: HashMap<String, u64> = HashMap::new();
    let started = Instant::now();
    for n in 0..appends {
        let e = entity(n, entities);
        let expected = version.get(&e).copied().unwrap_or(0);
        let resp = client
            .post(format!("{base}/entities/{e}/events"))
            .json(&json!({"expected_sequence": expected, "events": [event(n)]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        version.insert(e, expected + 1);
    }
    let rate = appends as f64 / started.elapsed().as_secs_f64();
    stack.shutdown().await;
    rate
}

async fn through_the_store(appends: usize, entities: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db"), None).unwrap();
    let config = tideline_core::ingest::IngestConfig::default();
    let mut version: HashMap<String, u64> = HashMap::new();
    let started = Instant::now();
    for n in 0..appends {
        let e = entity(n, entities);
        let id = EntityId::new(&e).unwrap();
        let expected = version.get(&e).copied().unwrap_or(0);
        let admitted = admit_command(&config, &id, vec![event(n)], chrono::Utc::now()).unwrap();
        let records = admitted.into_iter().map(|a| a.record).collect();
        store
            .append(&id, records, ExpectedSeq::Exactly(expected))
            .await
            .unwrap();
        version.insert(e, expected + 1);
    }
    appends as f64 / started.elapsed().as_secs_f64()
}

fn sqlite_directly(appends: usize, entities: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = rusqlite::Connection::open(dir.path().join("baseline.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute_batch("CREATE TABLE events (feed_id INTEGER PRIMARY KEY AUTOINCREMENT, entity_id TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL, stored_at TEXT NOT NULL, UNIQUE (entity_id, seq), UNIQUE (entity_id, event_id))").unwrap();
    let started = Instant::now();
    for n in 0..appends {
        let e = entity(n, entities);
        let tx = conn.transaction().unwrap();
        let last: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE entity_id = ?1")
            .unwrap()
            .query_row([&e], |r| r.get(0))
            .unwrap();
        tx.prepare_cached("INSERT INTO events (entity_id, seq, event_id, event_type, data, stored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .unwrap()
            .execute(rusqlite::params![e, last + 1, format!("c-{n}"), "ItemAdded", event(n)["data"].to_string(), chrono::Utc::now().to_rfc3339()])
            .unwrap();
        tx.commit().unwrap();
    }
    appends as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let appends: usize = std::env::var("TIDELINE_BENCH_APPENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("appends at an expected version, one event each, {appends} per case:");
    for entities in [1, 1000] {
        let http = rt.block_on(over_http(appends, entities));
        let store = rt.block_on(through_the_store(appends, entities));
        let raw = sqlite_directly(appends, entities);
        println!(
            "  {entities:>4} entit{}: command API (HTTP) {http:>8.0}/s   SqliteStore::append {store:>8.0}/s   SQLite directly {raw:>8.0}/s",
            if entities == 1 { "y  " } else { "ies" }
        );
    }
}
