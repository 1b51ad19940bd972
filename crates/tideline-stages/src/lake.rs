//! The data lake port: where the transform stage's records land (S3 through
//! Firehose on AWS, JSON Lines files locally).

use crate::error::PortError;
use std::future::Future;
use tideline_core::ingest::AdmittedRecord;

/// A record refused by the transform, with its reason, for `processing-failed/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// The Firehose record id, or an ingest-assigned id.
    pub record_id: String,
    /// The raw bytes as received.
    pub raw: Vec<u8>,
    /// Short code (e.g. `NotJson`, `EnqueueFailed`).
    pub error_code: String,
    /// Human-readable reason.
    pub error_message: String,
}

/// The data lake (S3 through Firehose, or JSON Lines files).
pub trait Lake: Send + Sync {
    /// Appends normalised records as JSON Lines.
    fn write_records(
        &self,
        records: &[AdmittedRecord],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Writes refused records under `processing-failed/`, each with its reason.
    fn write_failed(
        &self,
        records: &[FailedRecord],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
