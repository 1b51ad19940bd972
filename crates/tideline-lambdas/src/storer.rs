//! `event-storer`: triggered by the FIFO queue, appends each message to the
//! store in order. The store stage owns the FIFO `ReportBatchItemFailures`
//! rule (stop at the first failure, report it and every later message) and
//! moves poison messages to the rejected records; this handler only
//! translates the SQS event and the response.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use tideline_ports::stages::store::{IncomingMessage, StoreBatch, store_batch};
use tideline_ports::{EventStore, RejectSink};

/// What the function keeps between invocations.
#[derive(Debug)]
pub struct State<S> {
    /// The store, which is also the rejected-records sink.
    pub store: S,
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

/// Handles one SQS batch, in delivery order.
pub async fn handler<S: EventStore + RejectSink>(
    state: &State<S>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, crate::Error> {
    let messages: Vec<IncomingMessage> = event
        .payload
        .records
        .into_iter()
        .map(|m| IncomingMessage {
            message_id: m.message_id.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect();
    let batch = store_batch(&state.store, &state.store, messages).await;
    Ok(response(&batch))
}
