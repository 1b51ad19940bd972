//! The delivery log of local mode's rule targets (`targets.db`): each
//! target's durable checkpoint in the store's change feed, and the
//! dead-letter table of deliveries that gave up.
//!
//! A target moves its checkpoint only after it delivered (or dead-lettered)
//! everything up to it, so after a crash it resumes there: delivery is at
//! least once, as on EventBridge, and consumers de-duplicate on
//! `detail.metadata.sequence` (INVARIANTS.md #4).

use crate::sqlite::{Db, Durability, now_ms, open, port_error};
use rusqlite::{OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use tideline_stages::PortError;

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

/// Checkpoints and dead letters of the rule targets.
#[derive(Debug)]
pub struct DeliveryLog {
    db: Db,
    /// Dead letters written by this process, per rule: the `failed` count of each target.
    dead_lettered: Mutex<HashMap<String, u64>>,
}

impl DeliveryLog {
    /// Opens (or creates) the delivery log.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, PortError> {
        let conn = open(path, durability).map_err(port_error)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS target_checkpoints (rule TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                rule TEXT NOT NULL, event TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL, dead_at INTEGER NOT NULL
             );",
        )
        .map_err(port_error)?;
        Ok(Self {
            db: Db::new(conn),
            dead_lettered: Mutex::default(),
        })
    }

    /// The database's `synchronous` setting (1 NORMAL, 2 FULL).
    pub fn synchronous(&self) -> Result<i64, PortError> {
        self.db.synchronous()
    }

    /// A rule's checkpoint: the change-feed position up to which its target
    /// has delivered everything; 0 for a rule never checkpointed.
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

    /// Moves a rule's checkpoint forward; never back (a target that was
    /// ahead of the others when the process restarted sees its events again,
    /// and its checkpoint stays where it was).
    pub fn advance_checkpoint(&self, rule: &str, position: i64) -> Result<(), PortError> {
        self.db
            .lock()
            .execute(
                "INSERT INTO target_checkpoints (rule, position) VALUES (?1, ?2)
                 ON CONFLICT (rule) DO UPDATE SET position = MAX(position, excluded.position)",
                params![rule, position],
            )
            .map(|_| ())
            .map_err(port_error)
    }

    /// Records a delivery that gave up, with its reason.
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

    fn dead_lettered_counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.dead_lettered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deliveries of `rule` dead-lettered since this process started.
    pub fn dead_lettered(&self, rule: &str) -> u64 {
        self.dead_lettered_counts().get(rule).copied().unwrap_or(0)
    }

    /// The dead-letter table, oldest first.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_only_move_forward_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets.db");
        let log = DeliveryLog::open(&path, Durability::Normal).unwrap();
        assert_eq!(log.checkpoint("a").unwrap(), 0);
        log.advance_checkpoint("a", 7).unwrap();
        log.advance_checkpoint("a", 3).unwrap();
        assert_eq!(log.checkpoint("a").unwrap(), 7);
        log.dead_letter("a", r#"{"x":1}"#, "gave up", 3).unwrap();
        drop(log);
        let log = DeliveryLog::open(&path, Durability::Normal).unwrap();
        assert_eq!(log.checkpoint("a").unwrap(), 7);
        assert_eq!(log.checkpoint("b").unwrap(), 0);
        let dead = log.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].event["x"], 1);
        assert_eq!(log.dead_lettered("a"), 0, "counts are this process's");
    }
}
