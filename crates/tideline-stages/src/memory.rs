//! In-memory adapters: real implementations of the ports, kept in memory,
//! with fault injection. Stage tests, handler tests and benches use them where
//! I/O would only add noise; the rules they execute are the core's.

use crate::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use tideline_core::envelope::{BusEntry, DEFAULT_MAX_PUT_EVENTS_BYTES};
use tideline_core::event::{EntityHead, plan_append};
use tideline_core::{
    AppendOutcome, EntityId, ErrorClass, EventId, ExpectedSeq, NewEvent, StoredEvent,
};

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked; the data is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A scripted fault: fail the next `n` calls (or entries) with this failure.
#[derive(Debug, Default)]
pub struct Faults {
    queue: Mutex<VecDeque<Option<EntryFailure>>>,
}

impl Faults {
    /// Queues outcomes for the next entries: `None` succeeds, `Some(f)` fails.
    pub fn script(&self, outcomes: impl IntoIterator<Item = Option<EntryFailure>>) {
        lock(&self.queue).extend(outcomes);
    }
    fn next(&self) -> Option<EntryFailure> {
        lock(&self.queue).pop_front().flatten()
    }
}

/// A throttling failure, as SQS/EventBridge report it per entry.
pub fn throttled() -> EntryFailure {
    EntryFailure {
        code: "ThrottlingException".into(),
        message: "Rate exceeded".into(),
        class: ErrorClass::Retryable,
    }
}

/// An in-memory FIFO queue (sending side) that records what was sent.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    /// Messages accepted, in order.
    pub sent: Mutex<Vec<OutgoingMessage>>,
    /// Per-entry faults.
    pub faults: Faults,
    dedup: Mutex<HashSet<String>>,
}

impl MemoryQueue {
    /// The accepted messages.
    pub fn messages(&self) -> Vec<OutgoingMessage> {
        lock(&self.sent).clone()
    }
}

impl Queue for MemoryQueue {
    fn max_batch(&self) -> usize {
        10
    }
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            if let Some(f) = self.faults.next() {
                out.push(Err(f));
                continue;
            }
            // FIFO de-duplication: a repeated id is accepted but not enqueued twice.
            if lock(&self.dedup).insert(m.dedup_id.clone()) {
                lock(&self.sent).push(m.clone());
            }
            out.push(Ok(()));
        }
        Ok(out)
    }
}

#[derive(Debug, Default)]
struct StoreState {
    heads: HashMap<EntityId, EntityHead>,
    ids: HashSet<(EntityId, EventId)>,
    events: HashMap<EntityId, Vec<StoredEvent>>,
    log: Vec<StoredEvent>,
}

/// An in-memory event store executing the core's append plan.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
    /// Faults for the next appends (whole-call failures).
    pub faults: Faults,
}

impl MemoryStore {
    /// Every stored event, in append order.
    pub fn all_events(&self) -> Vec<StoredEvent> {
        lock(&self.state).log.clone()
    }
}

impl EventStore for MemoryStore {
    async fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        if let Some(f) = self.faults.next() {
            return Err(StoreError::Port(
                PortError::new(f.class, "memory", f.to_string()).with_source(f),
            ));
        }
        let mut st = lock(&self.state);
        let plan = {
            let ids = &st.ids;
            plan_append(
                entity,
                st.heads.get(entity),
                expected,
                events,
                |id| ids.contains(&(entity.clone(), id.clone())),
                chrono::Utc::now(),
                None,
            )?
        };
        let outcomes = plan.outcomes();
        for e in plan.to_store {
            st.ids.insert((entity.clone(), e.event_id.clone()));
            st.events.entry(entity.clone()).or_default().push(e.clone());
            st.log.push(e);
        }
        if let Some(h) = plan.new_head {
            st.heads.insert(entity.clone(), h);
        }
        Ok(outcomes)
    }

    async fn read_events(
        &self,
        entity: &EntityId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let st = lock(&self.state);
        Ok(st
            .events
            .get(entity)
            .map(|v| {
                v.iter()
                    .filter(|e| e.seq > after_seq)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn head(&self, entity: &EntityId) -> Result<Option<EntityHead>, StoreError> {
        Ok(lock(&self.state).heads.get(entity).cloned())
    }
}

/// Rejected records kept in memory.
#[derive(Debug, Default)]
pub struct MemoryRejects {
    /// What was rejected.
    pub records: Mutex<Vec<RejectedRecord>>,
}

impl RejectSink for MemoryRejects {
    async fn reject(&self, record: RejectedRecord) -> Result<(), PortError> {
        lock(&self.records).push(record);
        Ok(())
    }
}

/// A bus that records published entries, with per-entry faults.
#[derive(Debug, Default)]
pub struct MemoryBus {
    /// Entries published, in order.
    pub published: Mutex<Vec<BusEntry>>,
    /// Number of PutEvents calls made.
    pub calls: Mutex<usize>,
    /// Per-entry faults.
    pub faults: Faults,
}

impl Bus for MemoryBus {
    fn max_request_bytes(&self) -> usize {
        DEFAULT_MAX_PUT_EVENTS_BYTES
    }
    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        *lock(&self.calls) += 1;
        Ok(entries
            .iter()
            .map(|e| match self.faults.next() {
                Some(f) => Err(f),
                None => {
                    lock(&self.published).push(e.clone());
                    Ok(())
                }
            })
            .collect())
    }
}
