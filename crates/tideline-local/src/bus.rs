//! Local mode's bus: the [`Bus`] port the emit stage (and replay) publish
//! to, with the route stage behind it instead of an archive.
//!
//! `put_events` refuses what PutEvents refuses, per entry and with
//! EventBridge's `ErrorCode` ([`put_events_refusal`]); a call whose entries
//! together exceed the request limit fails as a whole, as PutEvents'
//! `ValidationException` does. Each accepted entry becomes the event a
//! target receives, is parsed once, matched against every rule at once
//! ([`route_event`]), and handed to the targets of the rules it matched, in
//! order. Nothing is written on the way: the store's commit order is the
//! feed, and each target keeps its own durable checkpoint in it
//! ([`DeliveryLog`]), so after a crash the events after the lowest
//! checkpoint are emitted and routed again (at least once, as on EventBridge).
//!
//! A target's hand-off is a bounded channel: a slow target holds the router
//! back once its channel is full, and the store's feed absorbs the backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tideline_core::ErrorClass;
use tideline_core::envelope::BusEntry;
use tideline_core::envelope::put_events_refusal;
use tideline_core::keys::format_timestamp;
use tideline_core::metrics::{Counts, StageCounters};
use tideline_core::route::Router;
use tideline_embedded::deliveries::DeliveryLog;
use tideline_stages::route::{Routed, route_event};
use tideline_stages::{Bus, EntryFailure, PortError};
use tokio::sync::{broadcast, mpsc};
use tracing::warn;

/// What the router hands a target.
#[derive(Debug)]
pub enum TargetWork {
    /// Events the target's rule matched, in feed order.
    Events(Vec<Arc<str>>),
    /// Every event up to this feed position has been handed over: once
    /// delivered, the target may checkpoint it.
    Through(i64),
}

/// An event as published, for live subscribers (`tideline tail`).
#[derive(Debug, Clone)]
pub struct PublishedEvent {
    /// This process's publication counter (the SSE `id`).
    pub position: u64,
    /// The full integration event as JSON.
    pub event: Arc<str>,
}

/// One rule as the bus sees it.
#[derive(Debug)]
pub struct RuleOutlet {
    /// The rule's name.
    pub name: Arc<str>,
    /// Its counts (stage `route`): received, sent (delivered), discarded (not
    /// matching), failed (dead-lettered).
    pub counters: Arc<StageCounters>,
    /// The target's hand-off.
    pub sender: mpsc::Sender<TargetWork>,
    /// Events handed to the target and not yet delivered or dead-lettered.
    pub pending: Arc<AtomicU64>,
}

/// The local bus.
#[derive(Debug)]
pub struct LocalBus {
    router: Router,
    outlets: Vec<RuleOutlet>,
    deliveries: Arc<DeliveryLog>,
    live: broadcast::Sender<PublishedEvent>,
    published: AtomicU64,
    max_entries: usize,
    /// PutEvents' request size limit (`limits.put_events_request_bytes`).
    max_request_bytes: usize,
}

/// A random (version 4) UUID: the bus event `id`, and the Lambda Runtime
/// API's request ids.
pub(crate) fn random_uuid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff | 0x4000,
        u16::from_be_bytes([b[8], b[9]]) & 0x3fff | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

impl LocalBus {
    /// A bus over `router`'s rules, whose targets take work from `outlets`
    /// (one per rule, in rule order).
    pub fn new(
        router: Router,
        outlets: Vec<RuleOutlet>,
        deliveries: Arc<DeliveryLog>,
        max_entries: usize,
        max_request_bytes: usize,
    ) -> Self {
        let (live, _) = broadcast::channel(4096);
        Self {
            router,
            outlets,
            deliveries,
            live,
            published: AtomicU64::new(0),
            max_entries,
            max_request_bytes,
        }
    }

    /// A live copy of everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PublishedEvent> {
        self.live.subscribe()
    }

    /// The targets' checkpoints and dead letters.
    pub fn deliveries(&self) -> &Arc<DeliveryLog> {
        &self.deliveries
    }

    /// The rules, in rule order.
    pub fn outlets(&self) -> &[RuleOutlet] {
        &self.outlets
    }

    /// Tells every target that the feed is handed over up to `position`.
    pub async fn through(&self, position: i64) -> Result<(), PortError> {
        for outlet in &self.outlets {
            outlet
                .sender
                .send(TargetWork::Through(position))
                .await
                .map_err(|_| stopped())?;
        }
        Ok(())
    }
}

fn stopped() -> PortError {
    PortError::retryable(
        "local-bus",
        "a target has stopped (shutting down); the events will be routed again",
    )
}

impl Bus for LocalBus {
    fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    fn max_entries(&self) -> usize {
        self.max_entries
    }

    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        let total: usize = entries.iter().map(BusEntry::size).sum();
        if entries.len() > 1 && total > self.max_request_bytes {
            // PutEvents: "Total size of the entries in the request is over the limit."
            return Err(PortError::permanent(
                "eventbridge-local",
                format!(
                    "ValidationException: the entries total {total} bytes; a PutEvents request carries at most {}",
                    self.max_request_bytes
                ),
            ));
        }
        let time = format_timestamp(chrono::Utc::now());
        let mut results = Vec::with_capacity(entries.len());
        let mut per_rule: Vec<Vec<Arc<str>>> = vec![Vec::new(); self.outlets.len()];
        let mut counts = vec![Counts::default(); self.outlets.len()];
        for entry in entries {
            if let Some((code, message)) = put_events_refusal(entry, self.max_request_bytes) {
                warn!(bus = "local", entity_id = %entry.entity_id, sequence = entry.sequence, code, reason = %message, "entry refused");
                results.push(Err(EntryFailure {
                    code: code.into(),
                    message,
                    // The same entry gets the same answer.
                    class: ErrorClass::Permanent,
                }));
                continue;
            }
            let event: Arc<str> = Arc::from(entry.to_event_json(&random_uuid(), &time));
            match route_event(&self.router, &event) {
                Routed::Matched(rules) => {
                    let mut matched = rules.iter().peekable();
                    for (i, c) in counts.iter_mut().enumerate() {
                        c.received += 1;
                        if matched.next_if(|&&r| r == i).is_some() {
                            per_rule[i].push(event.clone());
                        } else {
                            c.discarded += 1;
                        }
                    }
                }
                Routed::Unreadable(reason) => {
                    // Never skipped: dead-lettered for every rule, with the
                    // reason; if that write fails the call fails and the emit
                    // stage retries it.
                    for (outlet, c) in self.outlets.iter().zip(counts.iter_mut()) {
                        warn!(rule = %outlet.name, error = %reason, "event unreadable; moved to the dead-letter table");
                        self.deliveries
                            .dead_letter(&outlet.name, &event, &reason, 0)?;
                        c.received += 1;
                        c.failed += 1;
                    }
                }
            }
            let position = self.published.fetch_add(1, Ordering::Relaxed) + 1;
            // No subscriber is fine: live copies are best effort.
            let _ = self.live.send(PublishedEvent { position, event });
            results.push(Ok(()));
        }
        for ((outlet, events), c) in self.outlets.iter().zip(per_rule).zip(counts) {
            outlet.counters.add(c);
            if !events.is_empty() {
                outlet
                    .pending
                    .fetch_add(events.len() as u64, Ordering::SeqCst);
                outlet
                    .sender
                    .send(TargetWork::Events(events))
                    .await
                    .map_err(|_| stopped())?;
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tideline_core::limits::{DETAIL_TYPE_CHARS, SOURCE_CHARS};
    use tideline_core::route::parse_rules;
    use tideline_embedded::sqlite::Durability;

    fn entry(source: &str, detail_type: &str, detail: String) -> BusEntry {
        BusEntry {
            source: source.into(),
            detail_type: detail_type.into(),
            detail,
            entity_id: "e".into(),
            sequence: 1,
            trace_header: None,
        }
    }

    fn bus(
        dir: &tempfile::TempDir,
        max_request_bytes: usize,
    ) -> (LocalBus, mpsc::Receiver<TargetWork>) {
        let rules = parse_rules(
            r#"[{"name":"all","event_pattern":{"source":[{"exists":true}]},"target":{"type":"log","path":"-"}}]"#,
        )
        .unwrap();
        let (sender, receiver) = mpsc::channel(16);
        let outlets = vec![RuleOutlet {
            name: "all".into(),
            counters: Arc::default(),
            sender,
            pending: Arc::default(),
        }];
        let log = DeliveryLog::open(&dir.path().join("targets.db"), Durability::Normal).unwrap();
        let bus = LocalBus::new(
            Router::new(rules),
            outlets,
            Arc::new(log),
            10,
            max_request_bytes,
        );
        (bus, receiver)
    }

    fn routed(receiver: &mut mpsc::Receiver<TargetWork>) -> usize {
        let mut n = 0;
        while let Ok(work) = receiver.try_recv() {
            if let TargetWork::Events(events) = work {
                n += events.len();
            }
        }
        n
    }

    #[tokio::test]
    async fn put_events_refuses_what_put_events_refuses_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (bus, mut receiver) = bus(&dir, 2048);
        let small = || r#"{"data":1}"#.to_string();
        let entries = [
            entry("tideline", "Placed", small()),
            entry("tideline", &"T".repeat(DETAIL_TYPE_CHARS + 1), small()),
            entry("tideline", &"T".repeat(DETAIL_TYPE_CHARS), small()),
            entry(&"s".repeat(SOURCE_CHARS + 1), "Placed", small()),
            entry("", "Placed", small()),
            entry("tideline", "", small()),
        ];
        let results = bus.put_events(&entries).await.unwrap();
        let verdicts: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(verdicts, [true, false, true, false, false, false]);
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(e.code, "InvalidArgument");
            assert_eq!(e.class, ErrorClass::Permanent);
        }
        assert!(
            results[1]
                .as_ref()
                .unwrap_err()
                .message
                .contains("DetailType")
        );
        assert!(results[3].as_ref().unwrap_err().message.contains("Source"));

        // One entry over the request size: refused, alone.
        let big = entry(
            "tideline",
            "Placed",
            format!(r#"{{"data":"{}"}}"#, "x".repeat(2048)),
        );
        let results = bus.put_events(std::slice::from_ref(&big)).await.unwrap();
        let e = results[0].as_ref().unwrap_err();
        assert_eq!(e.code, "InvalidArgument");
        assert!(e.message.contains("2048"), "{e}");
        // Several entries over the request size together: the call fails.
        let half = entry(
            "tideline",
            "Placed",
            format!(r#"{{"d":"{}"}}"#, "x".repeat(1100)),
        );
        assert!(bus.put_events(&[half.clone(), half]).await.is_err());
        // A detail that is not a JSON object.
        let results = bus
            .put_events(&[entry("tideline", "Placed", "[1]".into())])
            .await
            .unwrap();
        assert_eq!(results[0].as_ref().unwrap_err().code, "MalformedDetail");

        assert_eq!(
            routed(&mut receiver),
            2,
            "only the valid entries are routed"
        );
    }
}
