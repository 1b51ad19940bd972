//! `tideline tail`: the bus, live, as JSON Lines (pretty-printed on a terminal).
//!
//! - Locally it follows `tideline up` over server-sent events
//!   (`GET /_tideline/tail?pattern=…`); the server filters with the compiled
//!   pattern and reports events a slow reader skipped, which are printed as a
//!   warning on standard error.
//! - On AWS (`--aws --bus NAME`) it does what `lumigo-cli tail-eventbridge-bus`
//!   does: a temporary SQS queue, a rule on the bus targeting it (pattern
//!   default: every event of the bus's account, `{"account": ["<id>"]}`), and
//!   a queue policy letting only that rule send. It deletes the target, the
//!   rule and the queue on exit, including on Ctrl-C and on failure.
//!
//! Both tails are functions that take a stop future, so tests run them for a
//! bounded time; the command's stop future is Ctrl-C or SIGTERM.

use crate::CliError;
use crate::commands::pattern::read_arg;
use crate::commands::up::shutdown_signal;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use clap::Args;
use futures::StreamExt;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
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
        let sdk = tideline_aws::load_sdk_config().await;
        let clients = AwsClients {
            events: aws_sdk_eventbridge::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
        };
        tail_aws(
            &clients,
            &bus,
            pattern.as_deref(),
            20,
            shutdown_signal(),
            print,
        )
        .await
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

/// The AWS clients the tail uses.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// EventBridge.
    pub events: aws_sdk_eventbridge::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
}

/// What the AWS tail creates; all of it is deleted on exit.
#[derive(Debug, Default)]
struct Temporary {
    name: String,
    bus: String,
    queue_url: Option<String>,
    rule_created: bool,
    target_added: bool,
}

const TARGET_ID: &str = "tideline-tail";

fn aws_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    e: &aws_sdk_sqs::error::SdkError<E>,
) -> String {
    let code = e.code().unwrap_or("");
    let message = e.message().unwrap_or("");
    if code.is_empty() && message.is_empty() {
        format!("{what}: {e:?}")
    } else {
        format!("{what}: {code}: {message}")
    }
}

/// Tails an EventBridge bus through a temporary queue until `stop` resolves.
///
/// `wait_seconds` is the SQS long-poll wait (20 in the command). The
/// temporary rule, target and queue are deleted before this returns,
/// whether it stops, fails or is cancelled by `stop` during set-up.
pub async fn tail_aws(
    clients: &AwsClients,
    bus: &str,
    pattern: Option<&str>,
    wait_seconds: i32,
    stop: impl Future<Output = ()>,
    mut on_event: impl FnMut(&str) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let mut temp = Temporary {
        name: format!("tideline-tail-{:016x}", rand::random::<u64>()),
        bus: bus.to_string(),
        ..Temporary::default()
    };
    let result = {
        let work = async {
            setup(clients, &mut temp, pattern).await?;
            receive(clients, &temp, wait_seconds, &mut on_event).await
        };
        tokio::select! {
            r = work => r,
            _ = stop => Ok(()),
        }
    };
    let cleanup = teardown(clients, &temp).await;
    match (result, cleanup) {
        (Err(e), Err(c)) => Err(CliError::Runtime(format!("{e}; and cleaning up: {c}"))),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Err(c)) => Err(CliError::Runtime(c)),
        (Ok(()), Ok(())) => Ok(()),
    }
}

async fn setup(
    clients: &AwsClients,
    temp: &mut Temporary,
    pattern: Option<&str>,
) -> Result<(), CliError> {
    let described = clients
        .events
        .describe_event_bus()
        .name(&temp.bus)
        .send()
        .await
        .map_err(|e| {
            if e.code() == Some("ResourceNotFoundException") {
                CliError::Usage(format!("--bus {}: no such event bus", temp.bus))
            } else {
                CliError::failed(format!("describing bus {}", temp.bus), e)
            }
        })?;
    let pattern = match pattern {
        Some(p) => p.to_string(),
        None => {
            let arn = described.arn().unwrap_or_default();
            let account = arn
                .split(':')
                .nth(4)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    CliError::Runtime(format!(
                        "bus {}: no account id in its ARN {arn:?}; pass --pattern",
                        temp.bus
                    ))
                })?;
            serde_json::json!({ "account": [account] }).to_string()
        }
    };
    let created = clients
        .sqs
        .create_queue()
        .queue_name(&temp.name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "3600")
        .send()
        .await
        .map_err(|e| CliError::failed("creating the temporary queue", e))?;
    let url = created.queue_url().unwrap_or_default().to_string();
    temp.queue_url = Some(url.clone());
    let queue_arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| CliError::failed("reading the queue ARN", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| CliError::Runtime("the temporary queue has no ARN".into()))?;
    temp.rule_created = true;
    let rule = clients
        .events
        .put_rule()
        .name(&temp.name)
        .event_bus_name(&temp.bus)
        .event_pattern(&pattern)
        .description("tideline tail: temporary; deleted when the tail stops")
        .send()
        .await
        .map_err(|e| {
            if e.code() == Some("InvalidEventPatternException") {
                CliError::config("--pattern: creating the temporary rule", e)
            } else {
                CliError::failed("creating the temporary rule", e)
            }
        })?;
    let rule_arn = rule.rule_arn().unwrap_or_default().to_string();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "tideline-tail",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }],
    });
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .map_err(|e| CliError::failed("setting the queue policy", e))?;
    temp.target_added = true;
    let target = Target::builder()
        .id(TARGET_ID)
        .arn(&queue_arn)
        .build()
        .map_err(|e| CliError::failed("target", e))?;
    let added = clients
        .events
        .put_targets()
        .rule(&temp.name)
        .event_bus_name(&temp.bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| CliError::failed("adding the queue as the rule's target", e))?;
    if added.failed_entry_count() > 0 {
        let why: Vec<String> = added
            .failed_entries()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.error_code().unwrap_or_default(),
                    f.error_message().unwrap_or_default()
                )
            })
            .collect();
        return Err(CliError::Runtime(format!(
            "adding the queue as the rule's target failed: {}",
            why.join("; ")
        )));
    }
    eprintln!(
        "tideline tail: bus {} → rule {} → queue {}; pattern {pattern}; Ctrl-C to stop",
        temp.bus, temp.name, temp.name
    );
    Ok(())
}

async fn receive(
    clients: &AwsClients,
    temp: &Temporary,
    wait_seconds: i32,
    on_event: &mut impl FnMut(&str) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let url = temp.queue_url.clone().unwrap_or_default();
    let mut failures = 0u32;
    loop {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await;
        let messages = match received {
            Ok(r) => {
                failures = 0;
                r.messages.unwrap_or_default()
            }
            Err(e) => {
                failures += 1;
                if failures >= 5 {
                    return Err(CliError::failed("receiving from the temporary queue", e));
                }
                let message = aws_error("receiving from the temporary queue", &e);
                eprintln!("tideline tail: warning: {message}; retrying");
                let policy = tideline_core::retry::RetryPolicy::default();
                tokio::time::sleep(policy.jittered_delay(failures)).await;
                continue;
            }
        };
        let mut done = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match on_event(m.body().unwrap_or_default()) {
                Ok(()) => {}
                Err(e) if reader_gone(&e) => return Ok(()),
                Err(e) => return Err(CliError::failed("writing output", e)),
            }
            if let Some(handle) = m.receipt_handle()
                && let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
            {
                done.push(entry);
            }
        }
        if !done.is_empty()
            && let Err(e) = clients
                .sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(done))
                .send()
                .await
        {
            // Not deleted means printed again after the visibility timeout; the tail is best effort.
            eprintln!(
                "tideline tail: warning: {}",
                aws_error("deleting received messages", &e)
            );
        }
    }
}

/// Deletes the target, the rule and the queue; "not found" counts as deleted.
async fn teardown(clients: &AwsClients, temp: &Temporary) -> Result<(), String> {
    let mut problems = Vec::new();
    let gone = |code: Option<&str>| {
        matches!(
            code,
            Some("ResourceNotFoundException")
                | Some("AWS.SimpleQueueService.NonExistentQueue")
                | Some("QueueDoesNotExist")
        )
    };
    if temp.target_added
        && let Err(e) = clients
            .events
            .remove_targets()
            .rule(&temp.name)
            .event_bus_name(&temp.bus)
            .ids(TARGET_ID)
            .send()
            .await
        && !gone(e.code())
    {
        problems.push(aws_error(
            &format!("removing the target of rule {}", temp.name),
            &e,
        ));
    }
    if temp.rule_created
        && let Err(e) = clients
            .events
            .delete_rule()
            .name(&temp.name)
            .event_bus_name(&temp.bus)
            .send()
            .await
        && !gone(e.code())
    {
        problems.push(aws_error(&format!("deleting rule {}", temp.name), &e));
    }
    if let Some(url) = &temp.queue_url
        && let Err(e) = clients.sqs.delete_queue().queue_url(url).send().await
        && !gone(e.code())
    {
        problems.push(aws_error(&format!("deleting queue {url}"), &e));
    }
    if problems.is_empty() {
        eprintln!(
            "tideline tail: deleted the temporary rule, target and queue {}",
            temp.name
        );
        Ok(())
    } else {
        Err(format!("delete these by hand: {}", problems.join("; ")))
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
