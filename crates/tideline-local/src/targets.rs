//! Rule targets and their dispatchers.
//!
//! One dispatcher per rule reads the bus archive from the rule's checkpoint,
//! matches each event against the rule's compiled pattern, delivers matches,
//! and then moves the checkpoint. Delivery is at least once: a crash between
//! delivery and checkpoint delivers again, and consumers de-duplicate on
//! `detail.metadata.sequence` (INVARIANTS.md #4).
//!
//! - `log`: JSON Lines to a file or standard output.
//! - `webhook`: POST with retries and jittered backoff; after the last attempt
//!   the event goes to the bus's dead-letter table with the reason, and the
//!   dispatcher moves on (nothing is lost, nothing blocks).
//! - `lambda`: a local Lambda binary behind the Lambda Runtime API
//!   ([`crate::runtime_api`]), one event at a time, retried and then
//!   dead-lettered like a webhook.
//!
//! Nothing is skipped silently (INVARIANTS.md #1): an archived event the
//! dispatcher cannot read (not JSON, or nested deeper than serde_json's 128
//! levels, which EventBridge itself would accept up to 1,100) goes to the
//! dead-letter table with the reason and counts as `failed`; if even that
//! write fails, the batch is retried. `discarded` counts only the documented
//! skip: an event that does not match the rule's pattern.

use crate::runtime_api::LambdaTarget;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tideline_core::metrics::{Counts, StageCounters};
use tideline_core::retry::RetryPolicy;
use tideline_core::route::{Rule, TargetSpec};
use tideline_embedded::bus::LocalBus;
use tideline_stages::PortError;
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

/// Events read per dispatcher pass.
const DISPATCH_BATCH: usize = 1000;

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

/// A rule's dispatcher.
pub struct Dispatcher {
    rule: Rule,
    bus: Arc<LocalBus>,
    sink: Sink,
    retry: RetryPolicy,
    deliveries: broadcast::Sender<Delivery>,
    name: Arc<str>,
    counters: Arc<StageCounters>,
}

impl Dispatcher {
    /// Prepares a dispatcher; fails if the target cannot be opened.
    pub fn new(
        rule: Rule,
        bus: Arc<LocalBus>,
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
            bus,
            sink,
            retry,
            deliveries,
            name,
            counters: Arc::default(),
        })
    }

    /// This rule's counts (stage `route`): received = events read from the
    /// bus, sent = delivered, discarded = not matching the pattern,
    /// failed = dead-lettered (unreadable, or undeliverable after the retries).
    pub fn counters(&self) -> Arc<StageCounters> {
        self.counters.clone()
    }

    /// Runs until shutdown.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut position = match self.bus.checkpoint(&self.rule.spec.name) {
            Ok(p) => p,
            Err(e) => {
                warn!(rule = %self.name, error = %e, "cannot read checkpoint; dispatcher stopped");
                return;
            }
        };
        if let Sink::Lambda(target) = &mut self.sink {
            target.set_shutdown(shutdown.clone());
        }
        let published = self.bus.published.clone();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let woken = published.notified();
            let batch = match self.bus.read_after(position, DISPATCH_BATCH) {
                Ok(b) => b,
                Err(e) => {
                    warn!(rule = %self.name, error = %e, "archive read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut matched = Vec::new();
            let mut unreadable = Vec::new();
            for archived in &batch {
                match serde_json::from_str::<serde_json::Value>(&archived.event) {
                    Ok(v) if self.rule.pattern.matches(&v) => matched.push(archived.event.clone()),
                    Ok(_) => {}
                    Err(e) => unreadable.push((archived, e)),
                }
            }
            let dead_before = self.bus.dead_lettered(&self.rule.spec.name);
            if let Err(e) = self.deliver(&matched).await {
                warn!(rule = %self.name, error = %e, "delivery failed; will retry the batch");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            // After delivery, so a failed delivery's retry does not dead-letter
            // them twice. If the dead-letter write fails, the checkpoint stays
            // and the batch is read again: never skipped.
            if let Err(e) = self.dead_letter_unreadable(&unreadable) {
                warn!(rule = %self.name, error = %e, "dead-letter write failed; will retry the batch");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            let last = batch.last().map_or(position, |a| a.position);
            if let Err(e) = self.bus.set_checkpoint(&self.rule.spec.name, last) {
                warn!(rule = %self.name, error = %e, "checkpoint write failed; events may be delivered again");
            }
            position = last;
            let failed = self
                .bus
                .dead_lettered(&self.rule.spec.name)
                .saturating_sub(dead_before);
            // `failed` includes the unreadable events; only matched events
            // that were dead-lettered are subtracted from `sent`.
            let undeliverable = failed.saturating_sub(unreadable.len() as u64);
            let counts = Counts {
                received: batch.len() as u64,
                sent: (matched.len() as u64).saturating_sub(undeliverable),
                discarded: (batch.len() - matched.len() - unreadable.len()) as u64,
                failed,
            };
            self.counters.add(counts);
            debug!(stage = "route", rule = %self.name, received = counts.received, sent = counts.sent, discarded = counts.discarded, failed = counts.failed, position, "batch done");
        }
        if let Sink::Lambda(target) = &mut self.sink {
            target.stop().await;
        }
        info!(rule = %self.name, "dispatcher stopped");
    }

    /// Moves events the dispatcher cannot read to the dead-letter table, each
    /// with the parser's reason.
    fn dead_letter_unreadable(
        &self,
        unreadable: &[(&tideline_embedded::bus::ArchivedEvent, serde_json::Error)],
    ) -> Result<(), PortError> {
        for (archived, error) in unreadable {
            let reason = format!(
                "archived event at position {} cannot be read: {error} (serde_json reads at most {} levels of nesting; EventBridge accepts more)",
                archived.position,
                tideline_core::limits::JSON_READER_DEPTH
            );
            warn!(rule = %self.name, position = archived.position, error = %error, "archived event unreadable; moved to the dead-letter table");
            self.bus
                .dead_letter(&self.rule.spec.name, &archived.event, &reason, 0)?;
        }
        Ok(())
    }

    async fn deliver(&mut self, events: &[Arc<str>]) -> Result<(), PortError> {
        let io = |e: std::io::Error| PortError::retryable("log-target", e.to_string());
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
                    post_with_retries(client, url, e, &self.retry, &self.bus, &self.rule.spec.name)
                        .await?;
                }
            }
            Sink::Lambda(target) => {
                for e in events {
                    target.deliver(e, &self.retry, &self.bus).await?;
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
    bus: &LocalBus,
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
    bus.dead_letter(
        rule,
        event,
        &format!("webhook {url}: {last_error}"),
        retry.max_attempts,
    )
}
