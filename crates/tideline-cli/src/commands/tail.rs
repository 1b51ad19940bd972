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
use futures::StreamExt;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tideline_aws::tail::{TailClients, TailError, TailNotice, tail_bus};
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
    /// The event bus name (with --aws).
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
        let clients = TailClients::connect().await;
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
        tail_local(&args.endpoint, pattern.as_deref(), shutdown_signal(), print).await
    };
    result.map(|()| ExitCode::SUCCESS)
}

/// Whether printing failed because the reader went away (`tail | head`): a normal end.
fn reader_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// Follows `tideline up` at `endpoint` until `stop` resolves or the server ends the stream.
pub async fn tail_local(
    endpoint: &str,
    pattern: Option<&str>,
    stop: impl Future<Output = ()>,
    mut on_event: impl FnMut(&str) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let url = format!("{}/_tideline/tail", endpoint.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/event-stream");
    if let Some(p) = pattern {
        request = request.query(&[("pattern", p)]);
    }
    let response = request.send().await.map_err(|e| {
        CliError::failed(
            format!(
                "cannot reach tideline up at {endpoint} (is `tideline up` running? set --endpoint)"
            ),
            e,
        )
    })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let message = format!("{url}: HTTP {status}: {}", body.trim());
        return Err(if status.is_client_error() {
            CliError::Usage(message)
        } else {
            CliError::Runtime(message)
        });
    }
    eprintln!("tideline tail: following {endpoint}; Ctrl-C to stop");
    let mut body = response.bytes_stream();
    let mut parser = SseParser::default();
    tokio::pin!(stop);
    loop {
        let chunk = tokio::select! {
            _ = &mut stop => return Ok(()),
            c = body.next() => c,
        };
        let chunk = match chunk {
            None => {
                eprintln!("tideline tail: the server ended the stream (tideline up stopped)");
                return Ok(());
            }
            Some(Err(e)) => return Err(CliError::failed(format!("{url}: stream broke"), e)),
            Some(Ok(c)) => c,
        };
        for message in parser.push(&chunk) {
            match message.event.as_str() {
                "" | "message" => match on_event(&message.data) {
                    Ok(()) => {}
                    Err(e) if reader_gone(&e) => return Ok(()),
                    Err(e) => return Err(CliError::failed("writing output", e)),
                },
                "lagged" => {
                    let skipped = serde_json::from_str::<serde_json::Value>(&message.data)
                        .ok()
                        .and_then(|v| v["skipped"].as_u64())
                        .unwrap_or(0);
                    eprintln!(
                        "tideline tail: warning: {skipped} events skipped (this reader fell behind the bus)"
                    );
                }
                _ => {}
            }
        }
    }
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
struct SseMessage {
    event: String,
    data: String,
}

/// Incremental server-sent events parser (the subset axum writes: `event:`, `data:`, `id:`, comments).
#[derive(Debug, Default)]
struct SseParser {
    buffer: Vec<u8>,
    current: SseMessage,
    has_data: bool,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data {
                    out.push(std::mem::take(&mut self.current));
                }
                self.current = SseMessage::default();
                self.has_data = false;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.current.event = value.to_string(),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

/// Tells the user what the AWS tail is doing, on standard error.
fn print_notice(notice: TailNotice<'_>) {
    match notice {
        TailNotice::Ready { bus, name, pattern } => eprintln!(
            "tideline tail: bus {bus} → rule {name} → queue {name}; pattern {pattern}; Ctrl-C to stop"
        ),
        TailNotice::Warning(w) => eprintln!("tideline tail: warning: {w}"),
        TailNotice::CleanedUp { name } => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_split_chunks_events_and_comments() {
        let mut p = SseParser::default();
        assert!(p.push(b": keep-alive\n\nid: 1\nda").is_empty());
        let got = p.push(b"ta: {\"a\":1}\n\nevent: lagged\ndata: {\"skipped\":3}\r\n\r\n");
        assert_eq!(
            got,
            vec![
                SseMessage {
                    event: String::new(),
                    data: "{\"a\":1}".into()
                },
                SseMessage {
                    event: "lagged".into(),
                    data: "{\"skipped\":3}".into()
                },
            ]
        );
    }
}
