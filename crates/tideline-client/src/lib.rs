//! Tideline's producer client.
//!
//! Every team that produces events wraps the SDK in its own publisher, and
//! each gets the same things wrong: retrying a whole batch after a partial
//! failure (duplicates), changing a record's bytes on retry (a new id, so a
//! duplicate that is not recognised), finding out about a size limit three
//! hops later, re-encoding text. This crate does it once:
//!
//! - [`Publisher::publish`] and [`Publisher::publish_batch`] over Firehose
//!   `PutRecordBatch`: calls within the batch limits (500 records, 4 MiB),
//!   only the failed records re-sent, with jittered backoff that stops
//!   ([`deliver`]);
//! - each record is admitted first with the transformer's own
//!   [`tideline_core::ingest::admit`] (the same limits model), so what ingest
//!   would refuse is refused before sending, with the same reason;
//! - the returned [`tideline_core::EventId`] is the one ingest assigns (the
//!   producer's `id`, or derived from the bytes), and the bytes are never
//!   changed, so retries keep the id and non-ASCII text arrives byte-exact;
//! - [`Outbox`] and [`Relay`]: a transactional outbox for SQLite, so events
//!   are published after the caller's commit, and only then.
//!
//! The generator (`tideline-generator`) sends through [`deliver`] and
//! [`FirehoseTransport`] too: one implementation of the retry rule.

#![deny(missing_docs)]

pub mod deliver;
pub mod firehose;
pub mod outbox;
pub mod publisher;

pub use deliver::{
    BatchLimits, CallError, CallResult, Clock, Delivered, Failure, RecordError, TokioClock,
    Transport, deliver,
};
pub use firehose::FirehoseTransport;
pub use outbox::{OUTBOX_TABLE, Outbox, OutboxError, Relay, RelayReport, RowState};
pub use publisher::{Event, Prepared, PublishError, Publisher};
pub use tideline_core::retry::RetryPolicy;
pub use tideline_core::{EntityId, EventId};
