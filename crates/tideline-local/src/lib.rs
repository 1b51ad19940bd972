//! Tideline's local host: `tideline up` on one machine, no AWS.
//!
//! The same stage functions as the Lambdas (`tideline_stages`) run
//! in-process over the embedded adapters (`tideline-embedded`), with direct
//! hand-offs where AWS needs a service between two Lambdas:
//!
//! ```text
//! Firehose API ─► transform ─► store (store.db) ─► acknowledged      lake/ (JSON Lines; processing-failed/)
//! store.db in commit order ─► emit ─► bus (PutEvents checks) ─► route (one parse, every rule)
//!                                                                 └─► one task per target, its own checkpoint
//! ```
//!
//! - `firehose`: the Firehose API (`PutRecordBatch`, `PutRecord`);
//! - `handoff`: the transform stage's hand-off to the store stage;
//! - `bus`: the bus the emit stage publishes to, routing to the targets;
//! - `targets`: log, webhook and Lambda targets;
//! - `runtime_api`: the Lambda Runtime API for local Lambda targets;
//! - `server`: the HTTP server (ingest, query, replay, tail, metrics);
//! - `realtime`: the realtime fan-out's WebSocket at `/_tideline/realtime`;
//! - `console`: the web console at `/` (HTML pages over the same calls);
//! - `shared`: the settings and the state the stages and the HTTP handlers share;
//! - `stack`: the process: start, wait idle, shut down;
//! - [`client`]: a client of the operational API (tail, replay) for the CLI.
//!
//! After `kill -9` at any moment and a restart nothing acknowledged is lost,
//! nothing is stored twice, and every event reaches every target at least
//! once (INVARIANTS.md #1, #2, #4).

#![deny(missing_docs)]

mod bus;
pub mod client;
mod console;
mod firehose;
mod handoff;
mod realtime;
mod runtime_api;
mod server;
mod shared;
mod stack;
mod targets;

// What other crates use: the stack, its settings, and the types reachable
// from `LocalStack::shared()` and `LocalStack::deliveries()`.
pub use bus::{LocalBus, PublishedEvent, RuleOutlet, TargetWork};
pub use handoff::StoreHandoff;
pub use realtime::{RealtimeConfig, RealtimeHub};
pub use shared::{Counters, HttpLimits, LocalConfig, Shared};
pub use stack::{LocalError, LocalStack, parse_retention};
pub use targets::Delivery;
