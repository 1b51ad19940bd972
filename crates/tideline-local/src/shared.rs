//! What the stages, the router and the HTTP handlers of `tideline up` share:
//! the settings ([`LocalConfig`], [`HttpLimits`]), the counters, and the
//! [`Shared`] state.
//!
//! A module of its own, below [`crate::stack`] (which builds the state and
//! starts the server) and [`crate::server`], [`crate::console`] and
//! [`crate::firehose`] (which read it), so none of those needs another's
//! module for them and the modules stay free of cycles.

use crate::bus::LocalBus;
use crate::handoff::StoreHandoff;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tideline_core::envelope::DEFAULT_SOURCE;
use tideline_core::ingest::IngestConfig;
use tideline_core::metrics::StageCounters;
use tideline_core::retry::RetryPolicy;
use tideline_core::route::Rule;
use tideline_embedded::lake::FileLake;
use tideline_embedded::sqlite::Durability;
use tideline_embedded::store::SqliteStore;
use tokio::sync::watch;

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
    /// Changes per emit batch (one read of the feed).
    pub emit_batch: usize,
    /// Retries inside stages and of webhook deliveries.
    pub retry: RetryPolicy,
    /// Event retention (`--retention`): an event expires this long after it
    /// is stored, and the expiry sweep removes it, publishing `EventExpired`;
    /// its id is de-duplicated until then. `None` keeps events forever.
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
    /// The realtime endpoint (`/_tideline/realtime`); off without a verifier.
    pub realtime: crate::realtime::RealtimeConfig,
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
            emit_batch: 500,
            retry: RetryPolicy::default(),
            ttl: None,
            durability: Durability::default(),
            http: HttpLimits::default(),
            allowed_hosts: Vec::new(),
            bundle: None,
            realtime: crate::realtime::RealtimeConfig::default(),
        }
    }
}

/// The HTTP server's limits on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time a connection has to send a request's headers (also while idle
    /// between keep-alive requests).
    pub header_timeout: Duration,
    /// Time a request has to send its whole body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

/// The header that marks a request as made by a program, not a web form.
pub const REQUEST_HEADER: &str = "x-tideline-request";

/// Per-stage counters of this process.
#[derive(Debug, Default)]
pub struct Counters {
    /// Transform (ingest).
    pub transform: StageCounters,
    /// Store.
    pub store: Arc<StageCounters>,
    /// Emit.
    pub emit: StageCounters,
}

/// What the stages, the router and the HTTP handlers share.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: LocalConfig,
    /// The transform stage's hand-off to the store stage.
    pub handoff: StoreHandoff,
    /// The event store; its commit order is the change feed.
    pub store: Arc<SqliteStore>,
    /// The bus: PutEvents checks, the route stage, the targets' hand-offs.
    pub bus: Arc<LocalBus>,
    /// The lake.
    pub lake: FileLake,
    /// Counters.
    pub counters: Counters,
    /// Numbers ingest batches for record ids.
    pub batch_counter: AtomicU64,
    /// Distinguishes this process's record ids from an earlier run's.
    pub instance: u32,
    /// Becomes true at shutdown; ends long-lived responses (the tail stream).
    pub stop: watch::Receiver<bool>,
    /// The realtime fan-out, when a token verifier is configured.
    pub realtime: Option<Arc<crate::realtime::RealtimeHub>>,
}

impl Shared {
    /// Records refused at ingest, read back from the lake's
    /// `processing-failed/` (so they survive restarts): how many there are,
    /// and the newest `limit` of them without their raw bytes (reason,
    /// record id, arrival time).
    pub fn refused_at_ingest(&self, limit: usize) -> (u64, Vec<serde_json::Value>) {
        fn walk(dir: &std::path::Path, files: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, files);
                } else {
                    files.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &self
                .config
                .data_dir
                .join("lake")
                .join(tideline_core::lake_layout::PROCESSING_FAILED),
            &mut files,
        );
        // Partitions are by day and part files by start time: path order is time order.
        files.sort();
        let (mut count, mut newest) = (0u64, std::collections::VecDeque::new());
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                count += 1;
                if limit == 0 {
                    continue;
                }
                if let Ok(serde_json::Value::Object(mut record)) = serde_json::from_str(line) {
                    record.remove("rawData");
                    newest.push_back(serde_json::Value::Object(record));
                    if newest.len() > limit {
                        newest.pop_front();
                    }
                }
            }
        }
        (count, newest.into())
    }

    /// Counters and depths as JSON.
    pub fn metrics(&self) -> serde_json::Value {
        let (events, entities) = self.store.totals().unwrap_or_default();
        let (feed_head, feed_checkpoint) = self.store.feed_positions().unwrap_or_default();
        let deliveries = self.bus.deliveries();
        serde_json::json!({
            "transform": self.counters.transform.snapshot(),
            "store": self.counters.store.snapshot(),
            "emit": self.counters.emit.snapshot(),
            "realtime": self.realtime.as_ref().map(|h| serde_json::json!({"counts": h.counters.snapshot(), "connections": h.connections()})),
            "route": self.bus.outlets().iter().map(|o| (o.name.to_string(), serde_json::json!(o.counters.snapshot()))).collect::<serde_json::Map<_, _>>(),
            "targets": self.bus.outlets().iter().map(|o| (o.name.to_string(), serde_json::json!({"checkpoint": deliveries.checkpoint(&o.name).ok()}))).collect::<serde_json::Map<_, _>>(),
            // Records handed to the store and not yet appended: ingest answers
            // only after the append, so this is 0 whenever no request is open.
            "queue_depth": self.handoff.in_flight(),
            "rejected": self.store.rejected().map(|r| r.len()).ok(),
            // Refused at ingest (not JSON, a missing field, over a limit): in
            // the lake's processing-failed/, counted here so that they show
            // without reading the lake.
            "refused_at_ingest": self.refused_at_ingest(0).0,
            "delivery_dead_letters": deliveries.dead_letters().map(|d| d.len()).ok(),
            "events_stored": events,
            "entities": entities,
            "feed": {"head": feed_head, "checkpoint": feed_checkpoint},
        })
    }
}
