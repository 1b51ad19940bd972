//! Local mode's process: opens the embedded stores, starts the stage workers
//! and the HTTP server, and shuts them down in order.

use crate::server::HttpLimits;
use crate::targets::{Delivery, Dispatcher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tideline_core::ErrorClass;
use tideline_core::envelope::DEFAULT_SOURCE;
use tideline_core::ingest::IngestConfig;
use tideline_core::metrics::Counts;
use tideline_core::metrics::StageCounters;
use tideline_core::retry::RetryPolicy;
use tideline_core::route::{Rule, parse_rules};
use tideline_embedded::bus::LocalBus;
use tideline_embedded::lake::FileLake;
use tideline_embedded::queue::{LocalQueue, QueueConfig};
use tideline_embedded::sqlite::Durability;
use tideline_embedded::store::SqliteStore;
use tideline_stages::emit::{EmitConfig, emit_batch};
use tideline_stages::store::{IncomingMessage, store_batch};
use tideline_stages::{ChangeFeed, EventStore, PortError, RejectSink};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Settings of `tideline up`.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where the databases and the lake live.
    pub data_dir: PathBuf,
    /// Where the HTTP APIs listen.
    pub listen: SocketAddr,
    /// Rules file, if any.
    pub rules_file: Option<PathBuf>,
    /// Rules given directly (in addition to the file); used by tests and the demo.
    pub rules: Vec<Rule>,
    /// The Firehose delivery stream name the ingest API answers to.
    pub stream_name: String,
    /// `source` of integration events.
    pub source: String,
    /// The transform's settings.
    pub ingest: IngestConfig,
    /// The queue's settings.
    pub queue: QueueConfig,
    /// Messages per store batch.
    pub store_batch: usize,
    /// Changes per emit batch.
    pub emit_batch: usize,
    /// Retries inside stages and of webhook deliveries.
    pub retry: RetryPolicy,
    /// Event retention (TTL), if any.
    pub ttl: Option<chrono::Duration>,
    /// What a commit survives (`--durability`): see [`Durability`].
    pub durability: Durability,
    /// The HTTP server's timeouts and connection cap.
    pub http: HttpLimits,
    /// Host names the HTTP server answers to besides loopback names and
    /// addresses and its listen address (`--allow-host`).
    pub allowed_hosts: Vec<String>,
    /// Bundled emission (`--bundle-max-events`): consecutive events packed
    /// into one bus entry, as the emitter Lambda does; `None` is off.
    pub bundle: Option<tideline_core::bundle::BundleConfig>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".tideline"),
            listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            rules_file: None,
            rules: Vec::new(),
            stream_name: "tideline-ingest".into(),
            source: DEFAULT_SOURCE.into(),
            ingest: IngestConfig::default(),
            queue: QueueConfig::default(),
            store_batch: 500,
            emit_batch: 500,
            retry: RetryPolicy::default(),
            ttl: None,
            durability: Durability::default(),
            http: HttpLimits::default(),
            allowed_hosts: Vec::new(),
            bundle: None,
        }
    }
}

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
}

/// Per-stage counters of this process.
#[derive(Debug, Default)]
pub struct Counters {
    /// Transform (ingest).
    pub transform: StageCounters,
    /// Store.
    pub store: StageCounters,
    /// Emit.
    pub emit: StageCounters,
}

/// What the workers and handlers share.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: LocalConfig,
    /// The FIFO queue.
    pub queue: Arc<LocalQueue>,
    /// The event store and change feed.
    pub store: Arc<SqliteStore>,
    /// The bus.
    pub bus: Arc<LocalBus>,
    /// The lake.
    pub lake: FileLake,
    /// Counters.
    pub counters: Counters,
    /// Numbers ingest batches for record ids.
    pub batch_counter: AtomicU64,
    /// Distinguishes this process's record ids from an earlier run's.
    pub instance: u32,
    /// Rule names.
    pub rule_names: Vec<String>,
    /// Each rule's counts (stage `route`), in rule order.
    pub route_counters: Vec<Arc<StageCounters>>,
    /// Becomes true at shutdown; ends long-lived responses (the tail stream).
    pub stop: watch::Receiver<bool>,
}

impl Shared {
    /// Counters and depths as JSON.
    pub fn metrics(&self) -> serde_json::Value {
        let (events, entities) = self.store.totals().unwrap_or_default();
        let (feed_head, feed_checkpoint) = self.store.feed_positions().unwrap_or_default();
        serde_json::json!({
            "transform": self.counters.transform.snapshot(),
            "store": self.counters.store.snapshot(),
            "emit": self.counters.emit.snapshot(),
            "route": self.rule_names.iter().zip(&self.route_counters).map(|(n, c)| (n.clone(), serde_json::json!(c.snapshot()))).collect::<serde_json::Map<_, _>>(),
            "queue_depth": self.queue.depth().ok(),
            "queue_dead_letters": self.queue.dead_letters().map(|d| d.len()).ok(),
            "rejected": self.store.rejected().map(|r| r.len()).ok(),
            "delivery_dead_letters": self.bus.dead_letters().map(|d| d.len()).ok(),
            "events_stored": events,
            "entities": entities,
            "feed": {"head": feed_head, "checkpoint": feed_checkpoint},
            "bus_archive": self.bus.last_position().ok(),
        })
    }
}

/// A running local stack.
pub struct LocalStack {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    deliveries: broadcast::Sender<Delivery>,
}

impl LocalStack {
    /// Opens the stores, starts the workers and the HTTP server.
    pub async fn start(mut config: LocalConfig) -> Result<Self, LocalError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| LocalError::DataDir {
            path: dir.clone(),
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
        // One source of truth for the queue's limits: the numbers ingest admits
        // by (HopLimits), so a record ingest accepts is one the queue carries.
        config.queue.max_message_bytes = config.ingest.limits.sqs_message_bytes;
        config.queue.max_batch_bytes = config.ingest.limits.sqs_batch_bytes;
        config.queue.durability = config.durability;
        let queue = Arc::new(
            LocalQueue::open(&dir.join("queue.db"), config.queue.clone()).map_err(|source| {
                LocalError::Store {
                    what: "queue.db",
                    source,
                }
            })?,
        );
        let recovered = queue
            .recover_in_flight()
            .map_err(|source| LocalError::Store {
                what: "queue.db",
                source,
            })?;
        let store = Arc::new(
            SqliteStore::open_with(&dir.join("store.db"), config.ttl, config.durability).map_err(
                |source| LocalError::Store {
                    what: "store.db",
                    source,
                },
            )?,
        );
        let bus = Arc::new(
            LocalBus::open_with(
                &dir.join("bus.db"),
                config.emit_batch,
                config.ingest.limits.put_events_request_bytes,
                config.durability,
            )
            .map_err(|source| LocalError::Store {
                what: "bus.db",
                source,
            })?,
        );
        let lake = FileLake::new(&dir.join("lake")).with_sync(config.durability.sync_files());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (deliveries, _) = broadcast::channel(65_536);

        let mut dispatchers = Vec::new();
        for rule in &config.rules {
            dispatchers.push(
                Dispatcher::new(rule.clone(), bus.clone(), config.retry, deliveries.clone())
                    .map_err(LocalError::Target)?,
            );
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| LocalError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| LocalError::Listen {
            addr: config.listen,
            source,
        })?;

        let shared = Arc::new(Shared {
            rule_names: config.rules.iter().map(|r| r.spec.name.clone()).collect(),
            route_counters: dispatchers.iter().map(Dispatcher::counters).collect(),
            config,
            queue,
            store,
            bus,
            lake,
            counters: Counters::default(),
            batch_counter: AtomicU64::new(0),
            instance: rand::random(),
            stop: shutdown_rx.clone(),
        });

        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(store_worker(
            shared.clone(),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(emit_worker(
            shared.clone(),
            shutdown_rx.clone(),
        )));
        for d in dispatchers {
            tasks.push(tokio::spawn(d.run(shutdown_rx.clone())));
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
        info!(%addr, data_dir = %shared.config.data_dir.display(), rules = shared.rule_names.len(), recovered_in_flight = recovered, durability = ?shared.config.durability, "tideline up: ready");
        Ok(Self {
            shared,
            addr,
            shutdown,
            tasks,
            deliveries,
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

    /// True when everything ingested is stored, emitted and dispatched.
    pub fn is_idle(&self) -> Result<bool, PortError> {
        let s = &self.shared;
        if s.queue.depth()? > 0 {
            return Ok(false);
        }
        let (head, checkpoint) = s.store.feed_positions()?;
        if head != checkpoint {
            return Ok(false);
        }
        let last = s.bus.last_position()?;
        for name in &s.rule_names {
            if s.bus.checkpoint(name)? < last {
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

    /// Stops the server and workers; work in progress is committed or redelivered.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        info!("tideline up: stopped");
    }
}

async fn wait_or_shutdown(
    notify: &tokio::sync::Notify,
    shutdown: &mut watch::Receiver<bool>,
    max: Duration,
) {
    tokio::select! {
        _ = notify.notified() => {}
        _ = tokio::time::sleep(max) => {}
        _ = shutdown.changed() => {}
    }
}

/// The store stage's event-source loop: the local equivalent of Lambda's SQS
/// event source mapping, with the same "report the failure and the rest" contract.
async fn store_worker(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut failures_in_a_row = 0u32;
    let mut last_prune = Instant::now();
    while !*shutdown.borrow() {
        if last_prune.elapsed() > Duration::from_secs(30) {
            if let Err(e) = shared.queue.prune_dedup() {
                warn!(error = %e, "dedup prune failed");
            }
            last_prune = Instant::now();
        }
        match store_once(
            &shared.queue,
            &*shared.store,
            shared.config.store_batch,
            &shared.config.retry,
            &mut failures_in_a_row,
        )
        .await
        {
            Ok(Some(counts)) => shared.counters.store.add(counts),
            Ok(None) => {
                wait_or_shutdown(
                    &shared.queue.arrivals,
                    &mut shutdown,
                    Duration::from_millis(100),
                )
                .await;
            }
            Err(e) => {
                warn!(stage = "store", error = %e, "receive failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// One pass of the store worker: receive, run the store stage, delete what
/// it handled and hand back what it reported. `Ok(None)` when the queue had
/// nothing to deliver.
///
/// The receive-count rule (what moves a message toward the dead-letter
/// table, `max_receive_count`):
/// - The store stage stops at the first failure and reports that message and
///   every later one. Only the message it stopped at was attempted; the ones
///   behind it are handed back uncounted.
/// - If the failure is transient (SQLite busy or locked, disk full, an I/O
///   error: the error's class is retryable), the stopped message is handed
///   back uncounted too, with jittered exponential backoff (capped by the
///   retry policy's `max_delay`). Seconds or minutes of a busy or full disk
///   therefore never dead-letter anything: the messages wait in the queue,
///   durable and in order, and `queue_depth` shows them. Dead-lettering them
///   instead would break their entity's order for a failure that is not
///   theirs.
/// - A permanent failure (the stage could not even record a poison message
///   as rejected) counts one receive for the stopped message; after
///   `max_receive_count` of those it is dead-lettered with the last error.
pub async fn store_once<S: EventStore + RejectSink>(
    queue: &LocalQueue,
    store: &S,
    batch: usize,
    retry: &RetryPolicy,
    failures_in_a_row: &mut u32,
) -> Result<Option<Counts>, PortError> {
    let received = queue.receive(batch)?;
    if received.is_empty() {
        return Ok(None);
    }
    let messages: Vec<IncomingMessage> = received
        .iter()
        .map(|m| IncomingMessage {
            message_id: m.message_id(),
            body: m.body.clone(),
        })
        .collect();
    let result = store_batch(store, store, messages).await;
    let failed: std::collections::HashSet<&str> = result
        .failed_message_ids
        .iter()
        .map(String::as_str)
        .collect();
    let (retry_now, done): (Vec<_>, Vec<_>) = received
        .iter()
        .partition(|m| failed.contains(m.message_id().as_str()));
    if let Err(e) = queue.delete(&done.iter().map(|m| m.seq).collect::<Vec<_>>()) {
        // Not deleted means redelivered, and the idempotent append stores it once.
        warn!(stage = "store", error = %e, messages = done.len(), "delete failed; messages will be redelivered");
    }
    if retry_now.is_empty() {
        *failures_in_a_row = 0;
        return Ok(Some(result.counts));
    }
    *failures_in_a_row += 1;
    let delay = retry.jittered_delay(*failures_in_a_row);
    let reason = result.stop_reason.clone().unwrap_or_default();
    // The stage's stop is always an error some call returned; if none was
    // seen, treat it as transient (never burn a receive on a guess).
    let class = result.stop_class.unwrap_or(ErrorClass::Retryable);
    let seqs: Vec<i64> = retry_now.iter().map(|m| m.seq).collect();
    let handed_back = match (class, seqs.split_first()) {
        (ErrorClass::Permanent, Some((first, rest))) => queue
            .release(&[*first], delay, &reason)
            .and(queue.return_uncounted(rest, delay, &reason)),
        _ => queue.return_uncounted(&seqs, delay, &reason),
    };
    warn!(stage = "store", messages = seqs.len(), class = ?class, delay_ms = delay.as_millis() as u64, reason = %reason, "batch stopped; messages handed back");
    if let Err(e) = handed_back {
        warn!(stage = "store", error = %e, "hand-back failed; messages are visible again at once");
    }
    Ok(Some(result.counts))
}

/// The emit stage's event-source loop: the local equivalent of the DynamoDB
/// Streams event source mapping, rewinding to the lowest failed change.
async fn emit_worker(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let config = EmitConfig {
        source: shared.config.source.clone(),
        retry: shared.config.retry,
        bundle: shared.config.bundle,
    };
    let mut failures_in_a_row = 0u32;
    while !*shutdown.borrow() {
        let changes = match shared.store.poll(shared.config.emit_batch).await {
            Ok(c) => c,
            Err(e) => {
                warn!(stage = "emit", error = %e, "feed poll failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if changes.is_empty() {
            wait_or_shutdown(
                &shared.store.appended,
                &mut shutdown,
                Duration::from_millis(100),
            )
            .await;
            continue;
        }
        let result = emit_batch(&*shared.bus, &config, &changes).await;
        shared.counters.emit.add(result.counts);
        let ack_to = match &result.rewind_from {
            None => changes.last().map(|c| c.sequence_number.clone()),
            Some(from) => {
                // Acknowledge everything before the rewind point; replay from it.
                let pos = changes
                    .iter()
                    .position(|c| &c.sequence_number == from)
                    .unwrap_or(0);
                pos.checked_sub(1)
                    .map(|p| changes[p].sequence_number.clone())
            }
        };
        if let Some(seq) = ack_to
            && let Err(e) = shared.store.ack(&seq).await
        {
            warn!(stage = "emit", error = %e, "checkpoint write failed; changes will be emitted again");
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
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tideline_core::{AppendOutcome, EntityId, ExpectedSeq, NewEvent, StoredEvent};
    use tideline_stages::{OutgoingMessage, Queue, RejectedRecord, StoreError};

    /// The embedded store, failing its first `transient` appends as SQLite
    /// does when busy or out of disk, and (if `reject_fails`) every rejection
    /// permanently.
    struct Flaky {
        inner: SqliteStore,
        transient: AtomicU32,
        reject_fails: bool,
    }

    impl EventStore for Flaky {
        async fn append(
            &self,
            entity: &EntityId,
            events: Vec<NewEvent>,
            expected: ExpectedSeq,
        ) -> Result<Vec<AppendOutcome>, StoreError> {
            self.inner.append(entity, events, expected).await
        }
        async fn append_each(
            &self,
            events: Vec<NewEvent>,
        ) -> (Vec<Vec<AppendOutcome>>, Option<StoreError>) {
            if self
                .transient
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return (
                    Vec::new(),
                    Some(PortError::retryable("sqlite", "database is locked").into()),
                );
            }
            self.inner.append_each(events).await
        }
        async fn read_events(
            &self,
            entity: &EntityId,
            after_seq: u64,
            limit: usize,
        ) -> Result<Vec<StoredEvent>, StoreError> {
            self.inner.read_events(entity, after_seq, limit).await
        }
        async fn head(
            &self,
            entity: &EntityId,
        ) -> Result<Option<tideline_core::event::EntityHead>, StoreError> {
            self.inner.head(entity).await
        }
    }

    impl RejectSink for Flaky {
        async fn reject(&self, record: RejectedRecord) -> Result<(), PortError> {
            if self.reject_fails {
                return Err(PortError::permanent(
                    "sqlite",
                    "no such table: rejected (simulated)",
                ));
            }
            self.inner.reject(record).await
        }
    }

    fn record(entity: &str, id: u32) -> OutgoingMessage {
        let body = serde_json::json!({
            "entity_id": entity, "id": format!("{entity}-{id}"), "type": "Placed", "data": {"n": id},
        });
        let admitted = tideline_core::ingest::admit(
            &IngestConfig::default(),
            body.to_string().as_bytes(),
            chrono::Utc::now(),
        )
        .unwrap();
        OutgoingMessage::for_record(&admitted)
    }

    fn setup(dir: &tempfile::TempDir, transient: u32, reject_fails: bool) -> (LocalQueue, Flaky) {
        let queue = LocalQueue::open(
            &dir.path().join("queue.db"),
            QueueConfig {
                max_receive_count: 2,
                ..QueueConfig::default()
            },
        )
        .unwrap();
        let store = Flaky {
            inner: SqliteStore::open(&dir.path().join("store.db"), None).unwrap(),
            transient: AtomicU32::new(transient),
            reject_fails,
        };
        (queue, store)
    }

    async fn drain(queue: &LocalQueue, store: &Flaky, passes: usize) {
        let retry = RetryPolicy::fast(3);
        let mut failures = 0;
        for _ in 0..passes {
            if queue.depth().unwrap() == 0 {
                break;
            }
            let _ = store_once(queue, store, 500, &retry, &mut failures).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn transient_store_errors_do_not_dead_letter_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        // Four busy appends in a row: twice the maxReceiveCount of 2.
        let (queue, store) = setup(&dir, 4, false);
        for chunk in (0..30u32).collect::<Vec<_>>().chunks(10) {
            let batch: Vec<_> = chunk
                .iter()
                .map(|i| record(&format!("e{}", i % 3), *i))
                .collect();
            queue.send_batch(&batch).await.unwrap();
        }
        drain(&queue, &store, 200).await;
        assert!(
            queue.dead_letters().unwrap().is_empty(),
            "{:?}",
            queue.dead_letters()
        );
        assert_eq!(queue.depth().unwrap(), 0);
        assert_eq!(store.inner.totals().unwrap().0, 30);
    }

    #[tokio::test]
    async fn a_permanent_failure_counts_only_the_message_it_stopped_at() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, store) = setup(&dir, 0, true);
        // A poison message whose rejection cannot be recorded, then 9 good
        // records of other entities behind it in the same batch.
        let mut batch = vec![OutgoingMessage {
            group_id: "poison".into(),
            dedup_id: "p".into(),
            body: "not a record".into(),
            trace_header: None,
        }];
        batch.extend((0..9u32).map(|i| record(&format!("e{i}"), i)));
        queue.send_batch(&batch).await.unwrap();
        let retry = RetryPolicy::fast(3);
        let mut failures = 0;
        let counts = store_once(&queue, &store, 500, &retry, &mut failures)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counts.received, 10);
        let first = queue.receive_state(1).unwrap().unwrap();
        let behind = queue.receive_state(2).unwrap().unwrap();
        assert_eq!(
            first.0, 1,
            "the message the batch stopped at counts a receive"
        );
        assert_eq!(behind.0, 0, "messages behind it were never attempted");
        drain(&queue, &store, 200).await;
        let dead = queue.dead_letters().unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0].group_id, "poison");
        assert!(
            dead[0].reason.contains("no such table"),
            "{}",
            dead[0].reason
        );
        assert_eq!(store.inner.totals().unwrap().0, 9);
    }
}
