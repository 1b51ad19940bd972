//! Tideline's embedded adapters: the ports of `tideline-stages` over SQLite
//! and files, for local mode (`tideline-local`) and tests.
//!
//! - [`store`]: the event store, the rejected-records table and the change feed (`store.db`);
//! - [`deliveries`]: the rule targets' checkpoints and dead letters (`targets.db`);
//! - [`legacy`]: what an older data directory's queue still held, for the upgrade;
//! - [`lake`]: the data lake as JSON Lines files;
//! - [`sqlite`]: the connection settings every database shares.
//!
//! Each database is its own SQLite file in WAL mode, so the stages write in
//! parallel instead of queueing on one writer lock.

#![deny(missing_docs)]

pub mod deliveries;
pub mod lake;
pub mod legacy;
pub mod sqlite;
pub mod store;
