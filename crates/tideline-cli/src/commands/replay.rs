//! `tideline replay`: re-emit stored events to the bus, marked
//! `metadata.replay = true`, in `seq` order per entity.
//!
//! - Local mode (`--endpoint`): `POST /_tideline/replay` on `tideline up`.
//! - AWS (`--aws --table T --bus B`): reads the table with the store adapter
//!   (`--entity`: paged `Query` of the entity's events in `sk` order; `--since/--until`:
//!   a paged `Scan` filtered on `kind` and `stored_at`, which reads the whole
//!   table, then per entity in `seq` order) and publishes with `PutEvents`
//!   through the emit stage's `replay_events`.
//!
//! Consumers with the guard ignore a replay unless their checkpoint was
//! reset (`tideline consumer reset`).

use crate::CliError;
use clap::Args;
use std::collections::BTreeMap;
use std::process::ExitCode;
use tideline_core::keys::{format_timestamp, parse_timestamp};
use tideline_core::{EntityId, StoredEvent};
use tideline_stages::EventStore;
use tideline_stages::emit::{EmitConfig, replay_events};

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
}

fn check_time(name: &str, t: &Option<String>) -> Result<Option<String>, CliError> {
    match t {
        None => Ok(None),
        Some(t) => parse_timestamp(t)
            .map(|t| Some(format_timestamp(t)))
            .ok_or_else(|| CliError::Usage(format!("--{name} {t:?} is not an RFC 3339 time"))),
    }
}

/// Runs `tideline replay`.
pub async fn run(args: ReplayArgs) -> Result<ExitCode, CliError> {
    if args.entity.is_none() && args.since.is_none() && args.until.is_none() {
        return Err(CliError::Usage(
            "give --entity ID [--from-seq N] [--to-seq M], or --since T [--until T]".into(),
        ));
    }
    let since = check_time("since", &args.since)?;
    let until = check_time("until", &args.until)?;
    let result = if args.aws {
        replay_aws(&args, since, until).await?
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
    let url = format!("{}/_tideline/replay", args.endpoint.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&url)
        // `tideline up` takes a replay only from a request a web form cannot
        // make: `.json` sets the JSON content type; the header says so too.
        .header("x-tideline-request", "1")
        .json(&body)
        .send()
        .await
        .map_err(|e| CliError::failed(format!("--endpoint {url}"), e))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::json!({"error": text}));
    if status.is_client_error() {
        return Err(CliError::Usage(format!("{url}: {status}: {value}")));
    }
    Ok(value)
}

async fn replay_aws(
    args: &ReplayArgs,
    since: Option<String>,
    until: Option<String>,
) -> Result<serde_json::Value, CliError> {
    let (Some(table), Some(bus)) = (&args.table, &args.bus) else {
        return Err(CliError::Usage("--aws needs --table and --bus".into()));
    };
    let sdk = tideline_aws::load_sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = tideline_aws::DynamoStore::new(ddb.clone(), table);
    let bus = tideline_aws::EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus);
    let config = EmitConfig {
        source: args.source.clone(),
        ..EmitConfig::default()
    };
    let mut by_entity: BTreeMap<String, Vec<StoredEvent>> = BTreeMap::new();
    if let Some(entity) = &args.entity {
        let id = EntityId::new(entity.as_str()).map_err(|e| CliError::config("--entity", e))?;
        let to = args.to_seq.unwrap_or(u64::MAX);
        let mut after = args.from_seq.unwrap_or(1).max(1) - 1;
        let list = by_entity.entry(entity.clone()).or_default();
        while after < to {
            let page = store
                .read_events(&id, after, 500)
                .await
                .map_err(|e| CliError::failed(format!("reading {table}"), e))?;
            let Some(last) = page.last().map(|e| e.seq) else {
                break;
            };
            list.extend(page.into_iter().filter(|e| e.seq <= to));
            after = last;
        }
    } else {
        let mut start = None;
        loop {
            let mut scan = ddb
                .scan()
                .table_name(table)
                .consistent_read(true)
                .filter_expression("#k = :event")
                .expression_attribute_names("#k", "kind")
                .expression_attribute_values(
                    ":event",
                    aws_sdk_dynamodb::types::AttributeValue::S("event".into()),
                )
                .set_exclusive_start_key(start.take());
            if let Some(s) = &since {
                scan = scan
                    .filter_expression("#k = :event AND stored_at >= :since")
                    .expression_attribute_values(
                        ":since",
                        aws_sdk_dynamodb::types::AttributeValue::S(s.clone()),
                    );
            }
            let out = scan
                .send()
                .await
                .map_err(|e| CliError::failed(format!("scanning {table}"), e))?;
            for item in out.items.unwrap_or_default() {
                let event = tideline_aws::store::decode_event(&item).map_err(|e| {
                    CliError::Runtime(format!("{table}: undecodable event item: {e}"))
                })?;
                if until.as_ref().is_none_or(|u| &event.stored_at < u) {
                    by_entity
                        .entry(event.entity_id.to_string())
                        .or_default()
                        .push(event);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
    }
    let (mut published, mut failed) = (0u64, 0u64);
    let mut errors = Vec::new();
    for (entity, mut events) in by_entity {
        events.sort_by_key(|e| e.seq);
        let out = replay_events(&bus, &config, &events).await;
        published += out.counts.sent;
        failed += out.counts.failed;
        if let Some(from) = out.rewind_from {
            errors.push(
                serde_json::json!({"entity": entity, "rewind_from": from, "error": out.error}),
            );
        }
    }
    Ok(serde_json::json!({"published": published, "failed": failed, "errors": errors}))
}
