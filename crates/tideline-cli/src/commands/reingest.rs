//! `tideline reingest`: feed lake files back through ingest.
//!
//! The flags become a lake reader (a directory: `tideline up`'s
//! `<data-dir>/lake`; or `s3://bucket/prefix`, Firehose's lake), a Firehose
//! client (`tideline up`'s API, or `--aws`) and a selection; the work is
//! `tideline_client::reingest`: accepted lines go back with their stable
//! `id`, `processing-failed/` lines with their original bytes (`rawData`),
//! in `PutRecordBatch` calls (500 records, 4 MiB) that resend only failed
//! records, with backoff. The store keeps each event once however often it
//! is reingested (INVARIANTS.md #2). Time bounds use the day partitions of
//! the lake layout (`date=YYYY-MM-DD/`, `tideline_core::lake_layout`) or the
//! hour directories of earlier local lakes (`YYYY/MM/DD/HH/`); objects with
//! neither are always included.

use crate::CliError;
use chrono::{DateTime, Utc};
use clap::Args;
use std::process::ExitCode;
use tideline_aws::lake::S3Lake;
use tideline_aws::ops::{FirehoseEndpoint, firehose_client};
use tideline_client::reingest::{ReingestError, ReingestReport, ReingestSelection, reingest};
use tideline_client::{FirehoseTransport, RetryPolicy, TokioClock};
use tideline_core::lake_layout::{LakeLocation, LakeReadError};
use tideline_core::{Classify, ErrorClass};
use tideline_embedded::lake::LakeDir;

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

/// Prints a line that holds no record; it is counted and passed over.
fn warn_skipped(path: &str, line: usize, e: &LakeReadError) {
    eprintln!("warning: {path}:{line}: {e}; skipped");
}

/// Runs `tideline reingest`.
pub async fn run(args: ReingestArgs) -> Result<ExitCode, CliError> {
    let selection = ReingestSelection {
        from: parse_bound("from", &args.from)?,
        to: parse_bound("to", &args.to)?,
        failed_only: args.failed_only,
    };
    let location = LakeLocation::parse(&args.lake)
        .map_err(|e| CliError::Usage(format!("--lake {}: {e}", args.lake)))?;
    let endpoint = if args.aws {
        FirehoseEndpoint::Aws
    } else {
        let url = super::endpoint_url(&args.endpoint);
        // Asked first, so that a stopped server is one clear sentence rather
        // than the SDK's dispatch failure for every batch.
        let health = format!("{}/health", url.trim_end_matches('/'));
        if let Err(e) = reqwest::get(&health).await {
            return Err(CliError::failed(
                format!(
                    "cannot reach tideline up at {url} (is `tideline up` running? set --endpoint)"
                ),
                e,
            ));
        }
        FirehoseEndpoint::Local(url)
    };
    let transport = FirehoseTransport::new(firehose_client(&endpoint).await, &args.stream);
    let (clock, retry) = (TokioClock::default(), RetryPolicy::default());
    let progress = super::progress::spinner(&format!("reingesting {}", args.lake));
    let report = match location {
        LakeLocation::Dir(dir) => {
            let lake = LakeDir::new(dir);
            reingest(&lake, &transport, &clock, &retry, &selection, warn_skipped).await
        }
        LakeLocation::S3 { bucket, prefix } => {
            let lake = S3Lake::connect(bucket, &prefix).await;
            reingest(&lake, &transport, &clock, &retry, &selection, warn_skipped).await
        }
    }
    .map_err(|e| cli_error(&args, e));
    progress.finish_and_clear();
    let report = report?;
    let ReingestReport {
        files,
        lines,
        sent,
        skipped,
    } = report;
    println!(
        "{}",
        serde_json::json!({"files": files, "lines": lines, "sent": sent, "skipped": skipped})
    );
    Ok(ExitCode::SUCCESS)
}

/// A failure, naming the flag at fault when it is a wrong flag; the library's
/// error stays its cause.
fn cli_error(args: &ReingestArgs, e: ReingestError) -> CliError {
    match (&e, e.class()) {
        (ReingestError::Lake(_), ErrorClass::Permanent) => {
            CliError::config(format!("--lake {}", args.lake), e)
        }
        (ReingestError::NotAccepted { .. }, ErrorClass::Permanent) => {
            CliError::config(format!("--stream {}", args.stream), e)
        }
        (ReingestError::NotAccepted { .. }, _) => {
            CliError::failed(format!("PutRecordBatch to {}", args.stream), e)
        }
        _ => CliError::failed(format!("reading the lake {}", args.lake), e),
    }
}
