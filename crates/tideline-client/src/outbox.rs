//! A transactional outbox for SQLite: publish after the database commit.
//!
//! Publishing inside a database transaction is wrong both ways: the call can
//! succeed and the transaction roll back (an event for a change that never
//! happened), or the transaction commit and the process die before the call
//! (a change whose event is lost). So [`Outbox::enqueue`] writes the record
//! into the `tideline_outbox` table **in the caller's own transaction**: it
//! commits or rolls back with the business change. A [`Relay`], on its own
//! connection, publishes committed rows in commit order and marks each one
//! published only after Firehose accepted it.
//!
//! A crash anywhere loses nothing: a row stays `pending` until marked. A crash
//! after Firehose accepted a row but before it was marked re-sends that row
//! with the same bytes, hence the same event id, and the store keeps it once
//! (INVARIANTS.md #2): each event id is stored exactly once. A row refused for
//! good (over a hop's limit, say) is marked `refused` with its reason, so it
//! is accounted for (INVARIANTS.md #1) and never retried forever.
//!
//! One relay per outbox table: two would each send the same pending rows.

use crate::deliver::{Clock, Transport};
use crate::publisher::{Prepared, PublishError, Publisher};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::time::Duration;
use tideline_core::ingest::{IngestConfig, RejectReason, admit};
use tideline_core::{Classify, ErrorClass, EventId};

/// The outbox table's name.
pub const OUTBOX_TABLE: &str = "tideline_outbox";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tideline_outbox (
    -- Commit order is publish order: AUTOINCREMENT never reuses a position.
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT NOT NULL UNIQUE,
    entity_id      TEXT NOT NULL,
    record         BLOB NOT NULL,
    enqueued_at    TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'published', 'refused')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    published_at   TEXT,
    refusal_code   TEXT,
    refusal_reason TEXT
);
CREATE INDEX IF NOT EXISTS tideline_outbox_pending
    ON tideline_outbox (position) WHERE state = 'pending';
";

/// Why an outbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The record breaks the ingest contract or a hop's limit; nothing was
    /// written. Permanent.
    #[error("record refused: {0}")]
    Refused(#[from] RejectReason),
    /// Another record with this event id is already in the outbox. Permanent.
    #[error("event id {event_id} is already in the outbox with different bytes")]
    IdConflict {
        /// The id.
        event_id: String,
    },
    /// SQLite failed; busy and locked databases are retryable.
    #[error("outbox database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl Classify for OutboxError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Refused(_) | Self::IdConflict { .. } => ErrorClass::Permanent,
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                ErrorClass::Retryable
            }
            Self::Sqlite(_) => ErrorClass::Permanent,
        }
    }
}

/// Where a row stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowState {
    /// Committed, not yet accepted by Firehose.
    Pending {
        /// Calls made so far.
        attempts: u32,
        /// The last error, if a call failed.
        last_error: Option<String>,
    },
    /// Accepted by Firehose.
    Published {
        /// When (RFC 3339).
        at: String,
    },
    /// Refused for good, with the reason.
    Refused {
        /// The reject code (`OverLimit`, `Rejected`, ...).
        code: String,
        /// The reason.
        reason: String,
    },
}

/// The outbox: a table in the caller's SQLite database.
#[derive(Debug, Clone)]
pub struct Outbox {
    ingest: IngestConfig,
}

impl Outbox {
    /// Creates the outbox table if needed; records are checked against the default ingest settings.
    pub fn open(conn: &Connection) -> Result<Self, OutboxError> {
        Self::with_ingest_config(conn, IngestConfig::default())
    }

    /// Creates the outbox table if needed; records are checked against `ingest`.
    pub fn with_ingest_config(
        conn: &Connection,
        ingest: IngestConfig,
    ) -> Result<Self, OutboxError> {
        conn.execute_batch(SCHEMA)?;
        Ok(Self { ingest })
    }

    /// Writes `record` inside the caller's transaction `tx`; returns the event
    /// id it will be stored under. Nothing is published until `tx` commits;
    /// a rollback removes it with the caller's own changes.
    ///
    /// The record is checked as ingest will check it, so a record the pipeline
    /// would refuse fails here, where the caller can still react. Enqueuing
    /// the same bytes twice is one event.
    pub fn enqueue(
        &self,
        tx: &Transaction<'_>,
        record: impl Into<Vec<u8>>,
    ) -> Result<EventId, OutboxError> {
        let bytes = record.into();
        let now = chrono::Utc::now();
        let admitted = admit(&self.ingest, &bytes, now)?;
        let event_id = admitted.record.id;
        let inserted = tx.execute(
            "INSERT INTO tideline_outbox (event_id, entity_id, record, enqueued_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (event_id) DO NOTHING",
            params![
                event_id.as_str(),
                admitted.record.entity_id.as_str(),
                bytes,
                now.to_rfc3339()
            ],
        )?;
        if inserted == 0 {
            let existing: Vec<u8> = tx.query_row(
                "SELECT record FROM tideline_outbox WHERE event_id = ?1",
                [event_id.as_str()],
                |r| r.get(0),
            )?;
            if existing != bytes {
                return Err(OutboxError::IdConflict {
                    event_id: event_id.to_string(),
                });
            }
        }
        Ok(event_id)
    }

    /// The state of the row for `event_id`, if there is one.
    pub fn state(conn: &Connection, event_id: &EventId) -> Result<Option<RowState>, OutboxError> {
        Ok(conn
            .query_row(
                "SELECT state, attempts, last_error, published_at, refusal_code, refusal_reason
                 FROM tideline_outbox WHERE event_id = ?1",
                [event_id.as_str()],
                |r| {
                    let state: String = r.get(0)?;
                    Ok(match state.as_str() {
                        "published" => RowState::Published {
                            at: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        },
                        "refused" => RowState::Refused {
                            code: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                            reason: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        },
                        _ => RowState::Pending {
                            attempts: r.get(1)?,
                            last_error: r.get(2)?,
                        },
                    })
                },
            )
            .optional()?)
    }

    /// Rows not yet published or refused.
    pub fn pending_count(conn: &Connection) -> Result<u64, OutboxError> {
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM tideline_outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    }
}

/// What one relay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Rows accepted by Firehose and marked published.
    pub published: usize,
    /// Rows refused for good and marked refused, with the reason.
    pub refused: usize,
    /// Rows still pending after this pass (retries ran out for now).
    pub retry_later: usize,
}

/// Publishes committed outbox rows, oldest first, on its own connection.
#[derive(Debug)]
pub struct Relay<Tr, C> {
    conn: Connection,
    publisher: Publisher<Tr, C>,
}

struct Row {
    position: i64,
    record: Vec<u8>,
}

impl<Tr: Transport<Prepared>, C: Clock> Relay<Tr, C> {
    /// A relay reading the outbox through `conn` (a connection of its own to
    /// the caller's database file) and publishing with `publisher`.
    pub fn new(conn: Connection, publisher: Publisher<Tr, C>) -> Result<Self, OutboxError> {
        // The application writes the same file; wait for its transactions
        // rather than fail with SQLITE_BUSY.
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn, publisher })
    }

    /// The relay's connection, to read the outbox.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// One pass: the oldest pending rows that fit one call, published, then
    /// marked. Every row of a pass goes in the same call, and the next pass
    /// starts again at the oldest pending row, so a row is never first sent in
    /// a later call than a younger row of its entity (per-entity order as far
    /// as Firehose takes it: within one partly failed call, a failed row is
    /// re-sent after its accepted successors).
    pub async fn run_once(&mut self) -> Result<RelayReport, OutboxError> {
        let rows = self.pending_rows()?;
        if rows.is_empty() {
            return Ok(RelayReport::default());
        }
        let results = self
            .publisher
            .publish_batch(rows.iter().map(|r| r.record.clone()).collect())
            .await;
        let mut report = RelayReport::default();
        let now = chrono::Utc::now().to_rfc3339();
        let tx = self.conn.transaction()?;
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(event_id) => {
                    tx.execute(
                        "UPDATE tideline_outbox SET state = 'published', published_at = ?2,
                         attempts = attempts + 1, last_error = NULL WHERE position = ?1",
                        params![row.position, now],
                    )?;
                    tracing::debug!(%event_id, position = row.position, "outbox row published");
                    report.published += 1;
                }
                Err(e) if e.class() == ErrorClass::Permanent => {
                    tx.execute(
                        "UPDATE tideline_outbox SET state = 'refused', refusal_code = ?2,
                         refusal_reason = ?3, attempts = attempts + ?4 WHERE position = ?1",
                        params![row.position, e.code(), e.to_string(), attempts(&e)],
                    )?;
                    tracing::warn!(position = row.position, code = e.code(), error = %e, "outbox row refused for good");
                    report.refused += 1;
                }
                Err(e) => {
                    tx.execute(
                        "UPDATE tideline_outbox SET attempts = attempts + ?2, last_error = ?3
                         WHERE position = ?1",
                        params![row.position, attempts(&e), e.to_string()],
                    )?;
                    report.retry_later += 1;
                }
            }
        }
        tx.commit()?;
        Ok(report)
    }

    /// Passes until nothing is pending or a pass makes no progress (the
    /// service is unavailable). Returns the sum of the passes.
    pub async fn run_until_idle(&mut self) -> Result<RelayReport, OutboxError> {
        let mut total = RelayReport::default();
        loop {
            let r = self.run_once().await?;
            total.published += r.published;
            total.refused += r.refused;
            total.retry_later = r.retry_later;
            if r.published + r.refused == 0 {
                return Ok(total);
            }
        }
    }

    /// Relays until `shutdown` completes, polling every `idle_poll` when
    /// nothing is pending or the service is unavailable.
    pub async fn run(
        &mut self,
        idle_poll: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), OutboxError> {
        tokio::pin!(shutdown);
        loop {
            let r = self.run_until_idle().await?;
            if r.retry_later > 0 {
                tracing::warn!(
                    pending = r.retry_later,
                    "outbox rows still pending; will retry"
                );
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(idle_poll) => {}
            }
        }
    }

    fn pending_rows(&self) -> Result<Vec<Row>, OutboxError> {
        let limits = self.publisher.limits();
        let mut stmt = self.conn.prepare_cached(
            "SELECT position, record FROM tideline_outbox
             WHERE state = 'pending' ORDER BY position LIMIT ?1",
        )?;
        let candidates = stmt
            .query_map([limits.max_records as i64], |r| {
                Ok(Row {
                    position: r.get(0)?,
                    record: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // As many as fit one call, so a pass is one call (see `run_once`).
        let mut rows = Vec::with_capacity(candidates.len());
        let mut bytes = 0usize;
        for row in candidates {
            if !limits.fits(rows.len(), bytes, row.record.len()) {
                break;
            }
            bytes += row.record.len();
            rows.push(row);
        }
        Ok(rows)
    }
}

fn attempts(e: &PublishError) -> u32 {
    match e {
        PublishError::Refused(_) => 0,
        PublishError::Rejected { attempts, .. } | PublishError::Unavailable { attempts, .. } => {
            *attempts
        }
    }
}
