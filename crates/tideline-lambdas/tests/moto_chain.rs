//! The Lambdas against real AWS APIs (moto in server mode). The harness plays
//! the event source mappings: it receives from SQS or reads the stream, builds
//! the exact Lambda event JSON, and calls the handlers.
//!
//! Faults are injected with wrappers around the real (moto-backed) ports,
//! since moto never throttles. Known moto gaps are not asserted: FIFO
//! de-duplication after delete, redelivery order after a visibility timeout,
//! FIFO targets of rules, `account` on delivered events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::dynamodb::Event as StreamEvent;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tideline_aws::{DynamoStore, EventBridgeBus, SqsQueue};
use tideline_core::envelope::IntegrationEvent;
use tideline_core::event::EntityHead;
use tideline_core::ingest::IngestConfig;
use tideline_core::retry::RetryPolicy;
use tideline_core::{AppendOutcome, EntityId, ErrorClass, ExpectedSeq, NewEvent, StoredEvent};
use tideline_lambdas::{emit, query, store, transform};
use tideline_stages::emit::EmitConfig;
use tideline_stages::*;
use tideline_testkit::fixtures::{self, lambda};
use tideline_testkit::moto;

struct Env {
    sdk: aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
    ddb: aws_sdk_dynamodb::Client,
    res: moto::ChainResources,
}

async fn env() -> Env {
    let sdk = moto::sdk_config().await;
    Env {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        ddb: aws_sdk_dynamodb::Client::new(&sdk),
        res: moto::ChainResources::create(&sdk).await,
        sdk,
    }
}

impl Env {
    fn queue(&self) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), &self.res.fifo_url)
    }
    fn store(&self) -> DynamoStore {
        DynamoStore::new(self.ddb.clone(), &self.res.table)
    }
    fn bus(&self) -> EventBridgeBus {
        EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&self.sdk), &self.res.bus)
    }
}

fn record(entity: &str, id: &str, n: u32) -> Vec<u8> {
    fixtures::record(entity, "ItemAdded")
        .id(id)
        .occurred_at("2026-11-23T08:00:00Z")
        .data(json!({"n": n, "name": "Zoë ✓ 日本語 🚀", "quote": "\"x\"\n"}))
        .bytes()
}

fn fast() -> RetryPolicy {
    RetryPolicy::fast(3)
}

/// Runs the transformer over records; returns the Firehose response JSON.
async fn transform<Q: Queue>(queue: Q, records: &[Vec<u8>]) -> Value {
    let state = transform::State {
        max_concurrent_sends: tideline_aws::config::DEFAULT_MAX_CONCURRENT_SENDS,
        queue,
        ingest: IngestConfig::default(),
        retry: fast(),
    };
    let event: LambdaEvent<transform::FirehoseBatch> = lambda(moto::firehose_event(records));
    serde_json::to_value(transform::handler(&state, event).await.unwrap()).unwrap()
}

/// Plays the FIFO event source mapping until the queue is empty; returns
/// every batch's reported failures.
async fn drain_fifo<S: EventStore + RejectSink>(e: &Env, store: S) -> Vec<Vec<String>> {
    let state = store::State {
        max_concurrent_entities: tideline_aws::config::DEFAULT_MAX_CONCURRENT_ENTITIES,
        store,
    };
    let mut reports = Vec::new();
    for _ in 0..100 {
        let (event, messages) = moto::receive_sqs_event(&e.sqs, &e.res.fifo_url).await;
        if messages.is_empty() {
            break;
        }
        let resp = store::handler(&state, lambda(event)).await.unwrap();
        let failed: Vec<String> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        moto::settle_sqs(&e.sqs, &e.res.fifo_url, &messages, &failed).await;
        reports.push(failed);
    }
    reports
}

async fn emit<B: Bus>(bus: B, records: Vec<Value>) -> Value {
    let state = emit::State {
        bus,
        config: EmitConfig {
            retry: fast(),
            ..EmitConfig::default()
        },
    };
    let event: LambdaEvent<StreamEvent> = lambda(fixtures::stream_event(records));
    serde_json::to_value(emit::handler(&state, event).await.unwrap()).unwrap()
}

async fn delivered(e: &Env, n: usize) -> Vec<IntegrationEvent> {
    moto::drain_bodies(&e.sqs, &e.res.target_url, n, Duration::from_secs(20))
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect()
}

fn by_entity(events: &[IntegrationEvent]) -> BTreeMap<String, Vec<(u64, Value)>> {
    let mut m: BTreeMap<String, Vec<(u64, Value)>> = BTreeMap::new();
    for ev in events {
        m.entry(ev.detail.metadata.entity_id.clone())
            .or_default()
            .push((ev.detail.metadata.sequence, ev.detail.data.clone()));
    }
    m
}

fn is_event_insert(r: &Value) -> bool {
    r["eventName"] == "INSERT" && r["dynamodb"]["NewImage"]["kind"]["S"] == "event"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_chain_firehose_to_eventbridge_target() {
    let e = env().await;
    // Three entities, interleaved, four events each, plus one invalid record.
    let mut records = Vec::new();
    for n in 1..=4 {
        for entity in ["order-a", "order-b", "order-c"] {
            records.push(record(entity, &format!("{entity}-{n}"), n));
        }
    }
    records.insert(5, b"{not json".to_vec());
    let resp = transform(e.queue(), &records).await;
    let out = resp["records"].as_array().unwrap();
    assert_eq!(out.len(), records.len(), "one output per recordId");
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r["recordId"], format!("rec-{i:04}"));
        if i == 5 {
            assert_eq!(r["result"], "ProcessingFailed");
        } else {
            assert_eq!(r["result"], "Ok", "{r}");
            assert_eq!(r["metadata"]["partitionKeys"]["event_type"], "ItemAdded");
            assert_eq!(r["metadata"]["partitionKeys"]["date"], "2026-11-23");
            use base64::Engine;
            let line = base64::engine::general_purpose::STANDARD
                .decode(r["data"].as_str().unwrap())
                .unwrap();
            assert_eq!(line.last(), Some(&b'\n'));
            assert!(String::from_utf8(line).unwrap().contains("Zoë ✓ 日本語 🚀"));
        }
    }

    let reports = drain_fifo(&e, e.store()).await;
    assert!(reports.iter().all(Vec::is_empty), "{reports:?}");

    let mut reader = moto::StreamReader::new(&e.sdk, &e.res.stream_arn).await;
    let stream = reader.read().await;
    assert_eq!(stream.iter().filter(|r| is_event_insert(r)).count(), 12);
    let resp = emit(e.bus(), stream).await;
    assert_eq!(resp["batchItemFailures"], json!([]));

    let events = delivered(&e, 12).await;
    assert_eq!(events.len(), 12);
    let grouped = by_entity(&events);
    assert_eq!(grouped.len(), 3);
    for (entity, evs) in &grouped {
        let seqs: Vec<u64> = evs.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4], "{entity} in order, gapless");
        for (seq, data) in evs {
            assert_eq!(
                data["n"],
                json!(seq),
                "{entity}: seq {seq} carries event n={seq}"
            );
            assert_eq!(data["name"], "Zoë ✓ 日本語 🚀");
            assert_eq!(data["quote"], "\"x\"\n");
        }
    }
    for ev in &events {
        assert_eq!(ev.source, "tideline");
        assert_eq!(ev.detail_type, "ItemAdded");
        assert_eq!(
            ev.detail.metadata.event_id,
            format!(
                "{}-{}",
                ev.detail.metadata.entity_id, ev.detail.metadata.sequence
            )
        );
    }

    // The query API reads the same events back, across pages, with an opaque cursor.
    let qstate = query::State { store: e.store() };
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut qs = json!({"limit": "3"});
        if let Some(c) = &cursor {
            qs["cursor"] = json!(c);
        }
        let req = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/entities/order-b/events",
            "rawQueryString": "", "headers": {}, "queryStringParameters": qs,
            "requestContext": {"http": {"method": "GET", "path": "/entities/order-b/events"}},
            "isBase64Encoded": false
        });
        let resp = query::handler(&qstate, lambda(req)).await.unwrap();
        assert_eq!(resp.status_code, 200);
        let body: Value = match resp.body.unwrap() {
            aws_lambda_events::encodings::Body::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("{other:?}"),
        };
        for item in body["items"].as_array().unwrap() {
            seqs.push(item["metadata"]["sequence"].as_u64().unwrap());
            assert_eq!(item["data"]["name"], "Zoë ✓ 日本語 🚀");
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seqs, vec![1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_delivered_twice_adds_nothing() {
    let e = env().await;
    let records: Vec<Vec<u8>> = (1..=5)
        .map(|n| record("acct-1", &format!("r-{n}"), n))
        .collect();
    transform(e.queue(), &records).await;
    let (event, messages) = moto::receive_sqs_event(&e.sqs, &e.res.fifo_url).await;
    assert_eq!(messages.len(), 5);
    let state = store::State {
        max_concurrent_entities: tideline_aws::config::DEFAULT_MAX_CONCURRENT_ENTITIES,
        store: e.store(),
    };
    let first = store::handler(&state, lambda(event.clone())).await.unwrap();
    assert!(first.batch_item_failures.is_empty());
    let second = store::handler(&state, lambda(event)).await.unwrap();
    assert!(second.batch_item_failures.is_empty());

    let entity = EntityId::new("acct-1").unwrap();
    let stored = e.store().read_events(&entity, 0, 100).await.unwrap();
    assert_eq!(
        stored.iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(e.store().head(&entity).await.unwrap().unwrap().last_seq, 5);
    let mut reader = moto::StreamReader::new(&e.sdk, &e.res.stream_arn).await;
    let inserts = reader
        .read()
        .await
        .into_iter()
        .filter(is_event_insert)
        .count();
    assert_eq!(inserts, 5, "the second delivery wrote no event item");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_batch_delivered_twice_duplicates_share_id_and_sequence() {
    let e = env().await;
    let records: Vec<Vec<u8>> = (1..=3)
        .map(|n| record("cart-9", &format!("c-{n}"), n))
        .collect();
    transform(e.queue(), &records).await;
    drain_fifo(&e, e.store()).await;
    let mut reader = moto::StreamReader::new(&e.sdk, &e.res.stream_arn).await;
    let stream = reader.read().await;
    emit(e.bus(), stream.clone()).await;
    emit(e.bus(), stream).await;
    let events = delivered(&e, 6).await;
    assert_eq!(events.len(), 6);
    let mut pairs: BTreeMap<(String, u64), u32> = BTreeMap::new();
    for ev in &events {
        *pairs
            .entry((
                ev.detail.metadata.event_id.clone(),
                ev.detail.metadata.sequence,
            ))
            .or_default() += 1;
    }
    assert_eq!(pairs.len(), 3);
    assert!(pairs.values().all(|&c| c == 2), "{pairs:?}");
}

/// Fails the `nth` append (0-based) once, retryably, as a throttled PutItem would.
/// Fails the first append of one event id, retryably.
struct FlakyStore {
    inner: DynamoStore,
    fail_id: &'static str,
    failed: Mutex<bool>,
}

impl EventStore for FlakyStore {
    async fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let fail = events.iter().any(|e| e.id.as_str() == self.fail_id)
            && !std::mem::replace(&mut *self.failed.lock().unwrap(), true);
        if fail {
            return Err(PortError::retryable(
                "dynamodb",
                "PutItem: ProvisionedThroughputExceededException",
            )
            .into());
        }
        self.inner.append(entity, events, expected).await
    }
    async fn read_events(
        &self,
        entity: &EntityId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_events(entity, after, limit).await
    }
    async fn head(&self, entity: &EntityId) -> Result<Option<EntityHead>, StoreError> {
        self.inner.head(entity).await
    }
}

impl RejectSink for FlakyStore {
    async fn reject(&self, record: RejectedRecord) -> Result<(), PortError> {
        self.inner.reject(record).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_append_reports_failure_and_the_rest_then_nothing_lost() {
    let e = env().await;
    // Two groups, interleaved, in one batch of 6.
    let mut records = Vec::new();
    for n in 1..=3 {
        records.push(record("g-1", &format!("g1-{n}"), n));
        records.push(record("g-2", &format!("g2-{n}"), n));
    }
    transform(e.queue(), &records).await;
    let (event, messages) = moto::receive_sqs_event(&e.sqs, &e.res.fifo_url).await;
    assert_eq!(messages.len(), 6);
    let ids: Vec<String> = messages
        .iter()
        .map(|m| m.message_id().unwrap().to_string())
        .collect();
    let state = store::State {
        max_concurrent_entities: tideline_aws::config::DEFAULT_MAX_CONCURRENT_ENTITIES,
        store: FlakyStore {
            inner: e.store(),
            fail_id: "g1-2",
            failed: Mutex::new(false),
        },
    };
    let resp = store::handler(&state, lambda(event)).await.unwrap();
    let failed: Vec<String> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    // Messages: g1-1, g2-1, g1-2, g2-2, g1-3, g2-3. The failure and every
    // later message of its entity; g-2's, stored, are not reported.
    assert_eq!(
        failed,
        vec![ids[2].clone(), ids[4].clone()],
        "the failure and every later message of its entity"
    );
    moto::settle_sqs(&e.sqs, &e.res.fifo_url, &messages, &failed).await;
    // Redelivery completes; nothing lost, nothing reordered.
    let reports = drain_fifo(&e, e.store()).await;
    assert!(reports.iter().all(Vec::is_empty));
    for g in ["g-1", "g-2"] {
        let stored = e
            .store()
            .read_events(&EntityId::new(g).unwrap(), 0, 10)
            .await
            .unwrap();
        let got: Vec<(u64, Value)> = stored
            .iter()
            .map(|s| (s.seq, s.data["n"].clone()))
            .collect();
        assert_eq!(
            got,
            vec![(1, json!(1)), (2, json!(2)), (3, json!(3))],
            "{g}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_goes_to_rejected_records_and_does_not_block() {
    let e = env().await;
    transform(e.queue(), &[record("p-1", "p1-1", 1)]).await;
    e.sqs
        .send_message()
        .queue_url(&e.res.fifo_url)
        .message_body("{bad json put on the queue by hand")
        .message_group_id("p-1")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .unwrap();
    transform(e.queue(), &[record("p-1", "p1-2", 2)]).await;
    let reports = drain_fifo(&e, e.store()).await;
    assert!(reports.iter().all(Vec::is_empty), "{reports:?}");
    let stored = e
        .store()
        .read_events(&EntityId::new("p-1").unwrap(), 0, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    // Rejected records spread over the stage's partitions: read them all.
    let mut items = Vec::new();
    for pk in tideline_core::keys::rejected_partition_keys("store") {
        let page = e
            .ddb
            .query()
            .table_name(&e.res.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .send()
            .await
            .unwrap();
        items.extend(page.items().iter().cloned());
    }
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["body"].as_s().unwrap(),
        "{bad json put on the queue by hand"
    );
    assert!(
        items[0]["reason"]
            .as_s()
            .unwrap()
            .contains("not a normalised Tideline record")
    );
}

/// Throttles SendMessageBatch: the first call as a whole, then the middle
/// entries of the next call.
struct FlakyQueue {
    inner: SqsQueue,
    calls: Mutex<usize>,
}

impl Queue for FlakyQueue {
    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        let n = {
            let mut c = self.calls.lock().unwrap();
            *c += 1;
            *c
        };
        match n {
            1 => Err(PortError::retryable(
                "sqs",
                "SendMessageBatch: ThrottlingException",
            )),
            2 => {
                // Send only the first and last; report the middle throttled.
                let mut out = Vec::new();
                for (i, m) in messages.iter().enumerate() {
                    if i == 0 || i + 1 == messages.len() {
                        out.extend(self.inner.send_batch(std::slice::from_ref(m)).await?);
                    } else {
                        out.push(Err(memory::throttled()));
                    }
                }
                Ok(out)
            }
            _ => self.inner.send_batch(messages).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_send_message_batch_retries_only_failed_entries() {
    let e = env().await;
    let records: Vec<Vec<u8>> = (1..=4)
        .map(|n| record("t-1", &format!("t1-{n}"), n))
        .collect();
    let resp = transform(
        FlakyQueue {
            inner: e.queue(),
            calls: Mutex::new(0),
        },
        &records,
    )
    .await;
    assert!(
        resp["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "Ok"),
        "{resp}"
    );
    drain_fifo(&e, e.store()).await;
    let stored = e
        .store()
        .read_events(&EntityId::new("t-1").unwrap(), 0, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 4, "nothing lost");
    assert_eq!(
        stored.iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

/// PutEvents whose entries with these sequences keep failing with
/// ThrottlingException while `failing` is set; the rest go to EventBridge.
struct FlakyBus {
    inner: EventBridgeBus,
    fail: Vec<u64>,
    failing: Mutex<bool>,
}

impl Bus for FlakyBus {
    fn max_request_bytes(&self) -> usize {
        self.inner.max_request_bytes()
    }
    async fn put_events(
        &self,
        entries: &[tideline_core::BusEntry],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        if !*self.failing.lock().unwrap() {
            return self.inner.put_events(entries).await;
        }
        let mut out = Vec::new();
        for entry in entries {
            if self.fail.contains(&entry.sequence) {
                out.push(Err(EntryFailure {
                    code: "ThrottlingException".into(),
                    message: "Rate exceeded".into(),
                    class: ErrorClass::Retryable,
                }));
            } else {
                out.extend(self.inner.put_events(std::slice::from_ref(entry)).await?);
            }
        }
        Ok(out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_events_failed_entries_rewind_to_lowest_and_replay_loses_nothing() {
    let e = env().await;
    let records: Vec<Vec<u8>> = (1..=6)
        .map(|n| record("r-1", &format!("r1-{n}"), n))
        .collect();
    transform(e.queue(), &records).await;
    drain_fifo(&e, e.store()).await;
    let mut reader = moto::StreamReader::new(&e.sdk, &e.res.stream_arn).await;
    let stream = reader.read().await;
    let events_only: Vec<&Value> = stream.iter().filter(|r| is_event_insert(r)).collect();
    assert_eq!(events_only.len(), 6);

    // Entries 3 and 4, in the middle of the call, fail on every attempt.
    let bus = FlakyBus {
        inner: e.bus(),
        fail: vec![3, 4],
        failing: Mutex::new(true),
    };
    let state = emit::State {
        bus,
        config: EmitConfig {
            retry: fast(),
            ..EmitConfig::default()
        },
    };
    let resp = emit::handler(&state, lambda(fixtures::stream_event(stream.clone())))
        .await
        .unwrap();
    let lowest = events_only[2]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_string();
    let failures: Vec<Option<String>> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failures,
        vec![Some(lowest.clone())],
        "exactly the lowest failed SequenceNumber"
    );

    // Lambda rewinds: replay from that record, now without faults.
    *state.bus.failing.lock().unwrap() = false;
    let from = stream
        .iter()
        .position(|r| r["dynamodb"]["SequenceNumber"] == lowest.as_str())
        .unwrap();
    let resp = emit::handler(
        &state,
        lambda(fixtures::stream_event(stream[from..].to_vec())),
    )
    .await
    .unwrap();
    assert!(resp.batch_item_failures.is_empty());

    let events = delivered(&e, 8).await;
    assert_eq!(events.len(), 8);
    // First attempt published 1, 2, 5, 6; the replay 3, 4, 5, 6 again.
    let mut seqs: Vec<u64> = events.iter().map(|e| e.detail.metadata.sequence).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6], "nothing lost");
    // The replayed tail arrives in sequence order.
    let tail: Vec<u64> = events[4..]
        .iter()
        .map(|e| e.detail.metadata.sequence)
        .collect();
    assert_eq!(tail, vec![3, 4, 5, 6]);
}

/// Issue 13, trace propagation: one record's trace id is followed from the
/// producer to the bus target, through the SQS message body, the stored item,
/// the stream and the PutEvents entry; a record in X-Ray
/// form keeps its trace id, and a record without one gets a trace that every
/// hop carries too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_follows_each_record_from_ingest_to_the_target() {
    let e = env().await;
    let w3c_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut with_w3c: Value = serde_json::from_slice(&record("t-1", "t-1-1", 1)).unwrap();
    with_w3c["traceparent"] = json!(format!("00-{w3c_trace}-00f067aa0ba902b7-01"));
    let mut with_xray: Value = serde_json::from_slice(&record("t-2", "t-2-1", 1)).unwrap();
    with_xray["traceparent"] =
        json!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
    let records = vec![
        with_w3c.to_string().into_bytes(),
        with_xray.to_string().into_bytes(),
        record("t-3", "t-3-1", 1),
    ];
    let resp = transform(e.queue(), &records).await;
    assert!(
        resp["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "Ok"),
        "{resp}"
    );

    // moto drops SendMessageBatch's MessageSystemAttributes (it reads them
    // on SendMessage only), so the AWSTraceHeader attribute is checked on the
    // request itself in tideline-aws's `mocked::send_message_batch_carries_the_trace_header`.
    let reports = drain_fifo(&e, e.store()).await;
    assert!(reports.iter().all(Vec::is_empty), "{reports:?}");
    let stored = e
        .store()
        .read_events(&EntityId::new("t-1").unwrap(), 0, 10)
        .await
        .unwrap();
    assert!(
        stored[0]
            .traceparent
            .as_deref()
            .unwrap()
            .contains(w3c_trace)
    );

    let mut reader = moto::StreamReader::new(&e.sdk, &e.res.stream_arn).await;
    let stream = reader.read().await;
    let resp = emit(e.bus(), stream).await;
    assert_eq!(resp["batchItemFailures"], json!([]));
    let events = delivered(&e, 3).await;
    let trace_of = |entity: &str| {
        events
            .iter()
            .find(|ev| ev.detail.metadata.entity_id == entity)
            .and_then(|ev| ev.detail.metadata.traceparent.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        trace_of("t-1"),
        format!("00-{w3c_trace}-00f067aa0ba902b7-01")
    );
    assert_eq!(
        trace_of("t-2"),
        "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    );
    let started = tideline_core::trace::TraceContext::start_for("t-3", "t-3-1");
    assert_eq!(trace_of("t-3"), started.traceparent());
}

/// A command's events flow out as an ingested record's do: the command API
/// writes them to the S3 lake in the line format and layout Firehose writes
/// the transformer's output in, and the table's stream carries them through
/// the emitter to the bus's target. A retried command writes the same lake
/// object again, not a second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_api_events_reach_the_lake_and_the_bus_like_ingested_ones() {
    use base64::Engine;
    use tideline_core::lake_layout;
    use tideline_stages::LakeReader;
    let e = env().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&e.sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = moto::unique("lake");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let lake = tideline_aws::lake::S3Lake::new(s3, &bucket, "");

    // One record ingested: the line Firehose would write to the lake.
    let ingested = transform(e.queue(), &[record("ingested-1", "ing-1", 1)]).await;
    let firehose_line = base64::engine::general_purpose::STANDARD
        .decode(ingested["records"][0]["data"].as_str().unwrap())
        .unwrap();
    let firehose_line: Value = serde_json::from_slice(&firehose_line).unwrap();
    assert!(drain_fifo(&e, e.store()).await.iter().all(Vec::is_empty));

    // Two events appended by a command, through the command API.
    let state = tideline_lambdas::command::State {
        store: e.store(),
        lake,
        ingest: IngestConfig::default(),
    };
    let body = json!({"expected_sequence": 0, "events": [
        {"id": "cmd-1", "type": "ItemAdded", "occurred_at": "2026-11-23T08:00:00Z", "data": {"n": 1}},
        {"id": "cmd-2", "type": "ItemAdded", "occurred_at": "2026-11-23T08:00:01Z", "data": {"n": 2}},
    ]});
    let post = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/entities/commanded-1/events",
        "rawQueryString": "", "headers": {}, "body": body.to_string(),
        "requestContext": {"http": {"method": "POST", "path": "/entities/commanded-1/events"}},
        "isBase64Encoded": false
    });
    let resp = tideline_lambdas::command::handler(&state, lambda(post.clone()))
        .await
        .unwrap();
    assert_eq!(resp.status_code, 201, "{:?}", resp.body);

    // The lake: one GZIP object under Firehose's partition of the events,
    // whose lines have the fields of Firehose's lines.
    let objects = state.lake.list(lake_layout::EVENTS).await.unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(
        objects[0].path.starts_with(&lake_layout::events_dir(
            "ItemAdded",
            "2026-11-23T08:00:00Z"
        )),
        "{objects:?}"
    );
    let bytes = state.lake.read(&objects[0].path).await.unwrap();
    assert_eq!(
        &bytes[..2],
        &[0x1f, 0x8b],
        "GZIP, as Firehose writes the lake"
    );
    let text = lake_layout::object_text(bytes).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.iter().map(|l| l["id"].clone()).collect::<Vec<_>>(),
        [json!("cmd-1"), json!("cmd-2")]
    );
    let fields = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    for line in &lines {
        assert_eq!(fields(line), fields(&firehose_line), "{line}");
        assert_eq!(
            lake_layout::entity_of_line(&line.to_string()).map(|(e, _)| e),
            Some("commanded-1".to_string())
        );
    }

    // Retried (a lost answer): the same answer, the same object, no copy.
    let resp = tideline_lambdas::command::handler(&state, lambda(post))
        .await
        .unwrap();
    assert_eq!(resp.status_code, 201);
    assert_eq!(state.lake.list(lake_layout::EVENTS).await.unwrap().len(), 1);

    // The stream carries both entities' events to the bus's target alike.
    let mut reader = moto::StreamReader::new(&e.sdk, &e.res.stream_arn).await;
    let stream = reader.read().await;
    assert_eq!(stream.iter().filter(|r| is_event_insert(r)).count(), 3);
    let resp = emit(e.bus(), stream).await;
    assert_eq!(resp["batchItemFailures"], json!([]));
    let grouped = by_entity(&delivered(&e, 3).await);
    let seqs = |entity: &str| -> Vec<u64> { grouped[entity].iter().map(|(s, _)| *s).collect() };
    assert_eq!(seqs("ingested-1"), [1]);
    assert_eq!(seqs("commanded-1"), [1, 2]);
}
