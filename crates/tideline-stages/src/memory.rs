//! In-memory adapters: real implementations of the ports, kept in memory,
//! with fault injection. Stage tests, handler tests and benches use them where
//! I/O would only add noise; the rules they execute are the core's.

use crate::command::{EventLookup, SnapshotError, SnapshotStore, SnapshotWritten};
use crate::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use tideline_core::envelope::{BusEntry, DEFAULT_MAX_PUT_EVENTS_BYTES};
use tideline_core::event::{EntityHead, plan_append};
use tideline_core::item::Snapshot;
use tideline_core::{
    AppendOutcome, EntityId, ErrorClass, EventId, ExpectedSeq, NewEvent, StoredEvent,
};

use crate::sync::lock;

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
    snapshots: HashMap<(EntityId, String, u32), Snapshot>,
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

    /// The stored snapshot `name` of `entity` at `aggregate_version`.
    pub fn snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> Option<Snapshot> {
        lock(&self.state)
            .snapshots
            .get(&(entity.clone(), name.to_string(), aggregate_version))
            .cloned()
    }

    /// Keeps `snapshot` unless one of as many or more events is kept.
    pub fn keep_snapshot(&self, entity: &EntityId, snapshot: &Snapshot) -> SnapshotWritten {
        let key = (
            entity.clone(),
            snapshot.name.clone(),
            snapshot.aggregate_version,
        );
        let mut st = lock(&self.state);
        match st.snapshots.get(&key) {
            Some(kept) if kept.sequence >= snapshot.sequence => SnapshotWritten::KeptNewer {
                sequence: kept.sequence,
            },
            _ => {
                st.snapshots.insert(key, snapshot.clone());
                SnapshotWritten::Written
            }
        }
    }
}

// The port impls live with the adapter (not in `command`), so the ports'
// module never names the in-memory adapters above it.
impl EventLookup for MemoryStore {
    async fn sequence_of(
        &self,
        entity: &EntityId,
        event_id: &EventId,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self
            .all_events()
            .into_iter()
            .find(|e| &e.entity_id == entity && &e.event_id == event_id)
            .map(|e| e.seq))
    }
}

impl SnapshotStore for MemoryStore {
    async fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> Result<Option<Snapshot>, SnapshotError> {
        Ok(self.snapshot(entity, name, aggregate_version))
    }

    async fn put_snapshot(
        &self,
        entity: &EntityId,
        snapshot: &Snapshot,
    ) -> Result<SnapshotWritten, SnapshotError> {
        Ok(self.keep_snapshot(entity, snapshot))
    }
}

/// Exact: the entities with an event stored in the window.
impl crate::replay::EntityIndex for MemoryStore {
    async fn entities_in(
        &self,
        window: &tideline_core::replay::StoredWindow,
    ) -> Result<Vec<EntityId>, PortError> {
        let st = lock(&self.state);
        let entities: std::collections::BTreeSet<EntityId> = st
            .log
            .iter()
            .filter(|e| window.contains(&e.stored_at))
            .map(|e| e.entity_id.clone())
            .collect();
        Ok(entities.into_iter().collect())
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

/// A lake kept in memory (the write side), with a scripted outage.
#[derive(Debug, Default)]
pub struct MemoryLake {
    /// Records written, in order.
    pub records: Mutex<Vec<tideline_core::ingest::AdmittedRecord>>,
    /// Refused records written, in order.
    pub failed: Mutex<Vec<FailedRecord>>,
    /// Writes still to fail (retryable), before writes succeed again.
    pub fail_next: Mutex<usize>,
}

impl MemoryLake {
    fn outage(&self) -> Result<(), PortError> {
        let mut left = lock(&self.fail_next);
        if *left > 0 {
            *left -= 1;
            return Err(PortError::retryable("memory-lake", "scripted outage"));
        }
        Ok(())
    }
}

impl Lake for MemoryLake {
    async fn write_records(
        &self,
        records: &[tideline_core::ingest::AdmittedRecord],
    ) -> Result<(), PortError> {
        self.outage()?;
        lock(&self.records).extend_from_slice(records);
        Ok(())
    }
    async fn write_failed(&self, records: &[FailedRecord]) -> Result<(), PortError> {
        self.outage()?;
        lock(&self.failed).extend_from_slice(records);
        Ok(())
    }
}

/// Lake objects kept in memory, for the read side.
#[derive(Debug, Default)]
pub struct MemoryLakeObjects {
    /// Each object, with its bytes; listed in path order.
    pub objects: Mutex<Vec<(LakeObject, Vec<u8>)>>,
    /// Paths read, in order.
    pub reads: Mutex<Vec<String>>,
}

impl MemoryLakeObjects {
    /// Adds an object at `path`, written at `written_at`.
    pub fn put(
        &self,
        path: &str,
        written_at: Option<chrono::DateTime<chrono::Utc>>,
        bytes: impl Into<Vec<u8>>,
    ) {
        let object = LakeObject {
            path: path.to_string(),
            written_at,
        };
        lock(&self.objects).push((object, bytes.into()));
    }
}

impl LakeReader for MemoryLakeObjects {
    async fn list(&self, prefix: &str) -> Result<Vec<LakeObject>, PortError> {
        let mut listed: Vec<LakeObject> = lock(&self.objects)
            .iter()
            .filter(|(o, _)| o.path.starts_with(prefix))
            .map(|(o, _)| o.clone())
            .collect();
        listed.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(listed)
    }
    async fn read(&self, path: &str) -> Result<Vec<u8>, PortError> {
        lock(&self.reads).push(path.to_string());
        lock(&self.objects)
            .iter()
            .find(|(o, _)| o.path == path)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| PortError::permanent("memory-lake", format!("{path}: no such object")))
    }
}
