//! SQLite helpers shared by the embedded adapters.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tideline_ports::PortError;

/// Opens a database in WAL mode with `synchronous=NORMAL`: a commit survives a
/// process crash (`kill -9`), which is the durability local mode promises; only
/// an OS crash or power loss may lose the last commits.
pub fn open(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // 64 MiB of page cache: the store's indexes are written in entity order,
    // not insert order, so a small cache turns appends into page reads.
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(conn)
}

/// Maps a SQLite error to a port error: busy/locked/I/O are retryable,
/// anything else (constraint, schema) is permanent.
pub fn port_error(e: rusqlite::Error) -> PortError {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | OutOfMemory) => {
            PortError::retryable("sqlite", e.to_string())
        }
        _ => PortError::permanent("sqlite", e.to_string()),
    }
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
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
