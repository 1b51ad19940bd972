//! The checkpoint: per (consumer, entity), the last applied sequence and the
//! events held back by the `buffer` policy.

use crate::error::ConsumerError;
use std::collections::BTreeMap;
use std::future::Future;

/// `pk` of a consumer's checkpoints: `consumer#<name>`.
pub fn checkpoint_pk(consumer: &str) -> String {
    format!("consumer#{consumer}")
}

/// `sk` of an entity's checkpoint: `entity#<id>`.
pub fn checkpoint_sk(entity: &str) -> String {
    format!("entity#{entity}")
}

/// What the store holds for one (consumer, entity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Highest applied sequence (0: nothing applied, or reset).
    pub last_sequence: u64,
    /// Events held back by the `buffer` policy: sequence → the event as JSON.
    pub buffered: BTreeMap<u64, String>,
    /// Gaps skipped by the `accept` policy.
    pub gaps_accepted: u64,
}

/// A conditional change of a checkpoint. Every change is conditional on
/// `expected` being the stored `last_sequence`; otherwise the store returns
/// [`ConsumerError::Conflict`] and writes nothing (handler writes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointUpdate {
    /// The handler applied `to`: move `last_sequence` from `expected` to `to`.
    Advance {
        /// The last sequence read.
        expected: u64,
        /// The sequence just applied.
        to: u64,
        /// A buffered event this applied, to remove.
        unbuffer: Option<u64>,
        /// `to` skipped a gap (policy `accept`).
        accepted_gap: bool,
    },
    /// Hold an out-of-order event until the gap fills.
    Buffer {
        /// The last sequence read.
        expected: u64,
        /// Its sequence.
        sequence: u64,
        /// The event as JSON.
        event: String,
        /// Largest number of buffered events; the write fails (as a conflict) beyond it.
        max: usize,
    },
}

impl CheckpointUpdate {
    /// The `last_sequence` the change is conditional on.
    pub fn expected(&self) -> u64 {
        match self {
            Self::Advance { expected, .. } | Self::Buffer { expected, .. } => *expected,
        }
    }
}

/// Durable checkpoints with conditional writes.
///
/// `Write` is the handler's own write, committed atomically with an
/// `Advance`: DynamoDB `TransactWriteItem`s, a closure run inside the SQLite
/// transaction, or a closure over the in-memory table.
pub trait CheckpointStore: Send + Sync {
    /// The handler's writes, committed with the checkpoint.
    type Write: Send;

    /// Reads a checkpoint (strongly consistent); a missing one is the default.
    fn load(
        &self,
        consumer: &str,
        entity: &str,
    ) -> impl Future<Output = Result<Checkpoint, ConsumerError>> + Send;

    /// Applies `update` and `write` atomically, conditional on `update.expected()`.
    fn commit(
        &self,
        consumer: &str,
        entity: &str,
        update: CheckpointUpdate,
        write: Option<Self::Write>,
    ) -> impl Future<Output = Result<(), ConsumerError>> + Send;

    /// Deletes the consumer's checkpoints (one entity's, or all), buffered
    /// events included, so a replay is applied again. Returns how many
    /// checkpoints were removed.
    fn reset(
        &self,
        consumer: &str,
        entity: Option<&str>,
    ) -> impl Future<Output = Result<u64, ConsumerError>> + Send;
}
