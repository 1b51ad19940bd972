//! `kill -9` in the middle of a load, twice, and restart on the same data
//! directory: nothing lost, nothing stored twice, gapless per-entity
//! sequences in send order, and every event delivered to the log target
//! (INVARIANTS.md #1–#4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tideline_testkit::fixtures::{ProducerRecord, put_record_batch_body, record};
use tideline_testkit::local::history;
use tideline_testkit::local::{ServerProcess, free_port, wait_healthy};

const ENTITIES: usize = 40;
const BATCHES: usize = 30;
const PER_BATCH: usize = 200;

fn spawn(data: &std::path::Path, rules: &std::path::Path, port: u16) -> ServerProcess {
    Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["up", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--rules"])
        .arg(rules)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(ServerProcess)
        .unwrap()
}

fn batch_body(b: usize) -> String {
    let records: Vec<ProducerRecord> = (0..PER_BATCH)
        .map(|i| {
            let n = b * PER_BATCH + i;
            record(format!("acct-{}", n % ENTITIES), "Posted")
                .id(format!("k-{n}"))
                .data(json!({"n": n}))
        })
        .collect();
    put_record_batch_body(&records).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_load_loses_nothing_and_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("delivered.jsonl");
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, json!([{"name": "log", "event_pattern": {"source": ["tideline"]}, "target": {"type": "log", "path": log}}]).to_string()).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let mut child = spawn(&data, &rules, port);
    wait_healthy(&client, &base).await;

    // The producer: batches in order; a batch without a clean answer is resent
    // with the same bytes, as a producer retry would.
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let client = client.clone();
        let base = base.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut resends = 0;
            for b in 0..BATCHES {
                loop {
                    let sent = client
                        .post(format!("{base}/"))
                        .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
                        .header("content-type", "application/x-amz-json-1.1")
                        .body(batch_body(b))
                        .send()
                        .await;
                    let ok = match sent {
                        Ok(r) if r.status().is_success() => r
                            .json::<Value>()
                            .await
                            .map(|v| v["FailedPutCount"] == 0)
                            .unwrap_or(false),
                        _ => false,
                    };
                    if ok {
                        break;
                    }
                    resends += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                // Paced, so the kills below land while the load is running.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            done.store(true, Ordering::SeqCst);
            resends
        })
    };

    // Kill -9 twice while the load runs, restarting on the same data directory.
    for pause in [150u64, 400] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        assert!(
            !done.load(Ordering::SeqCst),
            "the load finished before the kill; the test would prove nothing"
        );
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        child = spawn(&data, &rules, port);
        wait_healthy(&client, &base).await;
    }
    let resends = producer.await.unwrap();
    assert!(done.load(Ordering::SeqCst));

    // Wait until every event is stored, emitted and delivered.
    let total = BATCHES * PER_BATCH;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let m: Value = client
            .get(format!("{base}/_tideline/metrics"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let delivered: HashSet<String> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                v["detail"]["metadata"]["event_id"]
                    .as_str()
                    .map(String::from)
            })
            .collect();
        if m["events_stored"] == total && m["queue_depth"] == 0 && delivered.len() == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not complete: {m} delivered={}",
            delivered.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Stored once each, gapless, in send order per entity.
    let mut all_ids = HashSet::new();
    for e in 0..ENTITIES {
        let (items, _) = history(&client, &base, &format!("acct-{e}"), Some(1000)).await;
        let seqs: Vec<u64> = items
            .iter()
            .map(|i| i["metadata"]["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=(total / ENTITIES) as u64).collect::<Vec<_>>(),
            "acct-{e} gapless"
        );
        let ns: Vec<u64> = items
            .iter()
            .map(|i| i["data"]["n"].as_u64().unwrap())
            .collect();
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "acct-{e} in send order");
        for i in &items {
            assert!(
                all_ids.insert(i["metadata"]["event_id"].as_str().unwrap().to_string()),
                "stored twice"
            );
        }
    }
    assert_eq!(all_ids.len(), total);

    // Delivery is at least once; per entity, every sequence reached the target.
    let mut delivered: BTreeMap<String, HashSet<u64>> = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let m = &v["detail"]["metadata"];
        delivered
            .entry(m["entity_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(m["sequence"].as_u64().unwrap());
    }
    assert_eq!(delivered.len(), ENTITIES);
    assert!(delivered.values().all(|s| s.len() == total / ENTITIES));
    eprintln!("kill -9 twice during {total} records: {resends} batch resends, all stored once");

    drop(child);
}
