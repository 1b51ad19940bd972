//! The embedded event store, rejected-records table and change feed (SQLite).
//!
//! Appends execute the core's [`plan_append`] inside one transaction, so the
//! de-duplication check, the `seq` assignment and the insert are atomic
//! (INVARIANTS.md #2, #3). Triggers refuse any UPDATE of an event row, and
//! any DELETE but the expiry sweep's (#6): see [`SqliteStore::sweep_expired`].
//! The change feed is the events table in commit order (`feed_id`), merged
//! with the sweep's removals (which take their positions from the same
//! counter), with a durable checkpoint, so emission resumes from the last
//! acknowledged change after a crash.
//!
//! De-duplication lasts as long as the event is retained, as on DynamoDB
//! (where the id's marker lives as long as its event): once an event expired
//! and was removed, its id is stored again as a new event. `seq` never
//! restarts and is never reused: the `heads` table keeps each entity's
//! highest `seq` after all of its events expired (#3).

use crate::sqlite::{Db, Durability, open, port_error};
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tideline_core::event::{EntityHead, plan_append};
use tideline_core::item::Snapshot;
use tideline_core::replay::StoredWindow;
use tideline_core::{
    AppendOutcome, EntityId, ErrorClass, EventId, ExpectedSeq, NewEvent, StoredEvent,
};
use tideline_stages::command::{SnapshotError, SnapshotWritten};
use tideline_stages::replay::EntityIndex;
use tideline_stages::{
    Change, ChangeFeed, ChangeKind, EventStore, PortError, RejectSink, RejectedRecord, StoreError,
};
use tokio::sync::Notify;
use tracing::info;

const FEED: &str = "emitter";

/// Heads read or changed within one transaction; each changed head is written
/// once, at the end, however many of the entity's events the transaction appends.
#[derive(Default)]
struct TxHeads {
    cached: HashMap<EntityId, Option<EntityHead>>,
    dirty: std::collections::HashSet<EntityId>,
}

/// The embedded store.
#[derive(Debug)]
pub struct SqliteStore {
    db: Db,
    checkpoint: AtomicI64,
    ttl: Option<chrono::Duration>,
    /// Woken when events are appended.
    pub appended: Arc<Notify>,
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    event_from_columns(r, 0)
}

/// The event whose [`EVENT_COLUMNS`] start at column `base` (its `feed_id`).
fn event_from_columns(r: &rusqlite::Row<'_>, base: usize) -> rusqlite::Result<StoredEvent> {
    let invalid = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let entity: String = r.get(base + 1)?;
    let event_id: String = r.get(base + 4)?;
    let data: String = r.get(base + 6)?;
    Ok(StoredEvent {
        entity_id: EntityId::new(entity).map_err(|e| invalid(base + 1, e.to_string()))?,
        seq: r.get::<_, i64>(base + 2)? as u64,
        sk: r.get(base + 3)?,
        event_id: EventId::new(event_id).map_err(|e| invalid(base + 4, e.to_string()))?,
        event_type: r.get(base + 5)?,
        data: serde_json::from_str(&data).map_err(|e| invalid(base + 6, e.to_string()))?,
        occurred_at: r.get(base + 7)?,
        received_at: r.get(base + 8)?,
        stored_at: r.get(base + 9)?,
        correlation_id: r.get(base + 10)?,
        test: r.get(base + 11)?,
        schema_version: r.get(base + 12)?,
        expires_at: r.get(base + 13)?,
        traceparent: r.get(base + 14)?,
    })
}

/// Expired events removed per sweep transaction: the connection's lock is
/// held for one transaction, so appends wait for a short one only.
const SWEEP_BATCH: i64 = 500;

/// What one [`SqliteStore::sweep_expired`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired events removed (each one a removal in the change feed).
    pub removed: u64,
    /// Removals every consumer of the feed was past, dropped from the log.
    pub pruned: u64,
}

const EVENT_COLUMNS: &str = "feed_id, entity_id, seq, sk, event_id, event_type, data, occurred_at, received_at, stored_at, correlation_id, test, schema_version, expires_at, traceparent";

impl SqliteStore {
    /// Opens (or creates) the store database with the default durability.
    pub fn open(path: &Path, ttl: Option<chrono::Duration>) -> Result<Self, PortError> {
        Self::open_with(path, ttl, Durability::default())
    }

    /// Opens (or creates) the store database.
    pub fn open_with(
        path: &Path,
        ttl: Option<chrono::Duration>,
        durability: Durability,
    ) -> Result<Self, PortError> {
        let conn = open(path, durability).map_err(port_error)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                feed_id INTEGER PRIMARY KEY AUTOINCREMENT,
                entity_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                sk TEXT NOT NULL,
                event_id TEXT NOT NULL,
                event_type TEXT NOT NULL,
                data TEXT NOT NULL,
                occurred_at TEXT NOT NULL,
                received_at TEXT NOT NULL,
                stored_at TEXT NOT NULL,
                correlation_id TEXT,
                test INTEGER NOT NULL,
                schema_version INTEGER NOT NULL,
                expires_at INTEGER,
                traceparent TEXT,
                -- (entity_id, sk) is unique too: sk embeds the event id.
                UNIQUE (entity_id, seq),
                UNIQUE (entity_id, event_id)
             );
             CREATE TRIGGER IF NOT EXISTS events_are_immutable BEFORE UPDATE ON events
                BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;
             -- The expiry sweep's log and its place in the change feed: each
             -- removed event's image, at a feed position taken from the events'
             -- AUTOINCREMENT counter (so inserts and removals share one order).
             -- A row is pruned once every consumer of the feed is past it.
             CREATE TABLE IF NOT EXISTS removals (
                position INTEGER PRIMARY KEY,
                removed_at INTEGER NOT NULL,
                feed_id INTEGER NOT NULL UNIQUE,
                entity_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                sk TEXT NOT NULL,
                event_id TEXT NOT NULL,
                event_type TEXT NOT NULL,
                data TEXT NOT NULL,
                occurred_at TEXT NOT NULL,
                received_at TEXT NOT NULL,
                stored_at TEXT NOT NULL,
                correlation_id TEXT,
                test INTEGER NOT NULL,
                schema_version INTEGER NOT NULL,
                expires_at INTEGER,
                traceparent TEXT
             );
             -- Databases from before retention refused every DELETE.
             DROP TRIGGER IF EXISTS events_are_never_deleted;
             -- The one removal allowed: an expired event whose removal is
             -- logged (in the feed) first, by the sweep's clock.
             CREATE TRIGGER IF NOT EXISTS events_are_removed_only_by_expiry BEFORE DELETE ON events
                WHEN NOT EXISTS (
                    SELECT 1 FROM removals r
                    WHERE r.feed_id = OLD.feed_id
                      AND OLD.expires_at IS NOT NULL
                      AND OLD.expires_at <= r.removed_at
                )
                BEGIN SELECT RAISE(ABORT, 'events are removed only by the expiry sweep, once expired and logged'); END;
             CREATE TABLE IF NOT EXISTS heads (
                entity_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, last_stored_at TEXT NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS rejected (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                stage TEXT NOT NULL, source_id TEXT NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL, rejected_at TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
             -- Aggregates' snapshots (the command side): beside the events,
             -- never in the change feed, only ever moved forward.
             CREATE TABLE IF NOT EXISTS snapshots (
                entity_id TEXT NOT NULL, name TEXT NOT NULL, aggregate_version INTEGER NOT NULL,
                seq INTEGER NOT NULL, state TEXT NOT NULL, stored_at TEXT NOT NULL, expires_at INTEGER,
                PRIMARY KEY (entity_id, name, aggregate_version)
             ) WITHOUT ROWID;",
        )
        .map_err(port_error)?;
        // Databases created before traces were carried: add the column
        // (existing events keep none).
        let has_trace: bool = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('events') WHERE name = 'traceparent'",
                [],
                |r| r.get(0),
            )
            .map_err(port_error)?;
        if !has_trace {
            conn.execute_batch("ALTER TABLE events ADD COLUMN traceparent TEXT")
                .map_err(port_error)?;
        }
        let checkpoint: i64 = conn
            .query_row(
                "SELECT position FROM checkpoints WHERE name = ?1",
                params![FEED],
                |r| r.get(0),
            )
            .optional()
            .map_err(port_error)?
            .unwrap_or(0);
        Ok(Self {
            db: Db::new(conn),
            checkpoint: AtomicI64::new(checkpoint),
            ttl,
            appended: Arc::new(Notify::new()),
        })
    }

    /// The database's `synchronous` setting (1 NORMAL, 2 FULL).
    pub fn synchronous(&self) -> Result<i64, PortError> {
        self.db.synchronous()
    }

    fn head_in(tx: &Transaction<'_>, entity: &EntityId) -> rusqlite::Result<Option<EntityHead>> {
        tx.prepare_cached("SELECT last_seq, last_stored_at FROM heads WHERE entity_id = ?1")?
            .query_row(params![entity.as_str()], |r| {
                Ok(EntityHead {
                    entity_id: entity.clone(),
                    last_seq: r.get::<_, i64>(0)? as u64,
                    last_stored_at: r.get(1)?,
                })
            })
            .optional()
    }

    fn is_stored(tx: &Transaction<'_>, entity: &EntityId, id: &EventId) -> rusqlite::Result<bool> {
        Ok(tx
            .prepare_cached("SELECT 1 FROM events WHERE entity_id = ?1 AND event_id = ?2")?
            .query_row(params![entity.as_str(), id.as_str()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Plans and writes one append inside `tx`; `heads` caches heads within the transaction.
    fn append_in(
        &self,
        tx: &Transaction<'_>,
        heads: &mut TxHeads,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let head = match heads.cached.get(entity) {
            Some(h) => h.clone(),
            None => Self::head_in(tx, entity).map_err(port_error)?,
        };
        let mut stored_ids = std::collections::HashSet::new();
        for e in &events {
            if Self::is_stored(tx, entity, &e.id).map_err(port_error)? {
                stored_ids.insert(e.id.clone());
            }
        }
        let plan = plan_append(
            entity,
            head.as_ref(),
            expected,
            events,
            |id| stored_ids.contains(id),
            chrono::Utc::now(),
            self.ttl,
        )?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (entity_id, seq, sk, event_id, event_type, data, occurred_at, received_at, stored_at, correlation_id, test, schema_version, expires_at, traceparent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(port_error)?;
        for e in &plan.to_store {
            let data = serde_json::to_string(&e.data)
                .map_err(|err| PortError::permanent("sqlite", err.to_string()).with_source(err))?;
            insert
                .execute(params![
                    e.entity_id.as_str(),
                    e.seq as i64,
                    e.sk,
                    e.event_id.as_str(),
                    e.event_type,
                    data,
                    e.occurred_at,
                    e.received_at,
                    e.stored_at,
                    e.correlation_id,
                    e.test,
                    e.schema_version,
                    e.expires_at,
                    e.traceparent
                ])
                .map_err(port_error)?;
        }
        let outcomes = plan.outcomes();
        match plan.new_head {
            Some(h) => {
                heads.dirty.insert(entity.clone());
                heads.cached.insert(entity.clone(), Some(h));
            }
            None => {
                heads.cached.insert(entity.clone(), head);
            }
        }
        Ok(outcomes)
    }

    /// Writes the heads changed in this transaction, once per entity.
    fn write_heads(tx: &Transaction<'_>, heads: &TxHeads) -> Result<(), StoreError> {
        let mut stmt = tx
            .prepare_cached("INSERT OR REPLACE INTO heads (entity_id, last_seq, last_stored_at) VALUES (?1, ?2, ?3)")
            .map_err(port_error)?;
        for entity in &heads.dirty {
            if let Some(Some(h)) = heads.cached.get(entity) {
                stmt.execute(params![
                    entity.as_str(),
                    h.last_seq as i64,
                    h.last_stored_at
                ])
                .map_err(port_error)?;
            }
        }
        Ok(())
    }

    /// Rejected records, oldest first.
    pub fn rejected(&self) -> Result<Vec<RejectedRecord>, PortError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare("SELECT stage, source_id, reason, body, rejected_at FROM rejected ORDER BY id")
            .map_err(port_error)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(RejectedRecord {
                    stage: r.get(0)?,
                    source_id: r.get(1)?,
                    reason: r.get(2)?,
                    body: r.get(3)?,
                    rejected_at: r.get(4)?,
                })
            })
            .map_err(port_error)?;
        rows.collect::<Result<_, _>>().map_err(port_error)
    }

    /// The highest feed position written, and the acknowledged checkpoint.
    ///
    /// The highest position is the events' AUTOINCREMENT counter, not
    /// `MAX(feed_id)`: removals take positions from it too, and the latest
    /// events may have expired and been removed.
    pub fn feed_positions(&self) -> Result<(i64, i64), PortError> {
        let max: i64 = self
            .db
            .lock()
            .query_row(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(port_error)?;
        Ok((max, self.checkpoint.load(Ordering::SeqCst)))
    }

    /// Removes every event whose `expires_at` is at or before `now`, the way
    /// DynamoDB's TTL does on AWS, and puts each removal in the change feed
    /// (`ChangeKind::EventRemoved { by_ttl: true }`), so the emit stage
    /// publishes `EventExpired` as it does from the stream (INVARIANTS.md #6).
    ///
    /// Only events at or before `delivered_through` (and the feed's own
    /// checkpoint) are removed: an event's insert stays in the feed until
    /// every consumer has it, since a restart rewinds the feed to the lowest
    /// target checkpoint (on AWS the stream keeps the insert 24 hours). The
    /// removals every consumer is past are pruned from the log in the same
    /// pass, so an expired event's data does not outlive its retention for
    /// long.
    ///
    /// The entity's head is kept: `seq` continues after expiry, never reused,
    /// and a re-sent id whose event was removed is stored as a new event.
    pub fn sweep_expired(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        delivered_through: i64,
    ) -> Result<Swept, PortError> {
        let now_s = now.timestamp();
        let mut swept = Swept::default();
        loop {
            let (removed, pruned, through) = self.sweep_once(now_s, delivered_through)?;
            swept.removed += removed;
            swept.pruned += pruned;
            if removed > 0 {
                self.appended.notify_one();
            }
            if removed < SWEEP_BATCH as u64 {
                if swept.removed > 0 || swept.pruned > 0 {
                    info!(
                        removed = swept.removed,
                        pruned = swept.pruned,
                        through,
                        now = now_s,
                        "expired events removed; each removal is in the change feed"
                    );
                }
                return Ok(swept);
            }
        }
    }

    /// One transaction of the sweep: at most [`SWEEP_BATCH`] removals.
    /// Returns (removed, pruned, the position consumers are past).
    fn sweep_once(&self, now_s: i64, delivered_through: i64) -> Result<(u64, u64, i64), PortError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(port_error)?;
        let checkpoint: i64 = tx
            .query_row(
                "SELECT position FROM checkpoints WHERE name = ?1",
                params![FEED],
                |r| r.get(0),
            )
            .optional()
            .map_err(port_error)?
            .unwrap_or(0);
        let through = checkpoint.min(delivered_through);
        let expired: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT feed_id FROM events
                     WHERE expires_at IS NOT NULL AND expires_at <= ?1 AND feed_id <= ?2
                     ORDER BY feed_id LIMIT ?3",
                )
                .map_err(port_error)?;
            let rows = stmt
                .query_map(params![now_s, through, SWEEP_BATCH], |r| r.get(0))
                .map_err(port_error)?;
            rows.collect::<Result<_, _>>().map_err(port_error)?
        };
        for feed_id in &expired {
            // The removal's feed position: the next value of the counter the
            // events' feed_id comes from (SQLite documents sqlite_sequence as
            // writable), so it sorts after every change before it.
            let bumped = tx
                .prepare_cached("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'events'")
                .and_then(|mut s| s.execute([]))
                .map_err(port_error)?;
            if bumped != 1 {
                return Err(PortError::permanent(
                    "sqlite",
                    "the events table has no AUTOINCREMENT counter to place a removal in the feed",
                ));
            }
            let position: i64 = tx
                .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(port_error)?;
            tx.prepare_cached(&format!(
                "INSERT INTO removals (position, removed_at, {EVENT_COLUMNS})
                 SELECT ?1, ?2, {EVENT_COLUMNS} FROM events WHERE feed_id = ?3"
            ))
            .and_then(|mut s| s.execute(params![position, now_s, feed_id]))
            .map_err(port_error)?;
            tx.prepare_cached("DELETE FROM events WHERE feed_id = ?1")
                .and_then(|mut s| s.execute(params![feed_id]))
                .map_err(port_error)?;
        }
        // A snapshot holds its events' data: it goes when they may.
        tx.prepare_cached(
            "DELETE FROM snapshots WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        )
        .and_then(|mut s| s.execute(params![now_s]))
        .map_err(port_error)?;
        let pruned = tx
            .prepare_cached("DELETE FROM removals WHERE position <= ?1")
            .and_then(|mut s| s.execute(params![through]))
            .map_err(port_error)?;
        tx.commit().map_err(port_error)?;
        Ok((expired.len() as u64, pruned as u64, through))
    }

    /// Events stored in all, and entities with events.
    pub fn totals(&self) -> Result<(u64, u64), PortError> {
        let conn = self.db.lock();
        let events: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .map_err(port_error)?;
        let entities: i64 = conn
            .query_row("SELECT COUNT(*) FROM heads", [], |r| r.get(0))
            .map_err(port_error)?;
        Ok((events as u64, entities as u64))
    }

    /// Entities whose id starts with `prefix`, in id order after `after`
    /// (exclusive; `""` from the start), at most `limit`, each with its head
    /// (last `seq`, last stored at): the console's entity search. A range
    /// scan of the `heads` primary key, so it costs the page, not the store.
    pub fn entities_with_prefix(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64, String)>, PortError> {
        let conn = self.db.lock();
        // Every id that starts with `prefix` sorts at or after it and before
        // `prefix` + U+10FFFF (the greatest code point, F4 8F BF BF in UTF-8;
        // SQLite's BINARY collation compares the bytes).
        let mut stmt = conn
            .prepare_cached(
                "SELECT entity_id, last_seq, last_stored_at FROM heads
                 WHERE entity_id >= ?1 AND entity_id < ?1 || char(1114111) AND entity_id > ?2
                 ORDER BY entity_id LIMIT ?3",
            )
            .map_err(port_error)?;
        let rows = stmt
            .query_map(params![prefix, after, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(port_error)?;
        rows.collect::<Result<_, _>>().map_err(port_error)
    }

    /// Events from the whole store in commit order after `after_feed_id` (replay, export).
    pub fn events_after(
        &self,
        after_feed_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, StoredEvent)>, PortError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE feed_id > ?1 ORDER BY feed_id LIMIT ?2"
            ))
            .map_err(port_error)?;
        let rows = stmt
            .query_map(params![after_feed_id, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, event_from_row(r)?))
            })
            .map_err(port_error)?;
        rows.collect::<Result<_, _>>().map_err(port_error)
    }

    /// The run in one transaction with a savepoint per record: a record that
    /// fails rolls back to its savepoint only. A failure of the transaction
    /// itself (begin, head write, commit) is about no record: nothing is
    /// stored, and it is classed retryable so no valid record is rejected for it.
    fn append_each_savepoints(
        &self,
        events: Vec<NewEvent>,
    ) -> (Vec<Vec<AppendOutcome>>, Option<StoreError>) {
        let transaction_failed = |e: rusqlite::Error| {
            StoreError::Port(
                PortError::retryable("sqlite", format!("append transaction: {e}")).with_source(e),
            )
        };
        let mut conn = self.db.lock();
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => return (Vec::new(), Some(transaction_failed(e))),
        };
        let mut heads = TxHeads::default();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut stopped = None;
        for event in events {
            let entity = event.entity_id.clone();
            // Prepared once per connection: a savepoint per record must not cost a
            // statement parse per record.
            if let Err(e) = tx
                .prepare_cached("SAVEPOINT append_one")
                .and_then(|mut s| s.execute([]))
            {
                stopped = Some(transaction_failed(e));
                break;
            }
            // What a failed append must undo: this entity's cached head and
            // whether it was dirty (not a copy of every head, per event).
            let head_before = heads.cached.get(&entity).cloned();
            let dirty_before = heads.dirty.contains(&entity);
            match self.append_in(&tx, &mut heads, &entity, vec![event], ExpectedSeq::Any) {
                Ok(outcome) => {
                    if let Err(e) = tx
                        .prepare_cached("RELEASE append_one")
                        .and_then(|mut s| s.execute([]))
                    {
                        stopped = Some(transaction_failed(e));
                        break;
                    }
                    outcomes.push(outcome);
                }
                Err(e) => {
                    match head_before {
                        Some(head) => heads.cached.insert(entity.clone(), head),
                        None => heads.cached.remove(&entity),
                    };
                    if !dirty_before {
                        heads.dirty.remove(&entity);
                    }
                    if let Err(rollback) =
                        tx.execute_batch("ROLLBACK TO append_one; RELEASE append_one")
                    {
                        stopped = Some(transaction_failed(rollback));
                        outcomes.clear();
                        break;
                    }
                    stopped = Some(e);
                    break;
                }
            }
        }
        let committed = Self::write_heads(&tx, &heads)
            .map_err(|e| match e {
                StoreError::Port(p) => StoreError::Port(p.with_class(ErrorClass::Retryable)),
                other => other,
            })
            .and_then(|()| tx.commit().map_err(transaction_failed));
        drop(conn);
        match committed {
            Ok(()) => {
                if !outcomes.is_empty() {
                    self.appended.notify_one();
                }
                (outcomes, stopped)
            }
            // The transaction rolled back: nothing of the run was stored.
            Err(e) => (Vec::new(), Some(e)),
        }
    }
}

impl EventStore for SqliteStore {
    async fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let outcomes = {
            let mut conn = self.db.lock();
            let tx = conn.transaction().map_err(port_error)?;
            let mut heads = TxHeads::default();
            let outcomes = self.append_in(&tx, &mut heads, entity, events, expected)?;
            Self::write_heads(&tx, &heads)?;
            tx.commit().map_err(port_error)?;
            outcomes
        };
        self.appended.notify_one();
        Ok(outcomes)
    }

    /// One transaction for the whole run, a savepoint per record
    /// ([`SqliteStore::append_each_savepoints`]): the commit cost is paid
    /// once, and a record that fails rolls back alone.
    async fn append_each(
        &self,
        events: Vec<NewEvent>,
    ) -> (Vec<Vec<AppendOutcome>>, Option<StoreError>) {
        self.append_each_savepoints(events)
    }

    async fn read_events(
        &self,
        entity: &EntityId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // The unbounded window: one query for both reads.
        self.read_window(entity, &StoredWindow::default(), after_seq, limit)
            .await
    }

    /// The window's events straight from SQL (`stored_at` is a column).
    async fn read_window(
        &self,
        entity: &EntityId,
        window: &StoredWindow,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (since, until) = sql_bounds(window);
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE entity_id = ?1 AND seq > ?2 AND stored_at >= ?3 AND stored_at < ?4 ORDER BY seq LIMIT ?5"))
            .map_err(port_error)?;
        let rows = stmt
            .query_map(
                params![
                    entity.as_str(),
                    after_seq as i64,
                    since,
                    until,
                    limit as i64
                ],
                event_from_row,
            )
            .map_err(port_error)?;
        Ok(rows.collect::<Result<_, _>>().map_err(port_error)?)
    }

    async fn head(&self, entity: &EntityId) -> Result<Option<EntityHead>, StoreError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(port_error)?;
        Ok(Self::head_in(&tx, entity).map_err(port_error)?)
    }
}

/// The `seq` of a stored event id: the same `UNIQUE (entity_id, event_id)`
/// index the append de-duplicates on.
impl tideline_stages::command::EventLookup for SqliteStore {
    async fn sequence_of(
        &self,
        entity: &EntityId,
        event_id: &EventId,
    ) -> Result<Option<u64>, StoreError> {
        let conn = self.db.lock();
        let seq: Option<i64> = conn
            .prepare_cached("SELECT seq FROM events WHERE entity_id = ?1 AND event_id = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![entity.as_str(), event_id.as_str()], |r| r.get(0))
                    .optional()
            })
            .map_err(port_error)?;
        Ok(seq.map(|s| s as u64))
    }
}

/// Snapshots in their own table, keyed by entity, name and aggregate version.
impl tideline_stages::command::SnapshotStore for SqliteStore {
    async fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> Result<Option<Snapshot>, SnapshotError> {
        let conn = self.db.lock();
        let now = chrono::Utc::now().timestamp();
        conn.prepare_cached(
            "SELECT seq, state, stored_at FROM snapshots
             WHERE entity_id = ?1 AND name = ?2 AND aggregate_version = ?3
               AND (expires_at IS NULL OR expires_at > ?4)",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![entity.as_str(), name, aggregate_version, now],
                |r| {
                    Ok(Snapshot {
                        name: name.to_string(),
                        aggregate_version,
                        sequence: r.get::<_, i64>(0)? as u64,
                        state: r.get(1)?,
                        stored_at: r.get(2)?,
                    })
                },
            )
            .optional()
        })
        .map_err(|e| SnapshotError::Store(port_error(e).into()))
    }

    async fn put_snapshot(
        &self,
        entity: &EntityId,
        snapshot: &Snapshot,
    ) -> Result<SnapshotWritten, SnapshotError> {
        // The same rules and size limit as on DynamoDB: what works locally
        // works deployed.
        tideline_core::item::snapshot_item(entity, snapshot, None)?;
        let expires_at = self.ttl.map(|d| (chrono::Utc::now() + d).timestamp());
        let conn = self.db.lock();
        let sql = |e| SnapshotError::Store(port_error(e).into());
        let changed = conn
            .prepare_cached(
                "INSERT INTO snapshots (entity_id, name, aggregate_version, seq, state, stored_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (entity_id, name, aggregate_version) DO UPDATE SET
                    seq = excluded.seq, state = excluded.state,
                    stored_at = excluded.stored_at, expires_at = excluded.expires_at
                 WHERE excluded.seq > snapshots.seq",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    entity.as_str(),
                    snapshot.name,
                    snapshot.aggregate_version,
                    snapshot.sequence as i64,
                    snapshot.state,
                    snapshot.stored_at,
                    expires_at
                ])
            })
            .map_err(sql)?;
        if changed == 1 {
            return Ok(SnapshotWritten::Written);
        }
        let kept: i64 = conn
            .prepare_cached(
                "SELECT seq FROM snapshots WHERE entity_id = ?1 AND name = ?2 AND aggregate_version = ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![entity.as_str(), snapshot.name, snapshot.aggregate_version],
                    |r| r.get(0),
                )
            })
            .map_err(sql)?;
        Ok(SnapshotWritten::KeptNewer {
            sequence: kept as u64,
        })
    }
}

/// A window's bounds for SQL: an open end is the lowest or highest string a
/// fixed-width timestamp can be compared with (they start with a digit).
fn sql_bounds(window: &StoredWindow) -> (&str, &str) {
    (
        window.since.as_deref().unwrap_or(""),
        window.until.as_deref().unwrap_or("~"),
    )
}

/// Exact: the entities with an event stored in the window, from the events
/// table itself (local mode's store is small enough to read; on AWS the lake
/// plays this part, decision record 0017).
impl EntityIndex for SqliteStore {
    async fn entities_in(&self, window: &StoredWindow) -> Result<Vec<EntityId>, PortError> {
        let (since, until) = sql_bounds(window);
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached("SELECT DISTINCT entity_id FROM events WHERE stored_at >= ?1 AND stored_at < ?2 ORDER BY entity_id")
            .map_err(port_error)?;
        let rows = stmt
            .query_map(params![since, until], |r| r.get::<_, String>(0))
            .map_err(port_error)?;
        let mut entities = Vec::new();
        for id in rows {
            let id = id.map_err(port_error)?;
            // Every stored id passed the id rules on its way in.
            let id = EntityId::new(id.as_str()).map_err(|e| {
                PortError::permanent("sqlite", format!("stored entity id {id:?}: {e}"))
            })?;
            entities.push(id);
        }
        Ok(entities)
    }
}

impl RejectSink for SqliteStore {
    async fn reject(&self, r: RejectedRecord) -> Result<(), PortError> {
        self.db
            .lock()
            .execute(
                "INSERT INTO rejected (stage, source_id, reason, body, rejected_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.stage, r.source_id, r.reason, r.body, r.rejected_at],
            )
            .map(|_| ())
            .map_err(port_error)
    }
}

impl ChangeFeed for SqliteStore {
    /// Inserts (the events table) and removals (the sweep's log) after the
    /// checkpoint, in one order: their positions come from one counter.
    async fn poll(&self, max: usize) -> Result<Vec<Change>, PortError> {
        let after = self.checkpoint.load(Ordering::SeqCst);
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT feed_id AS position, 0 AS removed, {EVENT_COLUMNS} FROM events WHERE feed_id > ?1
                 UNION ALL
                 SELECT position, 1 AS removed, {EVENT_COLUMNS} FROM removals WHERE position > ?1
                 ORDER BY position LIMIT ?2"
            ))
            .map_err(port_error)?;
        let rows = stmt
            .query_map(params![after, max as i64], |r| {
                let position: i64 = r.get(0)?;
                let removed: bool = r.get(1)?;
                let event = event_from_columns(r, 2)?;
                Ok(Change {
                    sequence_number: position.to_string(),
                    kind: if removed {
                        // Only the expiry sweep removes events locally.
                        ChangeKind::EventRemoved {
                            event,
                            by_ttl: true,
                        }
                    } else {
                        ChangeKind::EventInserted(event)
                    },
                })
            })
            .map_err(port_error)?;
        rows.collect::<Result<_, _>>().map_err(port_error)
    }

    async fn ack(&self, sequence_number: &str) -> Result<(), PortError> {
        let position: i64 = sequence_number.parse().map_err(|_| {
            PortError::permanent("sqlite", format!("bad feed position {sequence_number:?}"))
        })?;
        self.db
            .lock()
            .execute(
                "INSERT OR REPLACE INTO checkpoints (name, position) VALUES (?1, ?2)",
                params![FEED, position],
            )
            .map_err(port_error)?;
        self.checkpoint.store(position, Ordering::SeqCst);
        Ok(())
    }
}
