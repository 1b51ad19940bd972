//! The transform stage's hand-off to the store stage, without a queue.
//!
//! On AWS the transform Lambda enqueues each record on SQS FIFO and the
//! storer Lambda appends it later. Locally there is nothing to decouple: this
//! [`Queue`] adapter runs the store stage ([`store_batch`]) on the records
//! the transform stage hands it, in the same call. A record is acknowledged
//! to the producer only once it is appended (or recorded as rejected), so an
//! acknowledged record is durable in the store (INVARIANTS.md #1); a record
//! the store could not take is reported failed, the transform stage retries
//! it with backoff, and past its retries the producer gets
//! `ServiceUnavailableException` for it and sends it again, de-duplicated by
//! its event id (#2).
//!
//! What a queue hop would refuse is still refused: a message above SQS's
//! `MaximumMessageSize` (`limits.sqs_message_bytes`) is a permanent failure
//! here as it is at `SendMessage` (AWS-CONTRACTS.md), though ingest's
//! admission already refuses such a record before it gets here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tideline_core::ErrorClass;
use tideline_core::metrics::StageCounters;
use tideline_stages::store::{IncomingMessage, store_batch};
use tideline_stages::{EntryFailure, EventStore, OutgoingMessage, PortError, Queue, RejectSink};

/// Records handed to the store per call: one request's worth (Firehose's
/// `PutRecordBatch` carries at most 500), appended in one SQLite transaction.
const HANDOFF_BATCH: usize = tideline_core::limits::FIREHOSE_BATCH_RECORDS;

/// The transform → store hand-off into the store `S` (local mode: the
/// SQLite store, which also keeps the rejected records).
#[derive(Debug)]
pub struct StoreHandoff<S> {
    store: Arc<S>,
    counters: Arc<StageCounters>,
    in_flight: Arc<AtomicU64>,
    max_message_bytes: usize,
}

impl<S> StoreHandoff<S> {
    /// A hand-off into `store`, counting under `counters` (stage `store`).
    pub fn new(store: Arc<S>, counters: Arc<StageCounters>, max_message_bytes: usize) -> Self {
        Self {
            store,
            counters,
            in_flight: Arc::default(),
            max_message_bytes,
        }
    }

    /// The queue hop's message size limit this hand-off enforces.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Records handed over and not yet appended or refused.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Decrements the in-flight count however the call ends.
struct InFlight<'a>(&'a AtomicU64, u64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::SeqCst);
    }
}

impl<S: EventStore + RejectSink> Queue for StoreHandoff<S> {
    fn max_batch(&self) -> usize {
        HANDOFF_BATCH
    }

    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        self.in_flight
            .fetch_add(messages.len() as u64, Ordering::SeqCst);
        let _in_flight = InFlight(&self.in_flight, messages.len() as u64);
        let mut results: Vec<Result<(), EntryFailure>> = Vec::with_capacity(messages.len());
        let mut incoming = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            if m.body.len() > self.max_message_bytes {
                results.push(Err(EntryFailure {
                    code: "InvalidParameterValue".into(),
                    message: format!(
                        "the message is {} bytes; the queue's MaximumMessageSize is {}",
                        m.body.len(),
                        self.max_message_bytes
                    ),
                    class: ErrorClass::Permanent,
                }));
                continue;
            }
            results.push(Ok(()));
            incoming.push(IncomingMessage {
                message_id: i.to_string(),
                body: m.body.clone(),
            });
        }
        if incoming.is_empty() {
            return Ok(results);
        }
        let stored = store_batch(&*self.store, &*self.store, incoming).await;
        self.counters.add(stored.counts);
        // The store stage stops at the first failure and reports that record
        // and every later one: they were not appended, so the transform stage
        // hands them over again (in order) or reports them to the producer.
        let class = stored.stop_class.unwrap_or(ErrorClass::Retryable);
        let reason = stored.stop_reason.unwrap_or_default();
        for id in &stored.failed_message_ids {
            if let Some(result) = id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *result = Err(EntryFailure {
                    code: "StoreFailed".into(),
                    message: reason.clone(),
                    class,
                });
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tideline_core::ingest::IngestConfig;
    use tideline_core::retry::RetryPolicy;
    use tideline_core::{AppendOutcome, EntityId, ExpectedSeq, NewEvent, StoredEvent};
    use tideline_stages::memory::{MemoryRejects, MemoryStore, throttled};
    use tideline_stages::transform::{IncomingRecord, TransformFailure, transform_batch};
    use tideline_stages::{RejectedRecord, StoreError};

    /// The in-memory store with its scripted faults, and its rejects.
    #[derive(Default)]
    struct Store {
        events: MemoryStore,
        rejects: MemoryRejects,
    }

    impl EventStore for Store {
        async fn append(
            &self,
            entity: &EntityId,
            events: Vec<NewEvent>,
            expected: ExpectedSeq,
        ) -> Result<Vec<AppendOutcome>, StoreError> {
            self.events.append(entity, events, expected).await
        }
        async fn read_events(
            &self,
            entity: &EntityId,
            after_seq: u64,
            limit: usize,
        ) -> Result<Vec<StoredEvent>, StoreError> {
            self.events.read_events(entity, after_seq, limit).await
        }
        async fn head(
            &self,
            entity: &EntityId,
        ) -> Result<Option<tideline_core::event::EntityHead>, StoreError> {
            self.events.head(entity).await
        }
    }

    impl RejectSink for Store {
        async fn reject(&self, record: RejectedRecord) -> Result<(), PortError> {
            self.rejects.reject(record).await
        }
    }

    fn records(n: u32) -> Vec<IncomingRecord> {
        (0..n)
            .map(|i| IncomingRecord {
                record_id: format!("r{i}"),
                data: serde_json::json!({"entity_id": format!("e{}", i % 3), "id": format!("ev-{i}"), "type": "Placed", "data": {"n": i}})
                    .to_string()
                    .into_bytes(),
                arrival: chrono::Utc::now(),
            })
            .collect()
    }

    fn handoff(store: &Arc<Store>) -> StoreHandoff<Store> {
        StoreHandoff::new(store.clone(), Arc::default(), 262_144)
    }

    /// Given a store that is busy for a while, when ingest hands it records,
    /// then none is rejected or lost: the transform stage retries them, and
    /// what is still refused when its retries run out is reported back as
    /// transient (the producer resends it), never acknowledged.
    #[tokio::test]
    async fn transient_store_errors_never_reject_or_lose_a_record() {
        let store = Arc::new(Store::default());
        store
            .events
            .faults
            .script([Some(throttled()), Some(throttled())]);
        let config = IngestConfig::default();
        let out = transform_batch(
            &config,
            &handoff(&store),
            &RetryPolicy::fast(3),
            records(30),
        )
        .await;
        assert!(
            out.records.iter().all(|r| r.result.is_ok()),
            "two busy appends are retried away"
        );
        assert_eq!(store.events.all_events().len(), 30);

        let store = Arc::new(Store::default());
        // Busy for as long as the transform stage's three attempts.
        store
            .events
            .faults
            .script((0..3).map(|_| Some(throttled())));
        let out = transform_batch(
            &config,
            &handoff(&store),
            &RetryPolicy::fast(3),
            records(30),
        )
        .await;
        assert!(
            out.records.iter().all(|r| matches!(&r.result, Err(e @ TransformFailure::EnqueueFailed { .. }) if e.is_transient())),
            "{:?}",
            out.records.iter().map(|r| &r.result).collect::<Vec<_>>()
        );
        assert!(store.rejects.records.lock().unwrap().is_empty());
        // The producer resends once the store recovers: each record once, in order.
        let out = transform_batch(
            &config,
            &handoff(&store),
            &RetryPolicy::fast(3),
            records(30),
        )
        .await;
        assert!(out.records.iter().all(|r| r.result.is_ok()));
        let stored = store.events.all_events();
        assert_eq!(stored.len(), 30);
        for entity in ["e0", "e1", "e2"] {
            let seqs: Vec<u64> = stored
                .iter()
                .filter(|e| e.entity_id.as_str() == entity)
                .map(|e| e.seq)
                .collect();
            assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
        }
    }

    /// A message above the queue hop's size limit is refused permanently,
    /// as `SendMessage` refuses it.
    #[tokio::test]
    async fn a_message_over_the_queue_limit_is_refused() {
        let store = Arc::new(Store::default());
        let small = StoreHandoff::new(store.clone(), Arc::default(), 64);
        let big = OutgoingMessage {
            group_id: "e".into(),
            dedup_id: "d".into(),
            body: "x".repeat(65),
            trace_header: None,
        };
        let results = small.send_batch(&[big]).await.unwrap();
        let e = results[0].as_ref().unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("MaximumMessageSize"), "{e}");
        assert!(store.events.all_events().is_empty());
    }
}
