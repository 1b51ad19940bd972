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

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::firehose::{
    KinesisFirehoseEvent, KinesisFirehoseResponse, KinesisFirehoseResponseRecord,
    KinesisFirehoseResponseRecordMetadata,
};
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use tideline_core::ingest::{IngestConfig, NormalizedRecord};
use tideline_core::limits::json_string_bound;
use tideline_core::retry::RetryPolicy;
use tideline_core::{Classify, ErrorClass};
use tideline_stages::Queue;
use tideline_stages::transform::{
    IncomingRecord, TransformFailure, TransformedRecord, admit_batch, enqueue_admitted, finish,
};
use tracing::warn;

use crate::HandlerError;

/// Firehose result values.
pub const RESULT_OK: &str = "Ok";
/// Firehose result for a failed record.
pub const RESULT_PROCESSING_FAILED: &str = "ProcessingFailed";

/// The Firehose invocation as the transformer reads it: each record's id,
/// arrival time and bytes, in order. The runtime parses the invocation
/// straight into this. `KinesisFirehoseEvent` reads the arrival time through
/// an untagged enum that formats an error for every record before it
/// accepts the number, and it panics on a fractional value. An
/// `KinesisFirehoseEvent` converts into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FirehoseBatch {
    /// The records, in Firehose's order.
    #[serde(default)]
    pub records: Vec<FirehoseRecord>,
}

/// One Firehose record as the transformer reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseRecord {
    /// `recordId`: the response answers each one.
    #[serde(default)]
    pub record_id: Option<String>,
    /// `approximateArrivalTimestamp`: epoch milliseconds, as a number or a string.
    #[serde(deserialize_with = "epoch_millis")]
    pub approximate_arrival_timestamp: DateTime<Utc>,
    /// `data`, base64-decoded.
    pub data: Base64Data,
}

impl From<KinesisFirehoseEvent> for FirehoseBatch {
    fn from(event: KinesisFirehoseEvent) -> Self {
        Self {
            records: event
                .records
                .into_iter()
                .map(|r| FirehoseRecord {
                    record_id: r.record_id,
                    approximate_arrival_timestamp: r.approximate_arrival_timestamp.0,
                    data: r.data,
                })
                .collect(),
        }
    }
}

/// Epoch milliseconds (an integer, a float or a numeric string) as a time.
/// A fraction of a millisecond is dropped; the time only dates a record.
fn epoch_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    struct Millis;
    impl serde::de::Visitor<'_> for Millis {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("epoch milliseconds")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| E::custom(format!("{v} is not a time in epoch milliseconds")))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map_err(|_| E::custom(format!("{v} is not a time in epoch milliseconds")))
                .and_then(|v| self.visit_u64(v))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // In range, `as` keeps the whole milliseconds.
            if v.is_finite() && (0.0..9.0e15).contains(&v) {
                self.visit_u64(v as u64)
            } else {
                Err(E::custom(format!(
                    "{v} is not a time in epoch milliseconds"
                )))
            }
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.parse::<u64>() {
                Ok(whole) => self.visit_u64(whole),
                Err(_) => v
                    .parse::<f64>()
                    .map_err(|_| E::custom(format!("{v:?} is not a time in epoch milliseconds")))
                    .and_then(|f| self.visit_f64(f)),
            }
        }
    }
    deserializer.deserialize_any(Millis)
}

/// What the function keeps between invocations.
#[derive(Debug)]
pub struct State<Q> {
    /// The FIFO queue.
    pub queue: Q,
    /// The ingest contract settings.
    pub ingest: IngestConfig,
    /// Retries of failed enqueues.
    pub retry: RetryPolicy,
    /// Most `SendMessageBatch` calls in flight at once (`TIDELINE_MAX_CONCURRENT_SENDS`).
    pub max_concurrent_sends: usize,
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

/// The fixed part of a `ProcessingFailed` response record's JSON, beyond the
/// quoted record id and the base64 data:
/// `{"recordId":,"result":"ProcessingFailed","data":"","metadata":{"partitionKeys":{}}}`
/// and the comma between records (a test holds it to the serialisation).
pub const FAILED_RECORD_FIXED: usize = 83 + 1;
/// The same for an `Ok` record, beyond the quoted event type:
/// `{"recordId":,"result":"Ok","data":"","metadata":{"partitionKeys":{"event_type":,"date":"YYYY-MM-DD"}}}`.
pub const OK_RECORD_FIXED: usize = 102 + 1;
/// `{"records":[]}`.
const RESPONSE_ENVELOPE: usize = 14;

fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// The most a `ProcessingFailed` response record takes: its original bytes go back.
pub fn failed_record_bound(record_id: &str, original_len: usize) -> usize {
    json_string_bound(record_id) + base64_len(original_len) + FAILED_RECORD_FIXED
}

/// The most an `Ok` response record takes: the JSON line and the partition keys.
pub fn ok_record_bound(record_id: &str, line_len: usize, event_type: &str) -> usize {
    // A partition value may be percent-encoded to be safe in a path: up to 3
    // bytes per byte, or JSON-escaped, whichever is longer.
    let partition = json_string_bound(event_type).max(3 * event_type.len() + 2);
    json_string_bound(record_id) + base64_len(line_len) + partition + OK_RECORD_FIXED
}

/// Keeps the response under Lambda's 6 MB (a Firehose transformation response
/// counts: AWS-CONTRACTS.md). Small records grow about twice when normalised
/// and base64'd, so a full processor buffer could answer with more than the
/// limit, and Firehose would fail the whole invocation. Records are decided in
/// order: each stays `Ok` only if the response still fits when every record
/// after it falls back to `ProcessingFailed` (its original bytes, which the
/// request already carried); the rest are refused *before* they are enqueued,
/// with a reason, and `tideline reingest` resends them from `processing-failed/`.
pub fn apply_response_budget(
    records: &mut [TransformedRecord],
    originals: &[Vec<u8>],
    budget: usize,
) {
    let failed_size: Vec<usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| failed_record_bound(&r.record_id, originals.get(i).map_or(0, Vec::len)))
        .collect();
    // Start from "every record falls back": that response is about the size
    // of the request, which Lambda already accepted (at most 6 MB too).
    let mut total: usize = RESPONSE_ENVELOPE + failed_size.iter().sum::<usize>();
    for i in 0..records.len() {
        let Ok(admitted) = &records[i].result else {
            continue;
        };
        let ok_size = ok_record_bound(
            &records[i].record_id,
            admitted.body.len() + 1,
            &admitted.record.event_type,
        );
        let if_ok = total - failed_size[i] + ok_size;
        if if_ok <= budget {
            total = if_ok;
        } else {
            records[i].result = Err(TransformFailure::OverResponseBudget { budget });
        }
    }
}

/// Handles one Firehose transformation invocation.
///
/// A valid record that could not be enqueued for a transient reason fails the
/// whole invocation, so Firehose retries it (up to its retry duration) instead
/// of writing a valid record to `processing-failed/`. Retrying is safe: event
/// ids and queue de-duplication ids are stable, so what was enqueued before is
/// not enqueued twice, and the store de-duplicates per entity in any case.
pub async fn handler<Q: Queue>(
    state: &State<Q>,
    event: LambdaEvent<FirehoseBatch>,
) -> Result<KinesisFirehoseResponse, HandlerError> {
    let input: Vec<IncomingRecord> = event
        .payload
        .records
        .into_iter()
        .map(|r| IncomingRecord {
            record_id: r.record_id.unwrap_or_default(),
            data: r.data.0,
            arrival: r.approximate_arrival_timestamp,
        })
        .collect();
    let mut admitted = admit_batch(&state.ingest, &input);
    // A refused record's answer is its original bytes: moved, not copied.
    let originals: Vec<Vec<u8>> = input.into_iter().map(|r| r.data).collect();
    apply_response_budget(
        &mut admitted,
        &originals,
        state.ingest.limits.lambda_payload_bytes,
    );
    enqueue_admitted(
        &state.queue,
        &state.retry,
        state.ingest.limits.sqs_batch_bytes,
        state.max_concurrent_sends,
        &mut admitted,
    )
    .await;
    let batch = finish(admitted);
    if batch.has_transient_failures() {
        let mut stalled = batch
            .records
            .iter()
            .filter_map(|r| r.result.as_ref().err())
            .filter(|f| f.is_transient());
        let first = stalled.next().cloned();
        let records = usize::from(first.is_some()) + stalled.count();
        let error = HandlerError::from(TransientEnqueueFailure { records, first });
        warn!(
            stage = "transform",
            records,
            error_type = %error.error_type(),
            error = %tideline_core::DisplayChain(&error),
            "queue unavailable; failing the invocation so Firehose retries it"
        );
        return Err(error);
    }
    let mut response = KinesisFirehoseResponse::default();
    response.records = batch
        .records
        .into_iter()
        .zip(originals)
        .map(|(t, original)| {
            let mut out = KinesisFirehoseResponseRecord::default();
            let mut metadata = KinesisFirehoseResponseRecordMetadata::default();
            match t.result {
                Ok(admitted) => {
                    out.result = Some(RESULT_OK.into());
                    metadata.partition_keys = partition_keys(&admitted.record);
                    out.data.0 = admitted.into_json_line();
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

/// The invocation's error when valid records could not be enqueued now.
/// Retryable: its `errorType` is `Tideline.Retryable.TransientEnqueueFailure`.
#[derive(Debug, thiserror::Error)]
#[error(
    "{records} valid records could not be enqueued (queue unavailable or throttled); Firehose retries the invocation"
)]
pub struct TransientEnqueueFailure {
    /// How many records were left out of the queue.
    pub records: usize,
    /// The first of their failures (the queue's last error for it).
    #[source]
    pub first: Option<TransformFailure>,
}

impl Classify for TransientEnqueueFailure {
    fn class(&self) -> ErrorClass {
        // The queue may take the records on Firehose's retry; a refusal
        // would have been a `ProcessingFailed` record, not this.
        ErrorClass::Retryable
    }
}

impl From<TransientEnqueueFailure> for HandlerError {
    fn from(error: TransientEnqueueFailure) -> Self {
        HandlerError::new("TransientEnqueueFailure", error)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(timestamp: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"invocationId": "i", "deliveryStreamArn": "arn", "region": "us-east-1",
            "records": [{"recordId": "r-1", "approximateArrivalTimestamp": timestamp, "data": "eyJhIjoxfQ==",
                "kinesisRecordMetadata": {"shardId": "s", "partitionKey": "p", "approximateArrivalTimestamp": 1,
                    "sequenceNumber": "1", "subsequenceNumber": 0}}]})
    }

    #[test]
    fn firehose_batch_reads_what_the_firehose_event_reads() {
        for timestamp in [
            serde_json::json!(1_795_420_800_000_i64),
            serde_json::json!(1_795_420_800_250_i64),
            serde_json::json!(0),
            serde_json::json!("1795420800000"),
            serde_json::json!(1_795_420_800_000.0),
        ] {
            let event = record(timestamp.clone());
            let lean: FirehoseBatch = serde_json::from_value(event.clone()).unwrap();
            let full: KinesisFirehoseEvent = serde_json::from_value(event).unwrap();
            assert_eq!(lean, FirehoseBatch::from(full), "{timestamp}");
            assert_eq!(lean.records[0].data.0, br#"{"a":1}"#);
        }
    }

    #[test]
    fn arrival_time_is_exact_where_the_firehose_event_rounds_a_millisecond_down() {
        // `KinesisFirehoseEvent` goes through f64 seconds, and `.123` comes
        // back as `.122`; `received_at` (and a default `occurred_at`) now
        // carry the millisecond Firehose sent.
        let event = record(serde_json::json!(1_795_420_800_123_i64));
        let lean: FirehoseBatch = serde_json::from_value(event.clone()).unwrap();
        let full: KinesisFirehoseEvent = serde_json::from_value(event).unwrap();
        assert_eq!(
            lean.records[0]
                .approximate_arrival_timestamp
                .timestamp_millis(),
            1_795_420_800_123
        );
        assert_eq!(
            full.records[0]
                .approximate_arrival_timestamp
                .0
                .timestamp_millis(),
            1_795_420_800_122
        );
    }

    #[test]
    fn a_fraction_of_a_millisecond_is_dropped_and_a_negative_time_refused() {
        let lean: FirehoseBatch = serde_json::from_value(record(serde_json::json!(1.5))).unwrap();
        assert_eq!(
            lean.records[0]
                .approximate_arrival_timestamp
                .timestamp_millis(),
            1
        );
        for bad in [
            serde_json::json!(-1),
            serde_json::json!("soon"),
            serde_json::json!(null),
        ] {
            assert!(
                serde_json::from_value::<FirehoseBatch>(record(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }
}
