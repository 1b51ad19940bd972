//! Stage tests over the in-memory adapters: the batch contracts, exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use tideline_core::ErrorClass;
use tideline_core::ingest::IngestConfig;
use tideline_core::retry::RetryPolicy;
use tideline_stages::emit::{EmitConfig, emit_batch};
use tideline_stages::memory::*;
use tideline_stages::query::{QueryRequest, handle_query};
use tideline_stages::store::{IncomingMessage, store_batch};
use tideline_stages::transform::{IncomingRecord, TransformFailure, transform_batch};
use tideline_stages::{Change, ChangeKind, EntryFailure};

fn rec(id: &str, entity: &str, n: u32) -> IncomingRecord {
    IncomingRecord {
        record_id: id.into(),
        data: format!(r#"{{"entity_id":"{entity}","type":"T","data":{{"n":{n},"s":"Grüße"}}}}"#)
            .into_bytes(),
        arrival: Utc::now(),
    }
}

#[tokio::test]
async fn transform_answers_once_per_record_and_retries_only_failed_entries() {
    let queue = MemoryQueue::default();
    // Entries as sent: r0 ok, r1 throttled, r1 (resent before any later
    // record of its entity) ok, r2 permanently refused.
    queue.faults.script([
        None,
        Some(throttled()),
        None,
        Some(EntryFailure {
            code: "InvalidParameterValue".into(),
            message: "no".into(),
            class: ErrorClass::Permanent,
        }),
    ]);
    let mut input: Vec<_> = (0..5).map(|i| rec(&format!("r{i}"), "e1", i)).collect();
    input.insert(
        2,
        IncomingRecord {
            record_id: "bad".into(),
            data: b"not json".to_vec(),
            arrival: Utc::now(),
        },
    );
    let out = transform_batch(
        &IngestConfig::default(),
        &queue,
        &RetryPolicy::fast(3),
        &input,
    )
    .await;
    let ids: Vec<_> = out.records.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, ["r0", "r1", "bad", "r2", "r3", "r4"]);
    assert!(matches!(
        out.records[2].result,
        Err(TransformFailure::Rejected(_))
    ));
    // A permanent entry failure is the queue's refusal, with its reason.
    assert!(matches!(
        out.records[3].result,
        Err(TransformFailure::EnqueueRefused { .. })
    ));
    assert!(!out.has_transient_failures());
    assert_eq!(out.counts.failed, 2);
    let bodies: Vec<_> = queue.messages().iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies.len(), 4);
    assert!(bodies.iter().all(|b| b.contains("Grüße")));
    assert!(queue.messages().iter().all(|m| m.group_id == "e1"));
}

fn messages(n: usize, entity: &str) -> Vec<IncomingMessage> {
    (0..n)
        .map(|i| {
            let r = tideline_core::ingest::normalize_record(
                &IngestConfig::default(),
                &rec("x", entity, i as u32).data,
                Utc::now(),
            )
            .unwrap();
            IncomingMessage {
                message_id: format!("m{i}"),
                body: serde_json::to_string(&r).unwrap(),
            }
        })
        .collect()
}

#[tokio::test]
async fn store_stops_at_first_failure_and_reports_the_rest() {
    let store = MemoryStore::default();
    let rejects = MemoryRejects::default();
    store.faults.script([None, Some(throttled())]);
    let batch = messages(4, "e1");
    let out = store_batch(&store, &rejects, batch.clone()).await;
    assert_eq!(out.failed_message_ids, ["m1", "m2", "m3"]);
    assert_eq!(store.all_events().len(), 1);
    // Redelivery of the reported messages completes the entity, in order, gapless.
    let out = store_batch(&store, &rejects, batch[1..].to_vec()).await;
    assert!(out.failed_message_ids.is_empty());
    // A full redelivery adds nothing.
    let out = store_batch(&store, &rejects, batch.clone()).await;
    assert_eq!(out.counts.discarded, 4);
    let seqs: Vec<u64> = store.all_events().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[tokio::test]
async fn store_moves_a_permanently_refused_record_aside_and_stores_the_rest_of_its_run() {
    // The run m0..m3 goes to the store as one append_each; m1 is refused
    // permanently, so m2 and m3 are appended after it is moved aside.
    let store = MemoryStore::default();
    let rejects = MemoryRejects::default();
    store.faults.script([
        None,
        Some(EntryFailure {
            code: "ValidationException".into(),
            message: "item too large".into(),
            class: ErrorClass::Permanent,
        }),
    ]);
    let batch = messages(4, "e1");
    let out = store_batch(&store, &rejects, batch.clone()).await;
    assert!(out.failed_message_ids.is_empty());
    assert_eq!((out.counts.sent, out.counts.failed), (3, 1));
    let rejected = rejects.records.lock().unwrap().clone();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].source_id, "m1");
    let stored: Vec<(u64, String)> = store
        .all_events()
        .iter()
        .map(|e| (e.seq, e.data.to_string()))
        .collect();
    let data = |n: u32| format!(r#"{{"n":{n},"s":"Grüße"}}"#);
    assert_eq!(stored, [(1, data(0)), (2, data(2)), (3, data(3))]);
}

#[tokio::test]
async fn poison_message_is_moved_aside_and_does_not_block() {
    let store = MemoryStore::default();
    let rejects = MemoryRejects::default();
    let mut batch = messages(3, "e1");
    batch.insert(
        1,
        IncomingMessage {
            message_id: "poison".into(),
            body: "{oops".into(),
        },
    );
    let out = store_batch(&store, &rejects, batch).await;
    assert!(out.failed_message_ids.is_empty());
    assert_eq!(store.all_events().len(), 3);
    let rejected = rejects.records.lock().unwrap().clone();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].source_id, "poison");
    assert!(
        rejected[0]
            .reason
            .contains("not a normalised Tideline record")
    );
}

#[tokio::test]
async fn empty_batches_are_fine_everywhere() {
    let out = store_batch(&MemoryStore::default(), &MemoryRejects::default(), vec![]).await;
    assert!(out.failed_message_ids.is_empty());
    let out = emit_batch(&MemoryBus::default(), &EmitConfig::default(), &[]).await;
    assert!(out.rewind_from.is_none());
}

async fn changes(n: usize) -> Vec<Change> {
    let store = MemoryStore::default();
    store_batch(&store, &MemoryRejects::default(), messages(n, "e1")).await;
    let mut out = vec![Change {
        sequence_number: "100".into(),
        kind: ChangeKind::Skipped {
            kind: "head".into(),
        },
    }];
    for (i, e) in store.all_events().into_iter().enumerate() {
        out.push(Change {
            sequence_number: format!("{}", 101 + i),
            kind: ChangeKind::EventInserted(e),
        });
    }
    out
}

#[tokio::test]
async fn emit_batches_by_ten_in_order_and_retries_only_failed_entries() {
    let bus = MemoryBus::default();
    // Entry 3 of the first call throttled once.
    bus.faults.script([None, None, None, Some(throttled())]);
    let c = changes(23).await;
    let out = emit_batch(
        &bus,
        &EmitConfig {
            retry: RetryPolicy::fast(3),
            ..EmitConfig::default()
        },
        &c,
    )
    .await;
    assert!(out.rewind_from.is_none());
    assert_eq!(out.skipped.get("head"), Some(&1));
    assert_eq!(*bus.calls.lock().unwrap(), 4); // 10 + retry of 1 + 10 + 3
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 23);
    // As published, not sorted: the throttled entry (seq 4) is resent alone,
    // after the rest of its call and before the next call. The classic bus
    // keeps no order anyway; consumers restore it by `sequence`.
    let seqs: Vec<u64> = published.iter().map(|e| e.sequence).collect();
    let mut expected: Vec<u64> = vec![1, 2, 3, 5, 6, 7, 8, 9, 10, 4];
    expected.extend(11..=23);
    assert_eq!(seqs, expected);
}

#[tokio::test]
async fn emit_rewinds_to_the_lowest_failed_change() {
    let bus = MemoryBus::default();
    let mut script = vec![None; 10];
    script.extend([None, None, Some(throttled()), None, Some(throttled())]);
    script.extend([Some(throttled()), Some(throttled())]); // both retries fail again
    bus.faults.script(script);
    let c = changes(15).await;
    let out = emit_batch(
        &bus,
        &EmitConfig {
            retry: RetryPolicy::fast(2),
            ..EmitConfig::default()
        },
        &c,
    )
    .await;
    // Entry index 12 (seq 13) is change 1 + 12 = sequence number 113.
    assert_eq!(out.rewind_from.as_deref(), Some("113"));
}

#[tokio::test]
async fn query_pages_with_an_opaque_cursor() {
    let store = MemoryStore::default();
    store_batch(&store, &MemoryRejects::default(), messages(25, "e%2F1")).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("limit".to_string(), "10".to_string())];
        if let Some(c) = &cursor {
            params.push(("cursor".into(), c.clone()));
        }
        let resp = handle_query(
            &store,
            &QueryRequest {
                method: "GET".into(),
                path: "/entities/e%252F1/events".into(),
                params,
            },
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        for item in resp.body["items"].as_array().unwrap() {
            seen.push(item["metadata"]["sequence"].as_u64().unwrap());
        }
        match resp.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    let summary = handle_query(
        &store,
        &QueryRequest {
            method: "GET".into(),
            path: "/entities/e%252F1".into(),
            params: vec![],
        },
    )
    .await;
    assert_eq!(summary.body["last_sequence"], 25);
    let bad = handle_query(
        &store,
        &QueryRequest {
            method: "GET".into(),
            path: "/entities/e1/events".into(),
            params: vec![("cursor".into(), "zzz".into())],
        },
    )
    .await;
    assert_eq!(bad.status, 400);
    let missing = handle_query(
        &store,
        &QueryRequest {
            method: "GET".into(),
            path: "/entities/nobody".into(),
            params: vec![],
        },
    )
    .await;
    assert_eq!(missing.status, 404);
}
