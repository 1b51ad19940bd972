//! The embedded event bus: a durable archive in SQLite, fanned out to one
//! dispatcher per rule.
//!
//! `put_events` commits entries to the archive and returns; each rule's
//! dispatcher reads the archive from its own checkpoint, so a slow webhook
//! never holds up the emitter or another rule, and after a crash each
//! dispatcher resumes where it left off (delivery is at least once, as on
//! EventBridge). Live subscribers (`tideline tail`) get a broadcast copy.
//!
//! `put_events` refuses what PutEvents refuses, per entry and with an
//! EventBridge-like `ErrorCode` (AWS-CONTRACTS.md, "Limits at the edges"): a
//! `DetailType` over 128 characters, a `Source` over 256, an entry larger
//! than the request size limit, a `Detail` that is not a JSON object. A call
//! whose entries together exceed the request limit fails as a whole, as
//! PutEvents' `ValidationException` does.

use crate::sqlite::{Db, Durability, now_ms, open, port_error};
use rusqlite::{OptionalExtension, params};
use std::path::Path;
use std::sync::Arc;
use tideline_core::ErrorClass;
use tideline_core::envelope::BusEntry;
use tideline_core::keys::format_timestamp;
use tideline_core::limits::{DEFAULT_PUT_EVENTS_REQUEST_BYTES, DETAIL_TYPE_CHARS, SOURCE_CHARS};
use tideline_stages::{Bus, EntryFailure, PortError};
use tokio::sync::{Notify, broadcast};

/// An archived event.
#[derive(Debug, Clone)]
pub struct ArchivedEvent {
    /// Archive position.
    pub position: i64,
    /// The full integration event as JSON.
    pub event: Arc<str>,
}

/// A dead-lettered delivery.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryDeadLetter {
    /// The rule.
    pub rule: String,
    /// The event.
    pub event: serde_json::Value,
    /// Why delivery gave up.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
}

/// The embedded bus.
#[derive(Debug)]
pub struct LocalBus {
    db: Db,
    /// Woken when events are published.
    pub published: Arc<Notify>,
    live: broadcast::Sender<ArchivedEvent>,
    max_entries: usize,
    /// PutEvents' request size limit (`limits.put_events_request_bytes`).
    max_request_bytes: usize,
    /// Dead letters written by this process, per rule: the `failed` count of each target.
    dead_lettered: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl LocalBus {
    /// Opens (or creates) the bus database with today's PutEvents request
    /// limit and the default durability.
    pub fn open(path: &Path, max_entries: usize) -> Result<Self, PortError> {
        Self::open_with(
            path,
            max_entries,
            DEFAULT_PUT_EVENTS_REQUEST_BYTES,
            Durability::default(),
        )
    }

    /// Opens (or creates) the bus database.
    pub fn open_with(
        path: &Path,
        max_entries: usize,
        max_request_bytes: usize,
        durability: Durability,
    ) -> Result<Self, PortError> {
        let conn = open(path, durability).map_err(port_error)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS archive (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                event TEXT NOT NULL,
                published_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS target_checkpoints (rule TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                rule TEXT NOT NULL, event TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL, dead_at INTEGER NOT NULL
             );",
        )
        .map_err(port_error)?;
        let (live, _) = broadcast::channel(4096);
        Ok(Self {
            db: Db::new(conn),
            published: Arc::new(Notify::new()),
            live,
            max_entries,
            max_request_bytes,
            dead_lettered: Default::default(),
        })
    }

    /// The database's `synchronous` setting (1 NORMAL, 2 FULL).
    pub fn synchronous(&self) -> Result<i64, PortError> {
        self.db.synchronous()
    }

    /// Archives an event as given, bypassing `put_events`' checks: for tests
    /// that must reach the dispatcher with what no stage would publish.
    pub fn archive_raw(&self, event: &str) -> Result<i64, PortError> {
        let conn = self.db.lock();
        conn.execute(
            "INSERT INTO archive (event, published_at) VALUES (?1, ?2)",
            params![event, now_ms()],
        )
        .map_err(port_error)?;
        let position = conn.last_insert_rowid();
        drop(conn);
        self.published.notify_waiters();
        Ok(position)
    }

    /// The checks PutEvents makes on one entry.
    fn check_entry(&self, entry: &BusEntry) -> Result<(), EntryFailure> {
        let invalid = |message: String| EntryFailure {
            code: "InvalidArgument".into(),
            message,
            // The same entry gets the same answer.
            class: ErrorClass::Permanent,
        };
        let detail_type = entry.detail_type.chars().count();
        if detail_type == 0 || detail_type > DETAIL_TYPE_CHARS {
            return Err(invalid(format!(
                "DetailType is {detail_type} characters; PutEvents takes 1 to {DETAIL_TYPE_CHARS}"
            )));
        }
        let source = entry.source.chars().count();
        if source == 0 || source > SOURCE_CHARS {
            return Err(invalid(format!(
                "Source is {source} characters; PutEvents takes 1 to {SOURCE_CHARS}"
            )));
        }
        if entry.size() > self.max_request_bytes {
            return Err(invalid(format!(
                "the entry is {} bytes (Source + DetailType + Detail); a PutEvents request carries at most {}",
                entry.size(),
                self.max_request_bytes
            )));
        }
        // Entries come from the emit stage, whose detail is always a JSON
        // object; as EventBridge does, anything else is refused.
        if !entry.detail.trim_start().starts_with('{') {
            return Err(EntryFailure {
                code: "MalformedDetail".into(),
                message: "Detail is not a JSON object".into(),
                class: ErrorClass::Permanent,
            });
        }
        Ok(())
    }

    /// A live copy of everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ArchivedEvent> {
        self.live.subscribe()
    }

    /// Archived events after `position`, oldest first.
    pub fn read_after(&self, position: i64, limit: usize) -> Result<Vec<ArchivedEvent>, PortError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached("SELECT position, event FROM archive WHERE position > ?1 ORDER BY position LIMIT ?2").map_err(port_error)?;
        let rows = stmt
            .query_map(params![position, limit as i64], |r| {
                Ok(ArchivedEvent {
                    position: r.get(0)?,
                    event: Arc::from(r.get::<_, String>(1)?),
                })
            })
            .map_err(port_error)?;
        rows.collect::<Result<_, _>>().map_err(port_error)
    }

    /// Highest archive position.
    pub fn last_position(&self) -> Result<i64, PortError> {
        self.db
            .lock()
            .query_row("SELECT COALESCE(MAX(position), 0) FROM archive", [], |r| {
                r.get(0)
            })
            .map_err(port_error)
    }

    /// A rule's delivery checkpoint.
    pub fn checkpoint(&self, rule: &str) -> Result<i64, PortError> {
        Ok(self
            .db
            .lock()
            .query_row(
                "SELECT position FROM target_checkpoints WHERE rule = ?1",
                params![rule],
                |r| r.get(0),
            )
            .optional()
            .map_err(port_error)?
            .unwrap_or(0))
    }

    /// Moves a rule's checkpoint.
    pub fn set_checkpoint(&self, rule: &str, position: i64) -> Result<(), PortError> {
        self.db
            .lock()
            .execute(
                "INSERT OR REPLACE INTO target_checkpoints (rule, position) VALUES (?1, ?2)",
                params![rule, position],
            )
            .map(|_| ())
            .map_err(port_error)
    }

    /// Records a delivery that gave up.
    pub fn dead_letter(
        &self,
        rule: &str,
        event: &str,
        reason: &str,
        attempts: u32,
    ) -> Result<(), PortError> {
        self.db
            .lock()
            .execute(
                "INSERT INTO dead_letters (rule, event, reason, attempts, dead_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![rule, event, reason, attempts, now_ms()],
            )
            .map_err(port_error)?;
        *self
            .dead_lettered_counts()
            .entry(rule.to_string())
            .or_default() += 1;
        Ok(())
    }

    fn dead_lettered_counts(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.dead_lettered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deliveries of `rule` dead-lettered since this process started.
    pub fn dead_lettered(&self, rule: &str) -> u64 {
        self.dead_lettered_counts().get(rule).copied().unwrap_or(0)
    }

    /// The delivery dead-letter table.
    pub fn dead_letters(&self) -> Result<Vec<DeliveryDeadLetter>, PortError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare("SELECT rule, event, reason, attempts FROM dead_letters ORDER BY id")
            .map_err(port_error)?;
        let rows = stmt
            .query_map([], |r| {
                let event: String = r.get(1)?;
                Ok(DeliveryDeadLetter {
                    rule: r.get(0)?,
                    event: serde_json::from_str(&event).unwrap_or(serde_json::Value::String(event)),
                    reason: r.get(2)?,
                    attempts: r.get(3)?,
                })
            })
            .map_err(port_error)?;
        rows.collect::<Result<_, _>>().map_err(port_error)
    }
}

fn event_id() -> String {
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
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            match self.check_entry(entry) {
                Ok(()) => {
                    rows.push(entry.to_event_json(&event_id(), &time));
                    results.push(Ok(()));
                }
                Err(e) => {
                    tracing::warn!(bus = "local", entity_id = %entry.entity_id, sequence = entry.sequence, code = %e.code, reason = %e.message, "entry refused");
                    results.push(Err(e));
                }
            }
        }
        let archived = {
            let mut conn = self.db.lock();
            let tx = conn.transaction().map_err(port_error)?;
            let now = now_ms();
            let mut archived = Vec::with_capacity(rows.len());
            {
                let mut stmt = tx
                    .prepare_cached("INSERT INTO archive (event, published_at) VALUES (?1, ?2)")
                    .map_err(port_error)?;
                for json in rows {
                    stmt.execute(params![json, now]).map_err(port_error)?;
                    archived.push(ArchivedEvent {
                        position: tx.last_insert_rowid(),
                        event: Arc::from(json),
                    });
                }
            }
            tx.commit().map_err(port_error)?;
            archived
        };
        for a in archived {
            // No subscriber is fine: live copies are best effort; the archive is the record.
            let _ = self.live.send(a);
        }
        self.published.notify_waiters();
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn put_events_refuses_what_put_events_refuses_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let bus =
            LocalBus::open_with(&dir.path().join("bus.db"), 10, 2048, Durability::Normal).unwrap();
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

        assert_eq!(
            bus.read_after(0, 100).unwrap().len(),
            2,
            "only the valid entries are archived"
        );
    }
}
