//! The transform stage: validate and normalise each record, enqueue the valid
//! ones on the FIFO queue, and answer per record.
//!
//! Firehose needs exactly one result per `recordId` (AWS-CONTRACTS.md), so the
//! output has one entry per input, in input order. A record is `Ok` only once
//! its enqueue succeeded; one whose enqueue failed after retries is a failure,
//! so Firehose keeps it in `processing-failed/` and it can be re-ingested.

use crate::ports::{OutgoingMessage, Queue};
use chrono::{DateTime, Utc};
use tideline_core::ErrorClass;
use tideline_core::ingest::{IngestConfig, NormalizedRecord, RejectReason, normalize_record};
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
    /// It breaks the ingest contract.
    #[error("{0}")]
    Rejected(RejectReason),
    /// It was valid, but could not be enqueued after retries.
    #[error("enqueue failed after {attempts} attempts: {last_error}")]
    EnqueueFailed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last_error: String,
    },
}

impl TransformFailure {
    /// A short code for the lake's failure records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected(r) => r.code(),
            Self::EnqueueFailed { .. } => "EnqueueFailed",
        }
    }
}

/// The result for one record.
#[derive(Debug, Clone)]
pub struct TransformedRecord {
    /// The input's record id.
    pub record_id: String,
    /// The normalised record, or why not.
    pub result: Result<NormalizedRecord, TransformFailure>,
}

/// One batch's results and counts.
#[derive(Debug, Clone)]
pub struct TransformBatch {
    /// One per input record, in input order.
    pub records: Vec<TransformedRecord>,
    /// received / sent (enqueued) / discarded (none) / failed.
    pub counts: Counts,
}

/// Runs the transform stage over a batch.
pub async fn transform_batch<Q: Queue>(
    config: &IngestConfig,
    queue: &Q,
    retry: &RetryPolicy,
    input: Vec<IncomingRecord>,
) -> TransformBatch {
    let mut records: Vec<TransformedRecord> = input
        .into_iter()
        .map(|r| TransformedRecord {
            result: normalize_record(config, &r.data, r.arrival)
                .map_err(TransformFailure::Rejected),
            record_id: r.record_id,
        })
        .collect();

    // Indexes of valid records, enqueued in input order, one call at a time,
    // so records of one entity within a batch enter the FIFO queue in order.
    let valid: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].result.is_ok())
        .collect();
    for chunk in valid.chunks(queue.max_batch().max(1)) {
        let messages: Vec<OutgoingMessage> = chunk
            .iter()
            .filter_map(|&i| records[i].result.as_ref().ok())
            .map(|r| OutgoingMessage {
                group_id: r.entity_id.to_string(),
                dedup_id: r.id.to_string(),
                body: String::from_utf8(r.to_json_line())
                    .unwrap_or_default()
                    .trim_end()
                    .to_string(),
            })
            .collect();
        let failures = send_with_retries(queue, retry, messages).await;
        for (pos, failure) in failures {
            records[chunk[pos]].result = Err(failure);
        }
    }

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

/// Sends messages, resending only the entries that failed retryably, with
/// jittered backoff, until the policy's attempts run out.
/// Returns the positions that never made it, with why.
async fn send_with_retries<Q: Queue>(
    queue: &Q,
    retry: &RetryPolicy,
    messages: Vec<OutgoingMessage>,
) -> Vec<(usize, TransformFailure)> {
    let mut pending: Vec<usize> = (0..messages.len()).collect();
    let mut failed: Vec<(usize, TransformFailure)> = Vec::new();
    let mut last_error: Vec<String> = vec![String::new(); messages.len()];
    let mut attempt = 0;
    while !pending.is_empty() && attempt < retry.max_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(retry.jittered_delay(attempt)).await;
        }
        attempt += 1;
        let batch: Vec<OutgoingMessage> = pending.iter().map(|&i| messages[i].clone()).collect();
        match queue.send_batch(&batch).await {
            Ok(results) => {
                let mut still = Vec::new();
                for (k, &i) in pending.iter().enumerate() {
                    match results.get(k) {
                        Some(Ok(())) => {}
                        Some(Err(e)) if e.class == ErrorClass::Permanent => failed.push((
                            i,
                            TransformFailure::EnqueueFailed {
                                attempts: attempt,
                                last_error: e.to_string(),
                            },
                        )),
                        Some(Err(e)) => {
                            last_error[i] = e.to_string();
                            still.push(i);
                        }
                        None => {
                            last_error[i] = "queue returned fewer results than messages".into();
                            still.push(i);
                        }
                    }
                }
                pending = still;
            }
            Err(e) if e.class == ErrorClass::Permanent => {
                for &i in &pending {
                    failed.push((
                        i,
                        TransformFailure::EnqueueFailed {
                            attempts: attempt,
                            last_error: e.to_string(),
                        },
                    ));
                }
                pending.clear();
            }
            Err(e) => {
                warn!(stage = "transform", error = %e, attempt, "enqueue call failed; will retry");
                for &i in &pending {
                    last_error[i] = e.to_string();
                }
            }
        }
    }
    for i in pending {
        failed.push((
            i,
            TransformFailure::EnqueueFailed {
                attempts: attempt,
                last_error: std::mem::take(&mut last_error[i]),
            },
        ));
    }
    failed.sort_by_key(|(i, _)| *i);
    failed
}
