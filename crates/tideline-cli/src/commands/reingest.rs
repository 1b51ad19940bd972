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
//! `--lake` is a local directory (`tideline up`'s `<data-dir>/lake`, or an S3
//! prefix synced down with `aws s3 sync`). `s3://` URLs are not read directly yet.

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
    /// The lake: a directory of JSON Lines files (YYYY/MM/DD/HH/, processing-failed/...).
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

/// The hour a lake file belongs to, from its `YYYY/MM/DD/HH/` directories.
fn file_hour(path: &Path) -> Option<DateTime<Utc>> {
    let parts: Vec<&str> = path
        .parent()?
        .components()
        .rev()
        .take(4)
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    let [h, d, m, y] = parts.as_slice() else {
        return None;
    };
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?
        .and_hms_opt(h.parse().ok()?, 0, 0)
        .map(|t| t.and_utc())
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
    if args.lake.starts_with("s3://") {
        return Err(CliError::Usage(
            "--lake s3://... is not supported yet: `aws s3 sync s3://bucket/prefix DIR` first, then --lake DIR".into(),
        ));
    }
    let from = parse_bound("from", &args.from)?;
    let to = parse_bound("to", &args.to)?;
    let root = PathBuf::from(&args.lake);
    let mut files = Vec::new();
    collect_files(&root, &mut files)
        .map_err(|e| CliError::Usage(format!("--lake {}: {e}", root.display())))?;
    files.sort();
    files.retain(|f| {
        let failed = f
            .strip_prefix(&root)
            .is_ok_and(|r| r.starts_with("processing-failed"));
        let hour = file_hour(f);
        (!args.failed_only || failed)
            && from.is_none_or(|from| hour.is_none_or(|h| h + chrono::Duration::hours(1) > from))
            && to.is_none_or(|to| hour.is_none_or(|h| h < to))
    });

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
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", file.display())))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            lines += 1;
            let record = match record_of_line(line) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("warning: {}:{}: {e}; skipped", file.display(), n + 1);
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
            .map_err(|e| CliError::Runtime(e.to_string()))?;
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
                    return Err(CliError::Usage(format!("--stream {stream}: {last_error}")));
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
