//! The whole chain, transformer → SQS FIFO → storer → DynamoDB → stream →
//! emitter → EventBridge → SQS target, against moto **through the fault
//! proxy** (`tideline_testkit::fault_proxy`), with faults on every hop.
//!
//! moto never throttles, never loses an answer and never fails part of a
//! batch, so here the Lambdas' SDK clients talk to a proxy that does, while
//! the harness, which plays Firehose and the event source mappings (AWS's
//! side, not ours), talks to moto directly:
//! - Firehose retries a failed transform invocation with the same records
//!   (within its retry duration; the test allows many retries);
//! - the FIFO mapping receives from the real queue, deletes what the handler
//!   did not report, and makes the reported messages visible again; a batch is
//!   sometimes delivered twice (handed to the handler again, or its deletes
//!   lost so the queue redelivers it);
//! - the stream mapping replays from the reported rewind point, and sometimes
//!   hands a batch twice;
//! - an invocation of any of the three is sometimes killed mid-flight (its
//!   future dropped after some of its AWS calls took effect) and its batch
//!   redelivered, as after a timeout or a crash.
//!
//! The records are spread over [`LANES`] copies of the chain, run one after
//! the other, because of a moto cost (see [`LANES`]); the harness reads the
//! stream with a fresh iterator each time because of a moto bug (see
//! [`StreamTail`]). The SDK's own retries are off on the proxied clients, so
//! every fault reaches Tideline's code.
//!
//! Afterwards: every record is stored exactly once, each entity's `seq` is
//! 1, 2, 3, … in the order its records were sent, and every stored event
//! reached the bus target at least once, duplicates sharing event id and
//! sequence. Every fault kind must have been injected, so it cannot pass
//! vacuously.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tideline_aws::{DynamoStore, EventBridgeBus, SqsQueue};
use tideline_core::EntityId;
use tideline_core::envelope::IntegrationEvent;
use tideline_core::ingest::IngestConfig;
use tideline_core::retry::RetryPolicy;
use tideline_lambdas::{emit, store, transform};
use tideline_stages::EventStore;
use tideline_stages::emit::EmitConfig;
use tideline_testkit::fault_proxy::{Fault, FaultProxy, Rule};
use tideline_testkit::fixtures::{self, lambda};
use tideline_testkit::moto;

/// Lanes: independent copies of the chain (queue, table, stream, bus,
/// target) run one after the other through the same proxy. Small tables keep
/// each lane's stream short.
const LANES: usize = 6;
/// Entities per lane (24 in all).
const ENTITIES: usize = 4;
/// Records per lane (240 in all).
const RECORDS: usize = 40;
/// Records per Firehose transform invocation.
const FIREHOSE_BATCH: usize = 12;
/// Stream records per emitter invocation: small, so that there are many
/// PutEvents calls to fail.
const STREAM_BATCH: usize = 6;
/// Chance that the harness kills an invocation mid-flight.
const KILL: f64 = 0.08;
/// Chance that a batch is delivered a second time.
const TWICE: f64 = 0.1;

/// The producer's record `n` (1-based) of `entity`; its event id is `<entity>-<n>`.
fn record(entity: &str, n: u32) -> Vec<u8> {
    fixtures::record(entity, "ItemAdded")
        .id(format!("{entity}-{n}"))
        .occurred_at("2026-11-23T08:00:00Z")
        .data(json!({"n": n}))
        .bytes()
}

/// What the harness did, to show each redelivery path was taken.
#[derive(Debug, Default, Clone)]
struct Stats {
    firehose_invocations: u32,
    firehose_failed: u32,
    firehose_killed: u32,
    sqs_batches: u32,
    sqs_reported: u32,
    sqs_twice: u32,
    storer_killed: u32,
    stream_batches: u32,
    stream_rewinds: u32,
    stream_twice: u32,
    emitter_killed: u32,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.firehose_invocations += o.firehose_invocations;
        self.firehose_failed += o.firehose_failed;
        self.firehose_killed += o.firehose_killed;
        self.sqs_batches += o.sqs_batches;
        self.sqs_reported += o.sqs_reported;
        self.sqs_twice += o.sqs_twice;
        self.storer_killed += o.storer_killed;
        self.stream_batches += o.stream_batches;
        self.stream_rewinds += o.stream_rewinds;
        self.stream_twice += o.stream_twice;
        self.emitter_killed += o.emitter_killed;
    }
}

/// Runs `invocation` until moto has answered one more `operation` call, then
/// drops it, as Lambda does to a function that times out or crashes. True if
/// it was still running (so it really died mid-flight).
async fn kill_mid_flight<F>(proxy: &FaultProxy, operation: &str, invocation: F) -> bool
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let before = proxy.forwarded(operation);
    let mut task = tokio::spawn(invocation);
    tokio::select! {
        _ = proxy.wait_forwarded(operation, before + 1) => {}
        _ = &mut task => return false,
    }
    task.abort();
    let killed = task.await.is_err_and(|e| e.is_cancelled());
    // Whatever it had sent finishes at moto before the batch is redelivered.
    proxy.wait_idle().await;
    killed
}

struct Chain {
    proxy: Arc<FaultProxy>,
    sdk: aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
    res: moto::ChainResources,
    transformer: Arc<transform::State<SqsQueue>>,
    storer: Arc<store::State<DynamoStore>>,
    emitter: Arc<emit::State<EventBridgeBus>>,
    rng: StdRng,
    stats: Stats,
}

impl Chain {
    async fn new(proxy: Arc<FaultProxy>, seed: u64) -> Self {
        // Resources are made directly on moto; only the Lambdas' clients go through the proxy.
        let sdk = moto::sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let res = moto::ChainResources::create(&sdk).await;

        let hostile = proxy.sdk_config().await;
        let transformer = Arc::new(transform::State {
            max_concurrent_sends: tideline_aws::config::DEFAULT_MAX_CONCURRENT_SENDS,
            queue: SqsQueue::new(aws_sdk_sqs::Client::new(&hostile), &res.fifo_url),
            ingest: IngestConfig::default(),
            retry: RetryPolicy::fast(3),
        });
        let storer = Arc::new(store::State {
            max_concurrent_entities: tideline_aws::config::DEFAULT_MAX_CONCURRENT_ENTITIES,
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&hostile), &res.table),
        });
        let emitter = Arc::new(emit::State {
            bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&hostile), &res.bus),
            config: EmitConfig {
                retry: RetryPolicy::fast(3),
                ..EmitConfig::default()
            },
        });
        Self {
            proxy,
            sdk,
            sqs,
            res,
            transformer,
            storer,
            emitter,
            rng: StdRng::seed_from_u64(seed),
            stats: Stats::default(),
        }
    }

    /// Firehose: one transform invocation of `records`, retried with the same
    /// records until it succeeds.
    /// With `kill_first`, the first invocation is killed mid-flight.
    async fn firehose(&mut self, records: &[Vec<u8>], kill_first: bool) {
        for attempt in 0..40 {
            self.stats.firehose_invocations += 1;
            let event = moto::firehose_event(records);
            if (kill_first && attempt == 0) || self.rng.random_bool(KILL) {
                let state = self.transformer.clone();
                let invocation =
                    async move { transform::handler(&state, lambda(event)).await.is_ok() };
                if kill_mid_flight(&self.proxy, "SendMessageBatch", invocation).await {
                    self.stats.firehose_killed += 1;
                }
                continue;
            }
            match transform::handler(&self.transformer, lambda(event)).await {
                Ok(resp) => {
                    let resp = serde_json::to_value(resp).unwrap();
                    let out = resp["records"].as_array().unwrap();
                    assert_eq!(out.len(), records.len(), "one output per recordId");
                    for r in out {
                        // Every record is valid: a transient enqueue failure
                        // must fail the invocation, never refuse the record.
                        assert_eq!(r["result"], "Ok", "{r}");
                    }
                    return;
                }
                Err(_) => self.stats.firehose_failed += 1,
            }
        }
        panic!("Firehose gave up on a batch after 40 invocations");
    }

    /// The FIFO event source mapping, one poll. False when the queue was empty.
    async fn sqs_poll(&mut self) -> bool {
        let (event, messages) = moto::receive_sqs_event(&self.sqs, &self.res.fifo_url).await;
        if messages.is_empty() {
            return false;
        }
        self.stats.sqs_batches += 1;
        let all: Vec<String> = messages
            .iter()
            .map(|m| m.message_id().unwrap().to_string())
            .collect();
        let roll: f64 = self.rng.random();
        if roll < KILL {
            let state = self.storer.clone();
            let invocation = async move { store::handler(&state, lambda(event)).await.is_ok() };
            if kill_mid_flight(&self.proxy, "PutItem", invocation).await {
                self.stats.storer_killed += 1;
            }
            // The visibility timeout runs out: the whole batch comes back.
            self.settle(&messages, &all).await;
            return true;
        }
        let mut resp = store::handler(&self.storer, lambda(event.clone()))
            .await
            .unwrap();
        if roll < KILL + TWICE {
            // The same batch handed to the handler again.
            self.stats.sqs_twice += 1;
            resp = store::handler(&self.storer, lambda(event)).await.unwrap();
        }
        let failed: Vec<String> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        self.stats.sqs_reported += failed.len() as u32;
        if roll > 1.0 - TWICE {
            // The deletes are lost: the queue delivers the whole batch again.
            self.stats.sqs_twice += 1;
            self.settle(&messages, &all).await;
        } else {
            self.settle(&messages, &failed).await;
        }
        true
    }

    /// After an invocation, as the mapping does: delete what was not
    /// reported, and make the reported messages visible again at once (a
    /// batch call each, to keep moto's work down).
    async fn settle(&self, messages: &[aws_sdk_sqs::types::Message], failed: &[String]) {
        use aws_sdk_sqs::types::{
            ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
        };
        let (retry, done): (Vec<_>, Vec<_>) = messages
            .iter()
            .partition(|m| failed.iter().any(|f| Some(f.as_str()) == m.message_id()));
        if !done.is_empty() {
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.res.fifo_url)
                .set_entries(Some(
                    done.iter()
                        .enumerate()
                        .map(|(i, m)| {
                            DeleteMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .receipt_handle(m.receipt_handle().unwrap())
                                .build()
                                .unwrap()
                        })
                        .collect(),
                ))
                .send()
                .await
                .unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
        if !retry.is_empty() {
            let out = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.res.fifo_url)
                .set_entries(Some(
                    retry
                        .iter()
                        .enumerate()
                        .map(|(i, m)| {
                            ChangeMessageVisibilityBatchRequestEntry::builder()
                                .id(i.to_string())
                                .receipt_handle(m.receipt_handle().unwrap())
                                .visibility_timeout(0)
                                .build()
                                .unwrap()
                        })
                        .collect(),
                ))
                .send()
                .await
                .unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
    }

    /// The stream event source mapping, one batch from the front of
    /// `pending`, which it advances. False when nothing was pending.
    async fn stream_poll(&mut self, pending: &mut Vec<Value>) -> bool {
        if pending.is_empty() {
            return false;
        }
        self.stats.stream_batches += 1;
        let batch: Vec<Value> = pending[..pending.len().min(STREAM_BATCH)].to_vec();
        let event = fixtures::stream_event(batch.clone());
        let roll: f64 = self.rng.random();
        if roll < KILL {
            let state = self.emitter.clone();
            let invocation = async move { emit::handler(&state, lambda(event)).await.is_ok() };
            if kill_mid_flight(&self.proxy, "PutEvents", invocation).await {
                self.stats.emitter_killed += 1;
            }
            // Not checkpointed: the same batch again.
            return true;
        }
        let resp = emit::handler(&self.emitter, lambda(event)).await.unwrap();
        match resp.batch_item_failures.first() {
            Some(f) => {
                // A rewind: restart at that record and replay everything after it.
                self.stats.stream_rewinds += 1;
                let at = f.item_identifier.as_deref().unwrap();
                let from = batch
                    .iter()
                    .position(|r| r["dynamodb"]["SequenceNumber"] == at)
                    .expect("the rewind point is a record of the batch");
                pending.drain(..from);
            }
            None if roll < KILL + TWICE => {
                // Checkpoint lost: the same batch is handed over again.
                self.stats.stream_twice += 1;
            }
            None => {
                pending.drain(..batch.len());
            }
        }
        true
    }

    /// Everything the bus target received, until it stays empty.
    async fn target_bodies(&self) -> Vec<IntegrationEvent> {
        let mut out = Vec::new();
        let mut empty = 0;
        while empty < 3 {
            let got = moto::receive_and_delete(&self.sqs, &self.res.target_url).await;
            if got.is_empty() {
                empty += 1;
                continue;
            }
            empty = 0;
            for body in got {
                out.push(serde_json::from_str(&body).unwrap());
            }
        }
        out
    }
}

/// Reads the table's stream from where it left off, as the event source
/// mapping does. A new iterator per read, after the last sequence number
/// seen: moto replaces a table (and its stream shard) with a copy when it
/// rolls back a cancelled transaction, and an old iterator keeps reading the
/// discarded shard, including the records of the cancelled writes.
struct StreamTail {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    last: Option<String>,
}

impl StreamTail {
    fn new(sdk: &aws_config::SdkConfig, arn: &str) -> Self {
        Self {
            client: aws_sdk_dynamodbstreams::Client::new(sdk),
            arn: arn.to_string(),
            last: None,
        }
    }

    async fn read(&mut self) -> Vec<Value> {
        use aws_sdk_dynamodbstreams::types::ShardIteratorType;
        let desc = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .unwrap();
        let shards = desc.stream_description.unwrap().shards.unwrap_or_default();
        assert_eq!(shards.len(), 1, "moto keeps one shard per table");
        let mut request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shards[0].shard_id().unwrap());
        request = match &self.last {
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Some(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
        };
        let mut iterator = request.send().await.unwrap().shard_iterator;
        let mut out = Vec::new();
        while let Some(it) = iterator {
            let page = self
                .client
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .unwrap();
            if page.records().is_empty() {
                break;
            }
            for r in page.records() {
                self.last = r.dynamodb().and_then(|d| d.sequence_number.clone());
                out.push(moto::stream_record_json(r, &self.arn));
            }
            iterator = page.next_shard_iterator;
        }
        out
    }
}

/// What one lane leaves to check across lanes.
struct LaneResult {
    /// Duplicate deliveries at the bus target.
    duplicates: usize,
}

/// Runs one lane: `RECORDS` records of `ENTITIES` entities through the chain,
/// then checks what was stored and delivered.
async fn run_lane(proxy: Arc<FaultProxy>, lane: usize, stats: &mut Stats) -> LaneResult {
    let mut c = Chain::new(proxy, 1000 + lane as u64).await;

    // The producer: records of the lane's entities, interleaved at random.
    let mut producer = StdRng::seed_from_u64(lane as u64);
    let mut sent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut records = Vec::with_capacity(RECORDS);
    for _ in 0..RECORDS {
        let entity = format!("ent-{lane}-{}", producer.random_range(0..ENTITIES));
        let ids = sent.entry(entity.clone()).or_default();
        ids.push(format!("{entity}-{}", ids.len() + 1));
        records.push(record(&entity, ids.len() as u32));
    }

    let started = Instant::now();
    let mut tail = StreamTail::new(&c.sdk, &c.res.stream_arn);
    let mut pending: Vec<Value> = Vec::new();
    let mut stream_seen: Vec<Value> = Vec::new();
    let mut next = 0;
    let mut idle_rounds = 0;
    // Firehose hands over batches one after the other; the mappings poll in between.
    while idle_rounds < 2 {
        let mut busy = false;
        if next < records.len() {
            let end = (next + FIREHOSE_BATCH).min(records.len());
            // The second batch's first invocation always dies mid-flight.
            c.firehose(&records[next..end], next == FIREHOSE_BATCH)
                .await;
            next = end;
            busy = true;
        }
        for _ in 0..4 {
            busy |= c.sqs_poll().await;
        }
        let new = tail.read().await;
        stream_seen.extend(new.iter().cloned());
        pending.extend(new);
        for _ in 0..12 {
            busy |= c.stream_poll(&mut pending).await;
        }
        idle_rounds = if busy { 0 } else { idle_rounds + 1 };
        assert!(
            started.elapsed().as_secs() < 120,
            "lane {lane} did not settle: {:?}",
            c.stats
        );
    }

    // Stored: exactly the records sent, each once, gapless, in send order per
    // entity (as read back, never sorted).
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&c.sdk), &c.res.table);
    let mut stored: HashMap<String, (String, u64)> = HashMap::new();
    for (entity, ids) in &sent {
        let id = EntityId::new(entity).unwrap();
        let events = store.read_events(&id, 0, 10_000).await.unwrap();
        let got_ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
        assert_eq!(
            &got_ids, ids,
            "{entity}: stored in the order sent, each once"
        );
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (1..=ids.len() as u64).collect();
        assert_eq!(seqs, expected, "{entity}: seq gapless, no repeat");
        assert_eq!(
            store.head(&id).await.unwrap().unwrap().last_seq,
            ids.len() as u64,
            "{entity}: head"
        );
        for e in &events {
            stored.insert(e.event_id.to_string(), (entity.clone(), e.seq));
        }
    }
    assert_eq!(stored.len(), RECORDS, "lane {lane}: nothing lost");
    let inserts = stream_seen
        .iter()
        .filter(|r| r["eventName"] == "INSERT" && r["dynamodb"]["NewImage"]["kind"]["S"] == "event")
        .count();
    assert_eq!(
        inserts, RECORDS,
        "lane {lane}: one event item written per record"
    );

    // Delivered: every stored event at least once; copies agree.
    let delivered = c.target_bodies().await;
    let mut copies: HashMap<String, Vec<(String, u64)>> = HashMap::new();
    for ev in &delivered {
        let m = &ev.detail.metadata;
        copies
            .entry(m.event_id.clone())
            .or_default()
            .push((m.entity_id.clone(), m.sequence));
    }
    for (event_id, (entity, seq)) in &stored {
        let got = copies
            .get(event_id)
            .unwrap_or_else(|| panic!("{event_id} never reached the bus target"));
        assert!(
            got.iter().all(|c| c == &(entity.clone(), *seq)),
            "{event_id}: every copy carries ({entity}, {seq}): {got:?}"
        );
    }
    assert_eq!(
        copies.len(),
        RECORDS,
        "lane {lane}: nothing delivered that was not stored"
    );
    stats.add(&c.stats);
    LaneResult {
        duplicates: delivered.len() - copies.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_through_faults_loses_nothing_and_keeps_order() {
    let started = Instant::now();
    let proxy = Arc::new(FaultProxy::start(&moto::endpoint(), 0x071d_e11e).await);
    let p = &proxy;
    // Faults on every hop. Probabilities are drawn from the proxy's seeded
    // generator; the rates keep most calls healthy so the run stays short.
    let rules = [
        p.add(Rule::new("SendMessageBatch", Fault::FailBefore).probability(0.07)),
        p.add(Rule::new("SendMessageBatch", Fault::Throttle).probability(0.05)),
        p.add(Rule::new("SendMessageBatch", Fault::FailAfter).probability(0.07)),
        p.add(Rule::new("SendMessageBatch", Fault::DropAfter).probability(0.06)),
        p.add(Rule::new("SendMessageBatch", Fault::PartialFailure).probability(0.12)),
        // The store's calls (decision 0009): the latest-event Query, then two
        // conditional PutItems (marker, event); a fault between them leaves
        // an intent that the redelivery completes.
        p.add(Rule::new("Query", Fault::FailBefore).probability(0.03)),
        p.add(Rule::new("Query", Fault::FailAfter).probability(0.03)),
        p.add(Rule::new("PutItem", Fault::FailBefore).probability(0.025)),
        p.add(Rule::new("PutItem", Fault::Throttle).probability(0.025)),
        p.add(Rule::new("PutItem", Fault::FailAfter).probability(0.035)),
        p.add(Rule::new("PutItem", Fault::DropAfter).probability(0.025)),
        p.add(Rule::new("PutEvents", Fault::PartialFailure).probability(0.2)),
        p.add(Rule::new("PutEvents", Fault::FailAfter).probability(0.08)),
        p.add(Rule::new("PutEvents", Fault::DropAfter).probability(0.06)),
        p.add(Rule::new("PutEvents", Fault::FailBefore).probability(0.06)),
        p.add(Rule::new("PutEvents", Fault::Throttle).probability(0.05)),
    ];

    let mut stats = Stats::default();
    let mut duplicates = 0;
    for lane in 0..LANES {
        duplicates += run_lane(proxy.clone(), lane, &mut stats).await.duplicates;
    }

    // The faults and redeliveries really happened.
    let counts = proxy.counts();
    eprintln!("fault proxy: {counts:#?}");
    eprintln!(
        "harness: {stats:?}; {duplicates} duplicate deliveries; {:.1?}",
        started.elapsed()
    );
    for (rule, count) in rules.iter().zip(&counts) {
        assert!(
            proxy.injected(*rule) > 0,
            "{} never fired: {count:?}",
            count.label
        );
    }
    let s = &stats;
    assert!(s.firehose_failed > 0 && s.firehose_killed > 0, "{s:?}");
    assert!(
        s.sqs_reported > 0 && s.sqs_twice > 0 && s.storer_killed > 0,
        "{s:?}"
    );
    assert!(
        s.stream_rewinds > 0 && s.stream_twice > 0 && s.emitter_killed > 0,
        "{s:?}"
    );
    assert!(
        duplicates > 0,
        "lost answers and redeliveries duplicate on the bus"
    );
}
