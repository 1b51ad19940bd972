//! `tideline reingest`: feed lake files back through ingest.
//!
//! Lake files are JSON Lines. A normal line is a normalised record, which the
//! transform accepts again with its stable `id`; a `processing-failed/` line
//! carries the original bytes base64-encoded in `rawData` (send those once
//! the cause is fixed). Records go through the Firehose API with
//! `PutRecordBatch` (at most 500 records and 4 MiB per call; AWS-CONTRACTS.md),
//! and only the failed records of a call are resent, with backoff. Since event
//! ids are stable, the store keeps each event once however often it is
//! reingested (INVARIANTS.md #2).
//!
//! `--lake` is a local directory (`tideline up`'s `<data-dir>/lake`) or an S3
//! prefix (`s3://bucket/prefix`, the Firehose data lake: ListObjectsV2 is
//! followed across pages). Time bounds use the day partitions local mode
//! and Firehose write (`date=YYYY-MM-DD/`, `tideline_core::lake_layout`), or
//! the hour directories of earlier local lakes (`YYYY/MM/DD/HH/`); objects
//! with neither are always included. S3 objects may be GZIP-compressed.

use crate::CliError;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tideline_core::retry::RetryPolicy;

/// PutRecordBatch: at most 500 records per call.
const MAX_BATCH_RECORDS: usize = 500;
/// PutRecordBatch: at most 4 MiB per call.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Flags of `tideline reingest`.
#[derive(Args, Debug, Clone)]
pub struct ReingestArgs {
    /// The lake: a directory of JSON Lines files (events/event_type=…/date=…/, processing-failed/…), or s3://bucket/prefix.
    #[arg(long)]
    pub lake: String,
    /// Only files of hours at or after this RFC 3339 time.
    #[arg(long)]
    pub from: Option<String>,
    /// Only files of hours before this RFC 3339 time.
    #[arg(long)]
    pub to: Option<String>,
    /// Only `processing-failed/` files.
    #[arg(long)]
    pub failed_only: bool,
    /// `tideline up`'s Firehose API.
    #[arg(
        long,
        default_value = "http://127.0.0.1:4566",
        env = "TIDELINE_ENDPOINT"
    )]
    pub endpoint: String,
    /// Send to a Firehose delivery stream on AWS (with --stream).
    #[arg(long)]
    pub aws: bool,
    /// The delivery stream name.
    #[arg(long, default_value = "tideline-ingest")]
    pub stream: String,
}

fn parse_bound(name: &str, t: &Option<String>) -> Result<Option<DateTime<Utc>>, CliError> {
    t.as_ref()
        .map(|t| {
            tideline_core::keys::parse_timestamp(t)
                .ok_or_else(|| CliError::Usage(format!("--{name} {t:?} is not an RFC 3339 time")))
        })
        .transpose()
}

/// The time span a lake object covers, from its path: a `date=YYYY-MM-DD`
/// partition (the lake layout, one day) or `YYYY/MM/DD/HH/` (earlier local
/// lakes, one hour).
fn object_period(path: &str) -> Option<(DateTime<Utc>, chrono::Duration)> {
    let parts: Vec<&str> = path.split('/').collect();
    let dirs = &parts[..parts.len().saturating_sub(1)];
    if let Some(day) = dirs.iter().rev().find_map(|d| d.strip_prefix("date=")) {
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        return Some((
            date.and_hms_opt(0, 0, 0)?.and_utc(),
            chrono::Duration::days(1),
        ));
    }
    let [.., y, m, d, h] = dirs else {
        return None;
    };
    let start = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?
        .and_hms_opt(h.parse().ok()?, 0, 0)?;
    Some((start.and_utc(), chrono::Duration::hours(1)))
}

/// Whether an object (path relative to the lake root) is selected.
fn selected(
    relative: &str,
    failed_only: bool,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> bool {
    let failed = relative.starts_with("processing-failed");
    let period = object_period(relative);
    (!failed_only || failed)
        && from.is_none_or(|from| period.is_none_or(|(start, len)| start + len > from))
        && to.is_none_or(|to| period.is_none_or(|(start, _)| start < to))
}

/// Where lake objects are read from.
enum LakeSource {
    Dir(PathBuf),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
}

impl LakeSource {
    async fn open(lake: &str) -> Result<Self, CliError> {
        let Some(rest) = lake.strip_prefix("s3://") else {
            return Ok(Self::Dir(PathBuf::from(lake)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(CliError::Usage(format!("--lake {lake}: no bucket name")));
        }
        let sdk = tideline_aws::load_sdk_config().await;
        // Emulators and S3-compatible stores behind an endpoint override need path-style URLs.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build();
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        Ok(Self::S3 {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// Object names relative to the lake root, sorted.
    async fn list(&self) -> Result<Vec<String>, CliError> {
        let mut names = Vec::new();
        match self {
            Self::Dir(root) => {
                let mut files = Vec::new();
                collect_files(root, &mut files)
                    .map_err(|e| CliError::config(format!("--lake {}", root.display()), e))?;
                for f in files {
                    if let Ok(rel) = f.strip_prefix(root) {
                        names.push(
                            rel.to_string_lossy()
                                .replace(std::path::MAIN_SEPARATOR, "/"),
                        );
                    }
                }
            }
            Self::S3 {
                client,
                bucket,
                prefix,
            } => {
                // ListObjectsV2 returns at most 1,000 keys a page: follow the token.
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page =
                        page.map_err(|e| CliError::failed(format!("s3://{bucket}/{prefix}"), e))?;
                    for object in page.contents() {
                        if let Some(key) = object.key().filter(|k| !k.ends_with('/')) {
                            names
                                .push(key.strip_prefix(prefix.as_str()).unwrap_or(key).to_string());
                        }
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    async fn read(&self, name: &str) -> Result<String, CliError> {
        match self {
            Self::Dir(root) => std::fs::read_to_string(root.join(name))
                .map_err(|e| CliError::failed(root.join(name).display().to_string(), e)),
            Self::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{name}");
                let object = client
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| CliError::failed(format!("s3://{bucket}/{key}"), e))?;
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| CliError::failed(format!("s3://{bucket}/{key}"), e))?
                    .into_bytes();
                object_text(bytes.to_vec())
                    .map_err(|e| CliError::Runtime(format!("s3://{bucket}/{key}: {e}")))
            }
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "json")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The text of a lake object: Firehose writes the S3 lake GZIP-compressed
/// (recognised by the gzip magic bytes, as its keys carry no reliable
/// extension); local mode and older objects are plain JSON Lines.
pub fn object_text(bytes: Vec<u8>) -> Result<String, String> {
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| format!("not valid gzip: {e}"))?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 JSON Lines: {e}"))
}

/// The record bytes of one lake line.
pub fn record_of_line(line: &str) -> Result<Vec<u8>, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("rawData").and_then(|v| v.as_str()) {
        Some(raw) => base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| format!("rawData is not base64: {e}")),
        None => Ok(line.as_bytes().to_vec()),
    }
}

/// Runs `tideline reingest`.
pub async fn run(args: ReingestArgs) -> Result<ExitCode, CliError> {
    let from = parse_bound("from", &args.from)?;
    let to = parse_bound("to", &args.to)?;
    let source = LakeSource::open(&args.lake).await?;
    let mut files = source.list().await?;
    files.retain(|f| selected(f, args.failed_only, from, to));

    let client = if args.aws {
        aws_sdk_firehose::Client::new(&tideline_aws::load_sdk_config().await)
    } else {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_firehose::config::Credentials::new(
                "local", "local", None, None, "tideline",
            ))
            .endpoint_url(&args.endpoint)
            .load()
            .await;
        aws_sdk_firehose::Client::new(&sdk)
    };

    let (mut sent, mut skipped, mut lines) = (0u64, 0u64, 0u64);
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut batch_bytes = 0;
    for file in &files {
        let text = source.read(file).await?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            lines += 1;
            let record = match record_of_line(line) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("warning: {file}:{}: {e}; skipped", n + 1);
                    skipped += 1;
                    continue;
                }
            };
            if batch.len() == MAX_BATCH_RECORDS || batch_bytes + record.len() > MAX_BATCH_BYTES {
                sent += put_batch(&client, &args.stream, std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            batch_bytes += record.len();
            batch.push(record);
        }
    }
    if !batch.is_empty() {
        sent += put_batch(&client, &args.stream, batch).await?;
    }
    println!(
        "{}",
        serde_json::json!({"files": files.len(), "lines": lines, "sent": sent, "skipped": skipped})
    );
    Ok(ExitCode::SUCCESS)
}

/// One PutRecordBatch, resending only the failed records, with backoff, until
/// the retries run out.
async fn put_batch(
    client: &aws_sdk_firehose::Client,
    stream: &str,
    records: Vec<Vec<u8>>,
) -> Result<u64, CliError> {
    let total = records.len() as u64;
    let retry = RetryPolicy::default();
    let mut pending = records;
    let mut attempt = 0;
    let mut last_error = String::new();
    while !pending.is_empty() && attempt < retry.max_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(retry.jittered_delay(attempt)).await;
        }
        attempt += 1;
        let entries: Vec<Record> = pending
            .iter()
            .map(|r| Record::builder().data(Blob::new(r.clone())).build())
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::failed("PutRecordBatch record", e))?;
        match client
            .put_record_batch()
            .delivery_stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                if out.failed_put_count == 0 {
                    pending.clear();
                } else {
                    let responses = out.request_responses;
                    let mut still = Vec::new();
                    for (i, r) in pending.into_iter().enumerate() {
                        if let Some(resp) = responses.get(i)
                            && resp.error_code.is_some()
                        {
                            last_error = format!("{:?}: {:?}", resp.error_code, resp.error_message);
                            still.push(r);
                        }
                    }
                    pending = still;
                }
            }
            Err(e) => {
                use aws_sdk_firehose::error::ProvideErrorMetadata;
                last_error = format!(
                    "{}: {}",
                    e.code().unwrap_or("error"),
                    tideline_aws::error::DisplayChain(&e)
                );
                if e.code() == Some("ResourceNotFoundException") {
                    return Err(CliError::config(
                        format!("--stream {stream}: ResourceNotFoundException"),
                        e,
                    ));
                }
            }
        }
    }
    if pending.is_empty() {
        Ok(total)
    } else {
        Err(CliError::Runtime(format!(
            "{} of {total} records not accepted after {attempt} attempts: {last_error}",
            pending.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_objects_are_read_like_plain_ones() {
        let text = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let compressed = gz.finish().unwrap();
        assert_eq!(object_text(compressed).unwrap(), text);
        assert_eq!(object_text(text.as_bytes().to_vec()).unwrap(), text);
    }

    #[test]
    fn a_broken_gzip_object_is_an_error_not_a_panic() {
        assert!(object_text(vec![0x1f, 0x8b, 0, 1, 2]).is_err());
    }

    #[test]
    fn the_lake_layout_day_bounds_an_object() {
        let (start, len) =
            object_period("events/event_type=OrderPlaced/date=2026-11-23/part-1.jsonl").unwrap();
        assert_eq!(start.to_rfc3339(), "2026-11-23T00:00:00+00:00");
        assert_eq!(len, chrono::Duration::days(1));
    }
}
