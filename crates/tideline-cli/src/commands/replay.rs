//! `tideline replay`: re-emit stored events to the bus, marked
//! `metadata.replay = true`, in `seq` order per entity. The flags become a
//! [`Selection`]; the replay stage (`tideline_stages::replay`) does the rest.
//!
//! - Local mode (`--endpoint`): `POST /_tideline/replay` on `tideline up`,
//!   which runs the stage over its SQLite store.
//! - AWS (`--aws --table T --bus B`): the stage over DynamoDB and EventBridge
//!   (`tideline_aws::replay`). `--entity` reads the entity's events by a
//!   `Query` on its key; `--since/--until` finds the entities with events
//!   stored in the window in the data lake (`--lake s3://…`) and reads each
//!   one's window by a `Query` on its `sk` range. The table is never scanned
//!   (decision record 0017).
//!
//! Consumers with the guard ignore a replay unless their checkpoint was
//! reset (`tideline consumer reset`).

use crate::CliError;
use clap::Args;
use std::process::ExitCode;
use tideline_core::lake_layout::LakeLocation;
use tideline_core::replay::{Selection, SelectionError};
use tideline_core::{Classify, ErrorClass};
use tideline_stages::emit::EmitConfig;
use tideline_stages::replay::{OnFailure, ReplayConfig, ReplayError};

/// Flags of `tideline replay`.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Replay one entity's events.
    #[arg(long)]
    pub entity: Option<String>,
    /// First sequence (with --entity; default 1).
    #[arg(long, requires = "entity")]
    pub from_seq: Option<u64>,
    /// Last sequence (with --entity; default: the last).
    #[arg(long, requires = "entity")]
    pub to_seq: Option<u64>,
    /// Replay every event stored at or after this RFC 3339 time.
    #[arg(long, conflicts_with = "entity")]
    pub since: Option<String>,
    /// ... and before this RFC 3339 time.
    #[arg(long, conflicts_with = "entity")]
    pub until: Option<String>,
    /// `tideline up`'s address.
    #[arg(
        long,
        default_value = "http://127.0.0.1:4566",
        env = "TIDELINE_ENDPOINT"
    )]
    pub endpoint: String,
    /// Replay on AWS: read the DynamoDB table, publish to the EventBridge bus.
    #[arg(long, requires_all = ["table", "bus"])]
    pub aws: bool,
    /// The event table (with --aws).
    #[arg(long, requires = "aws")]
    pub table: Option<String>,
    /// The event bus (with --aws).
    #[arg(long, requires = "aws")]
    pub bus: Option<String>,
    /// `source` of the re-emitted events (with --aws).
    #[arg(long, default_value = "tideline", env = "TIDELINE_EVENT_SOURCE")]
    pub source: String,
    /// The data lake Firehose writes, s3://bucket[/prefix] (with --aws and
    /// --since/--until): the window's entities are found there, so the table
    /// is never scanned.
    #[arg(long, requires = "aws")]
    pub lake: Option<String>,
}

/// A refused selection, naming the flag.
fn usage(e: SelectionError) -> CliError {
    CliError::Usage(match e {
        SelectionError::BadTime { field, value } => {
            format!("--{field} {value:?} is not an RFC 3339 time")
        }
        SelectionError::BadEntity(e) => format!("--entity {e}"),
        SelectionError::EmptyRange { from, to } => {
            format!("--to-seq {to} is below --from-seq {from}")
        }
        SelectionError::Nothing => {
            "give --entity ID [--from-seq N] [--to-seq M], or --since T [--until T]".into()
        }
    })
}

/// Runs `tideline replay`.
pub async fn run(args: ReplayArgs) -> Result<ExitCode, CliError> {
    let selection = Selection::from_request(
        args.entity.as_deref(),
        args.from_seq,
        args.to_seq,
        args.since.as_deref(),
        args.until.as_deref(),
    )
    .map_err(usage)?;
    let result = if args.aws {
        replay_aws(&args, &selection).await?
    } else {
        replay_local(&args).await?
    };
    println!("{result}");
    Ok(if result["failed"].as_u64().unwrap_or(0) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn replay_local(args: &ReplayArgs) -> Result<serde_json::Value, CliError> {
    let body = match &args.entity {
        Some(e) => {
            serde_json::json!({"entity": e, "from_seq": args.from_seq, "to_seq": args.to_seq})
        }
        None => serde_json::json!({"since": args.since, "until": args.until}),
    };
    let progress = super::progress::spinner("replaying");
    let answer = tideline_local::client::replay(&super::endpoint_url(&args.endpoint), &body)
        .await
        .map_err(crate::commands::tail::local_error);
    progress.finish_and_clear();
    Ok(local_report(answer?, args.entity.as_deref()))
}

/// The local host's answer in the shape `--aws` prints: `{"published",
/// "failed", "errors": [{"entity", "rewind_from", "error"}]}`, so scripts
/// read one shape whichever side they replay.
fn local_report(answer: serde_json::Value, entity: Option<&str>) -> serde_json::Value {
    let errors: Vec<serde_json::Value> = match &answer["rewind_from"] {
        serde_json::Value::Null if answer["error"].is_null() => Vec::new(),
        rewind_from => vec![serde_json::json!({
            "entity": entity,
            "rewind_from": rewind_from,
            "error": answer["error"],
        })],
    };
    serde_json::json!({
        "published": answer["published"].as_u64().unwrap_or(0),
        "failed": answer["failed"].as_u64().unwrap_or(0),
        "errors": errors,
    })
}

async fn replay_aws(
    args: &ReplayArgs,
    selection: &Selection,
) -> Result<serde_json::Value, CliError> {
    let (Some(table), Some(bus)) = (&args.table, &args.bus) else {
        return Err(CliError::Usage("--aws needs --table and --bus".into()));
    };
    let lake = match &args.lake {
        None => None,
        Some(lake) => match LakeLocation::parse(lake) {
            Ok(LakeLocation::S3 { bucket, prefix }) => Some((bucket, prefix)),
            Ok(LakeLocation::Dir(_)) => {
                return Err(CliError::Usage(format!(
                    "--lake {lake}: with --aws, the lake is s3://bucket[/prefix]"
                )));
            }
            Err(e) => return Err(CliError::Usage(format!("--lake {lake}: {e}"))),
        },
    };
    if matches!(selection, Selection::Window(_)) && lake.is_none() {
        return Err(CliError::Usage(
            "--since/--until with --aws finds the window's entities in the data lake, so that the table is never scanned: give --lake s3://<lake bucket>[/prefix] (terraform output data_lake_bucket)".into(),
        ));
    }
    let replay = tideline_aws::replay::AwsReplay::connect(
        table,
        bus,
        lake.as_ref().map(|(b, p)| (b.as_str(), p.as_str())),
    )
    .await;
    let config = ReplayConfig {
        emit: EmitConfig {
            source: args.source.clone(),
            ..EmitConfig::default()
        },
        on_failure: OnFailure::NextEntity,
    };
    let lake_flag = || format!("--lake {}", args.lake.as_deref().unwrap_or_default());
    let progress = super::progress::spinner("replaying");
    let report = replay.run(&config, selection).await;
    progress.finish_and_clear();
    let report = report.map_err(|e| match e {
        ReplayError::Store(s) => CliError::failed(format!("reading {table}"), s),
        // A lake that cannot be read as given (no such bucket, access denied) is a wrong flag.
        ReplayError::Index(i) if i.class() == ErrorClass::Permanent => {
            CliError::config(lake_flag(), i)
        }
        ReplayError::Index(i) => CliError::failed(format!("reading the lake ({})", lake_flag()), i),
    })?;
    let errors: Vec<serde_json::Value> = report
        .failures
        .iter()
        .map(|f| {
            serde_json::json!({"entity": f.entity.as_str(), "rewind_from": f.rewind_from, "error": f.error})
        })
        .collect();
    Ok(
        serde_json::json!({"published": report.published, "failed": report.failed, "errors": errors}),
    )
}

#[cfg(test)]
mod tests {
    use super::local_report;
    use serde_json::json;

    #[test]
    fn local_and_aws_replays_print_one_shape() {
        let ok = local_report(
            json!({"published": 3, "failed": 0, "rewind_from": null, "error": null}),
            Some("o-1"),
        );
        assert_eq!(ok, json!({"published": 3, "failed": 0, "errors": []}));
        let failed = local_report(
            json!({"published": 1, "failed": 2, "rewind_from": "5", "error": "bus down"}),
            Some("o-1"),
        );
        assert_eq!(
            failed,
            json!({"published": 1, "failed": 2, "errors": [{"entity": "o-1", "rewind_from": "5", "error": "bus down"}]})
        );
    }
}
