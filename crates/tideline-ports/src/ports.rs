//! The port traits and the types that cross them.
//!
//! Methods return `impl Future + Send` so stages can run on a multi-threaded
//! runtime without boxing; adapters implement them with `async fn`.

use std::future::Future;
use tideline_core::envelope::BusEntry;
use tideline_core::event::{AppendConflict, EntityHead};
use tideline_core::ingest::AdmittedRecord;
use tideline_core::{
    AppendOutcome, Classify, EntityId, ErrorClass, ExpectedSeq, NewEvent, StoredEvent,
};

/// A failure of an adapter's I/O, classed for the batch contracts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service}: {message}")]
pub struct PortError {
    /// Retryable or permanent.
    pub class: ErrorClass,
    /// Which service or component failed (e.g. `sqs`, `sqlite`).
    pub service: &'static str,
    /// What happened.
    pub message: String,
}

impl PortError {
    /// A retryable failure.
    pub fn retryable(service: &'static str, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Retryable,
            service,
            message: message.into(),
        }
    }
    /// A permanent failure.
    pub fn permanent(service: &'static str, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            service,
            message: message.into(),
        }
    }
}

impl Classify for PortError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// A message for the FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// `MessageGroupId`: the entity id, so SQS keeps per-entity order.
    pub group_id: String,
    /// `MessageDeduplicationId`: derived from entity and event id ([`tideline_core::ids::queue_dedup_id`]).
    pub dedup_id: String,
    /// The normalised record as JSON.
    pub body: String,
    /// SQS `AWSTraceHeader` system attribute: the record's trace in X-Ray form.
    pub trace_header: Option<String>,
}

impl OutgoingMessage {
    /// The queue message of an admitted record: group = entity, de-duplication
    /// id derived from (entity, event id) so de-duplication is per entity
    /// whatever the queue's `DeduplicationScope`, body = the record as
    /// serialised once at admission. The one place a queue message is built.
    pub fn for_record(admitted: &AdmittedRecord) -> Self {
        let record = &admitted.record;
        Self {
            group_id: record.entity_id.to_string(),
            dedup_id: tideline_core::ids::queue_dedup_id(&record.entity_id, &record.id),
            body: admitted.body.clone(),
            trace_header: record
                .traceparent
                .as_deref()
                .and_then(tideline_core::trace::xray_header_of),
        }
    }
}

/// Why one entry of a batch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EntryFailure {
    /// The service's error code (e.g. SQS `SenderFault` codes, EventBridge `ErrorCode`).
    pub code: String,
    /// The service's message.
    pub message: String,
    /// Whether resending the entry can help.
    pub class: ErrorClass,
}

/// The FIFO queue, sending side (the transformer's view).
pub trait Queue: Send + Sync {
    /// Most messages one send call takes (SQS: 10).
    fn max_batch(&self) -> usize;
    /// Sends up to [`Queue::max_batch`] messages; one result per message, in order.
    fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> impl Future<Output = Result<Vec<Result<(), EntryFailure>>, PortError>> + Send;
}

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// An expected-version append whose expectation was wrong.
    #[error(transparent)]
    Conflict(#[from] AppendConflict),
    /// The store could not be reached or throttled us, or a concurrent writer won.
    #[error(transparent)]
    Port(#[from] PortError),
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            // The storer appends with `ExpectedSeq::Any`; a conflict there is a
            // lost race and retrying re-reads the head. An explicit expectation
            // that is wrong stays wrong.
            Self::Conflict(_) => ErrorClass::Permanent,
            Self::Port(e) => e.class,
        }
    }
}

/// The event store (DynamoDB table, or SQLite).
pub trait EventStore: Send + Sync {
    /// Appends events to one entity atomically: all or none, de-duplicated by
    /// event id, with gapless `seq`, conditional on `expected`.
    fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> impl Future<Output = Result<Vec<AppendOutcome>, StoreError>> + Send;

    /// Appends records one by one, in order, each as its own atomic append,
    /// stopping at the first error. Returns the outcomes of the records
    /// handled and the error that stopped it, if any. Stores that can commit
    /// several appends at once (SQLite) override this for throughput.
    fn append_each(
        &self,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = (Vec<Vec<AppendOutcome>>, Option<StoreError>)> + Send {
        async move {
            let mut done = Vec::with_capacity(events.len());
            for event in events {
                let entity = event.entity_id.clone();
                match self.append(&entity, vec![event], ExpectedSeq::Any).await {
                    Ok(outcomes) => done.push(outcomes),
                    Err(e) => return (done, Some(e)),
                }
            }
            (done, None)
        }
    }

    /// Up to `limit` events with `seq > after_seq`, in `seq` order. Follows the
    /// store's own paging (DynamoDB's 1 MB pages) until `limit` or the end.
    fn read_events(
        &self,
        entity: &EntityId,
        after_seq: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// The entity's head, or `None` if it has no events.
    fn head(
        &self,
        entity: &EntityId,
    ) -> impl Future<Output = Result<Option<EntityHead>, StoreError>> + Send;
}

/// A record that can never be processed, moved aside with its reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RejectedRecord {
    /// The stage that refused it (`transform`, `store`, `emit`, ...).
    pub stage: String,
    /// Its id at that stage (message id, record id).
    pub source_id: String,
    /// Why.
    pub reason: String,
    /// The record as received (lossy UTF-8 only if it was not UTF-8).
    pub body: String,
    /// When.
    pub rejected_at: String,
}

/// Where poison records go: a rejected-records item or table.
pub trait RejectSink: Send + Sync {
    /// Stores the rejected record durably.
    fn reject(&self, record: RejectedRecord) -> impl Future<Output = Result<(), PortError>> + Send;
}

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

/// The event bus (EventBridge, or the embedded bus).
pub trait Bus: Send + Sync {
    /// Total request size one PutEvents call may carry.
    fn max_request_bytes(&self) -> usize;
    /// Entries one call may carry (EventBridge: 10).
    fn max_entries(&self) -> usize {
        tideline_core::envelope::MAX_PUT_EVENTS_ENTRIES
    }
    /// Publishes up to [`Bus::max_entries`] entries; one result per entry, in order. Failed
    /// entries are reported per entry, as PutEvents does with HTTP 200.
    fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> impl Future<Output = Result<Vec<Result<(), EntryFailure>>, PortError>> + Send;
}

/// A record refused by the transform, with its reason, for `processing-failed/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// The Firehose record id, or an ingest-assigned id.
    pub record_id: String,
    /// The raw bytes as received.
    pub raw: Vec<u8>,
    /// Short code (e.g. `NotJson`, `EnqueueFailed`).
    pub error_code: String,
    /// Human-readable reason.
    pub error_message: String,
}

/// The data lake (S3 through Firehose, or JSON Lines files).
pub trait Lake: Send + Sync {
    /// Appends normalised records as JSON Lines.
    fn write_records(
        &self,
        records: &[AdmittedRecord],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Writes refused records under `processing-failed/`, each with its reason.
    fn write_failed(
        &self,
        records: &[FailedRecord],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
