//! Per-record work of the handlers with the I/O ports stubbed (in-memory
//! queue and bus), next to a bare `serde_json` parse + serialise of the same
//! records as the baseline, in the same run.
//!
//! `cargo bench -p tideline-lambdas --bench handlers -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use std::hint::black_box;
use tideline_core::ingest::IngestConfig;
use tideline_core::retry::RetryPolicy;
use tideline_lambdas::{emitter, transformer};
use tideline_ports::memory::{MemoryBus, MemoryQueue};
use tideline_ports::stages::emit::EmitConfig;

const N: usize = 500;

fn producer_record(i: usize) -> String {
    json!({"entity_id": format!("order-{}", i % 50), "type": "ItemAdded", "id": format!("ev-{i}"),
           "occurred_at": "2026-11-23T08:00:00Z",
           "data": {"sku": format!("SKU-{i}"), "qty": i % 7, "price": 12.5, "note": "Zoë ✓"}})
    .to_string()
}

fn firehose_event() -> Value {
    use base64::Engine;
    json!({"invocationId": "i", "deliveryStreamArn": "arn", "region": "us-east-1",
        "records": (0..N).map(|i| json!({"recordId": format!("r{i}"), "approximateArrivalTimestamp": 1_795_420_800_000_i64,
            "data": base64::engine::general_purpose::STANDARD.encode(producer_record(i))})).collect::<Vec<_>>()})
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

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let firehose = firehose_event();
    let raw_records: Vec<String> = (0..N).map(producer_record).collect();

    let mut g = c.benchmark_group("transformer");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("baseline_serde_parse_serialize", |b| {
        b.iter(|| {
            for r in &raw_records {
                let v: Value = serde_json::from_str(black_box(r)).unwrap();
                black_box(serde_json::to_vec(&v).unwrap());
            }
        })
    });
    g.bench_function("handler", |b| {
        b.iter(|| {
            let state = transformer::State {
                queue: MemoryQueue::default(),
                ingest: IngestConfig::default(),
                retry: RetryPolicy::fast(1),
            };
            let event = LambdaEvent::new(
                serde_json::from_value(firehose.clone()).unwrap(),
                Context::default(),
            );
            black_box(rt.block_on(transformer::handler(&state, event)).unwrap());
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
    let mut g = c.benchmark_group("emitter");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("baseline_serde_parse_serialize", |b| {
        b.iter(|| {
            for r in &images {
                let v: Value = serde_json::from_str(black_box(r)).unwrap();
                black_box(serde_json::to_vec(&v).unwrap());
            }
        })
    });
    g.bench_function("handler", |b| {
        b.iter(|| {
            let state = emitter::State {
                bus: MemoryBus::default(),
                config: EmitConfig::default(),
            };
            let event = LambdaEvent::new(
                serde_json::from_value(stream.clone()).unwrap(),
                Context::default(),
            );
            black_box(rt.block_on(emitter::handler(&state, event)).unwrap());
        })
    });
    g.finish();
}

criterion_group!(handlers, benches);
criterion_main!(handlers);
