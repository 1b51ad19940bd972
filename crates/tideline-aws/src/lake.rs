//! The data lake on S3, read back: what Firehose wrote under the lake
//! bucket, in the layout of [`tideline_core::lake_layout`]. `tideline
//! reingest --lake s3://…` and the replay's entity index
//! ([`tideline_stages::replay::LakeIndex`]) read it through the
//! [`LakeReader`] port.
//!
//! `ListObjectsV2` returns at most 1,000 keys a page, so listing follows the
//! continuation token to the end. Objects come back as stored (Firehose
//! writes them GZIP-compressed; `lake_layout::object_text` unzips them).

use crate::error::classify;
use chrono::{DateTime, Utc};
use tideline_stages::{LakeObject, LakeReader, PortError};

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
