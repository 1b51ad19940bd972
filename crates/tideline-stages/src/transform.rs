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

use crate::{OutgoingMessage, Queue};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use tideline_core::ErrorClass;
use tideline_core::ingest::{AdmittedRecord, IngestConfig, RejectReason, admit};
use tideline_core::metrics::Counts;
use tideline_core::retry::RetryPolicy;
use tracing::{info, warn};

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

/// Runs the transform stage over a batch: admit, then enqueue.
pub async fn transform_batch<Q: Queue>(
    config: &IngestConfig,
    queue: &Q,
    retry: &RetryPolicy,
    input: Vec<IncomingRecord>,
) -> TransformBatch {
    let mut records = admit_batch(config, &input);
    enqueue_admitted(queue, retry, config.limits.sqs_batch_bytes, &mut records).await;
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
/// [`TransformFailure::EnqueueFailed`].
pub async fn enqueue_admitted<Q: Queue>(
    queue: &Q,
    retry: &RetryPolicy,
    max_batch_bytes: usize,
    records: &mut [TransformedRecord],
) {
    // Each valid record's group and body size; its message is built only when
    // it goes into a call, so a body is copied once, not per step.
    let keys: Vec<Option<(String, usize)>> = records
        .iter()
        .map(|r| {
            r.result
                .as_ref()
                .ok()
                .map(|a| (a.record.entity_id.to_string(), a.body.len()))
        })
        .collect();
    let mut pending: Vec<usize> = (0..records.len()).filter(|&i| keys[i].is_some()).collect();
    let mut attempts: Vec<u32> = vec![0; records.len()];
    let mut last_error: Vec<String> = vec![String::new(); records.len()];
    let max_attempts = retry.max_attempts.max(1);
    let max_entries = queue.max_batch().max(1);
    let mut backoff_round = 0;
    while !pending.is_empty() {
        // One call: the earliest pending message of each entity, in order.
        // At most 10 entries: a linear search beats hashing.
        let mut groups: Vec<&str> = Vec::with_capacity(max_entries);
        let mut call: Vec<usize> = Vec::new();
        let mut bytes = 0;
        for &i in &pending {
            let Some((group, body_len)) = &keys[i] else {
                continue;
            };
            if call.len() == max_entries {
                break;
            }
            if groups.contains(&group.as_str()) {
                continue;
            }
            if !call.is_empty() && bytes + body_len > max_batch_bytes {
                break;
            }
            bytes += body_len;
            groups.push(group.as_str());
            call.push(i);
        }
        let batch: Vec<OutgoingMessage> = call
            .iter()
            .filter_map(|&i| records[i].result.as_ref().ok())
            .map(OutgoingMessage::for_record)
            .collect();
        let mut done: Vec<usize> = Vec::with_capacity(call.len());
        let mut exhausted: Vec<usize> = Vec::new();
        let mut any_transient = false;
        // `give_up`: the failure will not heal by resending now.
        let mut note_transient =
            |i: usize, error: String, give_up: bool, exhausted: &mut Vec<usize>| {
                attempts[i] = if give_up {
                    max_attempts
                } else {
                    attempts[i] + 1
                };
                last_error[i] = error;
                if attempts[i] >= max_attempts {
                    exhausted.push(i);
                }
            };
        match queue.send_batch(&batch).await {
            Ok(results) => {
                for (k, &i) in call.iter().enumerate() {
                    match results.get(k) {
                        Some(Ok(())) => {
                            done.push(i);
                        }
                        Some(Err(e)) if e.class == ErrorClass::Permanent => {
                            records[i].result = Err(TransformFailure::EnqueueRefused {
                                reason: e.to_string(),
                            });
                            done.push(i);
                        }
                        Some(Err(e)) => {
                            any_transient = true;
                            note_transient(i, e.to_string(), false, &mut exhausted);
                        }
                        None => {
                            any_transient = true;
                            note_transient(
                                i,
                                "queue returned fewer results than messages".into(),
                                false,
                                &mut exhausted,
                            );
                        }
                    }
                }
            }
            Err(e) => {
                // A whole-call failure, transient or not (a missing queue, a
                // denied permission), is no verdict on the records: they stay
                // valid and are retried by the producer's side.
                any_transient = true;
                warn!(stage = "transform", error = %e, "enqueue call failed; will retry");
                for &i in &call {
                    // A permanent call error gives up on this invocation at once.
                    let give_up = e.class == ErrorClass::Permanent;
                    note_transient(i, e.to_string(), give_up, &mut exhausted);
                }
            }
        }
        if !exhausted.is_empty() {
            // These entities' records stay out of the queue, in order behind
            // the one that could not go: the caller has them retried.
            let stalled: HashSet<&str> = exhausted
                .iter()
                .filter_map(|&i| keys[i].as_ref().map(|(group, _)| group.as_str()))
                .collect();
            pending.retain(|&i| {
                let stuck = keys[i]
                    .as_ref()
                    .is_some_and(|(group, _)| stalled.contains(group.as_str()));
                if stuck {
                    records[i].result = Err(TransformFailure::EnqueueFailed {
                        attempts: attempts[i].max(1),
                        last_error: if last_error[i].is_empty() {
                            "an earlier record of the same entity could not be enqueued".into()
                        } else {
                            last_error[i].clone()
                        },
                    });
                }
                !stuck
            });
        }
        pending.retain(|i| !done.contains(i)); // `done` holds at most 10
        if any_transient && !pending.is_empty() {
            backoff_round += 1;
            tokio::time::sleep(retry.jittered_delay(backoff_round)).await;
        } else {
            backoff_round = 0;
        }
    }
}
