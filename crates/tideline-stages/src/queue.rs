//! The FIFO queue port: what the transform stage hands to the store stage
//! (SQS FIFO on AWS, with `MessageGroupId` = entity id).

use crate::error::PortError;
use std::future::Future;
use tideline_core::ingest::AdmittedRecord;
use tideline_core::{EntityId, ErrorClass, EventId};

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
    /// The queue message of an event of `entity` with `body`: group = entity,
    /// de-duplication id derived from (entity, event id) so de-duplication
    /// is per entity whatever the queue's `DeduplicationScope`, and the
    /// trace, if any, in X-Ray form. The one place a queue message is built:
    /// the transform ([`OutgoingMessage::for_record`]) and producers that
    /// write to the queue directly (the load generator) both come here.
    pub fn new(
        entity: &EntityId,
        event: &EventId,
        body: String,
        traceparent: Option<&str>,
    ) -> Self {
        Self {
            group_id: entity.to_string(),
            dedup_id: tideline_core::ids::queue_dedup_id(entity, event),
            body,
            trace_header: traceparent.and_then(tideline_core::trace::xray_header_of),
        }
    }

    /// The queue message of an admitted record: its entity and event id,
    /// and the record as serialised once at admission.
    pub fn for_record(admitted: &AdmittedRecord) -> Self {
        let record = &admitted.record;
        Self::new(
            &record.entity_id,
            &record.id,
            admitted.body.clone(),
            record.traceparent.as_deref(),
        )
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
