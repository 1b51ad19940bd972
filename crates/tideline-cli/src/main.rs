//! `tideline`: run the pipeline on one machine, and operate it.
//!
//! - `tideline up`: local mode, the whole pipeline in one process over embedded storage;
//! - `tideline demo`: a throwaway stack with a realistic sample pushed through it;
//! - `tideline pattern test|check`: EventBridge patterns and rules files;
//! - `tideline tail`: the live bus, locally (server-sent events) or on AWS (a temporary queue and rule);
//! - `tideline replay`, `tideline consumer reset`, `tideline reingest`: rebuild read models, re-ingest the lake.
//! - `tideline pattern test|check`: try patterns and validate rules files offline;
//! - `tideline tail`: follow the bus live (locally, or on AWS with `--aws --bus`).
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad input or configuration
//! (every such message names the flag, file or field at fault).

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tideline",
    version,
    about = "Event-sourced store with change-data capture: local mode and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline locally: Firehose API → transform → FIFO queue → store → change feed → bus → rules.
    Up(commands::up::UpArgs),
    /// Start a throwaway stack, push a realistic sample through the Firehose API, and show what arrives.
    Demo(commands::demo::DemoArgs),
    /// Try EventBridge patterns against events, and validate rules files.
    Pattern(commands::pattern::PatternArgs),
    /// Follow the bus live as JSON Lines: `tideline up` locally, or an EventBridge bus with --aws.
    Tail(commands::tail::TailArgs),
    /// Re-emit stored events to the bus, marked replay, in order per entity.
    Replay(commands::replay::ReplayArgs),
    /// Operate consumers: `reset` deletes checkpoints so a replay rebuilds a read model.
    Consumer(commands::consumer::ConsumerArgs),
    /// Feed lake files (processing-failed/ included) back through ingest.
    Reingest(commands::reingest::ReingestArgs),
    /// What a deployment costs on AWS per month and per million events, per service, next to the reference design.
    Cost(commands::cost::CostArgs),
    /// Event schemas: `check FILE` validates a sample record, `list` lists types and versions.
    Schema(commands::schema::SchemaArgs),
}

/// A command's failure: exit code 2 for bad input or configuration, 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input, flag, file or configuration.
    #[error("{0}")]
    Usage(String),
    /// Something failed while running.
    #[error("{0}")]
    Runtime(String),
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr so stdout stays clean for data (log targets, `tail`, `pattern test`).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Up(args) => commands::up::run(args).await,
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Pattern(args) => commands::pattern::run(args),
        Command::Tail(args) => commands::tail::run(args).await,
        Command::Replay(args) => commands::replay::run(args).await,
        Command::Consumer(args) => commands::consumer::run(args).await,
        Command::Reingest(args) => commands::reingest::run(args).await,
        Command::Cost(args) => commands::cost::run(args),
        Command::Schema(args) => commands::schema::run(args),
    };
    match result {
        Ok(code) => code,
        Err(CliError::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(CliError::Runtime(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}
