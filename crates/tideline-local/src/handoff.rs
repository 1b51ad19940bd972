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
use tideline_core::limits::HopLimits;
use tideline_core::metrics::StageCounters;
use tideline_stages::store::{IncomingMessage, store_batch};
use tideline_stages::{EntryFailure, EventStore, OutgoingMessage, PortError, Queue, RejectSink};
use tokio::sync::{mpsc, oneshot};

/// Records handed to the store per call: one request's worth (Firehose's
/// `PutRecordBatch` carries at most 500).
const HANDOFF_BATCH: usize = tideline_core::limits::FIREHOSE_BATCH_RECORDS;

/// Most records one store transaction takes when requests arrive together:
/// concurrent requests share a commit (group commit), whose cost is the
/// index pages it writes, not the number of records.
const GROUP_RECORDS: usize = 4 * HANDOFF_BATCH;

/// One request's records, and where its outcome goes.
#[derive(Debug)]
struct Job {
    messages: Vec<IncomingMessage>,
    reply: oneshot::Sender<Vec<Option<EntryFailure>>>,
}

/// The transform → store hand-off into the store `S` (local mode: the
/// SQLite store, which also keeps the rejected records).
///
/// One writer task appends for every request: the requests waiting when it
/// is free go into one run of the store stage, one transaction.
#[derive(Debug)]
pub struct StoreHandoff {
    jobs: mpsc::Sender<Job>,
    in_flight: Arc<AtomicU64>,
    limits: HopLimits,
}

impl StoreHandoff {
    /// A hand-off into `store` (poison records to `rejects`), counting under
    /// `counters` (stage `store`), refusing what the queue hop of `limits`
    /// would. Starts the writer task: call it inside a Tokio runtime.
    pub fn new<S: EventStore + 'static, R: RejectSink + 'static>(
        store: Arc<S>,
        rejects: Arc<R>,
        counters: Arc<StageCounters>,
        limits: HopLimits,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(64);
        tokio::spawn(write_jobs(store, rejects, counters, queue));
        Self {
            jobs,
            in_flight: Arc::default(),
            limits,
        }
    }

    /// The queue hop's message size limit this hand-off enforces.
    pub fn max_message_bytes(&self) -> usize {
        self.limits.sqs_message_bytes
    }

    /// Records handed over and not yet appended or refused.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// The writer task: takes the waiting requests together, runs the store
/// stage over them in arrival order, and answers each request for its own
/// records. Ends when the hand-off is dropped.
async fn write_jobs<S: EventStore, R: RejectSink>(
    store: Arc<S>,
    rejects: Arc<R>,
    counters: Arc<StageCounters>,
    mut queue: mpsc::Receiver<Job>,
) {
    while let Some(first) = queue.recv().await {
        let mut records = first.messages.len();
        let mut jobs = vec![first];
        while records < GROUP_RECORDS {
            match queue.try_recv() {
                Ok(job) => {
                    records += job.messages.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut messages = Vec::with_capacity(records);
        // For each message of the run: its request, and its place there.
        let mut owner = Vec::with_capacity(records);
        let mut replies = Vec::with_capacity(jobs.len());
        let mut outcomes: Vec<Vec<Option<EntryFailure>>> = Vec::with_capacity(jobs.len());
        for (j, job) in jobs.into_iter().enumerate() {
            outcomes.push(vec![None; job.messages.len()]);
            for (i, mut m) in job.messages.into_iter().enumerate() {
                m.message_id = messages.len().to_string();
                owner.push((j, i));
                messages.push(m);
            }
            replies.push(job.reply);
        }
        let stored = store_batch(&*store, &*rejects, messages).await;
        counters.add(stored.counts);
        // The store stage stops at the first failure and reports that record
        // and every later one. Only the first was attempted: it carries the
        // failure's class. The ones behind it (of this request or another)
        // were not attempted, so they are retryable whatever stopped the run:
        // the transform stage hands them over again, in order.
        let reason = stored.stop_reason.unwrap_or_default();
        for (k, id) in stored.failed_message_ids.iter().enumerate() {
            let class = match (k, stored.stop_class) {
                (0, Some(class)) => class,
                _ => ErrorClass::Retryable,
            };
            let Some(&(j, i)) = id.parse::<usize>().ok().and_then(|n| owner.get(n)) else {
                continue;
            };
            if let Some(slot) = outcomes.get_mut(j).and_then(|o| o.get_mut(i)) {
                *slot = Some(EntryFailure {
                    code: "StoreFailed".into(),
                    message: reason.clone(),
                    class,
                });
            }
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A request that went away (its connection closed) needs no answer.
            let _ = reply.send(outcome);
        }
    }
}

/// Decrements the in-flight count however the call ends.
struct InFlight<'a>(&'a AtomicU64, u64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::SeqCst);
    }
}

fn writer_stopped() -> PortError {
    PortError::retryable(
        "local-store",
        "the store writer has stopped (shutting down); send the records again",
    )
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
        let mut at = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            if let Err(over) = self.limits.check_queue_message(m.body.len()) {
                results.push(Err(EntryFailure {
                    code: "InvalidParameterValue".into(),
                    message: over.to_string(),
                    class: ErrorClass::Permanent,
                }));
                continue;
            }
            results.push(Ok(()));
            at.push(i);
            incoming.push(IncomingMessage {
                message_id: String::new(),
                body: m.body.clone(),
            });
        }
        if incoming.is_empty() {
            return Ok(results);
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                messages: incoming,
                reply,
            })
            .await
            .map_err(|_| writer_stopped())?;
        let outcome = answer.await.map_err(|_| writer_stopped())?;
        for (i, failure) in at.into_iter().zip(outcome) {
            if let (Some(failure), Some(result)) = (failure, results.get_mut(i)) {
                *result = Err(failure);
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
    use tideline_stages::RejectedRecord;
    use tideline_stages::memory::{MemoryRejects, MemoryStore, throttled};
    use tideline_stages::transform::{IncomingRecord, TransformFailure, transform_batch};

    /// Rejections that fail permanently (the table is gone).
    struct FailingRejects;

    impl RejectSink for FailingRejects {
        async fn reject(&self, _: RejectedRecord) -> Result<(), PortError> {
            Err(PortError::permanent("memory", "no such table: rejected"))
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

    fn handoff(store: &Arc<MemoryStore>, rejects: &Arc<MemoryRejects>) -> StoreHandoff {
        StoreHandoff::new(
            store.clone(),
            rejects.clone(),
            Arc::default(),
            HopLimits::default(),
        )
    }

    /// Thirty records of three entities through the transform stage into the
    /// hand-off, with three attempts each.
    async fn ingest_30(
        store: &Arc<MemoryStore>,
        rejects: &Arc<MemoryRejects>,
    ) -> tideline_stages::transform::TransformBatch {
        let config = IngestConfig::default();
        let handoff = handoff(store, rejects);
        transform_batch(&config, &handoff, &RetryPolicy::fast(3), &records(30)).await
    }

    /// Given a store that is busy for a while, when ingest hands it records,
    /// then none is rejected or lost: the transform stage retries them, and
    /// what is still refused when its retries run out is reported back as
    /// transient (the producer resends it), never acknowledged.
    #[tokio::test]
    async fn transient_store_errors_never_reject_or_lose_a_record() {
        let (store, rejects) = (
            Arc::new(MemoryStore::default()),
            Arc::new(MemoryRejects::default()),
        );
        store.faults.script([Some(throttled()), Some(throttled())]);
        let out = ingest_30(&store, &rejects).await;
        assert!(
            out.records.iter().all(|r| r.result.is_ok()),
            "two busy appends are retried away"
        );
        assert_eq!(store.all_events().len(), 30);

        let (store, rejects) = (
            Arc::new(MemoryStore::default()),
            Arc::new(MemoryRejects::default()),
        );
        // Busy for as long as the transform stage's three attempts.
        store.faults.script((0..3).map(|_| Some(throttled())));
        let out = ingest_30(&store, &rejects).await;
        assert!(
            out.records.iter().all(|r| matches!(&r.result, Err(e @ TransformFailure::EnqueueFailed { .. }) if e.is_transient())),
            "{:?}",
            out.records.iter().map(|r| &r.result).collect::<Vec<_>>()
        );
        assert!(rejects.records.lock().unwrap().is_empty());
        // The producer resends once the store recovers: each record once, in order.
        let out = ingest_30(&store, &rejects).await;
        assert!(out.records.iter().all(|r| r.result.is_ok()));
        let stored = store.all_events();
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
        let store = Arc::new(MemoryStore::default());
        let small = StoreHandoff::new(
            store.clone(),
            Arc::new(MemoryRejects::default()),
            Arc::default(),
            HopLimits {
                sqs_message_bytes: 64,
                ..HopLimits::default()
            },
        );
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
        assert!(store.all_events().is_empty());
    }

    /// Given a poison message whose rejection cannot be recorded, when it
    /// is handed over with good records behind it, then only it carries the
    /// permanent failure: the records behind it were never attempted, so
    /// they are retryable, not refused.
    #[tokio::test]
    async fn only_the_record_the_store_stopped_at_carries_a_permanent_failure() {
        let handoff = StoreHandoff::new(
            Arc::new(MemoryStore::default()),
            Arc::new(FailingRejects),
            Arc::default(),
            HopLimits::default(),
        );
        let good = tideline_core::ingest::admit(
            &IngestConfig::default(),
            br#"{"entity_id":"e","id":"ok","type":"T","data":{}}"#,
            chrono::Utc::now(),
        )
        .unwrap();
        let poison = OutgoingMessage {
            body: "not a record".into(),
            ..OutgoingMessage::for_record(&good)
        };
        let results = handoff
            .send_batch(&[poison, OutgoingMessage::for_record(&good)])
            .await
            .unwrap();
        assert_eq!(
            results[0].as_ref().unwrap_err().class,
            ErrorClass::Permanent
        );
        assert_eq!(
            results[1].as_ref().unwrap_err().class,
            ErrorClass::Retryable
        );
    }
}
