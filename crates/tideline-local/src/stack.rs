//! Local mode's process: opens the embedded stores, wires the stages with
//! direct hand-offs, starts the router, the targets and the HTTP server, and
//! shuts them down in order.
//!
//! ```text
//! Firehose API ─► transform ─► store (store.db: events, heads, rejected) ──► acknowledged
//!                    └─► lake/ (JSON Lines; processing-failed/)
//! store.db in commit order (the change feed) ─► emit ─► bus: PutEvents checks, route (one parse, every rule)
//!                                                         └─► one task per rule target ─► log / webhook / lambda
//!                                                               └─► its checkpoint (targets.db)
//! expiry sweep (--retention) ─► store.db: expired events removed, each removal in the feed ─► EventExpired
//! ```
//!
//! The FIFO queue and the bus archive that AWS needs are not imitated: an
//! ingest request is answered once its records are appended (or refused),
//! the store's commit order is the feed the emit stage reads, and each
//! target's checkpoint in that feed is what a restart resumes from. After
//! `kill -9` at any moment nothing acknowledged is lost, nothing is stored
//! twice (the idempotent append), and every event is delivered at least once
//! (INVARIANTS.md #1, #2, #4).

use crate::bus::{LocalBus, RuleOutlet};
use crate::handoff::StoreHandoff;
use crate::shared::{Counters, LocalConfig, Shared};
use crate::targets::{Delivery, Target};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tideline_core::route::{Router, parse_rules};
use tideline_embedded::deliveries::DeliveryLog;
use tideline_embedded::lake::FileLake;
use tideline_embedded::store::SqliteStore;
use tideline_stages::emit::{EmitConfig, emit_batch};
use tideline_stages::{ChangeFeed, PortError};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Why local mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The data directory cannot be used.
    #[error("--data-dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The rules file cannot be used.
    #[error("--rules {path}: {message}")]
    Rules {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// A store failed to open.
    #[error("opening {what}: {source}")]
    Store {
        /// Which store.
        what: &'static str,
        /// Why.
        source: PortError,
    },
    /// The listen address cannot be bound.
    #[error("--listen {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A target cannot be set up.
    #[error("{0}")]
    Target(String),
    /// The data directory cannot hold the stack's files.
    #[error("--data-dir {path}: {reason}")]
    DataDirUnusable {
        /// The directory.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Another process runs a stack on the data directory: two would
    /// deliver every event twice.
    #[error(
        "--data-dir {path}: in use by another tideline up ({holder}); stop it first, or give another --data-dir"
    )]
    DataDirInUse {
        /// The directory.
        path: PathBuf,
        /// Who holds it (`pid N`, as written in the lock file).
        holder: String,
    },
}

/// The data directory's lock file: held (an OS file lock) while a stack
/// runs, so that a second stack on the same directory is refused; it holds
/// the holder's pid for that refusal. The OS releases the lock when the
/// process ends, `kill -9` included, so a stale file never blocks a start.
pub const LOCK_FILE: &str = "tideline.lock";

/// What a start creates in the data directory: removed again if the start
/// fails, so that a failed start leaves the directory as it found it.
const CREATED_FILES: [&str; 7] = [
    "store.db",
    "store.db-wal",
    "store.db-shm",
    "targets.db",
    "targets.db-wal",
    "targets.db-shm",
    "lake",
];

/// Checks and locks the data directory: it is (or can be made) a writable
/// directory whose `lake` is a directory, and no other stack holds it.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, LocalError> {
    use std::io::{Read, Seek, Write};
    let unusable = |reason: String| LocalError::DataDirUnusable {
        path: dir.to_path_buf(),
        reason,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(unusable(
            "is a file, not a directory; give a directory (it is created if missing)".into(),
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| unusable(format!("cannot create the directory: {e}")))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| {
            unusable(format!(
                "cannot write in it ({e}); give a directory you can write to"
            ))
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LocalError::DataDirInUse {
                path: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "pid unknown".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(unusable(format!("cannot lock {LOCK_FILE}: {e}")));
        }
    }
    let wrote = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "pid {}", std::process::id()))
        .and_then(|()| file.flush());
    wrote.map_err(|e| unusable(format!("cannot write {LOCK_FILE}: {e}")))?;
    let lake = dir.join("lake");
    if lake.exists() && !lake.is_dir() {
        return Err(unusable(format!(
            "{} is a file; the lake must be a directory (move the file away)",
            lake.display()
        )));
    }
    // Made now, so that a lake that cannot be written fails the start (not
    // every record later), and `tideline reingest --lake <dir>/lake` finds
    // it before the first record.
    std::fs::create_dir_all(&lake)
        .map_err(|e| unusable(format!("cannot create {}: {e}", lake.display())))?;
    Ok(file)
}

/// Work a target may have queued and not yet delivered: batches handed over
/// by the router. A full channel holds the router back (see [`crate::bus`]).
const TARGET_BACKLOG: usize = 64;

/// A running local stack.
pub struct LocalStack {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    deliveries: broadcast::Sender<Delivery>,
    /// The data directory's lock: released when the stack is shut down or
    /// dropped (not when the last handler lets go of [`Shared`], which a
    /// lingering connection could delay past a restart).
    _lock: std::fs::File,
}

fn store_error(what: &'static str) -> impl FnOnce(PortError) -> LocalError {
    move |source| LocalError::Store { what, source }
}

impl LocalStack {
    /// Checks and locks the data directory, opens the stores, starts the
    /// router, the targets and the HTTP server. If anything fails, what this
    /// start created in the data directory is removed again (and the
    /// directory itself if it did not exist).
    pub async fn start(config: LocalConfig) -> Result<Self, LocalError> {
        let dir = config.data_dir.clone();
        let dir_existed = dir.exists();
        let existed: Vec<bool> = CREATED_FILES
            .iter()
            .chain(std::iter::once(&LOCK_FILE))
            .map(|name| dir.join(name).exists())
            .collect();
        let lock = lock_data_dir(&dir);
        let started = match lock {
            Ok(lock) => Self::start_locked(config, lock).await,
            Err(e @ LocalError::DataDirInUse { .. }) => return Err(e),
            Err(e) => Err(e),
        };
        if started.is_err() {
            if !dir_existed {
                let _ = std::fs::remove_dir_all(&dir);
            } else {
                for (name, existed) in CREATED_FILES
                    .iter()
                    .chain(std::iter::once(&LOCK_FILE))
                    .zip(existed)
                {
                    let path = dir.join(name);
                    if !existed {
                        let _ = if path.is_dir() {
                            std::fs::remove_dir_all(&path)
                        } else {
                            std::fs::remove_file(&path)
                        };
                    }
                }
            }
        }
        started
    }

    async fn start_locked(
        mut config: LocalConfig,
        lock: std::fs::File,
    ) -> Result<Self, LocalError> {
        let dir = config.data_dir.clone();
        // Bound first: a port in use fails the start before any file is written.
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| LocalError::Listen {
                addr: config.listen,
                source,
            })?;
        if let Some(path) = &config.rules_file {
            let text = std::fs::read_to_string(path).map_err(|e| LocalError::Rules {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let rules = parse_rules(&text).map_err(|e| LocalError::Rules {
                path: path.clone(),
                message: e.to_string(),
            })?;
            config.rules.extend(rules);
        }
        let store = Arc::new(
            SqliteStore::open_with(&dir.join("store.db"), config.ttl, config.durability)
                .map_err(store_error("store.db"))?,
        );
        drain_legacy_queue(&dir, &store).await?;
        let log = Arc::new(
            DeliveryLog::open(&dir.join("targets.db"), config.durability)
                .map_err(store_error("targets.db"))?,
        );
        let lake = FileLake::new(&dir.join("lake")).with_sync(config.durability.sync_files());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (deliveries, _) = broadcast::channel(65_536);

        let mut targets = Vec::new();
        let mut outlets = Vec::new();
        for rule in &config.rules {
            let target = Target::new(rule.clone(), log.clone(), config.retry, deliveries.clone())
                .map_err(LocalError::Target)?;
            let (sender, work) = mpsc::channel(TARGET_BACKLOG);
            outlets.push(RuleOutlet {
                name: target.name().clone(),
                counters: target.counters(),
                sender,
                pending: target.pending(),
            });
            targets.push((target, work));
        }
        // A restart resumes the feed at the lowest target checkpoint: every
        // event after it is emitted and routed again (at least once).
        let mut resume_at = store.feed_positions().map_err(store_error("store.db"))?.1;
        for outlet in &outlets {
            resume_at = resume_at.min(
                log.checkpoint(&outlet.name)
                    .map_err(store_error("targets.db"))?,
            );
        }
        store
            .ack(&resume_at.to_string())
            .await
            .map_err(store_error("store.db"))?;
        let bus = Arc::new(LocalBus::new(
            Router::new(config.rules.clone()),
            outlets,
            log,
            config.emit_batch,
            config.ingest.limits.put_events_request_bytes,
        ));
        let addr = listener.local_addr().map_err(|source| LocalError::Listen {
            addr: config.listen,
            source,
        })?;

        let counters = Counters::default();
        let handoff = StoreHandoff::new(
            store.clone(),
            store.clone(),
            counters.store.clone(),
            config.ingest.limits,
        );
        let realtime = config
            .realtime
            .verifier
            .is_some()
            .then(|| Arc::new(crate::realtime::RealtimeHub::new(config.realtime.clone())));
        let shared = Arc::new(Shared {
            realtime: realtime.clone(),
            config,
            handoff,
            store,
            bus,
            lake,
            counters,
            batch_counter: AtomicU64::new(0),
            instance: rand::random(),
            stop: shutdown_rx.clone(),
        });

        let mut tasks = Vec::new();
        for (target, work) in targets {
            tasks.push(tokio::spawn(target.run(work, shutdown_rx.clone())));
        }
        tasks.push(tokio::spawn(emit_worker(
            shared.clone(),
            shutdown_rx.clone(),
        )));
        if let Some(ttl) = shared.config.ttl {
            tasks.push(tokio::spawn(sweep_worker(
                shared.clone(),
                sweep_interval(ttl),
                shutdown_rx.clone(),
            )));
        }
        if let Some(hub) = realtime {
            // Subscribed to the bus before the server accepts a connection.
            tasks.push(tokio::spawn(
                hub.run(shared.bus.subscribe(), shutdown_rx.clone()),
            ));
        }
        let app = crate::server::router(shared.clone());
        tasks.push(tokio::spawn(crate::server::serve(
            listener,
            app,
            shared.config.http,
            shutdown_rx.clone(),
        )));
        if !addr.ip().is_loopback() {
            // The APIs have no authentication: anyone who can reach the port can
            // ingest, read every event and trigger replays.
            warn!(%addr, "listening beyond loopback: the ingest, query and replay APIs have no authentication; anyone who can reach this address can use them");
        }
        info!(%addr, data_dir = %shared.config.data_dir.display(), rules = shared.bus.outlets().len(), resume_at, durability = ?shared.config.durability, "tideline up: ready");
        Ok(Self {
            shared,
            addr,
            shutdown,
            tasks,
            deliveries,
            _lock: lock,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the handlers and workers share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Live deliveries made by targets.
    pub fn deliveries(&self) -> broadcast::Receiver<Delivery> {
        self.deliveries.subscribe()
    }

    /// True when everything ingested is stored, emitted and delivered, and
    /// every replayed event is delivered.
    pub fn is_idle(&self) -> Result<bool, PortError> {
        let s = &self.shared;
        if s.handoff.in_flight() > 0 {
            return Ok(false);
        }
        let (head, checkpoint) = s.store.feed_positions()?;
        if head != checkpoint {
            return Ok(false);
        }
        let log = s.bus.deliveries();
        for outlet in s.bus.outlets() {
            if outlet.pending.load(std::sync::atomic::Ordering::SeqCst) > 0
                || log.checkpoint(&outlet.name)? < head
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Waits until [`Self::is_idle`], or the timeout.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), PortError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_idle()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PortError::retryable(
                    "local",
                    format!("not idle after {timeout:?}: {}", self.shared.metrics()),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server, the router and the targets; what was not delivered
    /// is delivered after the next start, from each target's checkpoint.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        info!("tideline up: stopped");
    }
}

/// Appends what an older data directory's `queue.db` still held (records
/// acknowledged to their producers and not yet stored), in order, then
/// renames the file to `queue.db.drained` (its dead letters stay there, with
/// their reasons). If any record cannot be stored the host does not start and
/// the file is kept: nothing acknowledged is lost on upgrade.
async fn drain_legacy_queue(dir: &std::path::Path, store: &SqliteStore) -> Result<(), LocalError> {
    let path = dir.join("queue.db");
    if !path.exists() {
        return Ok(());
    }
    let messages =
        tideline_embedded::legacy::queued_messages(&path).map_err(store_error("queue.db"))?;
    let count = messages.len();
    let incoming = messages
        .into_iter()
        .map(|m| tideline_stages::store::IncomingMessage {
            message_id: m.seq.to_string(),
            body: m.body,
        })
        .collect();
    let stored = tideline_stages::store::store_batch(store, store, incoming).await;
    if !stored.failed_message_ids.is_empty() {
        return Err(LocalError::Store {
            what: "queue.db",
            source: PortError::retryable(
                "local",
                format!(
                    "{} of the {count} records left in the old queue could not be stored ({}); the file is kept, start again to retry",
                    stored.failed_message_ids.len(),
                    stored.stop_reason.unwrap_or_default()
                ),
            ),
        });
    }
    std::fs::rename(&path, dir.join("queue.db.drained")).map_err(|source| LocalError::DataDir {
        path: path.clone(),
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        // SQLite's side files of the old queue; gone with a clean close.
        let _ = std::fs::remove_file(dir.join(format!("queue.db{suffix}")));
    }
    info!(
        records = count,
        stored = stored.counts.sent,
        duplicates = stored.counts.discarded,
        rejected = stored.counts.failed,
        "the old queue's records are in the store; queue.db renamed to queue.db.drained"
    );
    Ok(())
}

/// Parses a retention (`tideline up --retention`): a positive whole number
/// and a unit, `d` (days), `h`, `m` or `s`: `7d`, `36h`, `90m`, `45s`.
pub fn parse_retention(text: &str) -> Result<chrono::Duration, String> {
    let expected = "expected a positive whole number and a unit, d, h, m or s (7d, 36h, 90m, 45s)";
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit; {expected}"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number; {expected}"))?;
    if n == 0 {
        return Err(format!("{text:?} keeps nothing; {expected}"));
    }
    let duration = match unit {
        "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        "s" => chrono::Duration::try_seconds(n),
        other => return Err(format!("{text:?}: unknown unit {other:?}; {expected}")),
    };
    // `expires_at` is seconds since the epoch: a retention past chrono's
    // range, or one that no clock reaches, is a typo.
    duration
        .filter(|d| *d <= chrono::Duration::days(365 * 1000))
        .ok_or_else(|| format!("{text:?} is longer than 1,000 years"))
}

/// How often the expiry sweep runs: a tenth of the retention, between one
/// second and one minute. An event outlives its retention by at most that
/// (DynamoDB's TTL promises far less: days).
pub fn sweep_interval(ttl: chrono::Duration) -> Duration {
    (ttl / 10)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Local mode's TTL: removes expired events from the store now and then, each
/// removal entering the change feed so the emit stage publishes
/// `EventExpired` (INVARIANTS.md #6). An event is removed only once every
/// rule's target has delivered it: a restart rewinds the feed to the lowest
/// target checkpoint, and the insert must still be there.
async fn sweep_worker(shared: Arc<Shared>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut failures_in_a_row = 0u32;
    while !*shutdown.borrow() {
        let swept = delivered_through(&shared)
            .and_then(|through| shared.store.sweep_expired(chrono::Utc::now(), through));
        let wait = match swept {
            Ok(_) => {
                failures_in_a_row = 0;
                every
            }
            Err(e) => {
                failures_in_a_row += 1;
                warn!(stage = "expiry", error = %e, failures_in_a_row, "expiry sweep failed; retried");
                shared
                    .config
                    .retry
                    .jittered_delay(failures_in_a_row)
                    .min(every)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The feed position every rule's target has delivered through.
fn delivered_through(shared: &Shared) -> Result<i64, PortError> {
    let log = shared.bus.deliveries();
    let mut through = i64::MAX;
    for outlet in shared.bus.outlets() {
        through = through.min(log.checkpoint(&outlet.name)?);
    }
    Ok(through)
}

/// The emit stage's loop over the store's commit order: the local equivalent
/// of the DynamoDB Streams event source mapping, rewinding to the lowest
/// failed change. The bus routes what it publishes; once a batch is handed
/// over, every target hears the position it may checkpoint.
async fn emit_worker(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let config = EmitConfig {
        source: shared.config.source.clone(),
        retry: shared.config.retry,
        bundle: shared.config.bundle,
    };
    let mut failures_in_a_row = 0u32;
    while !*shutdown.borrow() {
        let appended = shared.store.appended.notified();
        let changes = match shared.store.poll(shared.config.emit_batch).await {
            Ok(c) => c,
            Err(e) => {
                warn!(stage = "emit", error = %e, "feed poll failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if changes.is_empty() {
            tokio::select! {
                _ = appended => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let result = emit_batch(&*shared.bus, &config, &changes).await;
        shared.counters.emit.add(result.counts);
        let handed_over = match &result.rewind_from {
            None => changes.last(),
            // Everything before the rewind point is handed over; the rest is
            // emitted again.
            Some(from) => changes
                .iter()
                .position(|c| &c.sequence_number == from)
                .and_then(|p| p.checked_sub(1))
                .and_then(|p| changes.get(p)),
        };
        if let Some(change) = handed_over {
            let moved = match change.sequence_number.parse::<i64>() {
                Ok(position) => match shared.bus.through(position).await {
                    Ok(()) => shared.store.ack(&change.sequence_number).await,
                    Err(e) => Err(e),
                },
                Err(_) => Err(PortError::permanent(
                    "local",
                    format!("feed position {:?} is not a number", change.sequence_number),
                )),
            };
            if let Err(e) = moved {
                warn!(stage = "emit", error = %e, "checkpoint not moved; changes will be emitted again");
            }
        }
        if result.rewind_from.is_some() {
            failures_in_a_row += 1;
            tokio::time::sleep(shared.config.retry.jittered_delay(failures_in_a_row)).await;
        } else {
            failures_in_a_row = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_retention_is_a_number_and_a_unit() {
        assert_eq!(parse_retention("7d").unwrap(), chrono::Duration::days(7));
        assert_eq!(parse_retention("36h").unwrap(), chrono::Duration::hours(36));
        assert_eq!(
            parse_retention("90m").unwrap(),
            chrono::Duration::minutes(90)
        );
        assert_eq!(
            parse_retention("45s").unwrap(),
            chrono::Duration::seconds(45)
        );
        for bad in [
            "",
            "7",
            "d",
            "0d",
            "-1d",
            "7w",
            "1.5h",
            "7 d",
            "99999999999999999999d",
            "400000d",
        ] {
            let e = parse_retention(bad).unwrap_err();
            assert!(e.contains(&format!("{:?}", bad.trim())), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_sweep_runs_a_tenth_of_the_retention_between_a_second_and_a_minute() {
        assert_eq!(
            sweep_interval(chrono::Duration::seconds(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            sweep_interval(chrono::Duration::minutes(5)),
            Duration::from_secs(30)
        );
        assert_eq!(
            sweep_interval(chrono::Duration::days(7)),
            Duration::from_secs(60)
        );
    }
}
