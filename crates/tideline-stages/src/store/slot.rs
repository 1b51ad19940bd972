//! The event store's append protocol over single-item conditional writes
//! (decision record 0009), for any [`ItemTable`]: DynamoDB on AWS, and
//! [`MemoryItemTable`] here, which counts the read and write units DynamoDB
//! would bill, so the cost model (`tideline cost`) is checked against the
//! protocol that really runs.
//!
//! One event, steady state: one strongly consistent read of the entity's
//! latest event item, then two conditional puts, none transactional:
//! 1. the de-duplication marker `id#<event id>` (`attribute_not_exists`),
//!    recording the slot the event is about to take. A marker that exists
//!    already either points at its stored event (a duplicate: nothing else is
//!    written, INVARIANTS.md #2) or is the intent of an append that never
//!    finished (a crash, a lost race), which is moved to the new slot;
//! 2. the event item at its slot (`attribute_not_exists`). The slot is
//!    computed from the latest event alone ([`tideline_core::item::next_slot`]),
//!    so every concurrent writer of `seq` n targets the same key and exactly
//!    one succeeds (#3); a loser re-reads and tries the next slot.
//!
//! An event is stored when its event item exists; a marker alone is an intent.
//! A crash between the two writes leaves an intent and no event: the message
//! is redelivered and the append completes at the then-latest slot.
//!
//! The head item is written once per entity (its creation time seeds the first
//! slot) and, only with a retention set, after each append: when every event
//! of an entity has expired, `seq` continues from it instead of restarting.
//!
//! An append of several events to one entity (a command appending at an
//! expected version) must be all-or-none; it is written in one
//! `TransactWriteItems` (twice the write units) — the pipeline's storer always
//! appends one event per call.

use crate::sync::lock;
use crate::{EventStore, PortError, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use tideline_core::event::EntityHead;
use tideline_core::item::{
    self, AttrValue, EVENT_SK_RANGE, HeadState, Item, Marker, Slot, Units, decode_event,
    decode_head, decode_marker, event_item, head_item, kind_of, lookup, marker_item,
    marker_sort_key, next_slot, slot_after_head,
};
use tideline_core::keys::{HEAD_SK, format_timestamp};
use tideline_core::replay::StoredWindow;
use tideline_core::{AppendOutcome, EntityId, EventId, ExpectedSeq, NewEvent, StoredEvent};

/// The condition of a put.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `attribute_not_exists(pk)`: the key is free.
    NotExists,
    /// The item exists with this attribute equal to this value.
    Equals(&'static str, AttrValue),
    /// The key is free, or the head's `high_seq` is below this (a head that
    /// only moves forward). A head in the older layout fails it: it is
    /// fenced first.
    HeadBelow(u64),
    /// The key is free, or the snapshot there folded fewer events than
    /// this: a snapshot only moves forward (`snapshot_seq`).
    SnapshotBelow(u64),
    /// A marker whose `event_sk` is this, and, with `expires_before`, whose
    /// `expires_at` is below it (a marker's expiry is only ever raised).
    MarkerAt {
        /// The slot the marker must point at.
        event_sk: String,
        /// Only if it expires before this.
        expires_before: Option<i64>,
    },
}

/// A conditional put.
#[derive(Debug, Clone, PartialEq)]
pub struct CondPut {
    /// The item, keys included.
    pub item: Item,
    /// When to write it.
    pub condition: Condition,
}

/// A conditional put whose condition failed, with the item that was there
/// (`ReturnValuesOnConditionCheckFailure = ALL_OLD`; `None` if there was none).
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionFailed(pub Option<Item>);

/// A page of event items.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemPage {
    /// Event items in `sk` order.
    pub items: Vec<Item>,
    /// The `sk` to continue after, if the table has more.
    pub next: Option<String>,
}

/// Single-item operations on the events table. Reads are strongly consistent.
pub trait ItemTable: Send + Sync {
    /// The entity's event item with the highest `sk`, if any.
    fn latest_event(
        &self,
        pk: &str,
    ) -> impl Future<Output = Result<Option<Item>, PortError>> + Send;
    /// The item at (`pk`, `sk`).
    fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> impl Future<Output = Result<Option<Item>, PortError>> + Send;
    /// One conditional put.
    fn put(
        &self,
        put: CondPut,
    ) -> impl Future<Output = Result<Result<(), ConditionFailed>, PortError>> + Send;
    /// Conditional puts, all or none; on a failed condition, the indexes that failed.
    fn transact(
        &self,
        puts: Vec<CondPut>,
    ) -> impl Future<Output = Result<Result<(), Vec<usize>>, PortError>> + Send;
    /// Event items after `after_sk` (or from the first), in `sk` order, up to
    /// `limit` and one page of the store's own size.
    fn events_after(
        &self,
        pk: &str,
        after_sk: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ItemPage, PortError>> + Send;

    /// Event items with `low <= sk <= high`, after `after_sk`, in `sk` order,
    /// up to `limit` and one page. This default filters [`Self::events_after`];
    /// DynamoDB reads only the range (a key condition on `sk`).
    fn events_between(
        &self,
        pk: &str,
        (low, high): (&str, &str),
        after_sk: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ItemPage, PortError>> + Send {
        async move {
            let page = self.events_after(pk, after_sk, limit).await?;
            // Past `high` nothing more can be in range: the listing ends there.
            let past = page
                .items
                .iter()
                .any(|i| sk_of(i).is_some_and(|sk| sk > high));
            Ok(ItemPage {
                items: page
                    .items
                    .into_iter()
                    .filter(|i| sk_of(i).is_some_and(|sk| low <= sk && sk <= high))
                    .collect(),
                next: if past { None } else { page.next },
            })
        }
    }

    /// The event item with the highest `sk` below `below`, if any. This
    /// default walks [`Self::events_after`]; DynamoDB reads one item
    /// backwards from `below`.
    fn event_below(
        &self,
        pk: &str,
        below: &str,
    ) -> impl Future<Output = Result<Option<Item>, PortError>> + Send {
        async move {
            let mut found = None;
            let mut after_sk: Option<String> = None;
            loop {
                let page = self.events_after(pk, after_sk.as_deref(), 100).await?;
                for item in page.items {
                    if sk_of(&item).is_some_and(|sk| sk < below) {
                        found = Some(item);
                    } else {
                        return Ok(found);
                    }
                }
                match page.next {
                    Some(sk) => after_sk = Some(sk),
                    None => return Ok(found),
                }
            }
        }
    }
}

/// A shared table is a table (writers of one simulated or in-memory table).
impl<T: ItemTable> ItemTable for std::sync::Arc<T> {
    fn latest_event(
        &self,
        pk: &str,
    ) -> impl Future<Output = Result<Option<Item>, PortError>> + Send {
        (**self).latest_event(pk)
    }
    fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> impl Future<Output = Result<Option<Item>, PortError>> + Send {
        (**self).get(pk, sk)
    }
    fn put(
        &self,
        put: CondPut,
    ) -> impl Future<Output = Result<Result<(), ConditionFailed>, PortError>> + Send {
        (**self).put(put)
    }
    fn transact(
        &self,
        puts: Vec<CondPut>,
    ) -> impl Future<Output = Result<Result<(), Vec<usize>>, PortError>> + Send {
        (**self).transact(puts)
    }
    fn events_after(
        &self,
        pk: &str,
        after_sk: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ItemPage, PortError>> + Send {
        (**self).events_after(pk, after_sk, limit)
    }
    fn events_between(
        &self,
        pk: &str,
        range: (&str, &str),
        after_sk: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<ItemPage, PortError>> + Send {
        (**self).events_between(pk, range, after_sk, limit)
    }
    fn event_below(
        &self,
        pk: &str,
        below: &str,
    ) -> impl Future<Output = Result<Option<Item>, PortError>> + Send {
        (**self).event_below(pk, below)
    }
}

/// An item's `sk`, if it has a string one.
pub fn sk_of(item: &Item) -> Option<&str> {
    match item.get("sk") {
        Some(AttrValue::S(sk)) => Some(sk),
        _ => None,
    }
}

/// How often a lost race is re-planned before the append fails, retryably.
pub const DEFAULT_CONFLICT_RETRIES: u32 = 8;
/// One transaction takes 100 actions: a marker and an event per event.
pub const MAX_EVENTS_PER_APPEND: usize = 50;

/// Where a [`SlotStore`] reads the time: the system clock, or a simulated one
/// (the deterministic simulation gives each writer its own, skewed clock).
#[derive(Clone)]
pub struct Clock(std::sync::Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>);

impl Clock {
    /// A clock that reads `now`.
    pub fn new(now: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(now))
    }

    /// The time now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(chrono::Utc::now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// The event store over an [`ItemTable`].
#[derive(Debug, Clone)]
pub struct SlotStore<T> {
    table: T,
    ttl: Option<chrono::Duration>,
    conflict_retries: u32,
    service: &'static str,
    clock: Clock,
    expiry_margin: chrono::Duration,
}

/// Where an entity's next event goes, as read from the table.
struct Tail {
    slot: Slot,
    last_seq: u64,
    /// The predecessor's `expires_at`: a successor never expires before it
    /// (see [`SlotStore::stored_event`]).
    floor_expires_at: Option<i64>,
}

impl Tail {
    fn after_event(event: &StoredEvent) -> Option<Self> {
        Some(Self {
            slot: next_slot(event.seq, &event.sk, &event.stored_at)?,
            last_seq: event.seq,
            floor_expires_at: event.expires_at,
        })
    }

    fn after_head(head: &HeadState) -> Option<Self> {
        Some(Self {
            slot: slot_after_head(head)?,
            last_seq: head.last_seq,
            floor_expires_at: head.expires_at,
        })
    }
}

/// How long before its expiry the latest event stops being trusted as the
/// latest. TTL removes only expired items, and a successor never expires
/// before its predecessor, so a latest event further than this from its
/// expiry has no removed successor. The margin covers the writers' clock
/// skew and an invocation's length (Lambda's 15-minute maximum).
pub const DEFAULT_EXPIRY_MARGIN: chrono::Duration = chrono::Duration::hours(1);

fn permanent(service: &'static str, message: impl Into<String>) -> StoreError {
    PortError::permanent(service, message).into()
}

impl<T: ItemTable> SlotStore<T> {
    /// A store over `table`; `service` names it in errors (`dynamodb`, `memory`).
    pub fn new(table: T, service: &'static str) -> Self {
        Self {
            table,
            ttl: None,
            conflict_retries: DEFAULT_CONFLICT_RETRIES,
            service,
            clock: Clock::default(),
            expiry_margin: DEFAULT_EXPIRY_MARGIN,
        }
    }

    /// Trusts a latest event only further than `margin` from its expiry
    /// (default [`DEFAULT_EXPIRY_MARGIN`]). The simulation's retention is
    /// minutes, so it sets a margin below it to reach the trusted path.
    pub fn with_expiry_margin(mut self, margin: chrono::Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// Reads the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the retention written as `expires_at`.
    pub fn with_ttl(mut self, ttl: Option<chrono::Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// The retention written as `expires_at`, if any.
    pub fn ttl(&self) -> Option<chrono::Duration> {
        self.ttl
    }

    /// The table.
    pub fn table(&self) -> &T {
        &self.table
    }

    /// The store's clock's time (the simulation's, or the system's).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    fn decode_err(&self, what: &str, entity: &EntityId, e: impl std::fmt::Display) -> StoreError {
        permanent(self.service, format!("{what} item of {entity}: {e}"))
    }

    /// The entity's latest event item, decoded. Not an `async fn` of its
    /// own: one more nested future pushed consumers' mains (query-api) past
    /// rustc's layout recursion limit.
    fn decode_latest(
        &self,
        entity: &EntityId,
        item: Option<Item>,
    ) -> Result<Option<StoredEvent>, StoreError> {
        item.map(|item| {
            decode_event(lookup(&item)).map_err(|e| self.decode_err("latest event", entity, e))
        })
        .transpose()
    }

    fn bad_slot(&self, entity: &EntityId, what: &str) -> StoreError {
        self.decode_err(what, entity, "its time is out of range")
    }

    /// Whether the latest event can be trusted as the latest without the
    /// head: written by this version, and not near its expiry (no successor
    /// of it can have been removed). With a retention, an event that never
    /// expires is not trusted either: it was written before the retention was
    /// set, and expiring successors of it may have been removed since.
    fn trusted_latest(&self, item: &Item, event: &StoredEvent) -> bool {
        item::is_current_format(lookup(item)) && self.far_from_expiry(event.expires_at)
    }

    /// Whether an event expiring at `expires_at` can have no removed
    /// successor: it expires further than the margin from now; without a
    /// retention it never expires, and with one an event that never expires
    /// predates the retention.
    fn far_from_expiry(&self, expires_at: Option<i64>) -> bool {
        match expires_at {
            None => self.ttl.is_none(),
            Some(t) => t > (self.clock.now() + self.expiry_margin).timestamp(),
        }
    }

    /// Reads where the next event goes: after the latest event when it can be
    /// trusted (the steady state: one read); otherwise after the higher of the
    /// latest event and the head, creating the head of a new entity and
    /// fencing one an older version wrote.
    async fn tail(&self, entity: &EntityId) -> Result<Tail, StoreError> {
        for _ in 0..=self.conflict_retries {
            let latest = match self.table.latest_event(entity.as_str()).await? {
                Some(item) => {
                    let event = decode_event(lookup(&item))
                        .map_err(|e| self.decode_err("latest event", entity, e))?;
                    if self.trusted_latest(&item, &event) {
                        return Tail::after_event(&event)
                            .ok_or_else(|| self.bad_slot(entity, "latest event"));
                    }
                    Some(event)
                }
                None => None,
            };
            let Some(head) = self.current_head(entity, latest.as_ref()).await? else {
                continue; // the head changed under us: read both again
            };
            return match latest {
                Some(event) if event.seq >= head.last_seq => {
                    // With a retention the head must cover every stored event
                    // before it can expire: repair one left behind (a crash
                    // between an event and its head).
                    if event.seq > head.last_seq {
                        self.advance_head(entity, &event).await?;
                    }
                    Tail::after_event(&event).ok_or_else(|| self.bad_slot(entity, "latest event"))
                }
                _ => Tail::after_head(&head).ok_or_else(|| self.bad_slot(entity, "head")),
            };
        }
        Err(PortError::retryable(
            self.service,
            format!("the head of {entity} kept changing while read"),
        )
        .into())
    }

    /// The entity's head in this version's layout: created when missing,
    /// fenced when an older version wrote it. `None` when a concurrent writer
    /// changed it first (read again).
    async fn current_head(
        &self,
        entity: &EntityId,
        latest: Option<&StoredEvent>,
    ) -> Result<Option<HeadState>, StoreError> {
        let found = match self.table.get(entity.as_str(), HEAD_SK).await? {
            Some(item) => {
                Some(decode_head(lookup(&item)).map_err(|e| self.decode_err("head", entity, e))?)
            }
            None => None,
        };
        let (next, condition) = match found {
            Some(head) if head.fenced => return Ok(Some(head)),
            // Fencing: the head in this layout, conditional on the `last_seq`
            // the older writers condition on, so either they moved it first
            // (we read again) or their next write fails.
            Some(old) => {
                let next = match latest {
                    Some(e) if e.seq >= old.last_seq => HeadState::of(e),
                    _ => HeadState {
                        fenced: true,
                        ..old.clone()
                    },
                };
                let condition = Condition::Equals(
                    item::head_attr::LEGACY_SEQ,
                    AttrValue::N(old.last_seq.to_string()),
                );
                (next, condition)
            }
            None => {
                let next = match latest {
                    Some(e) => HeadState::of(e),
                    None => HeadState::created(format_timestamp(self.clock.now())),
                };
                (next, Condition::NotExists)
            }
        };
        let put = CondPut {
            item: head_item(entity, &next),
            condition,
        };
        Ok(self.table.put(put).await?.ok().map(|()| next))
    }

    /// The payload as the item stores it, serialised once per append.
    fn data_json(&self, event: &NewEvent) -> Result<String, StoreError> {
        serde_json::to_string(&event.data).map_err(|e| {
            permanent(
                self.service,
                format!("event {}: data does not serialise: {e}", event.id),
            )
        })
    }

    /// The event item as it will be written, within DynamoDB's item limit.
    fn checked_item(&self, stored: &StoredEvent, data_json: &str) -> Result<Item, StoreError> {
        let item = event_item(stored, data_json);
        item::check_item_size(&item)
            .map_err(|e| permanent(self.service, format!("event {}: {e}", stored.event_id)))?;
        Ok(item)
    }

    /// The event as it will be stored at `slot`. Its `expires_at` is never
    /// before its predecessor's (`floor`), even when the retention was
    /// shortened or clocks differ: expiry only moves forward along an
    /// entity's events, which is what lets [`Self::tail`] trust a latest
    /// event that is not near expiry.
    fn stored_event(
        &self,
        entity: &EntityId,
        e: &NewEvent,
        slot: &Slot,
        floor: Option<i64>,
    ) -> StoredEvent {
        let stored_at = slot.time().max(self.clock.now());
        StoredEvent {
            entity_id: entity.clone(),
            seq: slot.seq,
            sk: slot.sk.clone(),
            event_id: e.id.clone(),
            event_type: e.event_type.clone(),
            data: e.data.clone(),
            occurred_at: e.occurred_at.clone(),
            received_at: e.received_at.clone(),
            stored_at: format_timestamp(stored_at),
            correlation_id: e.correlation_id.clone(),
            test: e.test,
            schema_version: tideline_core::ingest::SCHEMA_VERSION,
            expires_at: self
                .ttl
                .map(|d| (stored_at + d).timestamp().max(floor.unwrap_or(i64::MIN))),
            traceparent: e.traceparent.clone(),
        }
    }

    /// What the marker of `event_id` says, read after the tail (so an event
    /// the tail showed is visible here): stored (with its event item when this
    /// design wrote it), an intent, or absent.
    async fn read_marker(
        &self,
        entity: &EntityId,
        event_id: &EventId,
        existing: Option<Item>,
    ) -> Result<MarkerState, StoreError> {
        let item = match existing {
            Some(item) => item,
            None => match self
                .table
                .get(entity.as_str(), &marker_sort_key(event_id))
                .await?
            {
                Some(item) => item,
                None => return Ok(MarkerState::Absent),
            },
        };
        let marker =
            decode_marker(lookup(&item)).map_err(|e| self.decode_err("marker", entity, e))?;
        let Some(event_sk) = marker.event_sk.clone() else {
            // Written with its event in one transaction (before 0009).
            return Ok(MarkerState::Stored(None));
        };
        match self.table.get(entity.as_str(), &event_sk).await? {
            // Without a retention no head follows the events: nothing needs the item.
            Some(event) if holds_event(&event, event_id) && self.ttl.is_none() => {
                Ok(MarkerState::Stored(None))
            }
            Some(event) if holds_event(&event, event_id) => {
                let stored = decode_event(lookup(&event))
                    .map_err(|e| self.decode_err("event", entity, e))?;
                Ok(MarkerState::Stored(Some(Box::new(stored))))
            }
            _ => Ok(MarkerState::Intent(marker)),
        }
    }

    /// Takes over the intent `old` for an append at `tail`: `marker` is the
    /// marker this append would write. Intents only move forward: one behind
    /// our slot points at a slot the tail shows taken, by another event (the
    /// marker was read after the tail, and the slot does not hold this id),
    /// so this id can never be stored there; one ahead of it means our tail
    /// is stale. `false`: lost a race, plan again.
    async fn take_intent(
        &self,
        old: &Marker,
        tail: &Tail,
        marker: Item,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let Some(old_sk) = old.event_sk.clone() else {
            return Ok(false);
        };
        let condition = match old_sk.as_str().cmp(tail.slot.sk.as_str()) {
            std::cmp::Ordering::Greater => return Ok(false),
            std::cmp::Ordering::Less => Condition::MarkerAt {
                event_sk: old_sk,
                expires_before: None,
            },
            // The intent is ours to complete. The marker must not expire
            // before the event it guards (the de-duplication window is the
            // event's retention), so an earlier expiry is raised first;
            // concurrent raises only ever raise it.
            std::cmp::Ordering::Equal => match (old.expires_at, expires_at) {
                (Some(theirs), Some(ours)) if theirs < ours => Condition::MarkerAt {
                    event_sk: old_sk,
                    expires_before: Some(ours),
                },
                (Some(_), None) => Condition::MarkerAt {
                    event_sk: old_sk,
                    expires_before: None,
                },
                _ => return Ok(true),
            },
        };
        Ok(
            match self
                .table
                .put(CondPut {
                    item: marker,
                    condition,
                })
                .await?
            {
                Ok(()) => true,
                // Raised further by a concurrent writer of this id: still ours to complete.
                Err(ConditionFailed(Some(now))) => {
                    let now = decode_marker(lookup(&now)).ok();
                    now.is_some_and(|m| {
                        m.event_sk.as_deref() == Some(tail.slot.sk.as_str())
                            && match (m.expires_at, expires_at) {
                                (None, _) => true,
                                (Some(t), Some(ours)) => t >= ours,
                                (Some(_), None) => false,
                            }
                    })
                }
                Err(ConditionFailed(None)) => false,
            },
        )
    }

    /// Appends one event; `known` is the tail after this writer's previous
    /// append to the entity, used instead of the first read of the tail
    /// (only for [`ExpectedSeq::Any`]: a stale tail would misjudge an
    /// expected version). Returns the outcome and, when this call stored the
    /// event, the tail after it.
    async fn append_one(
        &self,
        entity: &EntityId,
        event: &NewEvent,
        expected: ExpectedSeq,
        mut known: Option<Tail>,
    ) -> Result<(AppendOutcome, Option<Tail>), StoreError> {
        let data_json = self.data_json(event)?;
        let mut attempt = 0;
        loop {
            let tail = match known.take() {
                // The tail after this writer's own last append stands in for
                // a read under the same test as a read latest event (which
                // it is: written in this format, by this writer), applied
                // now. A stale one is safe, as one read before a concurrent
                // append is: the event put is conditional on its slot, so a
                // slot taken since fails and the append reads the tail again.
                Some(tail)
                    if matches!(expected, ExpectedSeq::Any)
                        && self.far_from_expiry(tail.floor_expires_at) =>
                {
                    tail
                }
                _ => self.tail(entity).await?,
            };
            let stored = self.stored_event(entity, event, &tail.slot, tail.floor_expires_at);
            let marker = marker_item(entity, &event.id, &tail.slot, stored.expires_at);
            let claim = CondPut {
                item: marker.clone(),
                condition: Condition::NotExists,
            };
            if let Err(ConditionFailed(existing)) = self.table.put(claim).await? {
                match self.read_marker(entity, &event.id, existing).await? {
                    MarkerState::Stored(found) => {
                        if let Some(found) = found {
                            self.advance_head(entity, &found).await?;
                        }
                        let duplicate = AppendOutcome::Duplicate {
                            event_id: event.id.clone(),
                        };
                        return Ok((duplicate, None));
                    }
                    // Removed (expired) between the two calls: plan again.
                    MarkerState::Absent => {
                        attempt = self.lost_race(entity, attempt)?;
                        continue;
                    }
                    MarkerState::Intent(old) => {
                        if !self
                            .take_intent(&old, &tail, marker, stored.expires_at)
                            .await?
                        {
                            attempt = self.lost_race(entity, attempt)?;
                            continue;
                        }
                    }
                }
            }
            expected.check(entity, tail.last_seq)?;
            let item = self.checked_item(&stored, &data_json)?;
            match self
                .table
                .put(CondPut {
                    item,
                    condition: Condition::NotExists,
                })
                .await?
            {
                Ok(()) => {
                    self.advance_head(entity, &stored).await?;
                    let stored_here = AppendOutcome::Stored {
                        event_id: event.id.clone(),
                        seq: stored.seq,
                    };
                    return Ok((stored_here, Tail::after_event(&stored)));
                }
                // The slot holds this id: our write applied and its answer
                // was lost (the SDK's retry found it), or a concurrent writer
                // of the same id took the same slot. Stored once, here.
                Err(ConditionFailed(Some(theirs))) if holds_event(&theirs, &event.id) => {
                    let theirs = decode_event(lookup(&theirs))
                        .map_err(|e| self.decode_err("event", entity, e))?;
                    self.advance_head(entity, &theirs).await?;
                    let stored_here = AppendOutcome::Stored {
                        event_id: event.id.clone(),
                        seq: theirs.seq,
                    };
                    return Ok((stored_here, Tail::after_event(&theirs)));
                }
                // Another event took the slot: re-read; the next round finds
                // our marker and moves it forward.
                Err(_) => attempt = self.lost_race(entity, attempt)?,
            }
        }
    }

    fn lost_race(&self, entity: &EntityId, attempt: u32) -> Result<u32, StoreError> {
        let attempt = attempt + 1;
        if attempt > self.conflict_retries {
            return Err(PortError::retryable(
                self.service,
                format!(
                    "concurrent writers kept taking the next slot of {entity} ({attempt} attempts)"
                ),
            )
            .into());
        }
        tracing::debug!(entity = %entity, attempt, "slot taken by a concurrent writer; re-reading");
        Ok(attempt)
    }

    /// With a retention, the head follows the last event, so `seq` survives
    /// the expiry of every event (it only moves forward). It is written
    /// before the append is acknowledged, and again by a redelivery that
    /// finds the event stored, so an append interrupted between its event and
    /// its head is repaired by its own retry.
    async fn advance_head(&self, entity: &EntityId, last: &StoredEvent) -> Result<(), StoreError> {
        if self.ttl.is_none() {
            return Ok(());
        }
        let put = CondPut {
            item: head_item(entity, &HeadState::of(last)),
            condition: Condition::HeadBelow(last.seq),
        };
        // A failed condition means a later append moved it further: fine.
        let _ = self.table.put(put).await?;
        Ok(())
    }

    /// Several events, all or none, in one transaction. The tail is read
    /// first and each marker after it, as in [`Self::append_one`].
    async fn append_all(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let mut attempt = 0;
        'plan: loop {
            let tail = self.tail(entity).await?;
            let mut outcomes = Vec::new();
            let mut fresh = Vec::new();
            let mut seen = HashSet::new();
            for event in &events {
                if !seen.insert(event.id.clone()) {
                    outcomes.push(AppendOutcome::Duplicate {
                        event_id: event.id.clone(),
                    });
                    continue;
                }
                match self.read_marker(entity, &event.id, None).await? {
                    MarkerState::Stored(found) => {
                        if let Some(found) = found {
                            self.advance_head(entity, &found).await?;
                        }
                        outcomes.push(AppendOutcome::Duplicate {
                            event_id: event.id.clone(),
                        });
                    }
                    MarkerState::Absent => fresh.push((event, None)),
                    // An intent ahead of our tail: the tail is stale.
                    MarkerState::Intent(m)
                        if m.event_sk.as_deref() > Some(tail.slot.sk.as_str()) =>
                    {
                        attempt = self.lost_race(entity, attempt)?;
                        continue 'plan;
                    }
                    MarkerState::Intent(m) => fresh.push((event, m.event_sk)),
                }
            }
            if fresh.is_empty() {
                return Ok(outcomes);
            }
            expected.check(entity, tail.last_seq)?;
            let mut puts = Vec::with_capacity(2 * fresh.len());
            let mut stored_all = Vec::with_capacity(fresh.len());
            let mut slot = tail.slot;
            let mut floor = tail.floor_expires_at;
            for (event, intent_sk) in fresh {
                let data_json = self.data_json(event)?;
                let stored = self.stored_event(entity, event, &slot, floor);
                let item = self.checked_item(&stored, &data_json)?;
                puts.push(CondPut {
                    item: marker_item(entity, &event.id, &slot, stored.expires_at),
                    condition: match intent_sk {
                        None => Condition::NotExists,
                        Some(sk) => Condition::MarkerAt {
                            event_sk: sk,
                            expires_before: None,
                        },
                    },
                });
                puts.push(CondPut {
                    item,
                    condition: Condition::NotExists,
                });
                slot = next_slot(stored.seq, &stored.sk, &stored.stored_at)
                    .ok_or_else(|| permanent(self.service, "slot time out of range"))?;
                floor = stored.expires_at;
                stored_all.push(stored);
            }
            match self.table.transact(puts).await? {
                Ok(()) => {
                    if let Some(last) = stored_all.last() {
                        self.advance_head(entity, last).await?;
                    }
                    let mut done: Vec<AppendOutcome> = stored_all
                        .iter()
                        .map(|s| AppendOutcome::Stored {
                            event_id: s.event_id.clone(),
                            seq: s.seq,
                        })
                        .collect();
                    done.extend(outcomes);
                    return Ok(done);
                }
                Err(_) => {
                    attempt = self.lost_race(entity, attempt)?;
                    continue 'plan;
                }
            }
        }
    }
}

/// Whether an event item holds `event_id`.
fn holds_event(item: &Item, event_id: &EventId) -> bool {
    matches!(lookup(item)("event_id"), Some(item::AttrRef::S(id)) if id == event_id.as_str())
}

impl<T: ItemTable> SlotStore<T> {
    /// Up to `limit` of the entity's events with `sk` in `range` that `keep`
    /// keeps, in `sk` (so `seq`) order, following the table's pages.
    async fn read_range(
        &self,
        entity: &EntityId,
        range: (&str, &str),
        limit: usize,
        keep: impl Fn(&StoredEvent) -> bool,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        let mut after_sk: Option<String> = None;
        while out.len() < limit {
            let page = self
                .table
                .events_between(
                    entity.as_str(),
                    range,
                    after_sk.as_deref(),
                    (limit - out.len()).max(100),
                )
                .await?;
            for item in &page.items {
                let event =
                    decode_event(lookup(item)).map_err(|e| self.decode_err("event", entity, e))?;
                if keep(&event) && out.len() < limit {
                    out.push(event);
                }
            }
            match page.next {
                Some(sk) => after_sk = Some(sk),
                None => break,
            }
        }
        Ok(out)
    }
}

enum MarkerState {
    Absent,
    /// The event is stored; its item when a retention needs it to repair the
    /// head (and this design, not the transactional one, wrote it).
    Stored(Option<Box<StoredEvent>>),
    Intent(Marker),
}

impl<T: ItemTable> EventStore for SlotStore<T> {
    async fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        if events.len() > MAX_EVENTS_PER_APPEND {
            return Err(permanent(
                self.service,
                format!(
                    "{} events in one append; a 100-action transaction allows {MAX_EVENTS_PER_APPEND}",
                    events.len()
                ),
            ));
        }
        if let Some(e) = events.iter().find(|e| &e.entity_id != entity) {
            return Err(permanent(
                self.service,
                format!("event {} belongs to {}, not {entity}", e.id, e.entity_id),
            ));
        }
        match events.as_slice() {
            [] => Ok(Vec::new()),
            [one] => Ok(vec![self.append_one(entity, one, expected, None).await?.0]),
            _ => self.append_all(entity, events, expected).await,
        }
    }

    /// One by one, in order, as the port's default, except that an event
    /// following this call's own stored event of the same entity starts from
    /// the tail after it instead of reading it: a storer batch's later
    /// messages of an entity cost two puts each, not a read and two puts.
    async fn append_each(
        &self,
        events: Vec<NewEvent>,
    ) -> (Vec<Vec<AppendOutcome>>, Option<StoreError>) {
        let mut done = Vec::with_capacity(events.len());
        let mut known: Option<(EntityId, Tail)> = None;
        for event in events {
            let entity = event.entity_id.clone();
            let hint = known
                .take()
                .filter(|(of, _)| *of == entity)
                .map(|(_, tail)| tail);
            match self
                .append_one(&entity, &event, ExpectedSeq::Any, hint)
                .await
            {
                Ok((outcome, next)) => {
                    known = next.map(|tail| (entity, tail));
                    done.push(vec![outcome]);
                }
                Err(e) => return (done, Some(e)),
            }
        }
        (done, None)
    }

    async fn read_events(
        &self,
        entity: &EntityId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // `sk` order is `seq` order, so the events after `after_seq` are a
        // suffix of the partition; pages are read through until it starts.
        self.read_range(entity, EVENT_SK_RANGE, limit, |e| e.seq > after_seq)
            .await
    }

    /// Reads the window's key range only ([`StoredWindow::sort_key_range`]):
    /// the entity's last event below `since`, then `sk` from there to
    /// `until`, filtered on `stored_at`.
    async fn read_window(
        &self,
        entity: &EntityId,
        window: &StoredWindow,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let predecessor = match &window.since {
            Some(since) => self.table.event_below(entity.as_str(), since).await?,
            None => None,
        };
        let (low, high) = window.sort_key_range(predecessor.as_ref().and_then(sk_of));
        if low > high {
            return Ok(Vec::new());
        }
        self.read_range(entity, (&low, &high), limit, |e| {
            e.seq > after_seq && window.contains(&e.stored_at)
        })
        .await
    }

    async fn head(&self, entity: &EntityId) -> Result<Option<EntityHead>, StoreError> {
        if let Some(e) =
            self.decode_latest(entity, self.table.latest_event(entity.as_str()).await?)?
        {
            return Ok(Some(EntityHead {
                entity_id: entity.clone(),
                last_seq: e.seq,
                last_stored_at: e.stored_at,
            }));
        }
        match self.table.get(entity.as_str(), HEAD_SK).await? {
            Some(item) => {
                let h =
                    decode_head(lookup(&item)).map_err(|e| self.decode_err("head", entity, e))?;
                Ok((h.last_seq > 0).then(|| h.to_entity_head(entity)))
            }
            None => Ok(None),
        }
    }
}

/// An in-memory [`ItemTable`] with DynamoDB's semantics and billing: the
/// units each call would consume, and how many calls were made.
#[derive(Debug, Default)]
pub struct MemoryItemTable {
    items: Mutex<BTreeMap<(String, String), Item>>,
    counters: Mutex<TableCounters>,
}

/// What a [`MemoryItemTable`] was asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounters {
    /// Units DynamoDB would bill.
    pub units: Units,
    /// Single-item writes (puts, conditional or not) and transactions.
    pub write_calls: u64,
    /// Reads (gets and queries).
    pub read_calls: u64,
    /// Items written (each put of a transaction counts).
    pub items_written: u64,
}

/// An item's (`pk`, `sk`).
pub fn key_of(item: &Item) -> (String, String) {
    let s = |n: &str| match item.get(n) {
        Some(AttrValue::S(v)) => v.clone(),
        _ => String::new(),
    };
    (s("pk"), s("sk"))
}

impl Condition {
    /// Whether the condition holds for the item at the key (`None`: no item).
    pub fn holds(&self, existing: Option<&Item>) -> bool {
        holds(existing, self)
    }
}

fn holds(existing: Option<&Item>, condition: &Condition) -> bool {
    match condition {
        Condition::NotExists => existing.is_none(),
        Condition::Equals(name, value) => existing.is_some_and(|i| i.get(*name) == Some(value)),
        Condition::HeadBelow(seq) => existing.is_none_or(|i| {
            matches!(i.get(item::head_attr::SEQ), Some(AttrValue::N(n)) if n.parse::<u64>().is_ok_and(|n| n < *seq))
        }),
        Condition::SnapshotBelow(seq) => existing.is_none_or(|i| {
            matches!(i.get("snapshot_seq"), Some(AttrValue::N(n)) if n.parse::<u64>().is_ok_and(|n| n < *seq))
        }),
        Condition::MarkerAt {
            event_sk,
            expires_before,
        } => existing.is_some_and(|i| {
            i.get("event_sk") == Some(&AttrValue::S(event_sk.clone()))
                && expires_before.is_none_or(|e| {
                    matches!(i.get("expires_at"), Some(AttrValue::N(n)) if n.parse::<i64>().is_ok_and(|n| n < e))
                })
        }),
    }
}

fn is_event_sk(sk: &str) -> bool {
    sk > EVENT_SK_RANGE.0 && sk < EVENT_SK_RANGE.1
}

impl MemoryItemTable {
    /// What was counted so far.
    pub fn counters(&self) -> TableCounters {
        *lock(&self.counters)
    }

    /// Every item, in key order.
    pub fn items(&self) -> Vec<Item> {
        lock(&self.items).values().cloned().collect()
    }

    /// Writes an item unconditionally and uncounted (test set-up, e.g. a table written before 0009).
    pub fn seed(&self, item: Item) {
        lock(&self.items).insert(key_of(&item), item);
    }

    /// Removes an item uncounted (test set-up: TTL expiry).
    pub fn remove(&self, pk: &str, sk: &str) {
        lock(&self.items).remove(&(pk.to_string(), sk.to_string()));
    }

    fn count(&self, f: impl FnOnce(&mut TableCounters)) {
        f(&mut lock(&self.counters));
    }
}

impl ItemTable for MemoryItemTable {
    async fn latest_event(&self, pk: &str) -> Result<Option<Item>, PortError> {
        let found = lock(&self.items)
            .range(
                (pk.to_string(), EVENT_SK_RANGE.0.to_string())
                    ..(pk.to_string(), EVENT_SK_RANGE.1.to_string()),
            )
            .next_back()
            .map(|(_, v)| v.clone());
        let size = found.as_ref().map_or(0, item::size_of);
        self.count(|c| {
            c.read_calls += 1;
            c.units.read += item::read_units(size);
        });
        Ok(found)
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, PortError> {
        let found = lock(&self.items)
            .get(&(pk.to_string(), sk.to_string()))
            .cloned();
        let size = found.as_ref().map_or(0, item::size_of);
        self.count(|c| {
            c.read_calls += 1;
            c.units.read += item::read_units(size);
        });
        Ok(found)
    }

    async fn put(&self, put: CondPut) -> Result<Result<(), ConditionFailed>, PortError> {
        let key = key_of(&put.item);
        let mut items = lock(&self.items);
        let existing = items.get(&key);
        // A write is billed on the larger of the old and new item, whether or
        // not its condition holds.
        let size = item::size_of(&put.item).max(existing.map_or(0, item::size_of));
        let ok = holds(existing, &put.condition);
        let old = existing.cloned();
        if ok {
            items.insert(key, put.item);
        }
        drop(items);
        self.count(|c| {
            c.write_calls += 1;
            c.units.write += item::write_units(size);
            c.items_written += u64::from(ok);
        });
        Ok(if ok {
            Ok(())
        } else {
            Err(ConditionFailed(old))
        })
    }

    async fn transact(&self, puts: Vec<CondPut>) -> Result<Result<(), Vec<usize>>, PortError> {
        let mut items = lock(&self.items);
        let mut units = 0;
        let failed: Vec<usize> = puts
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                let existing = items.get(&key_of(&p.item));
                units += 2 * item::write_units(
                    item::size_of(&p.item).max(existing.map_or(0, item::size_of)),
                );
                !holds(existing, &p.condition)
            })
            .map(|(i, _)| i)
            .collect();
        let n = puts.len() as u64;
        if failed.is_empty() {
            for p in puts {
                items.insert(key_of(&p.item), p.item);
            }
        }
        drop(items);
        let ok = failed.is_empty();
        self.count(|c| {
            c.write_calls += 1;
            c.units.write += units;
            if ok {
                c.items_written += n;
            }
        });
        Ok(if ok { Ok(()) } else { Err(failed) })
    }

    async fn events_after(
        &self,
        pk: &str,
        after_sk: Option<&str>,
        limit: usize,
    ) -> Result<ItemPage, PortError> {
        let items = lock(&self.items);
        let from = after_sk.map_or(EVENT_SK_RANGE.0.to_string(), |s| format!("{s}\0"));
        let mut page = ItemPage::default();
        let mut bytes = 0;
        let mut more = false;
        for ((_, sk), v) in
            items.range((pk.to_string(), from)..(pk.to_string(), EVENT_SK_RANGE.1.to_string()))
        {
            if page.items.len() == limit.max(1) {
                more = true;
                break;
            }
            debug_assert!(is_event_sk(sk));
            bytes += item::size_of(v);
            page.items.push(v.clone());
        }
        drop(items);
        if more {
            page.next = page.items.last().map(|i| key_of(i).1);
        }
        self.count(|c| {
            c.read_calls += 1;
            c.units.read += item::read_units(bytes);
        });
        Ok(page)
    }
}

/// Items of an entity, by kind (tests and the cost model).
pub fn kinds(items: &[Item]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in items {
        *out.entry(kind_of(lookup(i)).unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    out
}
