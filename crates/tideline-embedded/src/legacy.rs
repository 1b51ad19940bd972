//! Data directories written before the local host stopped imitating the
//! FIFO queue (decision 0018) may hold records in `queue.db` that were
//! acknowledged to their producers but not yet appended. They must not be
//! lost on upgrade: [`queued_messages`] reads them, in the order they were
//! sent, so the local host can hand them to the store stage once.

use crate::sqlite::{Durability, open, port_error};
use rusqlite::OptionalExtension;
use std::path::Path;
use tideline_stages::PortError;

/// A message the old queue still held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Its position in the old queue (the SQS-like message id).
    pub seq: i64,
    /// The normalised record, as the store stage reads it.
    pub body: String,
}

/// The messages of the old queue at `path`, oldest first; none if it has no
/// `messages` table.
pub fn queued_messages(path: &Path) -> Result<Vec<QueuedMessage>, PortError> {
    let conn = open(path, Durability::Normal).map_err(port_error)?;
    let has_table = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(port_error)?
        .is_some();
    if !has_table {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT seq, body FROM messages ORDER BY seq")
        .map_err(port_error)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(QueuedMessage {
                seq: r.get(0)?,
                body: r.get(1)?,
            })
        })
        .map_err(port_error)?;
    rows.collect::<Result<_, _>>().map_err(port_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_old_queue_held_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, group_id TEXT NOT NULL, dedup_id TEXT NOT NULL, body TEXT NOT NULL, sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, last_error TEXT);
             INSERT INTO messages (group_id, dedup_id, body, sent_at, visible_at) VALUES ('e', 'b', 'second', 0, 0);
             INSERT INTO messages (group_id, dedup_id, body, sent_at, visible_at) VALUES ('e', 'a', 'third', 0, 0);",
        )
        .unwrap();
        conn.execute("UPDATE messages SET body = 'first' WHERE seq = 1", [])
            .unwrap();
        drop(conn);
        let bodies: Vec<String> = queued_messages(&path)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(bodies, ["first", "third"]);
        let empty = dir.path().join("empty.db");
        assert!(queued_messages(&empty).unwrap().is_empty());
    }
}
