//! `tideline tail`: the bus, live, as JSON Lines (pretty-printed on a terminal).
//!
//! - Locally it follows `tideline up` over server-sent events
//!   (`GET /_tideline/tail?pattern=…`); the server filters with the compiled
//!   pattern and reports events a slow reader skipped, which are printed as a
//!   warning on standard error.
//! - On AWS (`--aws --bus NAME`) it runs `tideline_aws::tail::tail_bus`,
//!   which does what `lumigo-cli tail-eventbridge-bus` does: a temporary SQS
//!   queue, a rule on the bus targeting it (pattern default: every event of
//!   the bus's account), and a queue policy letting only that rule send,
//!   all deleted on exit, including on Ctrl-C and on failure.
//!
//! Both tails take a stop future, so tests run them for a bounded time; the
//! command's stop future is Ctrl-C or SIGTERM.

use crate::CliError;
use crate::commands::pattern::read_arg;
use crate::commands::up::shutdown_signal;
use clap::Args;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tideline_aws::tail::{TailClients, TailError, TailNotice as AwsNotice, tail_bus};
use tideline_local::client::{self, ClientError, TailNotice};
use tideline_pattern::Pattern;

/// Flags of `tideline tail`.
#[derive(Args, Debug, Clone)]
pub struct TailArgs {
    /// Only events matching this EventBridge pattern: JSON, or @file.
    #[arg(long)]
    pub pattern: Option<String>,
    /// Where `tideline up` listens (local mode).
    #[arg(
        long,
        default_value = "http://127.0.0.1:4566",
        env = "TIDELINE_ENDPOINT"
    )]
    pub endpoint: String,
    /// Tail an EventBridge bus on AWS through a temporary SQS queue (credentials and region from the environment).
    #[arg(long, requires = "bus")]
    pub aws: bool,
    /// The event bus name (with --aws): Terraform names it after
    /// `name_prefix` (`tideline` by default; `terraform output -raw event_bus_name`).
    #[arg(long, requires = "aws")]
    pub bus: Option<String>,
    /// One compact JSON object per line, even on a terminal.
    #[arg(long)]
    pub compact: bool,
}

/// Writes events to standard output: compact JSON Lines, or pretty JSON on a terminal.
struct Printer {
    pretty: bool,
}

impl Printer {
    fn print(&self, event: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        let pretty = self
            .pretty
            .then(|| serde_json::from_str::<serde_json::Value>(event).ok())
            .flatten()
            .and_then(|v| serde_json::to_string_pretty(&v).ok());
        match pretty {
            Some(p) => writeln!(out, "{p}")?,
            None => writeln!(out, "{}", event.trim_end())?,
        }
        out.flush()
    }
}

/// Runs `tideline tail`.
pub async fn run(args: TailArgs) -> Result<ExitCode, CliError> {
    let pattern = match &args.pattern {
        Some(p) => {
            let text = read_arg("--pattern", p)?;
            Pattern::parse(&text).map_err(|e| CliError::Usage(format!("--pattern: {e}")))?;
            Some(text)
        }
        None => None,
    };
    let printer = Printer {
        pretty: !args.compact && std::io::stdout().is_terminal(),
    };
    let print = |e: &str| printer.print(e);
    let result = if args.aws {
        let bus = args.bus.clone().unwrap_or_default();
        // Checked before anything is created: without a region every call
        // fails, after the SDK has tried the instance metadata service.
        let sdk = tideline_aws::load_sdk_config().await;
        if sdk.region().is_none() {
            return Err(CliError::Usage(
                "--aws: no AWS region is set; set AWS_REGION (e.g. export AWS_REGION=eu-west-1) or a region in the AWS_PROFILE's config".into(),
            ));
        }
        let clients = TailClients::from_config(&sdk);
        tail_bus(
            &clients,
            &bus,
            pattern.as_deref(),
            20,
            shutdown_signal(),
            print,
            print_notice,
        )
        .await
        .map_err(tail_error)
    } else {
        tail_local(
            &super::endpoint_url(&args.endpoint),
            pattern.as_deref(),
            shutdown_signal(),
            print,
        )
        .await
    };
    result.map(|()| ExitCode::SUCCESS)
}

/// Follows `tideline up` at `endpoint` until `stop` resolves or the server ends the stream.
pub async fn tail_local(
    endpoint: &str,
    pattern: Option<&str>,
    stop: impl Future<Output = ()>,
    on_event: impl FnMut(&str) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let notice = |n: TailNotice| match n {
        TailNotice::Following => {
            eprintln!("tideline tail: following {endpoint}; Ctrl-C to stop")
        }
        TailNotice::Ended => {
            eprintln!("tideline tail: the server ended the stream (tideline up stopped)")
        }
        TailNotice::Lagged(skipped) => eprintln!(
            "tideline tail: warning: {skipped} events skipped (this reader fell behind the bus)"
        ),
    };
    client::tail(endpoint, pattern, stop, on_event, notice)
        .await
        .map_err(local_error)
}

/// The local host client's failure as the CLI reports it: a refusal is the
/// user's request (exit 2), anything else a failure (exit 1).
pub fn local_error(e: ClientError) -> CliError {
    match e {
        ClientError::Refused { .. } => CliError::Usage(e.to_string()),
        e => CliError::failed("tideline up", e),
    }
}

/// Tells the user what the AWS tail is doing, on standard error.
fn print_notice(notice: AwsNotice<'_>) {
    match notice {
        AwsNotice::Ready { bus, name, pattern } => eprintln!(
            "tideline tail: bus {bus} → rule {name} → queue {name}; pattern {pattern}; Ctrl-C to stop"
        ),
        AwsNotice::Warning(w) => eprintln!("tideline tail: warning: {w}"),
        AwsNotice::CleanedUp { name } => {
            eprintln!("tideline tail: deleted the temporary rule, target and queue {name}")
        }
    }
}

/// The AWS tail's failure, naming the flag at fault; the SDK's error stays
/// its cause.
fn tail_error(e: TailError) -> CliError {
    match e {
        TailError::NoSuchBus { bus, .. } => {
            CliError::Usage(format!("--bus {bus}: no such event bus"))
        }
        e @ TailError::BadPattern(_) => CliError::config("--pattern", e),
        e => CliError::failed("tideline tail --aws", e),
    }
}
