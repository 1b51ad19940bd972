//! `publish` and `publish_batch` against a recording transport: ids, bytes,
//! partial failures, limits checked before sending, calls within the batch limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use std::sync::Arc;
use support::{NoWait, Plan, Recording};
use tideline_client::{BatchLimits, Event, EventId, PublishError, Publisher, RetryPolicy};
use tideline_core::{Classify, ErrorClass, RejectReason};

const NON_ASCII: &str = "Zoë ✓ 日本 🚀";

fn publisher(t: &Arc<Recording>) -> Publisher<Arc<Recording>, NoWait> {
    Publisher::new(t.clone(), NoWait).with_retry(RetryPolicy::fast(4))
}

fn record(n: usize) -> Vec<u8> {
    Event::new(
        format!("order-{}", n % 3),
        "OrderPlaced",
        json!({ "n": n, "name": NON_ASCII }),
    )
    .to_bytes()
}

#[tokio::test]
async fn publish_returns_the_id_ingest_derives_and_sends_the_bytes_unchanged() {
    let t = Arc::new(Recording::default());
    let p = publisher(&t);
    let bytes = record(1);
    // serde_json writes the text as UTF-8, not \u escapes: the bytes carry it as is.
    assert!(
        String::from_utf8(bytes.clone())
            .unwrap()
            .contains(NON_ASCII)
    );

    let id = p.publish(bytes.clone()).await.unwrap();
    assert_eq!(id, EventId::derive(&bytes));
    assert_eq!(t.calls(), vec![vec![bytes.clone()]]);

    // The producer's own id wins.
    let given = Event::new("order-1", "OrderPlaced", json!({})).with_id("ord-1-placed");
    assert_eq!(p.publish(&given).await.unwrap().as_str(), "ord-1-placed");
}

#[tokio::test]
async fn a_partial_failure_resends_only_the_failed_records_with_the_same_bytes_and_ids() {
    let t = Arc::new(Recording::with_plans(vec![
        Plan::FailPositions(vec![2, 5]),
        Plan::FailPositions(vec![1]),
    ]));
    let p = publisher(&t);
    let records: Vec<Vec<u8>> = (0..10).map(record).collect();
    let results = p.publish_batch(records.clone()).await;

    let calls = t.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0], records);
    assert_eq!(calls[1], vec![records[2].clone(), records[5].clone()]);
    assert_eq!(calls[2], vec![records[5].clone()]);
    // One result per record, in input order, each the id of its own bytes.
    let ids: Vec<EventId> = results.into_iter().map(Result::unwrap).collect();
    let expected: Vec<EventId> = records.iter().map(|r| EventId::derive(r)).collect();
    assert_eq!(ids, expected);
    // The service took each record exactly once.
    let mut accepted = t.accepted_ids();
    accepted.sort();
    let mut want: Vec<String> = expected.iter().map(ToString::to_string).collect();
    want.sort();
    assert_eq!(accepted, want);
}

#[tokio::test]
async fn a_record_over_a_hop_limit_is_refused_before_sending_and_does_not_block_others() {
    let t = Arc::new(Recording::default());
    let p = publisher(&t);
    // 300 KB of data fits Firehose's 1,000 KiB record but not the queue's 256 KiB message.
    let big = Event::new(
        "order-9",
        "OrderPlaced",
        json!({ "blob": "x".repeat(300 * 1024) }),
    );
    let results = p
        .publish_batch(vec![record(0), big.to_bytes(), record(2)])
        .await;
    match &results[1] {
        Err(e @ PublishError::Refused(RejectReason::OverLimit(_))) => {
            assert_eq!(e.class(), ErrorClass::Permanent);
            assert!(e.to_string().contains("SQS"), "{e}");
        }
        other => panic!("expected an OverLimit refusal, got {other:?}"),
    }
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(t.calls(), vec![vec![record(0), record(2)]]);

    // Alone, it makes no call at all; a broken contract is refused the same way.
    let t = Arc::new(Recording::default());
    let p = publisher(&t);
    assert!(p.publish(big.to_bytes()).await.is_err());
    let no_type = br#"{"entity_id":"order-1","data":{}}"#.to_vec();
    assert_eq!(p.publish(no_type).await.unwrap_err().code(), "MissingField");
    assert!(t.calls().is_empty());
}

#[tokio::test]
async fn batches_are_split_at_500_records_and_at_the_byte_limit() {
    let t = Arc::new(Recording::default());
    let p = publisher(&t);
    let results = p.publish_batch((0..1201).map(record).collect()).await;
    assert!(results.iter().all(Result::is_ok));
    let sizes: Vec<usize> = t.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![500, 500, 201]);

    let one = record(0).len();
    let t = Arc::new(Recording {
        limits: Some(BatchLimits {
            max_records: 500,
            max_bytes: one * 4,
        }),
        ..Recording::default()
    });
    let p = publisher(&t);
    p.publish_batch((0..10).map(|_| record(0)).collect()).await;
    let calls = t.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.iter().map(Vec::len).sum::<usize>() <= one * 4)
    );
    assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 10);
}

#[tokio::test]
async fn retries_stop_with_a_retryable_error_and_a_permanent_call_error_is_not_retried() {
    let t = Arc::new(Recording {
        default_plan: Some(Plan::FailCall { retryable: true }),
        ..Recording::default()
    });
    let e = publisher(&t).publish(record(1)).await.unwrap_err();
    assert!(
        matches!(e, PublishError::Unavailable { attempts: 4, .. }),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Retryable);
    assert_eq!(t.calls().len(), 4);
    // Every attempt carried the same bytes.
    assert!(t.calls().iter().all(|c| c == &vec![record(1)]));

    let t = Arc::new(Recording {
        default_plan: Some(Plan::FailCall { retryable: false }),
        ..Recording::default()
    });
    let e = publisher(&t).publish(record(1)).await.unwrap_err();
    assert!(
        matches!(e, PublishError::Rejected { attempts: 1, .. }),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(t.calls().len(), 1);
}
