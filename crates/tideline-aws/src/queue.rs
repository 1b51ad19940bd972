//! The FIFO queue on SQS: `SendMessageBatch`, at most 10 entries per call
//! (AWS-CONTRACTS.md, SQS FIFO), `MessageGroupId` = entity id and
//! `MessageDeduplicationId` = event id, both set by the transform stage.

use crate::error::{classify, is_retryable_code};
use aws_sdk_sqs::types::{
    MessageSystemAttributeNameForSends, MessageSystemAttributeValue, SendMessageBatchRequestEntry,
};
use tideline_core::ErrorClass;
use tideline_stages::{EntryFailure, OutgoingMessage, PortError, Queue};

/// SQS: at most 10 messages per `SendMessageBatch`.
pub const MAX_SEND_BATCH: usize = 10;

/// The transformer's side of the FIFO queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    /// An adapter over a client built once per process.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl Queue for SqsQueue {
    fn max_batch(&self) -> usize {
        MAX_SEND_BATCH
    }

    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        if messages.len() > MAX_SEND_BATCH {
            return Err(PortError::permanent(
                "sqs",
                format!(
                    "{} messages in one SendMessageBatch; the limit is {MAX_SEND_BATCH}",
                    messages.len()
                ),
            ));
        }
        let mut entries = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&m.body)
                .message_group_id(&m.group_id)
                .message_deduplication_id(&m.dedup_id);
            // The record's trace rides as the `AWSTraceHeader` system
            // attribute, which X-Ray and Lambda's SQS trigger read.
            if let Some(header) = &m.trace_header {
                entry = entry.message_system_attributes(
                    MessageSystemAttributeNameForSends::AwsTraceHeader,
                    MessageSystemAttributeValue::builder()
                        .data_type("String")
                        .string_value(header)
                        .build()
                        .map_err(|e| {
                            PortError::permanent("sqs", format!("AWSTraceHeader: {e}"))
                                .with_source(e)
                        })?,
                );
            }
            let entry = entry.build().map_err(|e| {
                PortError::permanent("sqs", format!("SendMessageBatch entry: {e}")).with_source(e)
            })?;
            entries.push(entry);
        }
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("sqs", "SendMessageBatch", e))?;

        // Entries the response does not mention are treated as not sent.
        let mut results: Vec<Result<(), EntryFailure>> = (0..messages.len())
            .map(|_| {
                Err(EntryFailure {
                    code: "MissingResult".into(),
                    message: "SendMessageBatch returned no result for this entry".into(),
                    class: ErrorClass::Retryable,
                })
            })
            .collect();
        for ok in output.successful() {
            if let Some(slot) = ok
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *slot = Ok(());
            }
        }
        for failed in output.failed() {
            if let Some(slot) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                // SenderFault: the request is wrong and will stay wrong, unless
                // the code itself says throttling.
                let class = if failed.sender_fault() && !is_retryable_code(failed.code()) {
                    ErrorClass::Permanent
                } else {
                    ErrorClass::Retryable
                };
                *slot = Err(EntryFailure {
                    code: failed.code().to_string(),
                    message: failed.message().unwrap_or_default().to_string(),
                    class,
                });
            }
        }
        Ok(results)
    }
}
