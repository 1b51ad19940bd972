//! Tideline's ports and stages.
//!
//! The ports are narrow traits for what the pipeline touches: a FIFO
//! [`Queue`], an [`EventStore`], a [`RejectSink`] for poison records, a
//! [`ChangeFeed`], a [`Bus`] and a [`Lake`]. Each has two adapters, AWS
//! (`tideline-aws`) and embedded (`tideline-embedded`), and the adapters hold
//! no business rules (INVARIANTS.md #7).
//!
//! The [`stages`] are the functions both the Lambda mains and local mode call:
//! transform, store, emit and query. They own the batch contracts: per-record
//! Firehose results, the FIFO "stop and report the rest" rule, the stream
//! rewind, and PutEvents retries of only the failed entries.

pub mod memory;
pub mod ports;
pub mod slot_store;
pub mod stages;

pub use ports::*;
