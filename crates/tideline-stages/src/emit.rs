//! The emit stage: turn store changes into integration events and publish them.
//!
//! - Changes are mapped in feed order; non-event changes are skipped and counted by kind.
//! - Entries go out in PutEvents calls of at most 10 entries and the size limit,
//!   one call at a time, so one entity never has two calls in flight (INVARIANTS.md #4).
//! - Only failed entries are resent, with jittered backoff, and retries stop.
//! - If entries still fail, the result names the **lowest** failed change's
//!   sequence number: a stream handler returns it in `batchItemFailures`, and
//!   Lambda rewinds there and replays everything after it (AWS-CONTRACTS.md).
//! - With [`EmitConfig::bundle`] set (off by default), consecutive events are
//!   packed into bundle entries ([`tideline_core::bundle`]) just before
//!   chunking; a failed bundle rewinds to its first event, and counts stay
//!   per event (decision record 0014).

use crate::{Bus, Change, ChangeKind};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use tideline_core::bundle::{BundleConfig, pack};
use tideline_core::envelope::{BusEntry, EventDetail, put_events_chunks};
use tideline_core::metrics::Counts;
use tideline_core::retry::{CallAnswer, CallPlan, OnPermanent, RetryPolicy, Why, resend_failed};
use tracing::{info, warn};

/// Settings of the emit stage.
#[derive(Debug, Clone)]
pub struct EmitConfig {
    /// `source` of every integration event.
    pub source: String,
    /// Retries of failed entries.
    pub retry: RetryPolicy,
    /// Bundled emission; `None` (the default) publishes one event per entry.
    pub bundle: Option<BundleConfig>,
}

impl Default for EmitConfig {
    fn default() -> Self {
        Self {
            source: tideline_core::envelope::DEFAULT_SOURCE.into(),
            retry: RetryPolicy::default(),
            bundle: None,
        }
    }
}

/// One batch's result.
#[derive(Debug, Clone, Default)]
pub struct EmitBatch {
    /// Where the feed must restart: the lowest failed change's sequence number.
    pub rewind_from: Option<String>,
    /// Entries published, in order.
    pub published: Vec<BusEntry>,
    /// Skipped changes, by kind.
    pub skipped: BTreeMap<String, u64>,
    /// received / sent / discarded (skipped) / failed.
    pub counts: Counts,
    /// Last error seen, if the batch did not complete.
    pub error: Option<String>,
}

/// Maps one change to its bus entry, or the kind to count it under.
pub fn entry_for_change(change: &Change, source: &str) -> Result<BusEntry, String> {
    match &change.kind {
        ChangeKind::EventInserted(event) => Ok(BusEntry::for_stored(source, event, false)),
        // INVARIANTS.md #6: removal (TTL or an explicit erasure) emits EventExpired.
        ChangeKind::EventRemoved { event, by_ttl } => {
            Ok(BusEntry::new(source, &EventDetail::expired(event, *by_ttl)))
        }
        ChangeKind::Skipped { kind } => Err(kind.clone()),
        ChangeKind::Undecodable { reason } => Err(format!("undecodable: {reason}")),
    }
}

/// Runs the emit stage over a batch of changes.
pub async fn emit_batch<B: Bus>(bus: &B, config: &EmitConfig, changes: &[Change]) -> EmitBatch {
    let mut out = EmitBatch {
        counts: Counts {
            received: changes.len() as u64,
            ..Counts::default()
        },
        ..EmitBatch::default()
    };
    // A change the emitter cannot read is never skipped: publish what comes
    // before it, then rewind to it (the event source retries it, and past its
    // retry limit hands it to the on-failure destination).
    let readable = changes
        .iter()
        .position(|c| matches!(c.kind, ChangeKind::Undecodable { .. }))
        .unwrap_or(changes.len());
    let mut entries = Vec::with_capacity(changes.len());
    let mut positions = Vec::with_capacity(changes.len());
    for (i, change) in changes[..readable].iter().enumerate() {
        match entry_for_change(change, &config.source) {
            Ok(entry) => {
                entries.push(entry);
                positions.push(i);
            }
            Err(kind) => {
                *out.skipped.entry(kind).or_default() += 1;
                out.counts.discarded += 1;
            }
        }
    }

    if let Some(change) = changes.get(readable) {
        if let ChangeKind::Undecodable { reason } = &change.kind {
            out.error = Some(format!(
                "change {} cannot be read: {reason}",
                change.sequence_number
            ));
        }
        out.rewind_from = Some(change.sequence_number.clone());
        out.counts.failed += (changes.len() - readable) as u64;
    }

    // Events per entry; empty means one each (no bundling).
    let mut weights = Vec::new();
    if let Some(bundle) = &config.bundle {
        (entries, positions, weights) = bundle_step(
            bundle,
            changes,
            entries,
            &positions,
            bus.max_request_bytes(),
        );
    }

    let publication = publish_in_order(bus, &config.retry, &entries).await;
    out.counts.sent += publication
        .published
        .iter()
        .map(|&i| events_in(&weights, i..i + 1))
        .sum::<u64>();
    if let Some(first_failed) = publication.first_failed {
        mark_failed_from(
            &mut out,
            changes,
            &positions,
            &weights,
            first_failed..entries.len(),
        );
    }
    if publication.error.is_some() {
        out.error = publication.error;
    }
    out.published = take_in_order(entries, &publication.published);
    let c = out.counts;
    info!(stage = "emit", received = c.received, sent = c.sent, discarded = c.discarded, failed = c.failed, rewind_from = ?out.rewind_from, skipped = ?out.skipped, "batch done");
    out
}

/// Moves the entries at `indices` (ascending) out of `entries`, in order:
/// the batch result owns what was published without a copy of each detail.
fn take_in_order(entries: Vec<BusEntry>, indices: &[usize]) -> Vec<BusEntry> {
    let mut wanted = indices.iter().copied().peekable();
    entries
        .into_iter()
        .enumerate()
        .filter_map(|(i, entry)| wanted.next_if_eq(&i).map(|_| entry))
        .collect()
}

fn mark_failed_from(
    out: &mut EmitBatch,
    changes: &[Change],
    positions: &[usize],
    weights: &[u64],
    failed_entries: Range<usize>,
) {
    if let Some(&pos) = positions.get(failed_entries.start) {
        // Earlier than an undecodable change's rewind point, if any.
        out.rewind_from = Some(changes[pos].sequence_number.clone());
    }
    out.counts.failed += events_in(weights, failed_entries);
}

/// Events carried by `entries`: one each without bundling (`weights` empty).
fn events_in(weights: &[u64], entries: Range<usize>) -> u64 {
    if weights.is_empty() {
        entries.len() as u64
    } else {
        weights.get(entries).map_or(0, |w| w.iter().sum())
    }
}

fn change_is_test(change: &Change) -> bool {
    match &change.kind {
        ChangeKind::EventInserted(event) | ChangeKind::EventRemoved { event, .. } => event.test,
        ChangeKind::Skipped { .. } | ChangeKind::Undecodable { .. } => false,
    }
}

/// The bundling step: packs the ordered entries into bundle entries. Returns
/// the new entries, each one's position (its **first** event's change, so a
/// failed bundle rewinds to its first event and the stream replays the whole
/// bundle and everything after it), and the events each carries.
fn bundle_step(
    bundle: &BundleConfig,
    changes: &[Change],
    entries: Vec<BusEntry>,
    positions: &[usize],
    max_entry_bytes: usize,
) -> (Vec<BusEntry>, Vec<usize>, Vec<u64>) {
    let is_test = |i: usize| {
        positions
            .get(i)
            .is_some_and(|&p| change_is_test(&changes[p]))
    };
    let packed = pack(&entries, is_test, bundle, max_entry_bytes);
    let mut bundled_positions = Vec::with_capacity(packed.len());
    let mut weights = Vec::with_capacity(packed.len());
    for p in &packed {
        bundled_positions.push(positions.get(p.members.start).copied().unwrap_or_default());
        weights.push(p.members.len() as u64);
    }
    info!(
        stage = "emit",
        events = entries.len(),
        entries = packed.len(),
        "bundled"
    );
    (
        packed.into_iter().map(|p| p.entry).collect(),
        bundled_positions,
        weights,
    )
}

/// What publishing a run of entries in order did.
#[derive(Debug, Default)]
struct Publication {
    /// The entries the bus took, ascending.
    published: Vec<usize>,
    /// The first entry not published: where a rewind or a rerun starts.
    /// Everything from it on is to be sent again (some of it may have been
    /// taken too; consumers drop the repeats by `sequence`).
    first_failed: Option<usize>,
    /// Why it was not published.
    error: Option<String>,
}

/// Publishes entries in order, the one path of [`emit_batch`] and
/// [`replay_events`]: PutEvents calls within the bus's entry and size limits,
/// one call at a time (so an entity never has two calls in flight), each
/// resending only its failed entries ([`resend_failed`]). It stops at the
/// first call whose entries still fail, and at an entry no call can carry,
/// so nothing after a failure is published ahead of it.
async fn publish_in_order<B: Bus>(
    bus: &B,
    retry: &RetryPolicy,
    entries: &[BusEntry],
) -> Publication {
    let (chunks, oversized) =
        match put_events_chunks(entries, bus.max_entries(), bus.max_request_bytes()) {
            Ok(chunks) => (chunks, None),
            // Never fits: publish what is before it, then stop there.
            Err(oversized) => (
                put_events_chunks(
                    &entries[..oversized.index],
                    bus.max_entries(),
                    bus.max_request_bytes(),
                )
                .unwrap_or_default(),
                Some(oversized),
            ),
        };
    let mut out = Publication::default();
    for chunk in chunks {
        let (taken, failed) = publish_chunk(bus, retry, &entries[chunk.clone()]).await;
        out.published
            .extend(taken.into_iter().map(|k| chunk.start + k));
        if let Some((first, error)) = failed {
            out.published.sort_unstable();
            out.first_failed = Some(chunk.start + first);
            out.error = Some(error);
            return out;
        }
    }
    if let Some(oversized) = oversized {
        out.first_failed = Some(oversized.index);
        out.error = Some(oversized.to_string());
    }
    out
}

/// Publishes one chunk (one call's worth), resending only failed entries.
/// Returns the offsets taken and, if some never were, the lowest such offset
/// with its reason. A permanent refusal ends the chunk
/// ([`OnPermanent::EndBatch`]): the caller rewinds to the lowest failure and
/// resends everything after it anyway.
async fn publish_chunk<B: Bus>(
    bus: &B,
    retry: &RetryPolicy,
    chunk: &[BusEntry],
) -> (Vec<usize>, Option<(usize, String)>) {
    // Boxed: the loop's future is deep, and a host's `main` future holding
    // it inline hits the compiler's layout depth limit. One allocation per
    // call, next to a network round trip.
    let outcome = Box::pin(resend_failed(
        retry,
        &CallPlan::whole(OnPermanent::EndBatch),
        chunk.len(),
        |sent: &[usize]| {
            // The first attempt sends the chunk as it is; only a resend of
            // some entries needs a batch of its own.
            let batch: Cow<'_, [BusEntry]> = if sent.len() == chunk.len() {
                Cow::Borrowed(chunk)
            } else {
                Cow::Owned(sent.iter().map(|&i| chunk[i].clone()).collect())
            };
            async move {
                let answer = bus.put_events(&batch).await;
                warn_failures("emit", "PutEvents", &answer);
                answer
            }
        },
        tokio::time::sleep,
    ))
    .await;
    let mut taken: Vec<usize> = outcome.accepted.iter().map(|(i, _)| *i).collect();
    taken.sort_unstable();
    // The lowest failure names the rewind; its reason is the first one of its
    // own (an entry held back behind it has none).
    let first = outcome.failed.iter().map(|(i, _)| *i).min();
    let reason = outcome
        .failed
        .iter()
        .filter(|(_, g)| g.why != Why::Behind)
        .min_by_key(|(i, _)| *i)
        .or_else(|| outcome.failed.first())
        .map(|(_, g)| g.why.to_string());
    (taken, first.map(|f| (f, reason.unwrap_or_default())))
}

/// Logs a partial or failed batch call, once per call: the retry loop itself
/// does no I/O.
pub(crate) fn warn_failures<EE: std::fmt::Display, CE: std::fmt::Display>(
    stage: &'static str,
    operation: &'static str,
    answer: &CallAnswer<EE, CE>,
) {
    match answer {
        Ok(results) => {
            let failed = results.iter().filter(|r| r.is_err()).count();
            if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
                warn!(stage, operation, failed, error = %e, "entries failed; only those are resent");
            }
        }
        Err(e) => warn!(stage, operation, error = %e, "call failed"),
    }
}

/// Re-emits stored events (`tideline replay`), marked `metadata.replay = true`.
///
/// Events go out in the order given, which callers make per-entity `seq`
/// order, through [`emit_batch`]'s own path (chunking, one call at a time,
/// failed-entry retries). On a failure that retries cannot fix, it stops
/// there, so nothing after the failed entry is published out of order;
/// `rewind_from` names that event as `<entity>#<seq>`, where a rerun should
/// start.
pub async fn replay_events<B: Bus>(
    bus: &B,
    config: &EmitConfig,
    events: &[tideline_core::StoredEvent],
) -> EmitBatch {
    let entries: Vec<BusEntry> = events
        .iter()
        .map(|e| BusEntry::for_stored(&config.source, e, true))
        .collect();
    let publication = publish_in_order(bus, &config.retry, &entries).await;
    let received = events.len() as u64;
    let sent = publication.published.len() as u64;
    let rewind_from = publication
        .first_failed
        .and_then(|i| entries.get(i))
        .map(|e| format!("{}#{}", e.entity_id, e.sequence));
    let out = EmitBatch {
        rewind_from,
        published: take_in_order(entries, &publication.published),
        skipped: BTreeMap::new(),
        counts: Counts {
            received,
            sent,
            discarded: 0,
            failed: received - sent,
        },
        error: publication.error,
    };
    let c = out.counts;
    if out.rewind_from.is_some() {
        warn!(stage = "replay", failed = c.failed, rewind_from = ?out.rewind_from, "replay stopped");
    }
    info!(
        stage = "replay",
        received = c.received,
        sent = c.sent,
        failed = c.failed,
        "replay batch done"
    );
    out
}

#[cfg(test)]
mod replay_tests {
    use super::*;
    use crate::memory::MemoryBus;
    use tideline_core::{EntityId, EventId, StoredEvent};

    fn stored(entity: &str, seq: u64) -> StoredEvent {
        StoredEvent {
            entity_id: EntityId::new(entity).unwrap(),
            seq,
            sk: format!("t#{seq}"),
            event_id: EventId::new(format!("{entity}-{seq}")).unwrap(),
            event_type: "T".into(),
            data: serde_json::json!({"seq": seq}),
            occurred_at: "t".into(),
            received_at: "t".into(),
            stored_at: "t".into(),
            correlation_id: None,
            test: false,
            schema_version: 1,
            expires_at: None,
            traceparent: None,
        }
    }

    #[tokio::test]
    async fn replay_marks_events_and_keeps_order() {
        let bus = MemoryBus::default();
        let events: Vec<_> = (1..=25).map(|s| stored("e", s)).collect();
        let out = replay_events(&bus, &EmitConfig::default(), &events).await;
        assert_eq!(out.counts.sent, 25);
        assert!(out.rewind_from.is_none());
        let published = bus.published.lock().unwrap().clone();
        assert_eq!(
            published.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            (1..=25).collect::<Vec<_>>()
        );
        let detail: EventDetail = serde_json::from_str(&published[0].detail).unwrap();
        assert!(detail.metadata.replay);
        assert_eq!(*bus.calls.lock().unwrap(), 3);
    }
}
