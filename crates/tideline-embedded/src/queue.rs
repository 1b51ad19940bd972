//! The embedded FIFO queue: SQS FIFO semantics in SQLite.
//!
//! - Message groups: a group with a message waiting for redelivery (a failed
//!   batch, visibility not yet expired) delivers nothing behind it, so a
//!   group's order survives retries.
//! - De-duplication window: a repeated `MessageDeduplicationId` *in the same
//!   group* within the window (5 minutes, as SQS) is accepted and dropped.
//!   De-duplication has one scope, the entity (the group): SQS's
//!   high-throughput mode (`DeduplicationScope=messageGroup`) behaves so, and
//!   with a queue-wide scope `{"entity_id":"A","id":"1"}` would hide
//!   `{"entity_id":"B","id":"1"}` (INVARIANTS.md #1).
//! - Limits: SQS's, from [`tideline_core::limits`]. A message over the
//!   queue's `MaximumMessageSize`, or whose group or de-duplication id breaks
//!   the 1–128 character rule, is refused per entry (permanent, as SQS's
//!   `InvalidParameterValue`); a call over 10 entries or over the batch
//!   payload limit fails as a whole, so a local test fails where AWS would.
//! - Visibility and retries: a received message is in flight until it is
//!   deleted or released; a released message is hidden for its backoff delay;
//!   after `max_receive_count` failed receives it moves to the dead-letter
//!   table with the last error as its reason (SQS `RedrivePolicy`). A message
//!   handed back *uncounted* ([`LocalQueue::return_uncounted`]: a transient
//!   failure, or a message behind the failure that was never attempted) waits
//!   out its delay without moving toward the dead-letter table; see
//!   `stack::store_once` for the rule.
//! - Liveness: whatever happens to a delete or a release, the messages leave
//!   the in-flight set, so their group is never stalled until a restart; a
//!   message whose delete failed is simply delivered again (the append is
//!   idempotent).
//!
//! Local mode has one consumer, the store worker, so "in flight" is kept in
//! memory: a receive writes nothing, and after a crash whatever was in flight
//! is simply visible again (it was never deleted), as an expired visibility
//! timeout would make it on SQS.

use crate::sqlite::{Db, Durability, now_ms, open, port_error};
use rusqlite::{OptionalExtension, params};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tideline_core::ErrorClass;
use tideline_core::limits::{
    DEFAULT_SQS_MESSAGE_BYTES, SQS_BATCH_BYTES, SQS_BATCH_ENTRIES, SQS_ID_CHARS,
};
use tideline_stages::{EntryFailure, OutgoingMessage, PortError, Queue};
use tokio::sync::Notify;
use tracing::warn;

/// Queue settings; defaults mirror SQS FIFO.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// SQS de-duplication interval: 5 minutes.
    pub dedup_window: Duration,
    /// Failed receives before a message is dead-lettered.
    pub max_receive_count: u32,
    /// The queue's `MaximumMessageSize` in bytes. `LocalStack` sets it from
    /// `IngestConfig.limits.sqs_message_bytes`, so ingest admits exactly what
    /// the queue carries, as with the Terraform queue's `max_message_size`.
    pub max_message_bytes: usize,
    /// A `SendMessageBatch` call's total payload (`limits.sqs_batch_bytes`).
    pub max_batch_bytes: usize,
    /// How hard commits are made durable.
    pub durability: Durability,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            dedup_window: Duration::from_secs(300),
            max_receive_count: 5,
            max_message_bytes: DEFAULT_SQS_MESSAGE_BYTES,
            max_batch_bytes: SQS_BATCH_BYTES,
            durability: Durability::default(),
        }
    }
}

/// SQS's error code for an entry it refuses (`SendMessageBatchResultErrorEntry.Code`).
pub const INVALID_PARAMETER: &str = "InvalidParameterValue";

fn refused(message: String) -> EntryFailure {
    EntryFailure {
        code: INVALID_PARAMETER.into(),
        message,
        // Resending the same entry gets the same answer.
        class: ErrorClass::Permanent,
    }
}

/// SQS's rule for `MessageGroupId` and `MessageDeduplicationId`: 1–128
/// characters, ASCII letters, digits and punctuation.
fn check_sqs_id(parameter: &str, value: &str) -> Result<(), EntryFailure> {
    let count = value.chars().count();
    if count == 0 || count > SQS_ID_CHARS {
        return Err(refused(format!(
            "Value for parameter {parameter} is invalid. Reason: must be 1 to {SQS_ID_CHARS} characters long, got {count}."
        )));
    }
    if let Some((i, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || c.is_ascii_punctuation()))
    {
        return Err(refused(format!(
            "Value for parameter {parameter} is invalid. Reason: {c:?} at character {i}; only ASCII letters, digits and punctuation are allowed."
        )));
    }
    Ok(())
}

/// A received message.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// Queue position (also its id).
    pub seq: i64,
    /// `MessageGroupId`.
    pub group_id: String,
    /// The body.
    pub body: String,
    /// Receives so far, this one included.
    pub receive_count: u32,
}

impl ReceivedMessage {
    /// The id the storer reports failures by.
    pub fn message_id(&self) -> String {
        format!("m-{}", self.seq)
    }
}

/// A dead-lettered message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    /// `MessageGroupId`.
    pub group_id: String,
    /// The body.
    pub body: String,
    /// Receives made.
    pub receive_count: u32,
    /// Why.
    pub reason: String,
}

/// The embedded FIFO queue.
#[derive(Debug)]
pub struct LocalQueue {
    db: Db,
    config: QueueConfig,
    /// Received and not yet deleted or released: queue position → group.
    in_flight: std::sync::Mutex<std::collections::HashMap<i64, String>>,
    /// Woken when messages arrive.
    pub arrivals: Arc<Notify>,
}

impl LocalQueue {
    /// Opens (or creates) the queue database.
    pub fn open(path: &Path, config: QueueConfig) -> Result<Self, PortError> {
        let conn = open(path, config.durability).map_err(port_error)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                group_id TEXT NOT NULL,
                dedup_id TEXT NOT NULL,
                body TEXT NOT NULL,
                sent_at INTEGER NOT NULL,
                visible_at INTEGER NOT NULL,
                receive_count INTEGER NOT NULL DEFAULT 0,
                last_error TEXT
             );
             CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages(visible_at);
             -- Only received messages (in flight or waiting for redelivery): keeps the
             -- dead-letter sweep independent of the backlog's size.
             CREATE INDEX IF NOT EXISTS messages_received ON messages(receive_count) WHERE receive_count > 0;
             -- De-duplication is per group (entity): the key is (group, dedup id).
             -- The queue-wide table of earlier versions is dropped: for at most one
             -- window a repeat may be enqueued twice, and the store's idempotent
             -- append stores it once (INVARIANTS.md #2).
             DROP TABLE IF EXISTS dedup;
             CREATE TABLE IF NOT EXISTS dedup_by_group (
                group_id TEXT NOT NULL,
                dedup_id TEXT NOT NULL,
                sent_at INTEGER NOT NULL,
                PRIMARY KEY (group_id, dedup_id)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS dead_letters (
                seq INTEGER PRIMARY KEY,
                group_id TEXT NOT NULL,
                dedup_id TEXT NOT NULL,
                body TEXT NOT NULL,
                receive_count INTEGER NOT NULL,
                reason TEXT NOT NULL,
                moved_at INTEGER NOT NULL
             );",
        )
        .map_err(port_error)?;
        Ok(Self {
            db: Db::new(conn),
            config,
            in_flight: Default::default(),
            arrivals: Arc::new(Notify::new()),
        })
    }

    /// After a restart, messages waiting out a retry delay become visible at
    /// once; what the dead process had in flight was never deleted, so it is
    /// redelivered anyway.
    pub fn recover_in_flight(&self) -> Result<usize, PortError> {
        let conn = self.db.lock();
        conn.execute(
            "UPDATE messages SET visible_at = ?1 WHERE visible_at > ?1 AND receive_count > 0",
            params![now_ms()],
        )
        .map_err(port_error)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, String>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Receives up to `max` messages in queue order, skipping groups that have
    /// a message in flight or waiting for redelivery (so a group's order
    /// survives retries), and dead-lettering messages that failed too often.
    pub fn receive(&self, max: usize) -> Result<Vec<ReceivedMessage>, PortError> {
        let now = now_ms();
        let mut conn = self.db.lock();
        let mut in_flight = self.in_flight();
        let tx = conn.transaction().map_err(port_error)?;
        // `receive_count > 0` selects the partial index: the sweep costs what
        // is being retried, not the size of the backlog.
        tx.execute(
            "INSERT INTO dead_letters (seq, group_id, dedup_id, body, receive_count, reason, moved_at)
             SELECT seq, group_id, dedup_id, body, receive_count,
                    'exceeded maxReceiveCount (' || ?2 || '); last error: ' || COALESCE(last_error, 'none recorded'), ?1
             FROM messages WHERE receive_count > 0 AND receive_count >= ?2 AND visible_at <= ?1",
            params![now, self.config.max_receive_count],
        )
        .map_err(port_error)?;
        tx.execute(
            "DELETE FROM messages WHERE receive_count > 0 AND receive_count >= ?2 AND visible_at <= ?1",
            params![now, self.config.max_receive_count],
        )
        .map_err(port_error)?;
        let mut blocked: HashSet<String> = in_flight.values().cloned().collect();
        {
            let mut stmt = tx
                .prepare_cached("SELECT DISTINCT group_id FROM messages WHERE visible_at > ?1")
                .map_err(port_error)?;
            let rows = stmt
                .query_map(params![now], |r| r.get::<_, String>(0))
                .map_err(port_error)?;
            for g in rows {
                blocked.insert(g.map_err(port_error)?);
            }
        }
        let mut out = Vec::with_capacity(max);
        {
            // Queue order is rowid order: scan it and stop at the limit, instead
            // of letting the planner sort every visible message of the backlog.
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, group_id, body, receive_count FROM messages NOT INDEXED WHERE visible_at <= ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(port_error)?;
            let scan = max + in_flight.len() + blocked.len() * 4;
            let rows = stmt
                .query_map(params![now, scan as i64], |r| {
                    Ok(ReceivedMessage {
                        seq: r.get(0)?,
                        group_id: r.get(1)?,
                        body: r.get(2)?,
                        receive_count: r.get::<_, u32>(3)? + 1,
                    })
                })
                .map_err(port_error)?;
            for row in rows {
                let m = row.map_err(port_error)?;
                if !blocked.contains(&m.group_id) {
                    out.push(m);
                    if out.len() == max {
                        break;
                    }
                }
            }
        }
        tx.commit().map_err(port_error)?;
        for m in &out {
            in_flight.insert(m.seq, m.group_id.clone());
        }
        Ok(out)
    }

    /// Deletes handled messages. Whatever the outcome, they leave the
    /// in-flight set: a message that could not be deleted is visible again
    /// and redelivered (the append is idempotent), instead of stalling its
    /// group until a restart.
    pub fn delete(&self, seqs: &[i64]) -> Result<(), PortError> {
        let result = self.delete_rows(seqs);
        self.leave_flight(seqs);
        result
    }

    fn delete_rows(&self, seqs: &[i64]) -> Result<(), PortError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(port_error)?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM messages WHERE seq = ?1")
                .map_err(port_error)?;
            for s in seqs {
                stmt.execute(params![s]).map_err(port_error)?;
            }
        }
        tx.commit().map_err(port_error)
    }

    fn leave_flight(&self, seqs: &[i64]) {
        let mut in_flight = self.in_flight();
        for s in seqs {
            in_flight.remove(s);
        }
    }

    /// Makes messages visible again after `delay`, counting the failed
    /// receive toward `max_receive_count` and recording why it failed.
    pub fn release(&self, seqs: &[i64], delay: Duration, error: &str) -> Result<(), PortError> {
        self.hand_back(seqs, delay, error, 1)
    }

    /// Makes messages visible again after `delay` without counting a receive:
    /// for a transient failure (the store was busy or full for a moment) and
    /// for messages behind a failure that were never attempted. The reason is
    /// still recorded, so a later dead letter says what went wrong before.
    pub fn return_uncounted(
        &self,
        seqs: &[i64],
        delay: Duration,
        error: &str,
    ) -> Result<(), PortError> {
        self.hand_back(seqs, delay, error, 0)
    }

    /// Whatever the outcome, the messages leave the in-flight set: if the
    /// update failed they are visible at once (their `visible_at` is in the
    /// past) and simply delivered again.
    fn hand_back(
        &self,
        seqs: &[i64],
        delay: Duration,
        error: &str,
        counted: i64,
    ) -> Result<(), PortError> {
        let result = self.update_visibility(seqs, delay, error, counted);
        self.leave_flight(seqs);
        result
    }

    fn update_visibility(
        &self,
        seqs: &[i64],
        delay: Duration,
        error: &str,
        counted: i64,
    ) -> Result<(), PortError> {
        let visible_at = now_ms() + delay.as_millis() as i64;
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(port_error)?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE messages SET visible_at = ?2, receive_count = receive_count + ?4, last_error = ?3 WHERE seq = ?1")
                .map_err(port_error)?;
            for s in seqs {
                stmt.execute(params![s, visible_at, error, counted])
                    .map_err(port_error)?;
            }
        }
        tx.commit().map_err(port_error)
    }

    /// The database's `synchronous` setting (1 NORMAL, 2 FULL).
    pub fn synchronous(&self) -> Result<i64, PortError> {
        self.db.synchronous()
    }

    /// Messages in flight (received, not yet deleted or handed back).
    pub fn in_flight_count(&self) -> usize {
        self.in_flight().len()
    }

    /// A message's receive count and last error, for tests and diagnostics.
    pub fn receive_state(&self, seq: i64) -> Result<Option<(u32, Option<String>)>, PortError> {
        self.db
            .lock()
            .query_row(
                "SELECT receive_count, last_error FROM messages WHERE seq = ?1",
                params![seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(port_error)
    }

    /// Messages not yet deleted (waiting, in flight or delayed).
    pub fn depth(&self) -> Result<u64, PortError> {
        self.db
            .lock()
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(port_error)
    }

    /// The dead-letter table.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, PortError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare("SELECT group_id, body, receive_count, reason FROM dead_letters ORDER BY seq")
            .map_err(port_error)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DeadLetter {
                    group_id: r.get(0)?,
                    body: r.get(1)?,
                    receive_count: r.get(2)?,
                    reason: r.get(3)?,
                })
            })
            .map_err(port_error)?;
        rows.collect::<Result<_, _>>().map_err(port_error)
    }

    /// Forgets de-duplication ids older than the window.
    pub fn prune_dedup(&self) -> Result<(), PortError> {
        let cutoff = now_ms() - self.config.dedup_window.as_millis() as i64;
        self.db
            .lock()
            .execute(
                "DELETE FROM dedup_by_group WHERE sent_at < ?1",
                params![cutoff],
            )
            .map(|_| ())
            .map_err(port_error)
    }

    /// Commits the accepted messages in one transaction; `accepted[i]` says
    /// whether `messages[i]` passed the entry checks.
    fn send_now(
        &self,
        messages: &[OutgoingMessage],
        accepted: &[bool],
    ) -> Result<(), rusqlite::Error> {
        let now = now_ms();
        let window_start = now - self.config.dedup_window.as_millis() as i64;
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        {
            let mut seen = tx.prepare_cached(
                "SELECT sent_at FROM dedup_by_group WHERE group_id = ?1 AND dedup_id = ?2",
            )?;
            let mut mark = tx.prepare_cached(
                "INSERT OR REPLACE INTO dedup_by_group (group_id, dedup_id, sent_at) VALUES (?1, ?2, ?3)",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (group_id, dedup_id, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            )?;
            for (m, ok) in messages.iter().zip(accepted) {
                if !ok {
                    continue;
                }
                let previous: Option<i64> = seen
                    .query_row(params![m.group_id, m.dedup_id], |r| r.get(0))
                    .optional()?;
                if previous.is_some_and(|t| t >= window_start) {
                    // SQS FIFO: accepted, not delivered twice.
                    continue;
                }
                mark.execute(params![m.group_id, m.dedup_id, now])?;
                insert.execute(params![m.group_id, m.dedup_id, m.body, now])?;
            }
        }
        tx.commit()
    }

    /// The checks SQS makes on one `SendMessageBatch` entry.
    fn check_entry(&self, m: &OutgoingMessage) -> Result<(), EntryFailure> {
        check_sqs_id("MessageGroupId", &m.group_id)?;
        check_sqs_id("MessageDeduplicationId", &m.dedup_id)?;
        if m.body.len() > self.config.max_message_bytes {
            return Err(refused(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {} bytes (the queue's MaximumMessageSize); it is {} bytes.",
                self.config.max_message_bytes,
                m.body.len()
            )));
        }
        Ok(())
    }
}

impl Queue for LocalQueue {
    fn max_batch(&self) -> usize {
        // SQS: at most 10 entries per SendMessageBatch, locally too, so a
        // caller that would break the limit on AWS breaks it here.
        SQS_BATCH_ENTRIES
    }

    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        // Call-level limits fail the whole call, as SQS does.
        if messages.is_empty() {
            return Err(PortError::permanent(
                "sqs-local",
                "AWS.SimpleQueueService.EmptyBatchRequest: the batch request contains no entries",
            ));
        }
        if messages.len() > SQS_BATCH_ENTRIES {
            return Err(PortError::permanent(
                "sqs-local",
                format!(
                    "AWS.SimpleQueueService.TooManyEntriesInBatchRequest: {} entries; SendMessageBatch takes at most {SQS_BATCH_ENTRIES}",
                    messages.len()
                ),
            ));
        }
        let total: usize = messages.iter().map(|m| m.body.len()).sum();
        if total > self.config.max_batch_bytes {
            return Err(PortError::permanent(
                "sqs-local",
                format!(
                    "AWS.SimpleQueueService.BatchRequestTooLong: the entries total {total} bytes; a SendMessageBatch carries at most {}",
                    self.config.max_batch_bytes
                ),
            ));
        }
        // Entry-level checks: a refused entry fails alone, the rest are sent
        // (SQS handles a batch's entries independently).
        let results: Vec<Result<(), EntryFailure>> =
            messages.iter().map(|m| self.check_entry(m)).collect();
        for (m, r) in messages.iter().zip(&results) {
            if let Err(e) = r {
                warn!(queue = "local", group_id = %m.group_id, code = %e.code, reason = %e.message, "message refused");
            }
        }
        let accepted: Vec<bool> = results.iter().map(Result::is_ok).collect();
        // One transaction for the accepted entries: all commit, or the call
        // fails as a whole and every entry is retried.
        self.send_now(messages, &accepted).map_err(port_error)?;
        self.arrivals.notify_one();
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(group: &str, id: &str) -> OutgoingMessage {
        OutgoingMessage {
            group_id: group.into(),
            dedup_id: id.into(),
            body: format!("{group}:{id}"),
            trace_header: None,
        }
    }

    #[tokio::test]
    async fn fifo_groups_dedup_and_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let q = LocalQueue::open(
            &dir.path().join("q.db"),
            QueueConfig {
                max_receive_count: 2,
                ..QueueConfig::default()
            },
        )
        .unwrap();
        q.send_batch(&[msg("a", "1"), msg("b", "2"), msg("a", "3"), msg("a", "1")])
            .await
            .unwrap();
        assert_eq!(q.depth().unwrap(), 3, "a repeated dedup id is dropped");
        let got = q.receive(10).unwrap();
        assert_eq!(
            got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["a:1", "b:2", "a:3"]
        );
        // a:1 fails (and so a:3 behind it); b:2 succeeds.
        q.delete(&[got[1].seq]).unwrap();
        q.release(
            &[got[0].seq, got[2].seq],
            Duration::from_millis(0),
            "throttled",
        )
        .unwrap();
        let again = q.receive(10).unwrap();
        assert_eq!(
            again.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["a:1", "a:3"]
        );
        // While a:1 waits for redelivery, nothing behind it in group a is delivered.
        q.release(&[again[0].seq], Duration::from_secs(60), "throttled")
            .unwrap();
        q.release(&[again[1].seq], Duration::from_millis(0), "throttled")
            .unwrap();
        assert!(q.receive(10).unwrap().is_empty());
        // Past maxReceiveCount, the message moves to the DLQ with the reason.
        q.release(&[again[0].seq], Duration::from_millis(0), "throttled")
            .unwrap();
        assert!(q.receive(10).unwrap().is_empty());
        let dl = q.dead_letters().unwrap();
        assert_eq!(dl.len(), 2);
        assert!(dl[0].reason.contains("maxReceiveCount") && dl[0].reason.contains("throttled"));
    }

    fn open_queue(dir: &tempfile::TempDir, config: QueueConfig) -> LocalQueue {
        LocalQueue::open(&dir.path().join("q.db"), config).unwrap()
    }

    fn bodies(got: &[ReceivedMessage]) -> Vec<&str> {
        got.iter().map(|m| m.body.as_str()).collect()
    }

    #[tokio::test]
    async fn dedup_is_per_group_not_queue_wide() {
        let dir = tempfile::tempdir().unwrap();
        let q = open_queue(&dir, QueueConfig::default());
        // The same de-duplication id in two groups: two entities' events.
        q.send_batch(&[msg("acct-A", "1"), msg("acct-B", "1")])
            .await
            .unwrap();
        assert_eq!(bodies(&q.receive(10).unwrap()), ["acct-A:1", "acct-B:1"]);
        // A repeat within the same group is still dropped.
        q.send_batch(&[msg("acct-A", "1")]).await.unwrap();
        assert_eq!(q.depth().unwrap(), 2);
    }

    #[tokio::test]
    async fn entries_over_sqs_limits_are_refused_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let q = open_queue(
            &dir,
            QueueConfig {
                max_message_bytes: 1024,
                ..QueueConfig::default()
            },
        );
        let big = OutgoingMessage {
            group_id: "g".into(),
            dedup_id: "big".into(),
            body: "x".repeat(1025),
            trace_header: None,
        };
        let fits = OutgoingMessage {
            body: "x".repeat(1024),
            trace_header: None,
            dedup_id: "fits".into(),
            ..big.clone()
        };
        let long_group = msg(&"g".repeat(SQS_ID_CHARS + 1), "1");
        let empty_dedup = msg("g", "");
        let spaced_group = msg("a b", "2");
        let longest_ok = msg(&"h".repeat(SQS_ID_CHARS), &"i".repeat(SQS_ID_CHARS));
        let results = q
            .send_batch(&[big, fits, long_group, empty_dedup, spaced_group, longest_ok])
            .await
            .unwrap();
        let verdicts: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(verdicts, [false, true, false, false, false, true]);
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(r.code, INVALID_PARAMETER);
            assert_eq!(r.class, ErrorClass::Permanent);
        }
        assert!(
            results[0]
                .as_ref()
                .unwrap_err()
                .message
                .contains("MaximumMessageSize")
        );
        assert!(
            results[2]
                .as_ref()
                .unwrap_err()
                .message
                .contains("MessageGroupId")
        );
        assert!(
            results[3]
                .as_ref()
                .unwrap_err()
                .message
                .contains("MessageDeduplicationId")
        );
        // Only the accepted entries are in the queue.
        assert_eq!(q.depth().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_call_over_the_batch_limits_fails_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let q = open_queue(
            &dir,
            QueueConfig {
                max_message_bytes: tideline_core::limits::SQS_MAX_MESSAGE_BYTES,
                ..QueueConfig::default()
            },
        );
        let eleven: Vec<OutgoingMessage> = (0..SQS_BATCH_ENTRIES + 1)
            .map(|i| msg(&format!("g{i}"), "1"))
            .collect();
        let e = q.send_batch(&eleven).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("TooManyEntriesInBatchRequest"), "{e}");
        let half = SQS_BATCH_BYTES / 2 + 1;
        let two_halves: Vec<OutgoingMessage> = (0..2)
            .map(|i| OutgoingMessage {
                group_id: format!("g{i}"),
                dedup_id: "1".into(),
                body: "x".repeat(half),
                trace_header: None,
            })
            .collect();
        let e = q.send_batch(&two_halves).await.unwrap_err();
        assert!(e.message.contains("BatchRequestTooLong"), "{e}");
        assert!(
            q.send_batch(&[]).await.is_err(),
            "SQS refuses an empty batch"
        );
        assert_eq!(q.depth().unwrap(), 0, "a failed call enqueues nothing");
        assert!(q.send_batch(&eleven[..SQS_BATCH_ENTRIES]).await.is_ok());
    }

    /// Makes the next statement of `kind` (DELETE or UPDATE) on `messages`
    /// fail, through a second connection, as a full disk or an I/O error would.
    fn break_messages(dir: &tempfile::TempDir, kind: &str) -> rusqlite::Connection {
        let other = rusqlite::Connection::open(dir.path().join("q.db")).unwrap();
        other
            .execute_batch(&format!(
                "CREATE TRIGGER broken BEFORE {kind} ON messages BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END;"
            ))
            .unwrap();
        other
    }

    #[tokio::test]
    async fn a_failed_delete_or_release_leaves_nothing_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let q = open_queue(&dir, QueueConfig::default());
        q.send_batch(&[msg("a", "1"), msg("b", "2")]).await.unwrap();
        let got = q.receive(10).unwrap();
        assert_eq!(got.len(), 2);

        let other = break_messages(&dir, "DELETE");
        assert!(q.delete(&[got[0].seq]).is_err());
        other.execute_batch("DROP TRIGGER broken").unwrap();
        assert_eq!(q.in_flight_count(), 1, "a:1 left the in-flight set");
        // Group a is not stalled: a:1 is delivered again (b:2 is still in flight).
        assert_eq!(bodies(&q.receive(10).unwrap()), ["a:1"]);

        let other = break_messages(&dir, "UPDATE");
        assert!(
            q.release(&[got[1].seq], Duration::from_secs(60), "x")
                .is_err()
        );
        assert!(
            q.return_uncounted(&[got[0].seq], Duration::from_secs(60), "x")
                .is_err()
        );
        other.execute_batch("DROP TRIGGER broken").unwrap();
        assert_eq!(q.in_flight_count(), 0);
        // Neither group is stalled until a restart.
        assert_eq!(bodies(&q.receive(10).unwrap()), ["a:1", "b:2"]);
    }

    #[tokio::test]
    async fn an_uncounted_hand_back_does_not_move_toward_the_dead_letter_table() {
        let dir = tempfile::tempdir().unwrap();
        let q = open_queue(
            &dir,
            QueueConfig {
                max_receive_count: 2,
                ..QueueConfig::default()
            },
        );
        q.send_batch(&[msg("a", "1")]).await.unwrap();
        for _ in 0..5 {
            let got = q.receive(10).unwrap();
            assert_eq!(bodies(&got), ["a:1"]);
            q.return_uncounted(&[got[0].seq], Duration::ZERO, "database is locked")
                .unwrap();
        }
        let seq = q.receive(10).unwrap()[0].seq;
        let (count, error) = q.receive_state(seq).unwrap().unwrap();
        assert_eq!(count, 0);
        assert_eq!(error.as_deref(), Some("database is locked"));
        assert!(q.dead_letters().unwrap().is_empty());
    }
}
