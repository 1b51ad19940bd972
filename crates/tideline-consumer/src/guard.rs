//! The guard: exactly-once effects in per-entity order over an
//! at-least-once, unordered bus.
//!
//! For each event of (consumer, entity) with sequence `s` and checkpoint `last`:
//! - `s <= last` (or `s` already buffered): a **duplicate**, skipped and counted;
//! - `s == last + 1`: the **next** one. The handler runs and returns its
//!   writes; the store commits them with `last = s` in one atomic write,
//!   conditional on `last` being unchanged. Under the `buffer` policy the
//!   buffered successors are then applied the same way;
//! - `s > last + 1`: a **gap**, handled by the [`GapPolicy`].
//!
//! An `EventExpired` notice (`metadata.removed_by` set) is not a live event:
//! its `sequence` names the removed event rather than taking a place in the
//! entity's sequence, so it is handed to the handler outside the ordering
//! rules (no duplicate/gap check against the checkpoint, which it leaves
//! unchanged). Its writes still commit atomically with a checkpoint
//! condition; the handler must be idempotent for it (a notice can be
//! redelivered), which removal handlers naturally are.
//!
//! Test events (`metadata.test`) are skipped unless the consumer opts in.
//! Replayed events (`metadata.replay`) go through the same rules: a consumer
//! ignores a replay unless its checkpoint was reset.

use crate::checkpoint::{CheckpointStore, CheckpointUpdate};
use crate::envelope::IntegrationEvent;
use crate::error::ConsumerError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{debug, info, warn};

/// Default bound of the `buffer` policy, per entity. Buffered events live in
/// the checkpoint item (DynamoDB: at most 400 KB), so keep it small.
pub const DEFAULT_MAX_BUFFERED: usize = 16;

/// Times the guard re-reads a checkpoint that moved concurrently.
const CONFLICT_RETRIES: u32 = 5;

/// What to do with an event that is ahead of the checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GapPolicy {
    /// Return a retryable error so the bus or Lambda redelivers it later (the default).
    #[default]
    Retry,
    /// Apply it anyway and record the gap; the missing events, if they come, are duplicates.
    Accept,
    /// Hold it in the checkpoint store until the gap fills; when the buffer is
    /// full, fall back to `retry`.
    Buffer,
}

impl FromStr for GapPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "retry" => Ok(Self::Retry),
            "accept" => Ok(Self::Accept),
            "buffer" => Ok(Self::Buffer),
            other => Err(format!(
                "gap policy {other:?} is not one of retry, accept, buffer"
            )),
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; `drained` lists buffered successors applied after it.
    Applied {
        /// Its sequence.
        sequence: u64,
        /// Buffered events applied after it, in order.
        drained: Vec<u64>,
        /// It skipped a gap (policy `accept`).
        gap_accepted: bool,
    },
    /// Already applied (or already buffered): skipped.
    Duplicate,
    /// Held until the gap fills.
    Buffered,
    /// A test event, and the consumer does not accept them.
    TestSkipped,
    /// An `EventExpired` notice, handled outside live-event ordering.
    Expiry {
        /// The sequence of the removed event it names.
        removed_sequence: u64,
    },
    /// A bundle, unpacked: each event's outcome, in bundle order.
    Bundle {
        /// One outcome per event of the bundle.
        outcomes: Vec<Outcome>,
    },
}

/// Counters since the guard was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GuardCounts {
    /// Handler runs committed (drained buffered events included).
    pub applied: u64,
    /// Duplicates skipped.
    pub duplicate: u64,
    /// Gaps seen (retried, accepted or buffered).
    pub gap: u64,
    /// Events buffered.
    pub buffered: u64,
    /// Test events skipped.
    pub test_skipped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    applied: AtomicU64,
    duplicate: AtomicU64,
    gap: AtomicU64,
    buffered: AtomicU64,
    test_skipped: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The idempotency and ordering guard of one consumer.
#[derive(Debug)]
pub struct Guard<S> {
    store: S,
    consumer: String,
    policy: GapPolicy,
    accept_test_events: bool,
    max_buffered: usize,
    counters: Counters,
}

impl<S: CheckpointStore> Guard<S> {
    /// A guard for `consumer` (its checkpoints' namespace) with the `retry` policy.
    pub fn new(store: S, consumer: impl Into<String>) -> Self {
        Self {
            store,
            consumer: consumer.into(),
            policy: GapPolicy::Retry,
            accept_test_events: false,
            max_buffered: DEFAULT_MAX_BUFFERED,
            counters: Counters::default(),
        }
    }

    /// Sets the gap policy.
    pub fn with_gap_policy(mut self, policy: GapPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Applies `test: true` events too (they are skipped by default).
    pub fn accept_test_events(mut self, accept: bool) -> Self {
        self.accept_test_events = accept;
        self
    }

    /// Bounds the `buffer` policy per entity.
    pub fn with_max_buffered(mut self, max: usize) -> Self {
        self.max_buffered = max;
        self
    }

    /// The checkpoint store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The consumer name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The counters so far.
    pub fn counts(&self) -> GuardCounts {
        let c = &self.counters;
        GuardCounts {
            applied: c.applied.load(Ordering::Relaxed),
            duplicate: c.duplicate.load(Ordering::Relaxed),
            gap: c.gap.load(Ordering::Relaxed),
            buffered: c.buffered.load(Ordering::Relaxed),
            test_skipped: c.test_skipped.load(Ordering::Relaxed),
        }
    }

    /// Parses a raw EventBridge event and handles it. A bundle is unpacked
    /// and each of its events goes through the guard in order, so the handler
    /// still sees one event at a time ([`Outcome::Bundle`]); the first error
    /// stops the bundle and is returned, and on redelivery the events already
    /// applied are duplicates. A malformed event is a permanent
    /// [`ConsumerError::BadEvent`].
    pub async fn handle_json<T, H, Fut>(
        &self,
        raw: serde_json::Value,
        handler: H,
    ) -> Result<Outcome, ConsumerError>
    where
        T: Serialize + DeserializeOwned + Clone + Send,
        H: Fn(IntegrationEvent<T>) -> Fut,
        Fut: Future<Output = Result<S::Write, ConsumerError>>,
    {
        let (raws, bundled) = crate::envelope::unpack(raw)?;
        let mut outcomes = Vec::with_capacity(raws.len());
        for raw in raws {
            let event: IntegrationEvent<T> =
                serde_json::from_value(raw).map_err(|e| ConsumerError::BadEvent(e.to_string()))?;
            outcomes.push(self.handle(event, &handler).await?);
        }
        match (bundled, outcomes.pop()) {
            (false, Some(outcome)) => Ok(outcome),
            (_, last) => {
                outcomes.extend(last);
                Ok(Outcome::Bundle { outcomes })
            }
        }
    }

    /// Classifies one event and, when it is due, runs `handler` and commits
    /// its writes with the checkpoint.
    ///
    /// Runs inside a `tracing` span carrying the event's trace
    /// (`trace_id`, `traceparent`: the producer's, carried through every hop),
    /// so the consumer's logs join the trace of the record that caused them.
    pub async fn handle<T, H, Fut>(
        &self,
        event: IntegrationEvent<T>,
        handler: H,
    ) -> Result<Outcome, ConsumerError>
    where
        T: Serialize + DeserializeOwned + Clone + Send,
        H: Fn(IntegrationEvent<T>) -> Fut,
        Fut: Future<Output = Result<S::Write, ConsumerError>>,
    {
        use tracing::Instrument;
        let traceparent = event.metadata().traceparent.clone().unwrap_or_default();
        let trace_id = tideline_core::trace::TraceContext::parse(&traceparent)
            .map(|t| t.trace_id)
            .unwrap_or_default();
        let span = tracing::info_span!(
            "event",
            consumer = %self.consumer,
            entity = %event.metadata().entity_id,
            sequence = event.metadata().sequence,
            trace_id = %trace_id,
            traceparent = %traceparent,
        );
        // Boxed: the guard's future nests the handler's, and a Lambda main
        // nests the guard's; unboxed, the span wrapper pushed that type past
        // rustc's layout recursion limit in consumers' mains.
        Box::pin(self.handle_in_span(event, handler))
            .instrument(span)
            .await
    }

    async fn handle_in_span<T, H, Fut>(
        &self,
        event: IntegrationEvent<T>,
        handler: H,
    ) -> Result<Outcome, ConsumerError>
    where
        T: Serialize + DeserializeOwned + Clone + Send,
        H: Fn(IntegrationEvent<T>) -> Fut,
        Fut: Future<Output = Result<S::Write, ConsumerError>>,
    {
        let meta = event.metadata().clone();
        if meta.test && !self.accept_test_events {
            bump(&self.counters.test_skipped);
            debug!(consumer = %self.consumer, entity = %meta.entity_id, sequence = meta.sequence, "test event skipped");
            return Ok(Outcome::TestSkipped);
        }
        let entity = meta.entity_id.as_str();
        let seq = meta.sequence;
        if meta.is_expiry() {
            return self.handle_expiry(event, &handler).await;
        }
        for _ in 0..CONFLICT_RETRIES {
            let cp = self.store.load(&self.consumer, entity).await?;
            if seq <= cp.last_sequence || cp.buffered.contains_key(&seq) {
                bump(&self.counters.duplicate);
                debug!(consumer = %self.consumer, entity, sequence = seq, last = cp.last_sequence, replay = meta.replay, "duplicate skipped");
                // A redelivery is also the chance to finish a drain that failed.
                if self.policy == GapPolicy::Buffer
                    && cp.buffered.contains_key(&(cp.last_sequence + 1))
                {
                    self.drain(entity, &handler).await?;
                }
                return Ok(Outcome::Duplicate);
            }
            let next = cp.last_sequence + 1;
            let gap = seq > next;
            if gap {
                bump(&self.counters.gap);
                match self.policy {
                    GapPolicy::Retry => return Err(self.gap_error(entity, next, seq)),
                    GapPolicy::Buffer => {
                        if cp.buffered.len() >= self.max_buffered {
                            warn!(consumer = %self.consumer, entity, sequence = seq, expected = next, "buffer full; falling back to retry");
                            return Err(self.gap_error(entity, next, seq));
                        }
                        let json = serde_json::to_string(&event)
                            .map_err(|e| ConsumerError::BadEvent(e.to_string()))?;
                        let update = CheckpointUpdate::Buffer {
                            expected: cp.last_sequence,
                            sequence: seq,
                            event: json,
                            max: self.max_buffered,
                        };
                        match self
                            .store
                            .commit(&self.consumer, entity, update, None)
                            .await
                        {
                            Ok(()) => {
                                bump(&self.counters.buffered);
                                debug!(consumer = %self.consumer, entity, sequence = seq, expected = next, "buffered until the gap fills");
                                return Ok(Outcome::Buffered);
                            }
                            Err(ConsumerError::Conflict { .. }) => continue,
                            Err(e) => return Err(e),
                        }
                    }
                    GapPolicy::Accept => {
                        info!(consumer = %self.consumer, entity, sequence = seq, expected = next, "gap accepted");
                    }
                }
            }
            let write = handler(event.clone()).await?;
            let update = CheckpointUpdate::Advance {
                expected: cp.last_sequence,
                to: seq,
                unbuffer: None,
                accepted_gap: gap,
            };
            match self
                .store
                .commit(&self.consumer, entity, update, Some(write))
                .await
            {
                Ok(()) => {
                    bump(&self.counters.applied);
                    let drained = if self.policy == GapPolicy::Buffer {
                        self.drain(entity, &handler).await?
                    } else {
                        Vec::new()
                    };
                    return Ok(Outcome::Applied {
                        sequence: seq,
                        drained,
                        gap_accepted: gap,
                    });
                }
                Err(ConsumerError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ConsumerError::Conflict {
            entity: entity.to_string(),
            expected: seq.saturating_sub(1),
        })
    }

    /// Runs the handler for an expiry notice and commits its writes with the
    /// checkpoint unchanged (conditional on it not moving meanwhile).
    async fn handle_expiry<T, H, Fut>(
        &self,
        event: IntegrationEvent<T>,
        handler: &H,
    ) -> Result<Outcome, ConsumerError>
    where
        T: Serialize + DeserializeOwned + Clone + Send,
        H: Fn(IntegrationEvent<T>) -> Fut,
        Fut: Future<Output = Result<S::Write, ConsumerError>>,
    {
        let entity = event.entity_id().to_string();
        let removed_sequence = event.sequence();
        for _ in 0..CONFLICT_RETRIES {
            let cp = self.store.load(&self.consumer, &entity).await?;
            let write = handler(event.clone()).await?;
            let unchanged = CheckpointUpdate::Advance {
                expected: cp.last_sequence,
                to: cp.last_sequence,
                unbuffer: None,
                accepted_gap: false,
            };
            match self
                .store
                .commit(&self.consumer, &entity, unchanged, Some(write))
                .await
            {
                Ok(()) => {
                    bump(&self.counters.applied);
                    debug!(consumer = %self.consumer, entity = %entity, removed_sequence, "expiry notice applied");
                    return Ok(Outcome::Expiry { removed_sequence });
                }
                Err(ConsumerError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ConsumerError::Conflict {
            entity,
            expected: removed_sequence,
        })
    }

    fn gap_error(&self, entity: &str, expected: u64, got: u64) -> ConsumerError {
        debug!(consumer = %self.consumer, entity, expected, got, "gap; retry later");
        ConsumerError::Gap {
            entity: entity.to_string(),
            expected,
            got,
        }
    }

    /// Applies buffered events that are now next, in order. The checkpoint is
    /// re-read each time: an event buffered concurrently with the apply before
    /// it must not be left behind. Stops quietly when another delivery moved
    /// the checkpoint first (that one drains instead).
    async fn drain<T, H, Fut>(&self, entity: &str, handler: &H) -> Result<Vec<u64>, ConsumerError>
    where
        T: Serialize + DeserializeOwned + Clone + Send,
        H: Fn(IntegrationEvent<T>) -> Fut,
        Fut: Future<Output = Result<S::Write, ConsumerError>>,
    {
        let mut drained = Vec::new();
        loop {
            let mut cp = self.store.load(&self.consumer, entity).await?;
            let next = cp.last_sequence + 1;
            let Some(json) = cp.buffered.remove(&next) else {
                return Ok(drained);
            };
            let event: IntegrationEvent<T> = serde_json::from_str(&json)
                .map_err(|e| ConsumerError::BadEvent(format!("buffered event {next}: {e}")))?;
            let write = handler(event).await?;
            let update = CheckpointUpdate::Advance {
                expected: cp.last_sequence,
                to: next,
                unbuffer: Some(next),
                accepted_gap: false,
            };
            match self
                .store
                .commit(&self.consumer, entity, update, Some(write))
                .await
            {
                Ok(()) => {
                    bump(&self.counters.applied);
                    drained.push(next);
                }
                Err(ConsumerError::Conflict { .. }) => return Ok(drained),
                Err(e) => return Err(e),
            }
        }
    }
}
