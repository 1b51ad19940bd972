//! `event-emitter`: triggered by the table's stream, publishes each stored
//! event as an integration event. The emit stage owns the rules (skipping and
//! counting non-event changes, PutEvents batching and retries, the rewind);
//! this handler decodes the stream records and returns
//! `{"batchItemFailures":[{"itemIdentifier": <lowest failed SequenceNumber>}]}`
//! when the batch must be replayed from there.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::LambdaEvent;
use tideline_aws::feed::decode_records;
use tideline_stages::Bus;
use tideline_stages::emit::{EmitBatch, EmitConfig, emit_batch};

/// What the function keeps between invocations.
#[derive(Debug)]
pub struct State<B> {
    /// The bus.
    pub bus: B,
    /// Source and retries.
    pub config: EmitConfig,
}

/// The stream response of an emit batch: at most one item, the rewind point.
pub fn response(batch: &EmitBatch) -> DynamoDbEventResponse {
    let mut out = DynamoDbEventResponse::default();
    if let Some(seq) = &batch.rewind_from {
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = Some(seq.clone());
        out.batch_item_failures.push(f);
    }
    out
}

/// Handles one stream batch.
pub async fn handler<B: Bus>(
    state: &State<B>,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, crate::HandlerError> {
    let changes = decode_records(&event.payload.records);
    let batch = emit_batch(&state.bus, &state.config, &changes).await;
    Ok(response(&batch))
}
