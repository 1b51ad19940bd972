//! `transformer`: the Firehose data-transformation Lambda.
//!
//! Each record is validated and normalised by the transform stage (the same
//! code as local mode), and the valid ones are enqueued on the FIFO queue.
//! The response has exactly one record per input `recordId`
//! (AWS-CONTRACTS.md, Firehose):
//! - `Ok`: the normalised record as one JSON line (newline-terminated), with
//!   `metadata.partitionKeys` `event_type` and `date` (`YYYY-MM-DD` of
//!   `occurred_at`) for dynamic partitioning;
//! - `ProcessingFailed`: invalid, or not enqueued after retries. Firehose
//!   writes the original bytes under `processing-failed/`, from where the
//!   record can be re-ingested.

use aws_lambda_events::firehose::{
    KinesisFirehoseEvent, KinesisFirehoseResponse, KinesisFirehoseResponseRecord,
    KinesisFirehoseResponseRecordMetadata,
};
use lambda_runtime::LambdaEvent;
use std::collections::HashMap;
use tideline_core::ingest::{IngestConfig, NormalizedRecord};
use tideline_core::retry::RetryPolicy;
use tideline_ports::Queue;
use tideline_ports::stages::transform::{IncomingRecord, transform_batch};
use tracing::warn;

/// Firehose result values.
pub const RESULT_OK: &str = "Ok";
/// Firehose result for a failed record.
pub const RESULT_PROCESSING_FAILED: &str = "ProcessingFailed";

/// What the function keeps between invocations.
#[derive(Debug)]
pub struct State<Q> {
    /// The FIFO queue.
    pub queue: Q,
    /// The ingest contract settings.
    pub ingest: IngestConfig,
    /// Retries of failed enqueues.
    pub retry: RetryPolicy,
}

/// The partition keys of a normalised record: its type and its day, as
/// the one lake layout defines them (`tideline_core::lake_layout`), so
/// Firehose writes the paths local mode writes.
pub fn partition_keys(record: &NormalizedRecord) -> HashMap<String, String> {
    tideline_core::lake_layout::event_partition_keys(&record.event_type, &record.occurred_at)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Handles one Firehose transformation invocation.
pub async fn handler<Q: Queue>(
    state: &State<Q>,
    event: LambdaEvent<KinesisFirehoseEvent>,
) -> Result<KinesisFirehoseResponse, crate::Error> {
    let records = event.payload.records;
    let mut originals = Vec::with_capacity(records.len());
    let mut input = Vec::with_capacity(records.len());
    for r in records {
        let record_id = r.record_id.unwrap_or_default();
        originals.push(r.data.0.clone());
        input.push(IncomingRecord {
            record_id,
            data: r.data.0,
            arrival: r.approximate_arrival_timestamp.0,
        });
    }
    let batch = transform_batch(&state.ingest, &state.queue, &state.retry, input).await;
    let mut response = KinesisFirehoseResponse::default();
    response.records = batch
        .records
        .into_iter()
        .zip(originals)
        .map(|(t, original)| {
            let mut out = KinesisFirehoseResponseRecord::default();
            let mut metadata = KinesisFirehoseResponseRecordMetadata::default();
            match t.result {
                Ok(record) => {
                    out.result = Some(RESULT_OK.into());
                    metadata.partition_keys = partition_keys(&record);
                    out.data.0 = record.to_json_line();
                }
                Err(failure) => {
                    warn!(stage = "transform", record_id = %t.record_id, code = failure.code(), reason = %failure, "record ProcessingFailed");
                    out.result = Some(RESULT_PROCESSING_FAILED.into());
                    out.data.0 = original;
                }
            }
            out.record_id = Some(t.record_id);
            out.metadata = metadata;
            out
        })
        .collect();
    Ok(response)
}
