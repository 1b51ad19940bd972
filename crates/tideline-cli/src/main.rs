//! `tideline`: run the pipeline on one machine, and operate it.
//!
//! - `tideline up`: local mode, the whole pipeline in one process over embedded storage;
//! - `tideline demo`: a throwaway stack with a realistic sample pushed through it;
//! - `tideline pattern test|check`: EventBridge patterns and rules files;
//! - `tideline subscribe`: the realtime WebSocket (docs/realtime.md), as JSON Lines;
//! - `tideline tail`: the live bus, locally (server-sent events) or on AWS (a temporary queue and rule);
//! - `tideline replay`, `tideline consumer reset`, `tideline reingest`: rebuild read models, re-ingest the lake.
//!
//! Exit codes (documented for users in docs/getting-started.md): 0 success,
//! 1 runtime failure (or `pattern test` printing `false`), 2 bad input or
//! configuration (every such message names the flag, file or field at fault).

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tideline",
    version,
    about = "Event-sourced store with change-data capture: local mode and tools",
    after_help = "Exit codes: 0 success; 1 a failure while running (and `pattern test` printing false); 2 bad input or configuration, named in the message.\nWalk-through: docs/getting-started.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline locally: Firehose API → transform → store → change feed → emit → bus → rules (no queue: direct hand-offs).
    Up(commands::up::UpArgs),
    /// Start a throwaway stack, push a realistic sample through the Firehose API, and show what arrives.
    Demo(commands::demo::DemoArgs),
    /// Try EventBridge patterns against events, and validate rules files.
    Pattern(commands::pattern::PatternArgs),
    /// Follow the bus live as JSON Lines: `tideline up` locally, or an EventBridge bus with --aws.
    Tail(commands::tail::TailArgs),
    /// Subscribe to events over the realtime WebSocket (`tideline up` or AWS) and print them as JSON Lines, resuming after a disconnect.
    Subscribe(commands::subscribe::SubscribeArgs),
    /// Re-emit stored events to the bus, marked replay, in order per entity.
    Replay(commands::replay::ReplayArgs),
    /// Operate consumers: `reset` deletes checkpoints so a replay rebuilds a read model.
    Consumer(commands::consumer::ConsumerArgs),
    /// Feed lake files (processing-failed/ included) back through ingest.
    Reingest(commands::reingest::ReingestArgs),
    /// What a deployment costs on AWS per month and per million events, per service, next to the reference design.
    Cost(commands::cost::CostArgs),
    /// What a deployment needs to sustain a rate (concurrency, FIFO mode, partitions, shards, PutEvents, Firehose, latency), and which limit binds first.
    Capacity(commands::capacity::CapacityArgs),
    /// Event schemas: `check FILE` validates a sample record, `list` lists types and versions.
    Schema(commands::schema::SchemaArgs),
}

/// What a failure was caused by: the library, SDK or I/O error itself, kept
/// so the chain can be printed (and inspected by tests), not flattened into text.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A command's failure: exit code 2 for bad input or configuration, 1 otherwise.
/// `main` prints it with its causes, `error: <what>: <cause>: <its cause>`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag, environment variable, file or field whose value cannot be
    /// used, and why. `at` names it (`--lake /data`, `--registry`).
    #[error("{at}")]
    Config {
        /// The flag, variable, file or field at fault, with its value where it helps.
        at: String,
        /// Why it cannot be used.
        #[source]
        source: Cause,
    },
    /// Bad input, flag, file or configuration, said in a message that names it.
    #[error("{0}")]
    Usage(String),
    /// A step that failed while running, and why.
    #[error("{step}")]
    Failed {
        /// What was being done (`PutRecordBatch`, `s3://bucket/key`).
        step: String,
        /// What it failed with.
        #[source]
        source: Cause,
    },
    /// Something failed while running, said in a message.
    #[error("{0}")]
    Runtime(String),
    /// The local stack did not start; its error names the flag at fault.
    #[error(transparent)]
    Local(#[from] tideline_local::LocalError),
}

impl CliError {
    /// `at` (a flag, variable, file or field) cannot be used because of `source`.
    pub fn config(
        at: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Config {
            at: at.into(),
            source: Box::new(source),
        }
    }

    /// `step` failed with `source`.
    pub fn failed(
        step: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Failed {
            step: step.into(),
            source: Box::new(source),
        }
    }

    /// 2 for bad input or configuration, 1 for a failure while running.
    pub fn exit_code(&self) -> ExitCode {
        use tideline_local::LocalError;
        match self {
            Self::Config { .. } | Self::Usage(_) => ExitCode::from(2),
            Self::Failed { .. } | Self::Runtime(_) => ExitCode::from(1),
            // A store that does not open is a failure while running; every
            // other start-up failure is a flag's value (rules, listen
            // address, data directory, a target).
            Self::Local(LocalError::Store { .. }) => ExitCode::from(1),
            Self::Local(_) => ExitCode::from(2),
        }
    }
}

/// Logs at `default` unless `RUST_LOG` says otherwise.
fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    // The AWS SDK's configuration loader warns on every provider it tries
    // (the instance metadata service, off EC2, times out several times):
    // noise for a CLI, whose own error says what to set.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},aws_config=error")));
    // Logs go to stderr so stdout stays clean for data (log targets, `tail`, `pattern test`).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// mimalloc instead of glibc's allocator: `tideline up` allocates and frees
/// per record in every stage, and glibc's malloc/free took about a quarter of
/// local mode's CPU (perf over the local_throughput bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's output is its report: the stack's INFO lines would interleave
    // with it (warnings still show). Every other command logs at INFO.
    init_logging(match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    });
    let result = match cli.command {
        Command::Up(args) => commands::up::run(args).await,
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Pattern(args) => commands::pattern::run(args),
        Command::Tail(args) => commands::tail::run(args).await,
        Command::Subscribe(args) => commands::subscribe::run(args).await,
        Command::Replay(args) => commands::replay::run(args).await,
        Command::Consumer(args) => commands::consumer::run(args).await,
        Command::Reingest(args) => commands::reingest::run(args).await,
        Command::Cost(args) => commands::cost::run(args),
        Command::Capacity(args) => commands::capacity::run(args),
        Command::Schema(args) => commands::schema::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", tideline_core::DisplayChain(&e));
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::error::Error;

    #[test]
    fn a_config_error_names_the_flag_and_keeps_its_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = CliError::config("--lake /nowhere", io);
        assert_eq!(e.exit_code(), ExitCode::from(2));
        assert_eq!(
            tideline_core::DisplayChain(&e).to_string(),
            "--lake /nowhere: No such file or directory"
        );
        let cause = e
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(cause.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_failed_step_reaches_the_port_error_and_its_cause() {
        let sqlite = std::io::Error::other("disk I/O error");
        let port =
            tideline_stages::PortError::retryable("sqlite", "disk I/O error").with_source(sqlite);
        let e = CliError::failed("reading the store", port);
        assert_eq!(e.exit_code(), ExitCode::from(1));
        // Each cause once, although the port error's message repeats its cause.
        assert_eq!(
            tideline_core::DisplayChain(&e).to_string(),
            "reading the store: sqlite: disk I/O error"
        );
        let port = e.source().unwrap();
        assert!(port.is::<tideline_stages::PortError>());
        assert!(port.source().unwrap().is::<std::io::Error>());
    }
}
