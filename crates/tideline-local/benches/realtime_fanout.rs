//! Realtime fan-out of one event stream to 1,000 subscribers, locally, next
//! to a baseline in the same run: a bare `tokio-tungstenite` server writing
//! the same frames to 1,000 connections from one broadcast.
//!
//! `cargo bench -p tideline-local --bench realtime_fanout` (a bench binary,
//! not a timed test). It prints events/s (one event delivered to every
//! subscriber) and p50/p99 latency:
//! - Tideline: from the store's commit (`metadata.stored_at`) to the
//!   client's receipt, through ingest → store → emit → bus → hub → socket;
//! - baseline: from the server's hand-off of the frame to the client's receipt.
//!
//! `TIDELINE_BENCH_SUBSCRIBERS` and `TIDELINE_BENCH_EVENTS` change the size.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tideline_realtime::auth::{Claims, insecure_dev_token, now_secs};
use tideline_realtime::client::{Incoming, connect};
use tideline_realtime::protocol::ClientMessage;
use tideline_testkit::local::LocalHarness;
use tokio_tungstenite::tungstenite::Message;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn micros_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e6
}

struct Run {
    events: usize,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
}

impl Run {
    fn report(&mut self, name: &str, subscribers: usize) {
        self.latencies_ms.sort_by(f64::total_cmp);
        let eps = self.events as f64 / self.elapsed.as_secs_f64();
        println!(
            "{name:<10} {subscribers} subscribers, {} events: {:.0} events/s ({:.0} messages/s), latency p50 {:.1} ms, p99 {:.1} ms, in {:.2?}",
            self.events,
            eps,
            eps * subscribers as f64,
            percentile(&self.latencies_ms, 0.5),
            percentile(&self.latencies_ms, 0.99),
            self.elapsed
        );
    }
}

/// Tideline: `tideline up` with 1,000 subscribers; returns the run and the
/// frames one subscriber received (the baseline writes the same).
async fn tideline(subscribers: usize, events: usize) -> (Run, Vec<String>) {
    let stack = LocalHarness::start_with(|c, _| {
        c.realtime.verifier = Some(tideline_realtime::TokenVerifier::InsecureDev);
        c.realtime.client_buffer = events + 16;
    })
    .await;
    let endpoint = format!("ws://{}/_tideline/realtime", stack.local_addr());
    let token = insecure_dev_token(&Claims {
        sub: "bench".into(),
        exp: now_secs() + 3600,
        iss: None,
        topics: vec!["Bench".into()],
        entities: vec!["*".into()],
    });
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(subscribers * events)));
    let frames = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers);
    let mut tasks = Vec::new();
    for i in 0..subscribers {
        let (endpoint, token, latencies, frames, ready) = (
            endpoint.clone(),
            token.clone(),
            latencies.clone(),
            frames.clone(),
            ready_tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&endpoint, &token).await.unwrap();
            conn.send(&ClientMessage::Subscribe {
                topic: "Bench".into(),
                entities: vec![],
                since: Default::default(),
            })
            .await
            .unwrap();
            let Incoming::Text(_) = conn.next().await else {
                panic!("not subscribed")
            };
            ready.send(()).await.unwrap();
            let mut mine = Vec::with_capacity(events);
            for _ in 0..events {
                let Incoming::Text(text) = conn.next().await else {
                    panic!("closed")
                };
                let received = micros_since_epoch(SystemTime::now());
                let v: Value = serde_json::from_str(&text).unwrap();
                let stored = chrono::DateTime::parse_from_rfc3339(
                    v["detail"]["metadata"]["stored_at"].as_str().unwrap(),
                )
                .unwrap();
                let stored_us = stored.timestamp_micros() as f64;
                mine.push((received - stored_us) / 1000.0);
                if i == 0 {
                    frames.lock().unwrap().push(text);
                }
            }
            latencies.lock().unwrap().extend(mine);
            conn.close().await;
        }));
    }
    for _ in 0..subscribers {
        ready_rx.recv().await.unwrap();
    }
    let started = Instant::now();
    for chunk in (1..=events).collect::<Vec<_>>().chunks(100) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|n| json!({"entity_id": "bench-stream", "type": "Bench", "data": {"n": n, "note": "one event of the benchmark stream"}}))
            .collect();
        stack.ingest(&records).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    stack.shutdown().await;
    let latencies_ms = std::mem::take(&mut *latencies.lock().unwrap());
    let frames = std::mem::take(&mut *frames.lock().unwrap());
    (
        Run {
            events,
            elapsed,
            latencies_ms,
        },
        frames,
    )
}

/// The baseline: a bare tokio-tungstenite server broadcasting `frames`.
async fn baseline(subscribers: usize, frames: Vec<String>) -> Run {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, _) = tokio::sync::broadcast::channel::<(usize, Arc<str>)>(frames.len() + 16);
    let sent_at = Arc::new(Mutex::new(vec![0f64; frames.len()]));
    let server_tx = tx.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut rx = server_tx.subscribe();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                while let Ok((_, text)) = rx.recv().await {
                    if ws.send(Message::Text((&*text).into())).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers);
    let mut tasks = Vec::new();
    let count = frames.len();
    for _ in 0..subscribers {
        let (latencies, sent_at, ready) = (latencies.clone(), sent_at.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
                .await
                .unwrap();
            ready.send(()).await.unwrap();
            let mut mine = Vec::with_capacity(count);
            for i in 0..count {
                let Some(Ok(Message::Text(text))) = ws.next().await else {
                    panic!("baseline closed")
                };
                let received = micros_since_epoch(SystemTime::now());
                // The same work per message as the Tideline clients: parse it.
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                std::hint::black_box(&v["detail"]["metadata"]["stored_at"]);
                mine.push((i, received));
            }
            let sent = sent_at.lock().unwrap().clone();
            latencies
                .lock()
                .unwrap()
                .extend(mine.into_iter().map(|(i, r)| (r - sent[i]) / 1000.0));
        }));
    }
    for _ in 0..subscribers {
        ready_rx.recv().await.unwrap();
    }
    // Wait until every server task has subscribed to the broadcast.
    while tx.receiver_count() < subscribers {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    for (i, frame) in frames.into_iter().enumerate() {
        sent_at.lock().unwrap()[i] = micros_since_epoch(SystemTime::now());
        tx.send((i, Arc::from(frame))).unwrap();
        // The same pacing as ingest gives Tideline: batches of 100.
        if i % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let latencies_ms = std::mem::take(&mut *latencies.lock().unwrap());
    Run {
        events: count,
        elapsed,
        latencies_ms,
    }
}

fn main() {
    let subscribers = env_or("TIDELINE_BENCH_SUBSCRIBERS", 1000);
    let events = env_or("TIDELINE_BENCH_EVENTS", 500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ours, frames) = tideline(subscribers, events).await;
        let frame_bytes = frames.iter().map(String::len).sum::<usize>() / frames.len().max(1);
        let mut base = baseline(subscribers, frames).await;
        println!("realtime fan-out, one stream of {events} events (~{frame_bytes} bytes per frame) to {subscribers} subscribers");
        ours.report("tideline", subscribers);
        base.report("baseline", subscribers);
        let eps = |r: &Run| r.events as f64 / r.elapsed.as_secs_f64();
        println!(
            "throughput ratio tideline/baseline: {:.2}",
            eps(&ours) / eps(&base)
        );
    });
}
