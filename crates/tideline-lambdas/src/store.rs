//! `event-storer`: triggered by the FIFO queue, appends each entity's
//! messages to the store in order, and the batch's entities concurrently
//! (decision 0022). The store stage owns the FIFO `ReportBatchItemFailures`
//! rule (stop an entity at its first failure, report that message and every
//! later message of the entity) and
//! moves poison messages to the rejected records; this handler only
//! translates the SQS event and the response.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use tideline_stages::store::{IncomingMessage, StoreBatch, store_batch_by_entity};
use tideline_stages::{EventStore, RejectSink};

/// What the function keeps between invocations.
#[derive(Debug)]
pub struct State<S> {
    /// The store, which is also the rejected-records sink.
    pub store: S,
    /// Most entities of a batch appended at once (`TIDELINE_MAX_CONCURRENT_ENTITIES`).
    pub max_concurrent_entities: usize,
}

/// The SQS event as the storer reads it: each message's id and body, in
/// delivery order. The runtime parses the invocation straight into this, so
/// what the storer never reads (each message's attribute maps, ARNs, MD5) is
/// skipped, not built: with `SqsEvent` that parse cost more than the bodies'.
/// An `SqsEvent` converts into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct QueueBatch {
    /// The messages, in delivery order.
    #[serde(rename = "Records", default)]
    pub records: Vec<QueueMessage>,
}

/// One SQS message as the storer reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct QueueMessage {
    /// `messageId`: what `batchItemFailures` names.
    #[serde(rename = "messageId", default)]
    pub message_id: Option<String>,
    /// `body`: a normalised record as JSON.
    #[serde(default)]
    pub body: Option<String>,
}

impl From<SqsEvent> for QueueBatch {
    fn from(event: SqsEvent) -> Self {
        Self {
            records: event
                .records
                .into_iter()
                .map(|m| QueueMessage {
                    message_id: m.message_id,
                    body: m.body,
                })
                .collect(),
        }
    }
}

/// The `batchItemFailures` response of a store batch.
pub fn response(batch: &StoreBatch) -> SqsBatchResponse {
    let mut out = SqsBatchResponse::default();
    out.batch_item_failures = batch
        .failed_message_ids
        .iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id.clone();
            f
        })
        .collect();
    out
}

/// Handles one SQS batch: each entity in delivery order, entities concurrently.
pub async fn handler<S: EventStore + RejectSink>(
    state: &State<S>,
    event: LambdaEvent<QueueBatch>,
) -> Result<SqsBatchResponse, crate::HandlerError> {
    let messages: Vec<IncomingMessage> = event
        .payload
        .records
        .into_iter()
        .map(|m| IncomingMessage {
            message_id: m.message_id.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect();
    let batch = store_batch_by_entity(
        &state.store,
        &state.store,
        messages,
        state.max_concurrent_entities,
    )
    .await;
    Ok(response(&batch))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn queue_batch_reads_what_sqs_event_reads() {
        let event = serde_json::json!({"Records": [
            {"messageId": "m-1", "receiptHandle": "h", "body": "{\"a\":\"\\u00e9\\\"\"}",
             "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "g"},
             "messageAttributes": {"k": {"dataType": "String", "stringValue": "v"}},
             "md5OfBody": "x", "eventSource": "aws:sqs", "eventSourceARN": "arn", "awsRegion": "us-east-1"},
            {"messageId": null, "body": null},
            {}
        ]});
        let lean: QueueBatch = serde_json::from_value(event.clone()).unwrap();
        let full: SqsEvent = serde_json::from_value(event).unwrap();
        assert_eq!(lean, QueueBatch::from(full));
        assert_eq!(
            lean.records[0].body.as_deref(),
            Some("{\"a\":\"\\u00e9\\\"\"}")
        );
        assert_eq!(lean.records.len(), 3);
    }
}
