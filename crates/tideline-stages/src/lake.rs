//! The data lake ports: where the transform stage's records land (S3 through
//! Firehose on AWS, JSON Lines files locally), and how they are read back
//! (`tideline reingest`, the replay's entity index). Paths are the ones
//! [`tideline_core::lake_layout`] defines, relative to the lake's root.

use crate::error::PortError;
use chrono::{DateTime, Utc};
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

/// An object of the lake, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeObject {
    /// Its path relative to the lake root, `/`-separated, as
    /// [`tideline_core::lake_layout`] lays it out.
    pub path: String,
    /// When it was written (S3 `LastModified`, a file's modification time),
    /// if the store says.
    pub written_at: Option<DateTime<Utc>>,
}

/// The data lake, read side: an S3 prefix (Firehose's lake) or a directory
/// (`tideline up`'s).
pub trait LakeReader: Send + Sync {
    /// The objects under `prefix` (relative to the lake root; `""` for all),
    /// sorted by path, across every page of the store's listing.
    fn list(&self, prefix: &str)
    -> impl Future<Output = Result<Vec<LakeObject>, PortError>> + Send;
    /// An object's bytes as stored (GZIP on S3:
    /// [`tideline_core::lake_layout::object_text`] reads either).
    fn read(&self, path: &str) -> impl Future<Output = Result<Vec<u8>, PortError>> + Send;
}

impl<L: LakeReader + ?Sized> LakeReader for &L {
    fn list(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<LakeObject>, PortError>> + Send {
        (**self).list(prefix)
    }
    fn read(&self, path: &str) -> impl Future<Output = Result<Vec<u8>, PortError>> + Send {
        (**self).read(path)
    }
}
