//! Checkpoints in SQLite (local mode). The handler's write is a closure run
//! inside the same transaction as the checkpoint update, so a consumer's read
//! model in the same database file moves atomically with its checkpoint.
//!
//! Tables: `tideline_checkpoints (pk, sk, last_sequence, gaps_accepted,
//! updated_at)` and `tideline_buffered (pk, sk, seq, event)`, keyed like the
//! DynamoDB layout (`consumer#<name>`, `entity#<id>`).

use crate::checkpoint::{
    Checkpoint, CheckpointStore, CheckpointUpdate, checkpoint_pk, checkpoint_sk,
};
use crate::error::ConsumerError;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A handler's write: runs inside the checkpoint's transaction.
pub type SqliteWrite = Box<dyn FnOnce(&Transaction<'_>) -> Result<(), ConsumerError> + Send>;

/// Maps a SQLite error: busy/locked/I/O are retryable, the rest permanent.
pub fn sqlite_error(e: rusqlite::Error) -> ConsumerError {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | OutOfMemory) => {
            ConsumerError::retryable("sqlite", e.to_string())
        }
        _ => ConsumerError::permanent("sqlite", e.to_string()),
    }
}

/// Checkpoints in a SQLite file.
#[derive(Debug)]
pub struct SqliteCheckpoints {
    conn: Mutex<Connection>,
}

impl SqliteCheckpoints {
    /// Opens (or creates) the database and its checkpoint tables.
    pub fn open(path: &Path) -> Result<Self, ConsumerError> {
        let conn = Connection::open(path).map_err(sqlite_error)?;
        Self::from_connection(conn)
    }

    /// Uses an open connection (e.g. `Connection::open_in_memory()`).
    pub fn from_connection(conn: Connection) -> Result<Self, ConsumerError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite_error)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tideline_checkpoints (
                pk TEXT NOT NULL, sk TEXT NOT NULL,
                last_sequence INTEGER NOT NULL, gaps_accepted INTEGER NOT NULL DEFAULT 0,
                updated_at TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS tideline_buffered (
                pk TEXT NOT NULL, sk TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
                PRIMARY KEY (pk, sk, seq)) WITHOUT ROWID;",
        )
        .map_err(sqlite_error)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` on the connection (reads of the read model, schema set-up).
    pub fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn load(conn: &Connection, pk: &str, sk: &str) -> Result<Checkpoint, rusqlite::Error> {
    let row: Option<(i64, i64)> = conn
        .query_row(
            "SELECT last_sequence, gaps_accepted FROM tideline_checkpoints WHERE pk = ?1 AND sk = ?2",
            params![pk, sk],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let mut cp = Checkpoint::default();
    if let Some((last, gaps)) = row {
        cp.last_sequence = last as u64;
        cp.gaps_accepted = gaps as u64;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT seq, event FROM tideline_buffered WHERE pk = ?1 AND sk = ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![pk, sk], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (seq, event) = row?;
        cp.buffered.insert(seq, event);
    }
    Ok(cp)
}

impl CheckpointStore for SqliteCheckpoints {
    type Write = SqliteWrite;

    async fn load(&self, consumer: &str, entity: &str) -> Result<Checkpoint, ConsumerError> {
        load(
            &self.lock(),
            &checkpoint_pk(consumer),
            &checkpoint_sk(entity),
        )
        .map_err(sqlite_error)
    }

    async fn commit(
        &self,
        consumer: &str,
        entity: &str,
        update: CheckpointUpdate,
        write: Option<SqliteWrite>,
    ) -> Result<(), ConsumerError> {
        let (pk, sk) = (checkpoint_pk(consumer), checkpoint_sk(entity));
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;
        let cp = load(&tx, &pk, &sk).map_err(sqlite_error)?;
        let conflict = ConsumerError::Conflict {
            entity: entity.to_string(),
            expected: update.expected(),
        };
        if cp.last_sequence != update.expected() {
            return Err(conflict);
        }
        let now = chrono::Utc::now().to_rfc3339();
        match update {
            CheckpointUpdate::Advance {
                to,
                unbuffer,
                accepted_gap,
                ..
            } => {
                if let Some(w) = write {
                    w(&tx)?;
                }
                tx.execute(
                    "INSERT INTO tideline_checkpoints (pk, sk, last_sequence, gaps_accepted, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (pk, sk) DO UPDATE SET last_sequence = excluded.last_sequence,
                       gaps_accepted = gaps_accepted + ?4, updated_at = excluded.updated_at",
                    params![pk, sk, to as i64, i64::from(accepted_gap), now],
                )
                .map_err(sqlite_error)?;
                if let Some(s) = unbuffer {
                    tx.execute(
                        "DELETE FROM tideline_buffered WHERE pk = ?1 AND sk = ?2 AND seq = ?3",
                        params![pk, sk, s as i64],
                    )
                    .map_err(sqlite_error)?;
                }
            }
            CheckpointUpdate::Buffer {
                sequence,
                event,
                max,
                ..
            } => {
                if cp.buffered.len() >= max || cp.buffered.contains_key(&sequence) {
                    return Err(conflict);
                }
                tx.execute(
                    "INSERT INTO tideline_buffered (pk, sk, seq, event) VALUES (?1, ?2, ?3, ?4)",
                    params![pk, sk, sequence as i64, event],
                )
                .map_err(sqlite_error)?;
            }
        }
        tx.commit().map_err(sqlite_error)
    }

    async fn reset(&self, consumer: &str, entity: Option<&str>) -> Result<u64, ConsumerError> {
        let pk = checkpoint_pk(consumer);
        let sk = entity.map(checkpoint_sk);
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(sqlite_error)?;
        let removed = tx
            .execute(
                "DELETE FROM tideline_checkpoints WHERE pk = ?1 AND (?2 IS NULL OR sk = ?2)",
                params![pk, sk],
            )
            .map_err(sqlite_error)?;
        tx.execute(
            "DELETE FROM tideline_buffered WHERE pk = ?1 AND (?2 IS NULL OR sk = ?2)",
            params![pk, sk],
        )
        .map_err(sqlite_error)?;
        tx.commit().map_err(sqlite_error)?;
        Ok(removed as u64)
    }
}
