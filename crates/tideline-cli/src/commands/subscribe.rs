//! `tideline subscribe`: a realtime client on the command line, like
//! `wscat` but speaking the protocol (docs/realtime.md), against `tideline
//! up` (`ws://127.0.0.1:4566/_tideline/realtime`) or the AWS module's
//! WebSocket API (`wss://…`).
//!
//! Every message the server sends is printed as one JSON line on standard
//! output. The client keeps the last `sequence` it printed per entity: a
//! duplicate is not printed, and when the server closes the connection for
//! a reason one can resume from (its limits, a slow reader, a restart), it
//! reconnects and subscribes again with `since`, so nothing is missed.

use crate::CliError;
use crate::commands::up::shutdown_signal;
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use tideline_core::Classify;
use tideline_realtime::auth::{Claims, insecure_dev_token, now_secs};
use tideline_realtime::client::{ClientError, Incoming, Resume, Verdict, connect, resumable};
use tracing::{info, warn};

/// Flags of `tideline subscribe`.
#[derive(Args, Debug, Clone)]
pub struct SubscribeArgs {
    /// The topic: an event type.
    #[arg(long)]
    pub topic: String,
    /// An entity id (repeatable); none subscribes to every entity the token allows.
    #[arg(long = "entity")]
    pub entities: Vec<String>,
    /// Resume: ENTITY=SEQ, the last sequence seen of an entity (repeatable).
    /// What came after it is sent first, then live events.
    #[arg(long = "since", value_parser = parse_since)]
    pub since: Vec<(String, u64)>,
    /// The WebSocket endpoint: `ws://127.0.0.1:4566/_tideline/realtime` for
    /// `tideline up`, the module's `realtime_websocket_url` output on AWS.
    #[arg(long, env = "TIDELINE_REALTIME_ENDPOINT")]
    pub endpoint: String,
    /// The bearer token (JWT).
    #[arg(
        long,
        env = "TIDELINE_REALTIME_TOKEN",
        hide_env_values = true,
        required_unless_present = "dev_token"
    )]
    pub token: Option<String>,
    /// Make an unsigned token for `tideline up --realtime-insecure-dev-tokens`,
    /// allowing the topic and the entities given (every entity without --entity).
    #[arg(long, conflicts_with = "token")]
    pub dev_token: bool,
    /// Exit after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit at the first close instead of reconnecting.
    #[arg(long)]
    pub no_reconnect: bool,
}

fn parse_since(text: &str) -> Result<(String, u64), String> {
    let (entity, seq) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not ENTITY=SEQ"))?;
    let seq = seq
        .parse()
        .map_err(|_| format!("{text:?}: {seq:?} is not a sequence number"))?;
    if entity.is_empty() {
        return Err(format!("{text:?} names no entity"));
    }
    Ok((entity.to_string(), seq))
}

/// Most reconnects in a row without an event in between.
const MAX_RECONNECTS: u32 = 8;

/// Runs `tideline subscribe`.
pub async fn run(args: SubscribeArgs) -> Result<ExitCode, CliError> {
    let token = match (&args.token, args.dev_token) {
        (Some(t), _) => t.clone(),
        (None, _) => insecure_dev_token(&Claims {
            sub: "tideline-subscribe".into(),
            exp: now_secs() + 3600,
            iss: None,
            topics: vec![args.topic.clone()],
            entities: if args.entities.is_empty() {
                vec!["*".into()]
            } else {
                args.entities.clone()
            },
        }),
    };
    let since: BTreeMap<String, u64> = args.since.iter().cloned().collect();
    let mut resume = Resume::default();
    resume.subscribe(&args.topic, &args.entities, &since);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut printed = 0u64;
    let mut attempts = 0u32;
    loop {
        let mut conn = match connect(&args.endpoint, &token).await {
            Ok(c) => c,
            Err(e) if e.is_retryable() && !args.no_reconnect && attempts < MAX_RECONNECTS => {
                attempts += 1;
                warn!(error = %e, attempt = attempts, "realtime: connect failed; retrying");
                tokio::time::sleep(backoff(attempts)).await;
                continue;
            }
            Err(e @ ClientError::BadEndpoint { .. }) => return Err(CliError::Usage(e.to_string())),
            Err(e) => {
                return Err(CliError::failed(
                    format!("connecting to {}", args.endpoint),
                    e,
                ));
            }
        };
        for message in resume.messages() {
            conn.send(&message)
                .await
                .map_err(|e| CliError::failed("sending subscribe", e))?;
        }
        let (code, reason) = loop {
            let incoming = tokio::select! {
                i = conn.next() => i,
                () = &mut stop => {
                    conn.close().await;
                    return Ok(ExitCode::SUCCESS);
                }
            };
            match incoming {
                Incoming::Text(text) => match resume.accept(&text) {
                    Verdict::Duplicate => continue,
                    verdict => {
                        print_line(&text)?;
                        if verdict == Verdict::New {
                            attempts = 0;
                            printed += 1;
                            if args.count.is_some_and(|n| printed >= n) {
                                conn.close().await;
                                return Ok(ExitCode::SUCCESS);
                            }
                        }
                    }
                },
                Incoming::Closed { code, reason } => break (code, reason),
            }
        };
        if args.no_reconnect || !resumable(code) || attempts >= MAX_RECONNECTS {
            return Err(CliError::Runtime(format!(
                "the server closed the connection ({code}): {reason}"
            )));
        }
        attempts += 1;
        info!(code, %reason, "realtime: connection closed; reconnecting and resuming");
        tokio::time::sleep(backoff(attempts)).await;
    }
}

/// 100 ms doubling to about 12 s, with jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 100u64 << attempt.min(7);
    Duration::from_millis(base / 2 + rand::random_range(0..=base / 2))
}

fn print_line(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", text.trim_end())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::failed("writing to standard output", e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn since_is_entity_equals_sequence() {
        assert_eq!(parse_since("order=1=7").unwrap(), ("order=1".into(), 7));
        assert!(parse_since("order").is_err());
        assert!(parse_since("=3").is_err());
        assert!(parse_since("o=x").unwrap_err().contains("not a sequence"));
    }
}
