//! The transform stage: validate and normalise each record, enqueue the valid
//! ones on the FIFO queue, and answer per record.
//!
//! Firehose needs exactly one result per `recordId` (AWS-CONTRACTS.md), so the
//! output has one entry per input, in input order. A record is `Ok` only once
//! its enqueue succeeded. A record refused (the contract, a hop's limit, the
//! queue's own verdict) is a failure with a reason. A valid record the queue
//! could not take *now* is never refused: the transformer fails the
//! invocation and Firehose retries it; local mode reports it in
//! `FailedPutCount` and the producer retries it.

use crate::{EntryFailure, OutgoingMessage, PortError, Queue};
use chrono::{DateTime, Utc};
use tideline_core::ingest::{AdmittedRecord, IngestConfig, RejectReason, admit};
use tideline_core::metrics::Counts;
use tideline_core::retry::{CallPlan, GaveUp, OnPermanent, RetryPolicy, Why, resend_failed};
use tracing::info;

/// A record as it arrives at the transform.
#[derive(Debug, Clone)]
pub struct IncomingRecord {
    /// Firehose `recordId`, or an id ingest assigns.
    pub record_id: String,
    /// The producer's bytes (base64-decoded).
    pub data: Vec<u8>,
    /// When it arrived.
    pub arrival: DateTime<Utc>,
}

/// Why a record did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformFailure {
    /// It breaks the ingest contract, or a later hop's limit.
    #[error("{0}")]
    Rejected(RejectReason),
    /// It was valid, but the queue could not take it now (throttled,
    /// unavailable) after retries. Transient: the caller fails the invocation
    /// (Lambda) or the record (local `FailedPutCount`) so the producer's side
    /// retries it; it is never turned into a refusal.
    #[error("enqueue failed after {attempts} attempts: {last_error}")]
    EnqueueFailed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last_error: String,
    },
    /// The queue refused this record permanently (an entry-level error that a
    /// resend cannot fix): it is refused with the queue's reason.
    #[error("the queue refused the record: {reason}")]
    EnqueueRefused {
        /// The queue's reason.
        reason: String,
    },
    /// Not enqueued because the invocation's response would have exceeded
    /// its size budget (Lambda's 6 MB); refused, so it lands in
    /// `processing-failed/` and `tideline reingest` resends it.
    #[error(
        "not processed: the transform response would exceed its {budget}-byte budget (Lambda response limit)"
    )]
    OverResponseBudget {
        /// The budget in bytes.
        budget: usize,
    },
}

impl TransformFailure {
    /// A short code for the lake's failure records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected(r) => r.code(),
            Self::EnqueueFailed { .. } => "EnqueueFailed",
            Self::EnqueueRefused { .. } => "EnqueueRefused",
            Self::OverResponseBudget { .. } => "OverResponseBudget",
        }
    }

    /// True for a transient failure: the record must be retried, not refused.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::EnqueueFailed { .. })
    }
}

/// The result for one record.
#[derive(Debug, Clone)]
pub struct TransformedRecord {
    /// The input's record id.
    pub record_id: String,
    /// The admitted record (normalised, serialised once), or why not.
    pub result: Result<AdmittedRecord, TransformFailure>,
}

/// One batch's results and counts.
#[derive(Debug, Clone)]
pub struct TransformBatch {
    /// One per input record, in input order.
    pub records: Vec<TransformedRecord>,
    /// received / sent (enqueued) / discarded (none) / failed.
    pub counts: Counts,
}

impl TransformBatch {
    /// True when some valid record could not be enqueued for a transient
    /// reason: the Lambda fails the invocation so Firehose retries the batch
    /// (safe: event ids and queue de-duplication ids are stable).
    pub fn has_transient_failures(&self) -> bool {
        self.records
            .iter()
            .any(|r| r.result.as_ref().is_err_and(TransformFailure::is_transient))
    }
}

/// Admits each record (validate, normalise, check every hop's limits), in
/// input order. The input is borrowed: a caller that answers a refused record
/// with its original bytes (Firehose `ProcessingFailed`) keeps them without a copy.
pub fn admit_batch(config: &IngestConfig, input: &[IncomingRecord]) -> Vec<TransformedRecord> {
    input
        .iter()
        .map(|r| TransformedRecord {
            result: admit(config, &r.data, r.arrival).map_err(TransformFailure::Rejected),
            record_id: r.record_id.clone(),
        })
        .collect()
}

/// Calls in flight at once unless set (local mode, and the transformer's
/// default). A Firehose batch of 500 records to 500 entities is 50 calls:
/// 10 in flight make 5 rounds. One invocation at 5 ms per call then makes
/// up to 2,000 calls/s, above a FIFO queue's 300 calls/s per action outside
/// high-throughput mode: `TIDELINE_MAX_CONCURRENT_SENDS` lowers it.
pub const DEFAULT_MAX_CONCURRENT_SENDS: usize = 10;

/// Runs the transform stage over a batch: admit, then enqueue. The input
/// is borrowed, so a caller keeps the raw bytes a refused record is answered
/// or recorded with.
pub async fn transform_batch<Q: Queue>(
    config: &IngestConfig,
    queue: &Q,
    retry: &RetryPolicy,
    input: &[IncomingRecord],
) -> TransformBatch {
    let mut records = admit_batch(config, input);
    enqueue_admitted(
        queue,
        retry,
        config.limits.sqs_batch_bytes,
        DEFAULT_MAX_CONCURRENT_SENDS,
        &mut records,
    )
    .await;
    finish(records)
}

/// Counts and logs a batch whose records are all decided.
pub fn finish(records: Vec<TransformedRecord>) -> TransformBatch {
    let failed = records.iter().filter(|r| r.result.is_err()).count() as u64;
    let counts = Counts {
        received: records.len() as u64,
        sent: records.len() as u64 - failed,
        discarded: 0,
        failed,
    };
    info!(
        stage = "transform",
        received = counts.received,
        sent = counts.sent,
        discarded = counts.discarded,
        failed = counts.failed,
        "batch done"
    );
    TransformBatch { records, counts }
}

/// Enqueues the admitted records, keeping each entity's order.
///
/// SQS processes a `SendMessageBatch`'s entries independently: if entry 3 of
/// entity A fails and entry 5 of entity A succeeds, resending 3 puts it behind
/// 5. So a call carries at most one message per entity (the entity's earliest
/// not-yet-enqueued record), and the next record of an entity is sent only
/// once the one before it is in the queue. Calls are also bounded by the
/// batch's byte total (SQS `SendMessageBatch`: 1 MiB). Entries that fail
/// transiently are resent with jittered backoff until the policy's attempts
/// run out; then they, and every later record of their entity, are left as
/// [`TransformFailure::EnqueueFailed`]. The loop is the one every batch call
/// shares ([`resend_failed`]), with a per-entity [`CallPlan`]: each round
/// carries every entity's earliest pending record, in up to
/// `max_concurrent_sends` calls in flight together, so no two calls in
/// flight carry the same entity.
pub async fn enqueue_admitted<Q: Queue>(
    queue: &Q,
    retry: &RetryPolicy,
    max_batch_bytes: usize,
    max_concurrent_sends: usize,
    records: &mut [TransformedRecord],
) {
    // The valid records, by position; each one's message is built only when
    // it goes into a call, so a body is copied once, not per step.
    let valid: Vec<(usize, &AdmittedRecord)> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.result.as_ref().ok().map(|a| (i, a)))
        .collect();
    let groups: Vec<&str> = valid
        .iter()
        .map(|(_, a)| a.record.entity_id.as_str())
        .collect();
    let sizes: Vec<usize> = valid.iter().map(|(_, a)| a.body.len()).collect();
    let plan = CallPlan {
        max_entries: queue.max_batch(),
        max_bytes: Some((max_batch_bytes, &sizes)),
        groups: Some(&groups),
        on_permanent: OnPermanent::FailEntry,
        max_concurrent_calls: max_concurrent_sends,
    };
    // Boxed, as in the emit stage: the loop's future is deep.
    let outcome = Box::pin(resend_failed(
        retry,
        &plan,
        valid.len(),
        |sent: &[usize]| {
            let batch: Vec<OutgoingMessage> = sent
                .iter()
                .map(|&k| OutgoingMessage::for_record(valid[k].1))
                .collect();
            async move {
                let answer = queue.send_batch(&batch).await;
                crate::emit::warn_failures("transform", "SendMessageBatch", &answer);
                answer
            }
        },
        tokio::time::sleep,
    ))
    .await;
    let failures: Vec<(usize, TransformFailure)> = outcome
        .failed
        .into_iter()
        .map(|(k, gave_up)| (valid[k].0, enqueue_failure(gave_up)))
        .collect();
    drop(valid);
    for (i, failure) in failures {
        records[i].result = Err(failure);
    }
}

/// What a record given up by the enqueue loop becomes. Only the queue's own
/// verdict on the record refuses it; anything else (retries ran out, the
/// call failed, an earlier record of its entity is stuck) is no verdict on
/// the record, which stays valid and is retried by the producer's side.
fn enqueue_failure(gave_up: GaveUp<EntryFailure, PortError>) -> TransformFailure {
    match gave_up.why {
        Why::Entry(e) if !gave_up.retryable => TransformFailure::EnqueueRefused {
            reason: e.to_string(),
        },
        Why::Behind => TransformFailure::EnqueueFailed {
            attempts: gave_up.attempts.max(1),
            last_error: "an earlier record of the same entity could not be enqueued".into(),
        },
        why => TransformFailure::EnqueueFailed {
            attempts: gave_up.attempts.max(1),
            last_error: why.to_string(),
        },
    }
}
