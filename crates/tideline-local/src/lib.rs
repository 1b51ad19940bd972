//! Tideline's local host: `tideline up` on one machine, no AWS.
//!
//! The same stage functions as the Lambdas (`tideline_stages`) run in-process
//! over the embedded adapters (`tideline-embedded`):
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

pub mod firehose;
pub mod runtime_api;
pub mod server;
pub mod stack;
pub mod targets;

pub use stack::{LocalConfig, LocalError, LocalStack};
