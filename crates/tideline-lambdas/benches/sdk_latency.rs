//! The three pipeline handlers with the AWS SDK in the loop, behind the test
//! kit's fault proxy adding a fixed latency to every call (5 ms: about what
//! DynamoDB, SQS and EventBridge take in-region), in front of a stand-in
//! that answers at once ([`fake_aws`]), so what is measured is the calls a
//! handler waits for, not moto's own speed. (moto still produces the
//! emitter's input: real DynamoDB stream records of stored events.)
//!
//! Beside each handler, in the same run and through the same proxy, a bare
//! loop of the same SDK calls, issued as concurrently as the ordering rules
//! allow: the limit no handler can beat at this latency.
//!
//! - storer: a queue batch of 10 messages over 10 entities (each entity's
//!   later batches: the steady state). Bare: per entity, the read of the
//!   latest event and the two puts, one after another; entities at once.
//!   Also one overwriting `PutItem` per message, all at once (the shape of a
//!   store without the guarantees).
//! - emitter: a stream batch of 100 new events over 10 entities. Bare: the
//!   same number of `PutEvents` calls of the same entries, one after another
//!   (a shard's batch is published in order).
//! - transformer: a Firehose batch of 500 records over 500 entities, and
//!   over 50 entities (10 records each). Bare: `SendMessageBatch` calls of
//!   10, each entity's records one after another, 10 calls in flight.
//!
//! `cargo bench -p tideline-lambdas --bench sdk_latency` (needs moto for
//! the emitter's input: `bash scripts/moto.sh`). `TIDELINE_BENCH_LATENCY_MS` (default 5) and
//! `TIDELINE_BENCH_BATCHES` (default 20) change the latency and the
//! batches measured per row; `TIDELINE_BENCH_ONLY=storer,emitter,transformer`
//! picks the handlers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tideline_aws::{DynamoStore, EventBridgeBus, SqsQueue};
use tideline_core::ingest::{IngestConfig, admit};
use tideline_core::retry::RetryPolicy;
use tideline_lambdas::{emit, store, transform};
use tideline_stages::emit::EmitConfig;
use tideline_testkit::fault_proxy::FaultProxy;
use tideline_testkit::fixtures::{self, SqsRecord, lambda};
use tideline_testkit::moto;

const STORER_ENTITIES: usize = 10;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Wall times of the batches of one row, and the calls they made.
struct Row {
    name: String,
    events_per_batch: usize,
    times: Vec<Duration>,
    calls: Vec<(String, u64)>,
}

impl Row {
    fn percentile(&self, p: f64) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t[((t.len() - 1) as f64 * p).round() as usize]
    }

    fn calls_per_event(&self) -> String {
        let events = (self.events_per_batch * self.times.len()) as f64;
        self.calls
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(op, n)| format!("{op} {:.2}", *n as f64 / events))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Counts of the operations a row's calls went to, read from the proxy.
fn snapshot(proxy: &FaultProxy) -> Vec<(String, u64)> {
    [
        "Query",
        "GetItem",
        "PutItem",
        "TransactWriteItems",
        "PutEvents",
        "SendMessageBatch",
    ]
    .iter()
    .map(|op| (op.to_string(), proxy.forwarded(op)))
    .collect()
}

fn delta(after: &[(String, u64)], before: &[(String, u64)]) -> Vec<(String, u64)> {
    after
        .iter()
        .zip(before)
        .map(|((op, a), (_, b))| (op.clone(), a - b))
        .collect()
}

/// Runs `batch` `n` times after 2 unmeasured warm-up batches.
async fn measure<F, Fut>(
    name: &str,
    proxy: &FaultProxy,
    events_per_batch: usize,
    n: usize,
    mut batch: F,
) -> Row
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    eprintln!("{name}…");
    for i in 0..2 {
        batch(i).await;
    }
    proxy.wait_idle().await;
    let before = snapshot(proxy);
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        batch(i + 2).await;
        times.push(started.elapsed());
        eprintln!(
            "  batch {i}: {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    proxy.wait_idle().await;
    Row {
        name: name.to_string(),
        events_per_batch,
        times,
        calls: delta(&snapshot(proxy), &before),
    }
}

fn normalized(entity: &str, id: &str) -> String {
    let record = fixtures::record(entity, "ItemAdded")
        .id(id)
        .data(json!({"sku": format!("SKU-{id}"), "qty": 2, "note": "Zoë ✓"}))
        .bytes();
    admit(&IngestConfig::default(), &record, chrono::Utc::now())
        .unwrap()
        .body
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

async fn storer_rows(proxy: &FaultProxy, n: usize) -> Vec<Row> {
    let table = moto::unique("bench-store");
    let ddb = aws_sdk_dynamodb::Client::new(&proxy.sdk_config().await);
    let run = moto::unique("b");
    let entities: Vec<String> = (0..STORER_ENTITIES)
        .map(|e| format!("{run}-e{e}"))
        .collect();
    let mut rows = Vec::new();
    for (name, bound) in [
        ("storer handler, entities one after another", 1),
        ("storer handler, 10 entities at once", 10),
    ] {
        let state = store::State {
            max_concurrent_entities: bound,
            store: DynamoStore::new(ddb.clone(), &table),
        };
        let state = &state;
        // Each batch's invocation, built before timing.
        let events: Vec<Value> = (0..n + 2)
            .map(|i| {
                fixtures::sqs_event(entities.iter().enumerate().map(|(k, e)| {
                    let id = format!("{e}-b{bound}-{i}");
                    SqsRecord::fifo(&format!("m{k}"), e, &normalized(e, &id))
                }))
            })
            .collect();
        let events = &events;
        rows.push(
            measure(name, proxy, STORER_ENTITIES, n, |i| async move {
                let out = store::handler(state, lambda(events[i].clone()))
                    .await
                    .unwrap();
                assert!(out.batch_item_failures.is_empty(), "{out:?}");
            })
            .await,
        );
    }
    // The same calls as the protocol's steady state, bare: per entity a
    // strongly consistent Query of the latest event, then two puts.
    let ddb = &ddb;
    let table = &table;
    let entities = &entities;
    // Bodies built before timing: a bare loop is the calls alone.
    let body = &normalized(&entities[0], "bare");
    rows.push(
        measure(
            "bare SDK: Query + 2 PutItem per entity, entities at once",
            proxy,
            STORER_ENTITIES,
            n,
            |i| async move {
                futures::future::join_all(entities.iter().map(|e| async move {
                    ddb.query()
                        .table_name(table)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(e.clone()))
                        .scan_index_forward(false)
                        .limit(1)
                        .consistent_read(true)
                        .send()
                        .await
                        .unwrap();
                    for sk in [format!("id#bare-{i}"), format!("bare-{i}")] {
                        ddb.put_item()
                            .table_name(table)
                            .item("pk", s(e.clone()))
                            .item("sk", s(sk))
                            .item("data", s(body.clone()))
                            .condition_expression("attribute_not_exists(pk)")
                            .send()
                            .await
                            .unwrap();
                    }
                }))
                .await;
            },
        )
        .await,
    );
    rows.push(
        measure(
            "bare SDK: 1 overwriting PutItem per message, all at once",
            proxy,
            STORER_ENTITIES,
            n,
            |i| async move {
                futures::future::join_all(entities.iter().map(|e| async move {
                    ddb.put_item()
                        .table_name(table)
                        .item("pk", s(e.clone()))
                        .item("sk", s(format!("overwrite-{i}")))
                        .item("data", s(body.clone()))
                        .send()
                        .await
                        .unwrap();
                }))
                .await;
            },
        )
        .await,
    );
    rows
}

async fn emitter_rows(proxy: &FaultProxy, n: usize) -> Vec<Row> {
    const EVENTS: usize = 100;
    let sdk = moto::sdk_config().await;
    let res = moto::ChainResources::create(&sdk).await;
    let direct = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &res.table);
    let state = store::State {
        max_concurrent_entities: 10,
        store: direct,
    };
    let run = moto::unique("em");
    let mut reader = moto::StreamReader::new(&sdk, &res.stream_arn).await;
    // 100 new events over 10 entities, stored once; their stream records are
    // the emitter's batch, published again on each measured run.
    for chunk in 0..EVENTS / 10 {
        let records = (0..10).map(|k| {
            let e = format!("{run}-e{k}");
            let id = format!("{e}-{chunk}");
            SqsRecord::fifo(&format!("m{k}"), &e, &normalized(&e, &id))
        });
        store::handler(&state, lambda(fixtures::sqs_event(records)))
            .await
            .unwrap();
    }
    let mut stream_records: Vec<Value> = Vec::new();
    for _ in 0..50 {
        stream_records.extend(reader.read().await.into_iter().filter(|r| {
            r["eventName"] == "INSERT" && r["dynamodb"]["NewImage"]["kind"]["S"] == "event"
        }));
        if stream_records.len() >= EVENTS {
            break;
        }
    }
    assert_eq!(stream_records.len(), EVENTS, "stream records read");
    let event = fixtures::stream_event(stream_records);
    let eb = aws_sdk_eventbridge::Client::new(&proxy.sdk_config().await);
    let emitter = emit::State {
        bus: EventBridgeBus::new(eb.clone(), &res.bus),
        config: EmitConfig {
            retry: RetryPolicy::fast(3),
            ..EmitConfig::default()
        },
    };
    let emitter = &emitter;
    let event = &event;
    let mut rows = vec![
        measure("emitter handler", proxy, EVENTS, n, |_| async move {
            let out = emit::handler(emitter, lambda(event.clone())).await.unwrap();
            assert!(out.batch_item_failures.is_empty());
        })
        .await,
    ];
    let calls = rows[0]
        .calls
        .iter()
        .find(|(op, _)| op == "PutEvents")
        .map_or(1, |(_, c)| (*c as usize / n).max(1));
    let per_call = EVENTS.div_ceil(calls);
    let eb = &eb;
    let bus = &res.bus;
    rows.push(
        measure(
            &format!("bare SDK: {calls} PutEvents of {per_call} entries, one after another"),
            proxy,
            EVENTS,
            n,
            |i| async move {
                for c in 0..calls {
                    let entries = (0..per_call).map(|k| {
                        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                            .event_bus_name(bus)
                            .source("tideline")
                            .detail_type("ItemAdded")
                            .detail(json!({"n": i, "c": c, "k": k}).to_string())
                            .build()
                    });
                    eb.put_events()
                        .set_entries(Some(entries.collect()))
                        .send()
                        .await
                        .unwrap();
                }
            },
        )
        .await,
    );
    rows
}

/// A stand-in for DynamoDB, SQS and EventBridge that answers at once: on
/// these machines moto takes 15-20 ms per DynamoDB call, most of a second
/// per FIFO `SendMessageBatch` and seconds per `PutEvents`, serialised by
/// Python's lock, which would measure moto, not the handlers. The SDK still
/// builds, signs and sends every call and parses every answer; the proxy in
/// front adds the latency. DynamoDB: `PutItem` (unconditional, or
/// `attribute_not_exists(pk)`, failing with the old item as DynamoDB does),
/// `GetItem` and `Query` of one partition's `sk` range, the calls the append
/// protocol makes in its steady state; anything else is refused, so a row
/// that needed more fails loudly instead of measuring a wrong answer.
async fn fake_aws() -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    type Table = Arc<Mutex<BTreeMap<(String, String), Value>>>;
    fn ok(body: Value) -> Response {
        (
            [("content-type", "application/x-amz-json-1.0")],
            body.to_string(),
        )
            .into_response()
    }
    fn error(kind: &str, extra: Value) -> Response {
        let mut body =
            json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": kind});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.0")],
            body.to_string(),
        )
            .into_response()
    }
    fn key_of(item: &Value) -> (String, String) {
        let text = |k: &str| item[k]["S"].as_str().unwrap_or_default().to_string();
        (text("pk"), text("sk"))
    }
    async fn answer(
        axum::extract::State(table): axum::extract::State<Table>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> Response {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let operation = target.rsplit('.').next().unwrap_or_default();
        match operation {
            "SendMessageBatch" => {
                let successful: Vec<Value> = request["Entries"].as_array().map(Vec::as_slice).unwrap_or_default().iter()
                    .map(|e| json!({"Id": e["Id"], "MessageId": "m", "MD5OfMessageBody": "00000000000000000000000000000000", "SequenceNumber": "1"}))
                    .collect();
                ok(json!({"Successful": successful, "Failed": []}))
            }
            "PutEvents" => {
                let entries: Vec<Value> = request["Entries"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(|(k, _)| json!({"EventId": format!("e{k}")}))
                    .collect();
                ok(json!({"FailedEntryCount": 0, "Entries": entries}))
            }
            "PutItem" => {
                let item = request["Item"].clone();
                let key = key_of(&item);
                let mut t = table.lock().unwrap();
                match request["ConditionExpression"].as_str() {
                    None => {}
                    Some("attribute_not_exists(pk)") => {
                        if let Some(old) = t.get(&key) {
                            return error("ConditionalCheckFailedException", json!({"Item": old}));
                        }
                    }
                    Some(other) => {
                        return error(
                            "ValidationException",
                            json!({"message": format!("the bench's stand-in does not evaluate {other}")}),
                        );
                    }
                }
                t.insert(key, item);
                ok(json!({}))
            }
            "GetItem" => {
                let key = key_of(&request["Key"]);
                match table.lock().unwrap().get(&key) {
                    Some(item) => ok(json!({"Item": item})),
                    None => ok(json!({})),
                }
            }
            "Query" => {
                let values = &request["ExpressionAttributeValues"];
                let pk = values[":pk"]["S"].as_str().unwrap_or_default().to_string();
                let lo = values[":lo"]["S"].as_str().unwrap_or("").to_string();
                let hi = values[":hi"]["S"]
                    .as_str()
                    .unwrap_or("\u{10ffff}")
                    .to_string();
                let t = table.lock().unwrap();
                let mut items: Vec<Value> = t
                    .range((pk.clone(), lo)..=(pk, hi))
                    .map(|(_, item)| item.clone())
                    .collect();
                if request["ScanIndexForward"] == json!(false) {
                    items.reverse();
                }
                if let Some(limit) = request["Limit"].as_u64() {
                    items.truncate(limit as usize);
                }
                ok(json!({"Items": items, "Count": items.len()}))
            }
            other => error(
                "ValidationException",
                json!({"message": format!("the bench's stand-in does not answer {other}")}),
            ),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(Table::default());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{address}")
}

async fn transformer_rows(proxy: &FaultProxy, n: usize) -> Vec<Row> {
    const RECORDS: usize = 500;
    let sqs = aws_sdk_sqs::Client::new(&proxy.sdk_config().await);
    let url = format!("{}/123456789012/bench.fifo", proxy.endpoint());
    let run = moto::unique("tr");
    let mut rows = Vec::new();
    for (entities, sends) in [(500, 1), (500, 10), (50, 10)] {
        let state = transform::State {
            queue: SqsQueue::new(sqs.clone(), &url),
            ingest: IngestConfig::default(),
            retry: RetryPolicy::fast(3),
            max_concurrent_sends: sends,
        };
        let state = &state;
        // Each batch's invocation, built before timing.
        let events: Vec<Value> = (0..n + 2)
            .map(|i| {
                let records: Vec<Vec<u8>> = (0..RECORDS)
                    .map(|r| {
                        fixtures::record(format!("{run}-e{}", r % entities), "ItemAdded")
                            .id(format!("{run}-{i}-{r}"))
                            .data(json!({"r": r}))
                            .bytes()
                    })
                    .collect();
                moto::firehose_event(&records)
            })
            .collect();
        let events = &events;
        let name = format!("transformer handler, {entities} entities, {sends} call(s) in flight");
        rows.push(
            measure(&name, proxy, RECORDS, n, |i| async move {
                let out = transform::handler(state, lambda(events[i].clone()))
                    .await
                    .unwrap();
                assert!(
                    out.records
                        .iter()
                        .all(|r| r.result.as_deref() == Some("Ok"))
                );
            })
            .await,
        );
    }
    // Bare: 50 calls of 10, each carrying 10 entities, 10 in flight (500
    // entities: every call may overlap every other).
    let sqs = &sqs;
    let url = &url;
    let run = &run;
    let body = &normalized(&format!("{run}-bare"), "x");
    rows.push(
        measure(
            "bare SDK: 50 SendMessageBatch of 10, 10 in flight",
            proxy,
            RECORDS,
            n,
            |i| async move {
                futures::stream::iter(0..RECORDS / 10)
                    .map(|c| async move {
                        let entries = (0..10).map(|k| {
                            let r = c * 10 + k;
                            SendMessageBatchRequestEntry::builder()
                                .id(format!("e{k}"))
                                .message_group_id(format!("{run}-bare-e{r}"))
                                .message_deduplication_id(format!("{run}-bare-{i}-{r}"))
                                .message_body(body.clone())
                                .build()
                                .unwrap()
                        });
                        sqs.send_message_batch()
                            .queue_url(url)
                            .set_entries(Some(entries.collect()))
                            .send()
                            .await
                            .unwrap();
                    })
                    .buffer_unordered(10)
                    .collect::<Vec<()>>()
                    .await;
            },
        )
        .await,
    );
    rows
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs bench targets with `--test`: a smoke run.
    let smoke = std::env::args().any(|a| a == "--test");
    let latency = Duration::from_millis(env_number("TIDELINE_BENCH_LATENCY_MS", 5));
    let n = if smoke {
        1
    } else {
        env_number("TIDELINE_BENCH_BATCHES", 20) as usize
    };
    let proxy = FaultProxy::start(&fake_aws().await, 25).await;
    proxy.set_latency(latency);
    let only = std::env::var("TIDELINE_BENCH_ONLY").unwrap_or_default();
    let wanted = |stage: &str| only.is_empty() || only.split(',').any(|s| s.trim() == stage);
    let mut rows = Vec::new();
    if wanted("storer") {
        rows.extend(storer_rows(&proxy, n).await);
    }
    if wanted("emitter") {
        rows.extend(emitter_rows(&proxy, n).await);
    }
    if wanted("transformer") {
        rows.extend(transformer_rows(&proxy, n).await);
    }
    println!(
        "\n{} ms per call, {n} batches per row\n\n| row | per batch p50 | p90 | calls per event |\n|---|---|---|---|",
        latency.as_millis()
    );
    for row in &rows {
        println!(
            "| {} | {:.1} ms | {:.1} ms | {} |",
            row.name,
            row.percentile(0.5).as_secs_f64() * 1e3,
            row.percentile(0.9).as_secs_f64() * 1e3,
            row.calls_per_event()
        );
    }
}
