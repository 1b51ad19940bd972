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
use tideline_embedded::store::SqliteStore;
use tideline_stages::store::{IncomingMessage, store_batch};
use tideline_stages::{EntryFailure, OutgoingMessage, PortError, Queue};

/// Records handed to the store per call: one request's worth (Firehose's
/// `PutRecordBatch` carries at most 500), appended in one SQLite transaction.
const HANDOFF_BATCH: usize = tideline_core::limits::FIREHOSE_BATCH_RECORDS;

/// The transform → store hand-off.
#[derive(Debug, Clone)]
pub struct StoreHandoff {
    store: Arc<SqliteStore>,
    counters: Arc<StageCounters>,
    in_flight: Arc<AtomicU64>,
    max_message_bytes: usize,
}

impl StoreHandoff {
    /// A hand-off into `store`, counting under `counters` (stage `store`).
    pub fn new(
        store: Arc<SqliteStore>,
        counters: Arc<StageCounters>,
        max_message_bytes: usize,
    ) -> Self {
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

impl Queue for StoreHandoff {
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
