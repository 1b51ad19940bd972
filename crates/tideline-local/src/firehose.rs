//! The Kinesis Data Firehose API (`PutRecord`, `PutRecordBatch`), AWS JSON 1.1,
//! so an unmodified AWS SDK or the AWS CLI can ingest with `--endpoint-url`.
//!
//! Limits are AWS's: 500 records and 4 MiB per `PutRecordBatch`
//! (AWS-CONTRACTS.md). A record refused by the transform is accepted by the
//! API, as Firehose accepts it, and lands in `processing-failed/` with its
//! reason. A record that could not be stored is reported as failed in
//! `RequestResponses` with `FailedPutCount`, so the producer retries it.
//!
//! A record is acknowledged only once its outcome is durable where it
//! belongs (INVARIANTS.md #1): a refused record once its line is in
//! `processing-failed/`, a valid record once it is appended to the store
//! ([`crate::handoff`]) *and* in the lake. If the lake write fails (the
//! directory is not writable, the disk is full), the records it carried are
//! reported failed with `ServiceUnavailableException`, so the producer
//! retries them. A valid record is already stored then; its retry is
//! de-duplicated by the store's idempotent append, so it is stored once and
//! reaches the lake on the retry.

use crate::shared::Shared;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use tideline_stages::transform::{IncomingRecord, transform_batch};
use tideline_stages::{FailedRecord, Lake};

/// PutRecordBatch: at most 500 records per call.
pub const MAX_BATCH_RECORDS: usize = tideline_core::limits::FIREHOSE_BATCH_RECORDS;
/// PutRecordBatch: at most 4 MiB per call (sum of record data).
pub const MAX_BATCH_BYTES: usize = tideline_core::limits::FIREHOSE_BATCH_BYTES;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordIn {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatchIn {
    delivery_stream_name: String,
    records: Vec<RecordIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordIn {
    delivery_stream_name: String,
    record: RecordIn,
}

/// An AWS JSON 1.1 error response.
pub fn aws_error(status: StatusCode, error_type: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    (
        status,
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amzn-errortype", error_type),
        ],
        json!({"__type": error_type, "message": message}).to_string(),
    )
        .into_response()
}

/// A `RequestResponses` entry for a record the producer must retry.
fn unavailable(message: String) -> Value {
    json!({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": message})
}

fn ok_json(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// Serves one Firehose API call.
pub async fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match target {
        "Firehose_20150804.PutRecordBatch" => {
            match serde_json::from_slice::<PutRecordBatchIn>(body) {
                Ok(req) => put(shared, &req.delivery_stream_name, req.records, true).await,
                Err(e) => aws_error(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    format!("PutRecordBatch body: {e}"),
                ),
            }
        }
        "Firehose_20150804.PutRecord" => match serde_json::from_slice::<PutRecordIn>(body) {
            Ok(req) => put(shared, &req.delivery_stream_name, vec![req.record], false).await,
            Err(e) => aws_error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("PutRecord body: {e}"),
            ),
        },
        "Firehose_20150804.ListDeliveryStreams" => ok_json(
            json!({"DeliveryStreamNames": [shared.config.stream_name], "HasMoreDeliveryStreams": false}),
        ),
        "" => aws_error(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "missing X-Amz-Target header (e.g. Firehose_20150804.PutRecordBatch)",
        ),
        other => aws_error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("operation {other:?} is not supported by tideline up"),
        ),
    }
}

async fn put(shared: &Shared, stream: &str, records: Vec<RecordIn>, batch: bool) -> Response {
    if stream != shared.config.stream_name {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            format!("Firehose {stream} under account 000000000000 not found."),
        );
    }
    if records.is_empty() || records.len() > MAX_BATCH_RECORDS {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgumentException",
            format!(
                "Records must hold 1 to {MAX_BATCH_RECORDS} records; got {}",
                records.len()
            ),
        );
    }
    let arrival = chrono::Utc::now();
    let batch_no = shared.batch_counter.fetch_add(1, Ordering::Relaxed);
    let mut incoming = Vec::with_capacity(records.len());
    let mut total = 0usize;
    for (i, r) in records.into_iter().enumerate() {
        let data = match STANDARD.decode(r.data.as_bytes()) {
            Ok(d) => d,
            Err(e) => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    format!("Records[{i}].Data is not valid base64: {e}"),
                );
            }
        };
        total += data.len();
        incoming.push(IncomingRecord {
            record_id: format!("{:08x}{:016x}{:04x}", shared.instance, batch_no, i),
            data,
            arrival,
        });
    }
    if total > MAX_BATCH_BYTES {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgumentException",
            format!(
                "the records total {total} bytes; PutRecordBatch takes at most {MAX_BATCH_BYTES}"
            ),
        );
    }
    let out = transform_batch(
        &shared.config.ingest,
        &shared.handoff,
        &shared.config.retry,
        &incoming,
    )
    .await;
    // Moved out once the stage is done, not copied for every record first.
    let raw = incoming.into_iter().map(|r| r.data);
    shared.counters.transform.add(out.counts);

    let mut valid = Vec::new();
    let mut valid_at = Vec::new();
    let mut refused = Vec::new();
    let mut refused_at = Vec::new();
    let mut responses = Vec::with_capacity(out.records.len());
    let mut failed_puts = 0;
    for (i, (record, raw)) in out.records.into_iter().zip(raw).enumerate() {
        match record.result {
            Ok(r) => {
                valid.push(r);
                valid_at.push(i);
                responses.push(json!({"RecordId": record.record_id}));
            }
            Err(e) if e.is_transient() => {
                failed_puts += 1;
                responses.push(unavailable(e.to_string()));
            }
            Err(failure) => {
                refused.push(FailedRecord {
                    record_id: record.record_id.clone(),
                    raw,
                    error_code: failure.code().into(),
                    error_message: failure.to_string(),
                });
                refused_at.push(i);
                responses.push(json!({"RecordId": record.record_id}));
            }
        }
    }
    // The lake is written before answering, so an acknowledged record is in
    // the lake (or in processing-failed with its reason). What the lake could
    // not take is reported failed: the producer retries it, nothing is
    // acknowledged and lost.
    if !valid.is_empty()
        && let Err(e) = shared.lake.write_records(&valid).await
    {
        tracing::error!(error = %e, records = valid.len(), "lake write failed: records are stored; reported failed so the producer retries");
        for &i in &valid_at {
            responses[i] = unavailable(format!("the lake could not be written: {e}"));
        }
        failed_puts += valid_at.len();
    }
    if !refused.is_empty()
        && let Err(e) = shared.lake.write_failed(&refused).await
    {
        tracing::error!(error = %e, records = refused.len(), "processing-failed write failed: refused records reported failed so the producer retries");
        for &i in &refused_at {
            responses[i] = unavailable(format!(
                "the record was refused, and its processing-failed record could not be written: {e}"
            ));
        }
        failed_puts += refused_at.len();
    }
    if batch {
        ok_json(
            json!({"FailedPutCount": failed_puts, "Encrypted": false, "RequestResponses": responses}),
        )
    } else if failed_puts > 0 {
        let message = responses
            .first()
            .and_then(|r| r.get("ErrorMessage"))
            .and_then(Value::as_str)
            .unwrap_or("the record could not be accepted; retry")
            .to_string();
        aws_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            message,
        )
    } else {
        let id = responses
            .first()
            .and_then(|r| r.get("RecordId"))
            .cloned()
            .unwrap_or(Value::Null);
        ok_json(json!({"RecordId": id, "Encrypted": false}))
    }
}
