//! Firehose `PutRecordBatch` as a [`Transport`]: against AWS, moto, or
//! `tideline up`'s local Firehose API (same wire protocol).
//!
//! A call can partly fail: `FailedPutCount` > 0 and `RequestResponses[i]`
//! carries an `ErrorCode` for each record `i` not taken (AWS-CONTRACTS.md,
//! Firehose). Those are per-record throttling or internal failures, so they
//! are retryable; whole-call errors are classed by their code.

use crate::deliver::{BatchLimits, CallError, CallResult, RecordError, Transport};
use aws_sdk_firehose::error::ProvideErrorMetadata;
use std::future::Future;

/// `PutRecordBatch` to one delivery stream.
#[derive(Debug, Clone)]
pub struct FirehoseTransport {
    client: aws_sdk_firehose::Client,
    stream: String,
    limits: BatchLimits,
}

impl FirehoseTransport {
    /// Sends to delivery stream `stream` with Firehose's batch limits.
    pub fn new(client: aws_sdk_firehose::Client, stream: impl Into<String>) -> Self {
        Self {
            client,
            stream: stream.into(),
            limits: BatchLimits::FIREHOSE,
        }
    }

    /// Smaller calls than Firehose allows (larger ones are refused).
    pub fn with_limits(mut self, limits: BatchLimits) -> Result<Self, String> {
        limits.validate_for_firehose()?;
        self.limits = limits;
        Ok(self)
    }

    /// The delivery stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }
}

/// Error codes that no retry will fix.
pub fn is_permanent_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ResourceNotFoundException"
                | "InvalidArgumentException"
                | "InvalidKMSResourceException"
                | "InvalidSourceException"
                | "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ValidationException"
                | "SerializationException"
        )
    )
}

fn call_error<E, R>(e: &aws_sdk_firehose::error::SdkError<E, R>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_firehose::error::SdkError;
    let message = aws_sdk_firehose::error::DisplayErrorContext(e).to_string();
    let retryable = match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(se) => !is_permanent_code(se.err().code()),
        // Timeouts, dispatch and response errors: the call may not have happened.
        _ => true,
    };
    CallError { message, retryable }
}

impl<T: AsRef<[u8]> + Sync> Transport<T> for FirehoseTransport {
    fn limits(&self) -> BatchLimits {
        self.limits
    }

    fn put(&self, batch: &[&T]) -> impl Future<Output = CallResult> + Send {
        use aws_sdk_firehose::primitives::Blob;
        use aws_sdk_firehose::types::Record;
        // The bytes go as they are: no re-encoding, so non-ASCII text arrives
        // byte-exact and the id derived from the bytes is the one ingest derives.
        let records: Result<Vec<Record>, _> = batch
            .iter()
            .map(|r| Record::builder().data(Blob::new(r.as_ref())).build())
            .collect();
        let n = batch.len();
        async move {
            let records = records.map_err(|e| CallError {
                message: e.to_string(),
                retryable: false,
            })?;
            let out = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.stream)
                .set_records(Some(records))
                .send()
                .await
                .map_err(|e| call_error(&e))?;
            if out.failed_put_count() == 0 {
                return Ok(vec![None; n]);
            }
            // Partial failure: RequestResponses[i] matches Records[i]; only
            // entries with an ErrorCode failed.
            Ok(out
                .request_responses()
                .iter()
                .map(|r| {
                    r.error_code().map(|code| RecordError {
                        code: format!("{code}: {}", r.error_message().unwrap_or_default()),
                        retryable: true,
                    })
                })
                .collect())
        }
    }
}
