//! The change feed port: what the emit stage reads (DynamoDB Streams on AWS,
//! the store's commit order locally).

use crate::error::PortError;
use std::future::Future;
use tideline_core::StoredEvent;

/// One change from the store's change feed (DynamoDB Streams, or SQLite's outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Position in the feed; for DynamoDB Streams the record's `SequenceNumber`.
    pub sequence_number: String,
    /// What changed.
    pub kind: ChangeKind,
}

/// The kinds of change the emitter tells apart.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// A new event item.
    EventInserted(StoredEvent),
    /// An event item removed: by TTL, or by an explicit erasure.
    EventRemoved {
        /// The old image.
        event: StoredEvent,
        /// True when DynamoDB's TTL removed it.
        by_ttl: bool,
    },
    /// A documented skip, counted by kind: head and marker records, rejected
    /// records, `MODIFY`, and the removal of a non-event item.
    Skipped {
        /// A short label for metrics, e.g. `head`, `dedup`, `modify`.
        kind: String,
    },
    /// A change the emitter cannot read (an event item that does not decode,
    /// an item of unknown kind). Never skipped: the stage rewinds to it, so the
    /// event source retries it and, past its retry limit, sends it to the
    /// on-failure destination with the reason logged.
    Undecodable {
        /// Why it cannot be read.
        reason: String,
    },
}

/// A pull-based change feed with a durable checkpoint (local mode). On AWS the
/// Lambda event source mapping plays this role.
pub trait ChangeFeed: Send + Sync {
    /// The next changes after the checkpoint, oldest first.
    fn poll(&self, max: usize) -> impl Future<Output = Result<Vec<Change>, PortError>> + Send;
    /// Moves the checkpoint to just after `sequence_number`.
    fn ack(&self, sequence_number: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}
