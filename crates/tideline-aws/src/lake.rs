//! The data lake on S3: what Firehose wrote under the lake bucket, in the
//! layout of [`tideline_core::lake_layout`]. `tideline reingest --lake
//! s3://…` and the replay's entity index
//! ([`tideline_stages::replay::LakeIndex`]) read it through the
//! [`LakeReader`] port. The command API writes the events it appends there
//! through the [`Lake`] port, in the same layout and line format (events
//! appended by a command never pass Firehose; decision 0020).
//!
//! `ListObjectsV2` returns at most 1,000 keys a page, so listing follows the
//! continuation token to the end. Objects come back as stored (Firehose
//! writes them GZIP-compressed; `lake_layout::object_text` unzips them).

use crate::error::classify;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tideline_core::ingest::AdmittedRecord;
use tideline_core::lake_layout;
use tideline_stages::{FailedRecord, Lake, LakeObject, LakeReader, PortError};

/// A lake under `s3://bucket/prefix`.
#[derive(Debug, Clone)]
pub struct S3Lake {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
}

impl S3Lake {
    /// A lake at `prefix` (a key prefix; `/` is added if missing) in `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: &str) -> Self {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        Self {
            client,
            bucket: bucket.into(),
            prefix,
        }
    }

    /// A lake with a client from the environment's configuration
    /// ([`crate::load_sdk_config`]). With an endpoint override
    /// (`AWS_ENDPOINT_URL[_S3]`: an emulator or an S3-compatible store) the
    /// client uses path-style URLs, which such endpoints need.
    pub async fn connect(bucket: impl Into<String>, prefix: &str) -> Self {
        let sdk = crate::load_sdk_config().await;
        let path_style = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build();
        Self::new(aws_sdk_s3::Client::from_conf(config), bucket, prefix)
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// An S3 time as chrono's.
fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// A classed error whose message names the object or prefix; its source
/// (the SDK error) is kept.
fn at(location: String, mut e: PortError) -> PortError {
    e.message = format!("{location}: {}", e.message);
    e
}

impl LakeReader for S3Lake {
    async fn list(&self, prefix: &str) -> Result<Vec<LakeObject>, PortError> {
        let full = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                at(
                    format!("s3://{}/{full}", self.bucket),
                    classify("s3", "ListObjectsV2", e),
                )
            })?;
            for object in page.contents() {
                let Some(key) = object.key().filter(|k| !k.ends_with('/')) else {
                    continue;
                };
                objects.push(LakeObject {
                    path: key.strip_prefix(&self.prefix).unwrap_or(key).to_string(),
                    written_at: object.last_modified().and_then(to_chrono),
                });
            }
        }
        objects.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(objects)
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>, PortError> {
        let key = format!("{}{path}", self.prefix);
        let location = || format!("s3://{}/{key}", self.bucket);
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| at(location(), classify("s3", "GetObject", e)))?;
        let bytes = object
            .body
            .collect()
            .await
            // The connection broke mid-body: reading again may succeed.
            .map_err(|e| {
                PortError::retryable("s3", format!("{}: {e}", location())).with_source(e)
            })?;
        Ok(bytes.into_bytes().to_vec())
    }
}

/// GZIP-compresses a lake object, as Firehose compresses the lake's.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>, PortError> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| PortError::permanent("s3", format!("gzip of a lake object: {e}")))
}

/// The name of an object the command API writes: `command-<hash>.gz`. The
/// hash covers the object's directory and its lines' ids, and nothing of the
/// clock, so a retried command (same event ids) writes the same key again
/// instead of a second copy of its events (Firehose's own objects are at
/// least once).
fn command_object_name(dir: &str, ids: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(dir.as_bytes());
    for id in ids {
        hash.update([0u8]);
        hash.update(id.as_bytes());
    }
    let digest = hex::encode(hash.finalize());
    format!("command-{}.gz", &digest[..32])
}

impl S3Lake {
    async fn put(&self, relative: &str, lines: &[u8]) -> Result<(), PortError> {
        let key = format!("{}{relative}", self.prefix);
        let body = gzip(lines)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .map_err(|e| {
                at(
                    format!("s3://{}/{key}", self.bucket),
                    classify("s3", "PutObject", e),
                )
            })?;
        Ok(())
    }
}

/// The lake written directly, by the command API: one GZIP JSON Lines object
/// per partition and command, in Firehose's layout and line format, so
/// Athena, `tideline reingest` and the replay's index read commands' events
/// as they read ingested ones.
impl Lake for S3Lake {
    async fn write_records(&self, records: &[AdmittedRecord]) -> Result<(), PortError> {
        let mut by_partition: BTreeMap<String, (Vec<u8>, Vec<&str>)> = BTreeMap::new();
        for admitted in records {
            let r = &admitted.record;
            let (lines, ids) = by_partition
                .entry(lake_layout::events_dir(&r.event_type, &r.occurred_at))
                .or_default();
            // The line is the body serialised once at admission, as the
            // transformer returns it to Firehose.
            lines.extend_from_slice(admitted.body.as_bytes());
            lines.push(b'\n');
            ids.push(r.id.as_str());
        }
        for (dir, (lines, ids)) in by_partition {
            let name = command_object_name(&dir, &ids);
            self.put(&format!("{dir}{name}"), &lines).await?;
        }
        Ok(())
    }

    async fn write_failed(&self, records: &[FailedRecord]) -> Result<(), PortError> {
        if records.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let mut lines = Vec::new();
        for r in records {
            lines.extend(
                lake_layout::processing_failed_line(
                    &r.record_id,
                    &r.raw,
                    &r.error_code,
                    &r.error_message,
                    now,
                )
                .into_bytes(),
            );
            lines.push(b'\n');
        }
        let dir = lake_layout::processing_failed_dir(
            lake_layout::ERROR_TYPE_PROCESSING_FAILED,
            &lake_layout::day_of(now),
        );
        let ids: Vec<&str> = records.iter().map(|r| r.record_id.as_str()).collect();
        let name = command_object_name(&dir, &ids);
        self.put(&format!("{dir}{name}"), &lines).await
    }
}
