//! `tideline consumer reset`: delete a consumer's checkpoints (all, or one
//! entity's) so a replay is applied again and its read model can be rebuilt.
//!
//! - Local: the SQLite file the consumer keeps its checkpoints in
//!   (`--checkpoint-db`, the path after `sqlite:` in `TIDELINE_CHECKPOINT_TABLE`).
//! - AWS: the consumer's checkpoint table (`--aws --table`), items
//!   `pk` = `consumer#<name>`, `sk` = `entity#<id>`.
//!
//! Reset before the replay, with the consumer's read model cleared or built
//! to restart at sequence 1 (event-responder does the latter).

use crate::CliError;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tideline_consumer::{CheckpointStore, DynamoCheckpoints, SqliteCheckpoints};

/// Flags of `tideline consumer`.
#[derive(Args, Debug, Clone)]
pub struct ConsumerArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConsumerCommand,
}

/// `tideline consumer` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum ConsumerCommand {
    /// Delete the consumer's checkpoints, so a replay is applied again.
    Reset(ResetArgs),
}

/// Flags of `tideline consumer reset`.
#[derive(Args, Debug, Clone)]
pub struct ResetArgs {
    /// The consumer name (`TIDELINE_CONSUMER_NAME`).
    #[arg(long)]
    pub consumer: String,
    /// Only this entity's checkpoint.
    #[arg(long)]
    pub entity: Option<String>,
    /// Local: the consumer's SQLite checkpoint file.
    #[arg(long, conflicts_with = "aws", required_unless_present = "aws")]
    pub checkpoint_db: Option<PathBuf>,
    /// On AWS: the consumer's DynamoDB checkpoint table (with --table).
    #[arg(long, requires = "table")]
    pub aws: bool,
    /// The checkpoint table (with --aws).
    #[arg(long, requires = "aws")]
    pub table: Option<String>,
}

/// Runs `tideline consumer ...`.
pub async fn run(args: ConsumerArgs) -> Result<ExitCode, CliError> {
    let ConsumerCommand::Reset(args) = args.command;
    let entity = args.entity.as_deref();
    let removed = match (&args.checkpoint_db, &args.table) {
        (Some(path), _) => {
            if !path.exists() {
                return Err(CliError::Usage(format!(
                    "--checkpoint-db {}: no such file; the consumer creates it when it first runs (TIDELINE_CHECKPOINT_TABLE=sqlite:{}), so there is nothing to reset yet",
                    path.display(),
                    path.display()
                )));
            }
            let store = SqliteCheckpoints::open(path)
                .map_err(|e| CliError::config(format!("--checkpoint-db {}", path.display()), e))?;
            store.reset(&args.consumer, entity).await
        }
        (None, Some(table)) => {
            let store = DynamoCheckpoints::new(tideline_aws::ops::dynamodb_client().await, table);
            store.reset(&args.consumer, entity).await
        }
        (None, None) => {
            return Err(CliError::Usage(
                "give --checkpoint-db PATH, or --aws --table NAME".into(),
            ));
        }
    }
    .map_err(|e| CliError::failed(format!("resetting consumer {}", args.consumer), e))?;
    println!(
        "{}",
        serde_json::json!({"consumer": args.consumer, "entity": args.entity, "checkpoints_removed": removed})
    );
    Ok(ExitCode::SUCCESS)
}
