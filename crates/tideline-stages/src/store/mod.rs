//! The store stage: append queued records in order, with the FIFO batch rule.
//!
//! Messages arrive in per-group order (SQS FIFO, or the local queue). They are
//! appended strictly in that order. At the first retryable failure the stage
//! stops and reports that message and every later one, so none of them is
//! deleted and the group's order survives the retry (AWS-CONTRACTS.md, "stop,
//! and report the failure and the rest").
//!
//! A poison message, one that can never be stored (not a normalised record,
//! or refused by the store as permanently invalid), must neither block its
//! group nor vanish: it goes to the [`RejectSink`] with its reason and counts
//! as handled.

pub mod port;
pub mod slot;

use crate::{EventStore, RejectSink, RejectedRecord, StoreError};
use tideline_core::ingest::NormalizedRecord;
use tideline_core::keys::format_timestamp;
use tideline_core::metrics::Counts;
use tideline_core::{AppendOutcome, Classify, EntityId, ErrorClass, NewEvent};
use tracing::{info, warn};

/// A message as the storer receives it.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    /// SQS `messageId` (what `batchItemFailures` names).
    pub message_id: String,
    /// The body: a normalised record as JSON.
    pub body: String,
}

/// One batch's result.
#[derive(Debug, Clone, Default)]
pub struct StoreBatch {
    /// Message ids to report in `batchItemFailures`: the first failure and every later message.
    pub failed_message_ids: Vec<String>,
    /// Appended events (sequence assigned now), in order.
    pub stored: Vec<AppendOutcome>,
    /// received / sent (stored) / discarded (duplicates) / failed (rejected + reported).
    pub counts: Counts,
    /// The error that stopped the batch, if any.
    pub stop_reason: Option<String>,
    /// The class of that error: a caller that retries the batch itself (local
    /// mode) counts a receive only for a permanent one.
    pub stop_class: Option<ErrorClass>,
}

enum Parsed {
    Record(Box<NewEvent>),
    /// A record already handed to the store: each body is parsed once and
    /// its record moved, not copied, into the append.
    Taken,
    Poison(String),
}

/// The record of message `i`, moved out of `parsed`. A record taken before
/// and not appended (the append stopped at an earlier message of its run and
/// the batch goes on behind it) is parsed again from its body: that only
/// happens after a permanent store refusal.
fn take_record(parsed: &mut [Parsed], messages: &[IncomingMessage], i: usize) -> Option<NewEvent> {
    match std::mem::replace(&mut parsed[i], Parsed::Taken) {
        Parsed::Record(record) => Some(*record),
        Parsed::Taken => match parse(&messages[i].body) {
            Parsed::Record(record) => Some(*record),
            Parsed::Taken | Parsed::Poison(_) => None,
        },
        poison @ Parsed::Poison(_) => {
            parsed[i] = poison;
            None
        }
    }
}

fn parse(body: &str) -> Parsed {
    match serde_json::from_str::<NormalizedRecord>(body) {
        Ok(r) => Parsed::Record(Box::new(r)),
        Err(e) => Parsed::Poison(format!(
            "queue message is not a normalised Tideline record: {e}"
        )),
    }
}

/// Runs the store stage over a batch of messages, in order: one run across
/// entities, stopping at the first retryable failure and reporting it and
/// every later message. For stores that commit a run at once (SQLite, local
/// mode), where appending entities concurrently gains nothing.
pub async fn store_batch<S: EventStore, R: RejectSink>(
    store: &S,
    rejects: &R,
    messages: Vec<IncomingMessage>,
) -> StoreBatch {
    let parsed: Vec<Parsed> = messages.iter().map(|m| parse(&m.body)).collect();
    let out = store_run(store, rejects, &messages, parsed).await;
    log_batch(&out, 1);
    out
}

/// Runs the store stage over a batch of messages, entity by entity: each
/// entity's messages in order, one after another, and up to
/// `max_concurrent_entities` entities at once (decision 0022). A retryable
/// failure stops only its entity: that message and every later message of
/// the entity are reported, while the other entities go on. A message
/// that is not a record has no entity to wait for; such messages form a run
/// of their own.
pub async fn store_batch_by_entity<S: EventStore, R: RejectSink>(
    store: &S,
    rejects: &R,
    messages: Vec<IncomingMessage>,
    max_concurrent_entities: usize,
) -> StoreBatch {
    use futures::StreamExt;
    let total = messages.len();
    // Each entity's messages, in batch order, with their batch positions;
    // entities in order of their first message.
    let mut runs: Vec<EntityRun> = Vec::new();
    let mut run_of: std::collections::HashMap<Option<EntityId>, usize> =
        std::collections::HashMap::new();
    for (position, message) in messages.into_iter().enumerate() {
        let parsed = parse(&message.body);
        let entity = match &parsed {
            Parsed::Record(record) => Some(record.entity_id.clone()),
            Parsed::Taken | Parsed::Poison(_) => None,
        };
        let k = *run_of.entry(entity).or_insert_with(|| {
            runs.push(EntityRun::default());
            runs.len() - 1
        });
        runs[k].positions.push(position);
        runs[k].messages.push(message);
        runs[k].parsed.push(parsed);
    }
    let mut results: Vec<(usize, Vec<usize>, StoreBatch)> =
        futures::stream::iter(runs.into_iter().enumerate())
            .map(|(k, run)| async move {
                let out = store_run(store, rejects, &run.messages, run.parsed).await;
                (k, run.positions, out)
            })
            .buffer_unordered(max_concurrent_entities.max(1))
            .collect()
            .await;
    results.sort_by_key(|(k, _, _)| *k);
    let mut out = StoreBatch {
        counts: Counts {
            received: total as u64,
            ..Counts::default()
        },
        ..StoreBatch::default()
    };
    // (batch position, message id) of every reported message, so the
    // response lists them in batch order.
    let mut reported: Vec<(usize, String)> = Vec::new();
    let mut first_stop: Option<usize> = None;
    for (_, positions, run) in results {
        out.counts.sent += run.counts.sent;
        out.counts.discarded += run.counts.discarded;
        out.counts.failed += run.counts.failed;
        out.stored.extend(run.stored);
        let reported_here = run.failed_message_ids.len();
        let first_reported = positions.len() - reported_here;
        reported.extend(
            positions[first_reported..]
                .iter()
                .copied()
                .zip(run.failed_message_ids),
        );
        if let Some(reason) = run.stop_reason {
            let at = positions.get(first_reported).copied().unwrap_or(usize::MAX);
            if first_stop.is_none_or(|earlier| at < earlier) {
                first_stop = Some(at);
                out.stop_reason = Some(reason);
                out.stop_class = run.stop_class;
            }
        }
    }
    reported.sort_by_key(|(position, _)| *position);
    out.failed_message_ids = reported.into_iter().map(|(_, id)| id).collect();
    log_batch(&out, max_concurrent_entities);
    out
}

/// One entity's share of a batch.
#[derive(Default)]
struct EntityRun {
    positions: Vec<usize>,
    messages: Vec<IncomingMessage>,
    parsed: Vec<Parsed>,
}

fn log_batch(out: &StoreBatch, max_concurrent_entities: usize) {
    let c = out.counts;
    info!(
        stage = "store",
        received = c.received,
        sent = c.sent,
        discarded = c.discarded,
        failed = c.failed,
        reported = out.failed_message_ids.len(),
        max_concurrent_entities,
        "batch done"
    );
}

/// The store stage over `messages` in order, stopping at the first
/// retryable failure: the FIFO rule for one ordered run.
async fn store_run<S: EventStore, R: RejectSink>(
    store: &S,
    rejects: &R,
    messages: &[IncomingMessage],
    mut parsed: Vec<Parsed>,
) -> StoreBatch {
    let mut out = StoreBatch {
        counts: Counts {
            received: messages.len() as u64,
            ..Counts::default()
        },
        ..StoreBatch::default()
    };

    // Walk runs of consecutive valid records; a poison message splits runs, so
    // the order of handling matches the order of arrival.
    let mut index = 0;
    let mut stopped_at: Option<usize> = None;
    while index < messages.len() && stopped_at.is_none() {
        match &parsed[index] {
            Parsed::Poison(reason) => {
                if let Err(e) = reject(rejects, &messages[index], reason.clone()).await {
                    out.stop_reason = Some(e.to_string());
                    out.stop_class = Some(e.class);
                    stopped_at = Some(index);
                } else {
                    out.counts.failed += 1;
                    index += 1;
                }
            }
            Parsed::Record(_) | Parsed::Taken => {
                let run_end = (index..messages.len())
                    .find(|&i| matches!(parsed[i], Parsed::Poison(_)))
                    .unwrap_or(messages.len());
                let run: Vec<NewEvent> = (index..run_end)
                    .filter_map(|i| take_record(&mut parsed, messages, i))
                    .collect();
                let (outcomes, error) = store.append_each(run).await;
                for per_message in &outcomes {
                    for o in per_message {
                        match o {
                            AppendOutcome::Stored { .. } => out.counts.sent += 1,
                            AppendOutcome::Duplicate { .. } => out.counts.discarded += 1,
                        }
                        out.stored.push(o.clone());
                    }
                }
                index += outcomes.len();
                match error {
                    None => {}
                    Some(e) if e.is_retryable() => {
                        warn!(stage = "store", message_id = %messages[index].message_id, error = %e, "append failed; reporting it and the rest of its run");
                        out.stop_reason = Some(e.to_string());
                        out.stop_class = Some(e.class());
                        stopped_at = Some(index);
                    }
                    Some(e) => {
                        // Permanently unstorable (e.g. an item over DynamoDB's 400 KB):
                        // move it aside with the reason, and carry on behind it.
                        let reason = permanent_reason(&e);
                        if let Err(re) = reject(rejects, &messages[index], reason).await {
                            out.stop_reason = Some(re.to_string());
                            out.stop_class = Some(re.class);
                            stopped_at = Some(index);
                        } else {
                            out.counts.failed += 1;
                            index += 1;
                        }
                    }
                }
            }
        }
    }
    if let Some(at) = stopped_at {
        out.failed_message_ids = tideline_core::batch::fifo_unprocessed(
            &messages
                .iter()
                .map(|m| m.message_id.clone())
                .collect::<Vec<_>>(),
            at,
        );
        out.counts.failed += out.failed_message_ids.len() as u64;
    }
    out
}

fn permanent_reason(e: &StoreError) -> String {
    format!("store refused the record permanently: {e}")
}

async fn reject<R: RejectSink>(
    rejects: &R,
    message: &IncomingMessage,
    reason: String,
) -> Result<(), crate::PortError> {
    warn!(stage = "store", message_id = %message.message_id, %reason, "poison message moved to rejected records");
    rejects
        .reject(RejectedRecord {
            stage: "store".into(),
            source_id: message.message_id.clone(),
            reason,
            body: message.body.clone(),
            rejected_at: format_timestamp(chrono::Utc::now()),
        })
        .await
}
