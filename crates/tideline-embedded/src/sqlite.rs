//! SQLite helpers shared by the embedded adapters.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tideline_stages::PortError;

/// How hard local mode makes a commit durable (`tideline up --durability`).
///
/// - [`Durability::Normal`] (the default): SQLite `synchronous=NORMAL` in WAL
///   mode. A commit survives a crash of the process (`kill -9`, a panic, an
///   out-of-memory kill): nothing acknowledged is lost. An OS crash or a power
///   loss may lose the last commits before the WAL was synced, including
///   records the Firehose API had already acknowledged.
/// - [`Durability::Full`]: `synchronous=FULL` on every database: each commit
///   is fsynced before it returns, so an acknowledged record also survives an
///   OS crash or power loss, at the price of one fsync per commit. Lake files
///   should be fsynced too in this mode (see `docs/local-mode.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Survives a process crash.
    #[default]
    Normal,
    /// Survives an OS crash or power loss too.
    Full,
}

impl Durability {
    /// SQLite's `synchronous` setting for this mode.
    pub fn synchronous(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }

    /// Whether files written outside SQLite (the lake) must be fsynced.
    pub fn sync_files(self) -> bool {
        self == Self::Full
    }
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            other => Err(format!(
                "durability {other:?}: expected \"normal\" (survives a process crash) or \"full\" (survives an OS crash or power loss)"
            )),
        }
    }
}

/// Opens a database in WAL mode with the `synchronous` setting of
/// `durability` (see [`Durability`] for what each survives).
pub fn open(path: &Path, durability: Durability) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", durability.synchronous())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // 64 MiB of page cache: the store's indexes are written in entity order,
    // not insert order, so a small cache turns appends into page reads.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Checkpoint the WAL every 8,192 pages (32 MiB) instead of SQLite's
    // 1,000: an append dirties index pages all over the store (entities
    // arrive in any order), so a small WAL checkpoints, and fsyncs the
    // database, every few commits. What a commit survives is unchanged:
    // that is `synchronous` (see `Durability`).
    conn.pragma_update(None, "wal_autocheckpoint", 8_192)?;
    Ok(conn)
}

/// Maps a SQLite error to a port error: busy/locked/I/O are retryable,
/// anything else (constraint, schema) is permanent. The rusqlite error is
/// the port error's source (its extended code, the failing statement).
pub fn port_error(e: rusqlite::Error) -> PortError {
    use rusqlite::ErrorCode::*;
    let error = match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | OutOfMemory) => {
            PortError::retryable("sqlite", e.to_string())
        }
        _ => PortError::permanent("sqlite", e.to_string()),
    };
    error.with_source(e)
}

/// The `synchronous` setting of a connection (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA).
pub fn synchronous_of(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
}

/// A connection shared by the tasks of one component.
#[derive(Debug)]
pub struct Db(Mutex<Connection>);

impl Db {
    /// Wraps a connection.
    pub fn new(conn: Connection) -> Self {
        Self(Mutex::new(conn))
    }
    /// Locks the connection. Work under the lock is short and never awaits.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// The connection's `synchronous` setting (1 NORMAL, 2 FULL).
    pub fn synchronous(&self) -> Result<i64, PortError> {
        synchronous_of(&self.lock()).map_err(port_error)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::error::Error;
    use tideline_core::Classify;

    #[test]
    fn the_rusqlite_error_is_the_source() {
        let conn = Connection::open_in_memory().unwrap();
        let e = conn
            .execute("INSERT INTO no_such_table VALUES (1)", [])
            .unwrap_err();
        let port = port_error(e);
        assert!(!port.is_retryable(), "a schema error is permanent");
        assert!(port.message.contains("no_such_table"), "{port}");
        let source = port.source().unwrap();
        assert!(
            source.downcast_ref::<rusqlite::Error>().is_some(),
            "{source:?}"
        );
        // Through a store error as well (the variant is transparent).
        let store = tideline_stages::StoreError::from(port);
        assert!(store.source().unwrap().is::<rusqlite::Error>());
    }
}
