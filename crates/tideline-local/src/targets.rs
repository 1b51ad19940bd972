//! Rule targets.
//!
//! Each rule has one target task. The router ([`crate::bus::LocalBus`])
//! hands it the events its rule matched, in feed order, then the feed
//! position it has handed over; the task delivers, then moves its durable
//! checkpoint ([`DeliveryLog`]). Delivery is at least once: a crash between
//! delivery and checkpoint delivers again, and consumers de-duplicate on
//! `detail.metadata.sequence` (INVARIANTS.md #4).
//!
//! - `log`: JSON Lines to a file or standard output.
//! - `webhook`: POST with retries and jittered backoff; after the last attempt
//!   the event goes to the dead-letter table with the reason, and the target
//!   moves on (nothing is lost, nothing blocks for long).
//! - `lambda`: a local Lambda binary behind the Lambda Runtime API
//!   ([`crate::runtime_api`]), one event at a time, retried and then
//!   dead-lettered like a webhook.
//!
//! `discarded` (counted by the router) is only the documented skip: an event
//! that does not match the rule's pattern.

use crate::bus::TargetWork;
use crate::runtime_api::LambdaTarget;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tideline_core::metrics::{Counts, StageCounters};
use tideline_core::retry::RetryPolicy;
use tideline_core::route::{Rule, TargetSpec};
use tideline_embedded::deliveries::DeliveryLog;
use tideline_stages::PortError;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};

/// A delivery made by a target, for live observers (tests, benches, the demo).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The rule that delivered.
    pub rule: Arc<str>,
    /// The event JSON.
    pub event: Arc<str>,
    /// When it was delivered.
    pub at: std::time::Instant,
}

enum Sink {
    Stdout,
    File(std::io::BufWriter<std::fs::File>),
    Webhook {
        client: reqwest::Client,
        url: String,
    },
    Lambda(Box<LambdaTarget>),
}

/// A rule's target.
pub struct Target {
    rule: Rule,
    log: Arc<DeliveryLog>,
    sink: Sink,
    retry: RetryPolicy,
    deliveries: broadcast::Sender<Delivery>,
    name: Arc<str>,
    counters: Arc<StageCounters>,
    pending: Arc<AtomicU64>,
}

impl Target {
    /// Prepares a target; fails if it cannot be opened.
    pub fn new(
        rule: Rule,
        log: Arc<DeliveryLog>,
        retry: RetryPolicy,
        deliveries: broadcast::Sender<Delivery>,
    ) -> Result<Self, String> {
        let sink = match &rule.spec.target {
            TargetSpec::Log { path } if path == "-" => Sink::Stdout,
            TargetSpec::Log { path } => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        format!(
                            "rule {:?}: cannot open log target {path:?}: {e}",
                            rule.spec.name
                        )
                    })?;
                Sink::File(std::io::BufWriter::new(file))
            }
            TargetSpec::Webhook { url } => {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("rule {:?}: http client: {e}", rule.spec.name))?;
                Sink::Webhook {
                    client,
                    url: url.clone(),
                }
            }
            TargetSpec::Lambda { command, env } => {
                Sink::Lambda(Box::new(LambdaTarget::new(&rule.spec.name, command, env)?))
            }
        };
        let name = Arc::from(rule.spec.name.as_str());
        Ok(Self {
            rule,
            log,
            sink,
            retry,
            deliveries,
            name,
            counters: Arc::default(),
            pending: Arc::default(),
        })
    }

    /// This rule's counts (stage `route`): received = events routed, sent =
    /// delivered, discarded = not matching the pattern, failed =
    /// dead-lettered (unreadable, or undeliverable after the retries).
    pub fn counters(&self) -> Arc<StageCounters> {
        self.counters.clone()
    }

    /// Events handed to this target and not yet accounted for.
    pub fn pending(&self) -> Arc<AtomicU64> {
        self.pending.clone()
    }

    /// The rule's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Runs until shutdown, taking work from `work`.
    pub async fn run(
        mut self,
        mut work: mpsc::Receiver<TargetWork>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if let Sink::Lambda(target) = &mut self.sink {
            target.set_shutdown(shutdown.clone());
        }
        loop {
            let next = tokio::select! {
                w = work.recv() => w,
                _ = shutdown.wait_for(|s| *s) => None,
            };
            match next {
                None => break,
                Some(TargetWork::Events(events)) => {
                    let dead_before = self.log.dead_lettered(&self.rule.spec.name);
                    // Retried until delivered (or dead-lettered by the sink):
                    // the checkpoint never moves past an event not accounted
                    // for. At shutdown the batch is neither counted nor
                    // checkpointed; the next start delivers it.
                    let delivered = loop {
                        match self.deliver(&events).await {
                            Ok(()) => break true,
                            Err(_) if *shutdown.borrow() => break false,
                            Err(e) => {
                                warn!(rule = %self.name, error = %e, "delivery failed; will retry the batch");
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                        }
                    };
                    if !delivered {
                        break;
                    }
                    let failed = self
                        .log
                        .dead_lettered(&self.rule.spec.name)
                        .saturating_sub(dead_before);
                    let counts = Counts {
                        sent: (events.len() as u64).saturating_sub(failed),
                        failed,
                        ..Counts::default()
                    };
                    self.counters.add(counts);
                    self.pending
                        .fetch_sub(events.len() as u64, Ordering::SeqCst);
                    debug!(stage = "route", rule = %self.name, sent = counts.sent, failed = counts.failed, "batch delivered");
                }
                Some(TargetWork::Through(position)) => {
                    if let Err(e) = self.log.advance_checkpoint(&self.rule.spec.name, position) {
                        warn!(rule = %self.name, error = %e, "checkpoint write failed; events may be delivered again");
                    }
                }
            }
        }
        if let Sink::Lambda(target) = &mut self.sink {
            target.stop().await;
        }
        info!(rule = %self.name, "target stopped");
    }

    async fn deliver(&mut self, events: &[Arc<str>]) -> Result<(), PortError> {
        let io =
            |e: std::io::Error| PortError::retryable("log-target", e.to_string()).with_source(e);
        match &mut self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                for e in events {
                    writeln!(out, "{e}").map_err(io)?;
                }
                out.flush().map_err(io)?;
            }
            Sink::File(w) => {
                for e in events {
                    w.write_all(e.as_bytes()).map_err(io)?;
                    w.write_all(b"\n").map_err(io)?;
                }
                w.flush().map_err(io)?;
            }
            Sink::Webhook { client, url } => {
                for e in events {
                    post_with_retries(client, url, e, &self.retry, &self.log, &self.rule.spec.name)
                        .await?;
                }
            }
            Sink::Lambda(target) => {
                for e in events {
                    target.deliver(e, &self.retry, &self.log).await?;
                }
            }
        }
        let at = std::time::Instant::now();
        for e in events {
            let _ = self.deliveries.send(Delivery {
                rule: self.name.clone(),
                event: e.clone(),
                at,
            });
        }
        Ok(())
    }
}

async fn post_with_retries(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    retry: &RetryPolicy,
    log: &DeliveryLog,
    rule: &str,
) -> Result<(), PortError> {
    let mut last_error = String::new();
    for attempt in 1..=retry.max_attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(retry.jittered_delay(attempt - 1)).await;
        }
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => last_error = format!("HTTP {}", resp.status()),
            Err(e) => last_error = e.to_string(),
        }
        debug!(rule, attempt, error = %last_error, "webhook delivery failed");
    }
    warn!(rule, error = %last_error, "webhook retries exhausted; event moved to the dead-letter table");
    log.dead_letter(
        rule,
        event,
        &format!("webhook {url}: {last_error}"),
        retry.max_attempts,
    )
}
