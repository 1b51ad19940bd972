//! Per-record work of the three pipeline handlers with the I/O ports stubbed,
//! next to a bare `serde_json` parse + serialise of the same records as the
//! baseline, in the same run.
//!
//! Each handler is timed the way its Lambda runs: the invocation's JSON is
//! parsed from bytes (what the runtime does), the handler runs, and its
//! response is serialised. The stub ports do what costs CPU in the AWS
//! adapters and nothing else: the queue and the bus accept every entry
//! without copying it, and the store plans each append (`seq`, `sk`,
//! `stored_at`) and builds the DynamoDB event item, `data` serialised.
//!
//! `cargo bench -p tideline-lambdas --bench handlers -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;
use tideline_core::envelope::{BusEntry, DEFAULT_MAX_PUT_EVENTS_BYTES};
use tideline_core::event::{AppendOutcome, EntityHead, ExpectedSeq, plan_append};
use tideline_core::ingest::IngestConfig;
use tideline_core::retry::RetryPolicy;
use tideline_core::{EntityId, NewEvent, StoredEvent};
use tideline_lambdas::{emit, store, transform};
use tideline_stages::emit::EmitConfig;
use tideline_stages::{
    Bus, EntryFailure, EventStore, OutgoingMessage, PortError, Queue, RejectSink, RejectedRecord,
    StoreError,
};

const N: usize = 500;

fn producer_record(i: usize) -> String {
    json!({"entity_id": format!("order-{}", i % 50), "type": "ItemAdded", "id": format!("ev-{i}"),
           "occurred_at": "2026-11-23T08:00:00Z",
           "data": {"sku": format!("SKU-{i}"), "qty": i % 7, "price": 12.5, "note": "Zoë ✓"}})
    .to_string()
}

fn arrival() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(1_795_420_800_000).unwrap()
}

fn firehose_event() -> Value {
    use base64::Engine;
    json!({"invocationId": "i", "deliveryStreamArn": "arn", "region": "us-east-1",
        "records": (0..N).map(|i| json!({"recordId": format!("r{i}"), "approximateArrivalTimestamp": 1_795_420_800_000_i64,
            "data": base64::engine::general_purpose::STANDARD.encode(producer_record(i))})).collect::<Vec<_>>()})
}

/// The queue messages the transformer sends for the same producer records.
fn queue_bodies() -> Vec<String> {
    (0..N)
        .map(|i| {
            tideline_core::ingest::admit(
                &IngestConfig::default(),
                producer_record(i).as_bytes(),
                arrival(),
            )
            .unwrap()
            .body
        })
        .collect()
}

fn sqs_event(bodies: &[String]) -> Value {
    json!({"Records": bodies.iter().enumerate().map(|(i, body)| json!({
        "messageId": format!("m{i}"), "receiptHandle": "h", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795420800000",
            "SequenceNumber": format!("{}", 10_000 + i), "MessageGroupId": format!("order-{}", i % 50),
            "SenderId": "A", "MessageDeduplicationId": format!("d{i}"), "ApproximateFirstReceiveTimestamp": "1795420800000"},
        "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:1:q.fifo", "awsRegion": "us-east-1"
    })).collect::<Vec<_>>()})
}

fn stream_event() -> Value {
    json!({"Records": (0..N).map(|i| json!({
        "eventID": format!("e{i}"), "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": "arn",
        "dynamodb": {"ApproximateCreationDateTime": 1_795_420_800.0, "Keys": {}, "SequenceNumber": format!("{}", 1_000_000 + i), "SizeBytes": 300,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            "NewImage": {
                "pk": {"S": format!("order-{}", i % 50)}, "sk": {"S": format!("2026-11-23T08:00:00.{i:06}Z#ev-{i}")},
                "seq": {"N": (i / 50 + 1).to_string()}, "kind": {"S": "event"}, "event_id": {"S": format!("ev-{i}")},
                "event_type": {"S": "ItemAdded"}, "data": {"S": format!("{{\"sku\":\"SKU-{i}\",\"qty\":{},\"price\":12.5,\"note\":\"Zoë ✓\"}}", i % 7)},
                "occurred_at": {"S": "2026-11-23T08:00:00.000000Z"}, "received_at": {"S": "2026-11-23T08:00:00.000000Z"},
                "stored_at": {"S": format!("2026-11-23T08:00:00.{i:06}Z")}, "test": {"BOOL": false}, "schema_version": {"N": "1"}}}
    })).collect::<Vec<_>>()})
}

/// A queue that takes every message and keeps none (SQS with the network stubbed).
struct AcceptingQueue;

impl Queue for AcceptingQueue {
    fn max_batch(&self) -> usize {
        10
    }
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        black_box(messages);
        Ok(vec![Ok(()); messages.len()])
    }
}

/// A bus that takes every entry and keeps none (EventBridge with the network stubbed).
struct AcceptingBus;

impl Bus for AcceptingBus {
    fn max_request_bytes(&self) -> usize {
        DEFAULT_MAX_PUT_EVENTS_BYTES
    }
    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        black_box(entries);
        Ok(vec![Ok(()); entries.len()])
    }
}

/// A store that does the DynamoDB adapter's CPU work per append (plan it,
/// build the event item) and keeps only the heads.
#[derive(Default)]
struct ItemBuildingStore {
    heads: Mutex<HashMap<EntityId, EntityHead>>,
}

impl EventStore for ItemBuildingStore {
    async fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let mut heads = self.heads.lock().unwrap();
        let plan = plan_append(
            entity,
            heads.get(entity),
            expected,
            events,
            |_| false,
            chrono::Utc::now(),
            None,
        )?;
        for event in &plan.to_store {
            black_box(tideline_aws::store::event_item(event));
        }
        if let Some(head) = &plan.new_head {
            heads.insert(entity.clone(), head.clone());
        }
        Ok(plan.outcomes())
    }
    async fn read_events(
        &self,
        _entity: &EntityId,
        _after_seq: u64,
        _limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Vec::new())
    }
    async fn head(&self, entity: &EntityId) -> Result<Option<EntityHead>, StoreError> {
        Ok(self.heads.lock().unwrap().get(entity).cloned())
    }
}

impl RejectSink for ItemBuildingStore {
    async fn reject(&self, _record: RejectedRecord) -> Result<(), PortError> {
        Ok(())
    }
}

fn baseline(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    records: &[String],
) {
    g.bench_function("baseline_serde_parse_serialize", |b| {
        b.iter(|| {
            for r in records {
                let v: Value = serde_json::from_str(black_box(r)).unwrap();
                black_box(serde_json::to_vec(&v).unwrap());
            }
        })
    });
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let firehose = serde_json::to_vec(&firehose_event()).unwrap();
    let raw_records: Vec<String> = (0..N).map(producer_record).collect();
    let mut g = c.benchmark_group("transformer");
    g.throughput(Throughput::Elements(N as u64));
    baseline(&mut g, &raw_records);
    g.bench_function("handler", |b| {
        b.iter(|| {
            let state = transform::State {
                max_concurrent_sends: tideline_aws::config::DEFAULT_MAX_CONCURRENT_SENDS,
                queue: AcceptingQueue,
                ingest: IngestConfig::default(),
                retry: RetryPolicy::fast(1),
            };
            let event = LambdaEvent::new(
                serde_json::from_slice(black_box(&firehose)).unwrap(),
                Context::default(),
            );
            let response = rt.block_on(transform::handler(&state, event)).unwrap();
            black_box(serde_json::to_vec(&response).unwrap());
        })
    });
    g.finish();

    let bodies = queue_bodies();
    let sqs = serde_json::to_vec(&sqs_event(&bodies)).unwrap();
    let mut g = c.benchmark_group("storer");
    g.throughput(Throughput::Elements(N as u64));
    baseline(&mut g, &bodies);
    g.bench_function("handler", |b| {
        b.iter(|| {
            let state = store::State {
                max_concurrent_entities: tideline_aws::config::DEFAULT_MAX_CONCURRENT_ENTITIES,
                store: ItemBuildingStore::default(),
            };
            let event = LambdaEvent::new(
                serde_json::from_slice(black_box(&sqs)).unwrap(),
                Context::default(),
            );
            let response = rt.block_on(store::handler(&state, event)).unwrap();
            assert!(response.batch_item_failures.is_empty());
            black_box(serde_json::to_vec(&response).unwrap());
        })
    });
    g.finish();

    let stream = stream_event();
    let images: Vec<String> = stream["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dynamodb"]["NewImage"].to_string())
        .collect();
    let stream = serde_json::to_vec(&stream).unwrap();
    let mut g = c.benchmark_group("emitter");
    g.throughput(Throughput::Elements(N as u64));
    baseline(&mut g, &images);
    g.bench_function("handler", |b| {
        b.iter(|| {
            let state = emit::State {
                bus: AcceptingBus,
                config: EmitConfig::default(),
            };
            let event = LambdaEvent::new(
                serde_json::from_slice(black_box(&stream)).unwrap(),
                Context::default(),
            );
            let response = rt.block_on(emit::handler(&state, event)).unwrap();
            assert!(response.batch_item_failures.is_empty());
            black_box(serde_json::to_vec(&response).unwrap());
        })
    });
    g.finish();
}

criterion_group!(handlers, benches);
criterion_main!(handlers);
