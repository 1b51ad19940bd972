//! Tideline's embedded adapters and local mode (`tideline up`).
//!
//! The same stage functions as the Lambdas (`tideline_ports::stages`) run
//! in-process over embedded adapters:
//!
//! ```text
//! Firehose API ─► transform ─► queue.db (FIFO: groups, de-dup window, visibility, DLQ)
//!                    │                 └─► store worker ─► store.db (events, heads, rejected)
//!                    └─► lake/ (JSON Lines; processing-failed/)          └─► change feed (checkpoint)
//!                                                                              └─► emit worker ─► bus.db (archive)
//!                                                                                    └─► one dispatcher per rule ─► log / webhook / lambda
//! ```
//!
//! Each stage commits before it acknowledges the one before it, so after
//! `kill -9` at any moment and a restart nothing is lost, and the
//! idempotent append means nothing is stored twice (INVARIANTS.md #1, #2).
//! Each database is its own SQLite file in WAL mode, so the stages write in
//! parallel instead of queueing on one writer lock.

pub mod bus;
pub mod firehose;
pub mod lake;
pub mod queue;
pub mod runtime_api;
pub mod server;
pub mod sqlite;
pub mod stack;
pub mod store;
pub mod targets;

pub use stack::{LocalConfig, LocalError, LocalStack};
