//! The edges between hops (issue "Accounted for at every edge"): a record is
//! refused at ingest with a reason naming the limit and the hop, or it passes
//! every later hop, all the way to a consumer parsing it. Each test here
//! failed on the code before the limits model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use proptest::prelude::*;
use serde_json::{Value, json};
use tideline_core::envelope::{BusEntry, EventDetail, IntegrationEvent, expiry_event_id};
use tideline_core::ingest::{IngestConfig, RejectReason, admit};
use tideline_core::limits::{self, HopLimits, Limit};
use tideline_core::retry::RetryPolicy;
use tideline_core::{ErrorClass, ExpectedSeq};
use tideline_stages::emit::{EmitConfig, emit_batch};
use tideline_stages::memory::*;
use tideline_stages::query::{MAX_PAGE_BYTES, QueryRequest, handle_query};
use tideline_stages::store::{IncomingMessage, store_batch};
use tideline_stages::transform::{IncomingRecord, TransformFailure, transform_batch};
use tideline_stages::{Change, ChangeKind, EntryFailure, EventStore};

fn incoming(id: &str, record: &Value) -> IncomingRecord {
    IncomingRecord {
        record_id: id.into(),
        data: serde_json::to_vec(record).unwrap(),
        arrival: Utc::now(),
    }
}

fn refusal(record: &Value) -> RejectReason {
    admit(
        &IngestConfig::default(),
        &serde_json::to_vec(record).unwrap(),
        Utc::now(),
    )
    .unwrap_err()
}

/// Admits a record that must be valid.
fn admitted(record: &Value) -> tideline_core::ingest::AdmittedRecord {
    admit(
        &IngestConfig::default(),
        record.to_string().as_bytes(),
        Utc::now(),
    )
    .unwrap()
}

/// Admits a record and appends it, as the storer would.
async fn append(store: &MemoryStore, record: &Value) {
    let admitted = admitted(record);
    store
        .append(
            &admitted.record.entity_id.clone(),
            vec![admitted.record],
            ExpectedSeq::Any,
        )
        .await
        .unwrap();
}

fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

/// Defect 1: the same producer id on two entities is two events everywhere.
#[tokio::test]
async fn same_event_id_on_two_entities_is_two_events() {
    let queue = MemoryQueue::default();
    let input = vec![
        incoming(
            "a",
            &json!({"entity_id":"acct-A","id":"1","type":"T","data":{}}),
        ),
        incoming(
            "b",
            &json!({"entity_id":"acct-B","id":"1","type":"T","data":{}}),
        ),
    ];
    let out = transform_batch(
        &IngestConfig::default(),
        &queue,
        &RetryPolicy::fast(2),
        &input,
    )
    .await;
    assert_eq!(out.counts.sent, 2);
    // The memory queue de-duplicates queue-wide (SQS with DeduplicationScope=queue).
    let sent = queue.messages();
    assert_eq!(sent.len(), 2, "the second entity's record vanished");
    assert_ne!(sent[0].dedup_id, sent[1].dedup_id);
    let store = MemoryStore::default();
    let messages = sent
        .iter()
        .enumerate()
        .map(|(i, m)| IncomingMessage {
            message_id: format!("m{i}"),
            body: m.body.clone(),
        })
        .collect();
    let stored = store_batch(&store, &MemoryRejects::default(), messages).await;
    assert_eq!(stored.counts.sent, 2);
}

/// Defect 3: an event type PutEvents cannot carry is refused at ingest.
#[test]
fn event_type_over_detail_type_limit_is_refused() {
    let ok = "T".repeat(128);
    assert!(
        admit(
            &IngestConfig::default(),
            json!({"entity_id":"e","type":ok,"data":1})
                .to_string()
                .as_bytes(),
            Utc::now()
        )
        .is_ok()
    );
    let long = "T".repeat(129);
    let reason = refusal(&json!({"entity_id":"e","type":long,"data":1}));
    assert!(
        reason.to_string().contains("1–128 characters"),
        "reason: {reason}"
    );
}

/// Defect 4: nesting a consumer could not parse is refused, naming the limit.
#[test]
fn nesting_beyond_what_readers_parse_is_refused() {
    let reason = refusal(&json!({"entity_id":"e","type":"T","data": nested(126)}));
    match reason {
        RejectReason::OverLimit(o) => {
            assert_eq!(o.limit, Limit::JsonDepth);
            assert!(o.to_string().contains("serde_json"));
        }
        other => panic!("expected a depth refusal, got {other}"),
    }
    // The deepest accepted data still parses inside the deepest envelope.
    let deepest = nested(limits::MAX_DATA_DEPTH);
    let admitted = admit(
        &IngestConfig::default(),
        json!({"entity_id":"e","type":"T","data": deepest})
            .to_string()
            .as_bytes(),
        Utc::now(),
    )
    .unwrap();
    let bundled = json!({"detail": {"events": [{"data": admitted.record.data}]}}).to_string();
    serde_json::from_str::<Value>(&bundled).expect("deepest envelope parses");
}

/// Defect 2: sizes are checked against every hop, the queue's and the item's.
#[test]
fn sizes_are_checked_against_the_queue_and_the_item() {
    let record = |bytes: usize| json!({"entity_id":"e","type":"T","data":"x".repeat(bytes)});
    // Over the queue's default 256 KiB.
    match refusal(&record(300 * 1024)) {
        RejectReason::OverLimit(o) => assert_eq!(o.limit, Limit::SqsMessage),
        other => panic!("expected the queue's limit, got {other}"),
    }
    // With a 1 MiB queue, DynamoDB's 400 KB item is the binding hop.
    let big_queue = IngestConfig {
        limits: HopLimits {
            sqs_message_bytes: limits::SQS_MAX_MESSAGE_BYTES,
            ..HopLimits::default()
        },
        ..IngestConfig::default()
    };
    let reason = admit(
        &big_queue,
        record(500 * 1024).to_string().as_bytes(),
        Utc::now(),
    )
    .unwrap_err();
    match &reason {
        RejectReason::OverLimit(o) => assert_eq!(o.limit, Limit::DynamoDbItem),
        other => panic!("expected the item limit, got {other}"),
    }
    assert_eq!(reason.code(), "OverLimit");
    assert!(reason.to_string().contains("DynamoDB"));
    assert!(
        admit(
            &big_queue,
            record(390 * 1024).to_string().as_bytes(),
            Utc::now()
        )
        .is_ok()
    );
}

/// Defect 11: a transient enqueue failure is retried, never a refusal, and
/// resends keep each entity's order in the queue.
#[tokio::test]
async fn transient_enqueue_failures_are_retried_in_entity_order() {
    let queue = MemoryQueue::default();
    let throttle = || {
        Some(EntryFailure {
            code: "ThrottlingException".into(),
            message: "slow down".into(),
            class: ErrorClass::Retryable,
        })
    };
    // First call: A1 throttled, B1 ok. A1 is resent before A2 is ever sent.
    queue.faults.script([throttle(), None]);
    let input: Vec<_> = [("A", 1), ("B", 1), ("A", 2), ("B", 2), ("A", 3)]
        .iter()
        .map(|(e, n)| {
            incoming(
                &format!("{e}{n}"),
                &json!({"entity_id":e,"id":format!("{e}{n}"),"type":"T","data":n}),
            )
        })
        .collect();
    let out = transform_batch(
        &IngestConfig::default(),
        &queue,
        &RetryPolicy::fast(3),
        &input,
    )
    .await;
    assert_eq!(out.counts.failed, 0);
    let a_order: Vec<Value> = queue
        .messages()
        .iter()
        .filter(|m| m.group_id == "A")
        .map(|m| serde_json::from_str::<Value>(&m.body).unwrap()["data"].clone())
        .collect();
    // As it came out of the queue, not sorted.
    assert_eq!(a_order, [json!(1), json!(2), json!(3)]);

    // Exhausted retries: the record stays transient (the Lambda fails the
    // invocation, local mode reports FailedPutCount), and so does every later
    // record of its entity, which must not overtake it.
    let queue = MemoryQueue::default();
    queue.faults.script((0..10).map(|_| throttle()));
    let input: Vec<_> = [("A", 1), ("A", 2)]
        .iter()
        .map(|(e, n)| {
            incoming(
                &format!("{e}{n}"),
                &json!({"entity_id":e,"type":"T","data":n}),
            )
        })
        .collect();
    let out = transform_batch(
        &IngestConfig::default(),
        &queue,
        &RetryPolicy::fast(2),
        &input,
    )
    .await;
    assert!(out.has_transient_failures());
    assert!(
        out.records
            .iter()
            .all(|r| matches!(r.result, Err(TransformFailure::EnqueueFailed { .. })))
    );
    assert!(queue.messages().is_empty());
}

/// Defect 12: query pages are bounded by bytes as well as count.
#[tokio::test]
async fn query_pages_are_bounded_by_bytes() {
    let store = MemoryStore::default();
    let big = "y".repeat(200 * 1024);
    for i in 0..40 {
        append(
            &store,
            &json!({"entity_id":"e","type":"T","data":{"i":i,"pad":big}}),
        )
        .await;
    }
    let mut cursor = String::new();
    let mut seen = Vec::new();
    loop {
        let resp = handle_query(
            &store,
            &QueryRequest {
                method: "GET".into(),
                path: "/entities/e/events".into(),
                params: vec![
                    ("limit".into(), "1000".into()),
                    ("cursor".into(), cursor.clone()),
                ],
            },
        )
        .await;
        assert_eq!(resp.status, 200);
        let body = resp.body.to_string();
        assert!(body.len() <= MAX_PAGE_BYTES, "page of {} bytes", body.len());
        for item in resp.body["items"].as_array().unwrap() {
            seen.push(item["metadata"]["sequence"].as_u64().unwrap());
        }
        match resp.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, (1..=40).collect::<Vec<u64>>());
}

/// Defect 6: a change the emitter cannot read is not skipped: the batch
/// rewinds to it, after publishing what came before.
#[tokio::test]
async fn undecodable_change_rewinds_instead_of_being_skipped() {
    let store = MemoryStore::default();
    let mut changes = Vec::new();
    for i in 0..3 {
        append(&store, &json!({"entity_id":"e","type":"T","data":i})).await;
    }
    let events = store.all_events();
    changes.push(Change {
        sequence_number: "100".into(),
        kind: ChangeKind::EventInserted(events[0].clone()),
    });
    changes.push(Change {
        sequence_number: "101".into(),
        kind: ChangeKind::Undecodable {
            reason: "data is not JSON".into(),
        },
    });
    changes.push(Change {
        sequence_number: "102".into(),
        kind: ChangeKind::EventInserted(events[1].clone()),
    });
    let bus = MemoryBus::default();
    let out = emit_batch(&bus, &EmitConfig::default(), &changes).await;
    assert_eq!(out.rewind_from.as_deref(), Some("101"));
    assert_eq!(out.counts.discarded, 0);
    assert_eq!(out.counts.sent, 1);
    assert_eq!(out.counts.failed, 2);
    assert!(out.error.unwrap().contains("data is not JSON"));
}

/// Defect 7: an expiry notice has an identity of its own and says what removed the event.
#[test]
fn expiry_notice_has_its_own_identity() {
    let admitted = admit(
        &IngestConfig::default(),
        json!({"entity_id":"e","id":"ev-1","type":"T","data":1})
            .to_string()
            .as_bytes(),
        Utc::now(),
    )
    .unwrap();
    let plan = tideline_core::event::plan_append(
        &admitted.record.entity_id.clone(),
        None,
        ExpectedSeq::Any,
        vec![admitted.record],
        |_| false,
        Utc::now(),
        None,
    )
    .unwrap();
    let event = &plan.to_store[0];
    let live = EventDetail::from_stored(event, false);
    let ttl = EventDetail::expired(event, true);
    let erased = EventDetail::expired(event, false);
    assert_ne!(ttl.metadata.event_id, live.metadata.event_id);
    assert_eq!(ttl.metadata.event_id, expiry_event_id("ev-1"));
    assert!(ttl.metadata.is_expiry() && !live.metadata.is_expiry());
    assert_eq!(ttl.data["removed_by"], "ttl");
    assert_eq!(erased.data["removed_by"], "erasure");
    // No ingested id can ever equal an expiry id.
    assert!(tideline_core::EventId::new(ttl.metadata.event_id.clone()).is_err());
}

/// The same store stage blames the right message: a permanent failure on
/// the third record rejects the third, not the first.
#[tokio::test]
async fn store_rejects_the_message_that_failed() {
    let store = MemoryStore::default();
    let messages: Vec<IncomingMessage> = (0..3)
        .map(|i| {
            let admitted = admit(
                &IngestConfig::default(),
                json!({"entity_id":"e","type":"T","data":i})
                    .to_string()
                    .as_bytes(),
                Utc::now(),
            )
            .unwrap();
            IncomingMessage {
                message_id: format!("m{i}"),
                body: admitted.body,
            }
        })
        .collect();
    store.faults.script([
        None,
        None,
        Some(EntryFailure {
            code: "ValidationException".into(),
            message: "bad".into(),
            class: ErrorClass::Permanent,
        }),
    ]);
    let rejects = MemoryRejects::default();
    let out = store_batch(&store, &rejects, messages).await;
    let rejected: Vec<String> = rejects
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.source_id.clone())
        .collect();
    assert_eq!(rejected, ["m2"]);
    assert_eq!(out.counts.sent, 2);
}

fn arb_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        (0usize..40_000).prop_map(|n| Value::String("é".repeat(n))),
    ];
    leaf.prop_recursive(depth, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\"\\\\]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// For arbitrary records, a record is refused at ingest with a reason, or
    /// it passes every hop's limit all the way to a consumer parsing it.
    #[test]
    fn refused_at_ingest_or_carried_by_every_hop(
        entity in prop_oneof![".{0,10}", "[a-zA-Z0-9:/#-]{1,140}"],
        event_type in prop_oneof!["[A-Za-z]{1,20}", ".{0,140}", "[A-Z]{120,140}"],
        id in proptest::option::of("[ -~]{0,140}"),
        depth_wrap in 0usize..140,
        data in arb_json(6),
        pad in prop_oneof![Just(0usize), 200_000usize..500_000],
    ) {
        let mut data = data;
        for _ in 0..depth_wrap {
            data = json!([data]);
        }
        let mut record = json!({"entity_id": entity, "type": event_type, "data": data});
        if let Some(id) = id {
            record["id"] = json!(id);
        }
        if pad > 0 {
            record["pad"] = json!("p".repeat(pad));
        }
        let bytes = match serde_json::to_vec(&record) {
            Ok(b) => b,
            Err(_) => return Ok(()),
        };
        let config = IngestConfig::default();
        let limits = config.limits;
        match admit(&config, &bytes, Utc::now()) {
            Err(reason) => prop_assert!(!reason.to_string().is_empty()),
            Ok(admitted) => {
                // Queue hop: the body and the ids.
                let message = tideline_stages::OutgoingMessage::for_record(&admitted);
                prop_assert!(message.body.len() <= limits.sqs_message_bytes);
                prop_assert!(!message.group_id.is_empty() && message.group_id.chars().count() <= limits::SQS_ID_CHARS);
                prop_assert!(message.dedup_id.chars().count() <= limits::SQS_ID_CHARS);
                // Store hop: the item as written, with the largest seq and a TTL.
                let record = serde_json::from_str::<tideline_core::ingest::NormalizedRecord>(&message.body).unwrap();
                let plan = tideline_core::event::plan_append(
                    &record.entity_id.clone(), None, ExpectedSeq::Any, vec![record],
                    |_| false, Utc::now(), Some(chrono::Duration::days(36500)),
                ).unwrap();
                let mut event = plan.to_store[0].clone();
                event.seq = u64::MAX;
                let data_json = serde_json::to_string(&event.data).unwrap();
                let item = limits::item_size(&limits::event_item_attributes(&event.item_fields(), &data_json));
                prop_assert!(item + limits::DYNAMODB_LSI_OVERHEAD_BYTES <= limits.dynamodb_item_bytes);
                // Bus hop: DetailType, entry size with the longest Source.
                let source = "s".repeat(limits::SOURCE_CHARS);
                let entry = BusEntry::new(&source, &EventDetail::from_stored(&event, false));
                prop_assert!(entry.detail_type.chars().count() <= limits::DETAIL_TYPE_CHARS);
                prop_assert!(entry.size() <= limits.put_events_request_bytes);
                // Consumer: the event parses, and so does the deepest envelope.
                let json = entry.to_event_json("id", "2026-11-29T00:00:00Z");
                let parsed: IntegrationEvent = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(&parsed.detail.data, &event.data);
                let bundled = format!(r#"{{"detail":{{"events":[{{"data":{data_json}}}]}}}}"#);
                prop_assert!(serde_json::from_str::<Value>(&bundled).is_ok());
            }
        }
    }
}

/// A queue that records each call's payload total, to check SendMessageBatch's 1 MiB.
#[derive(Default)]
struct CallRecordingQueue {
    calls: std::sync::Mutex<Vec<(usize, usize)>>,
}

impl tideline_stages::Queue for CallRecordingQueue {
    fn max_batch(&self) -> usize {
        limits::SQS_BATCH_ENTRIES
    }
    async fn send_batch(
        &self,
        messages: &[tideline_stages::OutgoingMessage],
    ) -> Result<Vec<Result<(), EntryFailure>>, tideline_stages::PortError> {
        let bytes = messages.iter().map(|m| m.body.len()).sum();
        self.calls.lock().unwrap().push((messages.len(), bytes));
        Ok(messages.iter().map(|_| Ok(())).collect())
    }
}

/// Defect 2: SendMessageBatch's 1 MiB total is enforced, not only its 10 entries.
#[tokio::test]
async fn send_message_batch_calls_stay_within_the_byte_total() {
    let config = IngestConfig {
        limits: HopLimits {
            sqs_message_bytes: limits::SQS_MAX_MESSAGE_BYTES,
            ..HopLimits::default()
        },
        ..IngestConfig::default()
    };
    let pad = "z".repeat(300 * 1024);
    let input: Vec<_> = (0..10)
        .map(|i| {
            incoming(
                &format!("r{i}"),
                &json!({"entity_id": format!("e{i}"), "type":"T","data":{"pad":pad}}),
            )
        })
        .collect();
    let queue = CallRecordingQueue::default();
    let out = transform_batch(&config, &queue, &RetryPolicy::fast(2), &input).await;
    assert_eq!(out.counts.sent, 10);
    let calls = queue.calls.lock().unwrap().clone();
    assert!(
        calls
            .iter()
            .all(|&(_, bytes)| bytes <= limits::SQS_BATCH_BYTES),
        "{calls:?}"
    );
    assert_eq!(calls.iter().map(|&(n, _)| n).sum::<usize>(), 10);
    assert!(
        calls.len() >= 4,
        "10 records of 300 KiB need at least 4 calls: {calls:?}"
    );
}
