//! Checkpoints in DynamoDB, in the table the Terraform `consumer` module
//! creates (string keys `pk`, `sk`).
//!
//! Item: `pk` = `consumer#<name>`, `sk` = `entity#<id>`, `last_sequence` N,
//! `gaps_accepted` N, `updated_at` S, `buffered_count` N, and one
//! `b_<seq, 20 digits>` S attribute per buffered event (so a buffered event
//! is added and removed with `UpdateItem` alone; the module grants
//! GetItem/PutItem/UpdateItem/ConditionCheckItem/Query, not DeleteItem).
//!
//! Every change is an `UpdateItem` conditional on `last_sequence`. When the
//! handler returns items, the update and the items go in one
//! `TransactWriteItems` (at most 100 actions, so at most 99 of the
//! handler's: AWS-CONTRACTS.md), all or nothing.

use crate::checkpoint::{
    Checkpoint, CheckpointStore, CheckpointUpdate, checkpoint_pk, checkpoint_sk,
};
use crate::error::ConsumerError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use std::collections::HashMap;

/// TransactWriteItems: at most 100 actions; one is the checkpoint.
pub const MAX_HANDLER_ITEMS: usize = 99;

const BUFFER_PREFIX: &str = "b_";

/// Error codes worth retrying.
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Checkpoints in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoCheckpoints {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn buffer_attr(seq: u64) -> String {
    format!("{BUFFER_PREFIX}{seq:020}")
}

/// Classifies an SDK error: throttling, server errors, timeouts and I/O are retryable.
fn classify<E, R>(err: &SdkError<E, R>) -> ConsumerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let retryable = match err {
        SdkError::ServiceError(e) => e.err().code().is_some_and(|c| RETRYABLE_CODES.contains(&c)),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    };
    let message = match err.code() {
        Some(code) => format!("{code}: {}", err.message().unwrap_or_default()),
        None => tideline_core::DisplayChain(err).to_string(),
    };
    if retryable {
        ConsumerError::retryable("dynamodb", message)
    } else {
        ConsumerError::permanent("dynamodb", message)
    }
}

impl DynamoCheckpoints {
    /// Checkpoints in `table`, over a client built once per process.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The client (handlers reuse it for their own reads).
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn update(
        &self,
        consumer: &str,
        entity: &str,
        update: &CheckpointUpdate,
    ) -> Result<Update, ConsumerError> {
        let expected = update.expected();
        let mut b = Update::builder()
            .table_name(&self.table)
            .key("pk", s(checkpoint_pk(consumer)))
            .key("sk", s(checkpoint_sk(entity)))
            .expression_attribute_values(":exp", n(expected))
            .expression_attribute_values(":now", s(chrono::Utc::now().to_rfc3339()));
        let last_condition = if expected == 0 {
            "(attribute_not_exists(last_sequence) OR last_sequence = :exp)"
        } else {
            "last_sequence = :exp"
        };
        match update {
            CheckpointUpdate::Advance {
                to,
                unbuffer,
                accepted_gap,
                ..
            } => {
                let mut set = "SET last_sequence = :to, updated_at = :now".to_string();
                let mut add = Vec::new();
                b = b.expression_attribute_values(":to", n(to));
                if *accepted_gap {
                    add.push("gaps_accepted :one");
                    b = b.expression_attribute_values(":one", n(1));
                }
                if let Some(seq) = unbuffer {
                    add.push("buffered_count :minus");
                    b = b
                        .expression_attribute_values(":minus", n(-1))
                        .expression_attribute_names("#b", buffer_attr(*seq));
                    set.push_str(" REMOVE #b");
                }
                if !add.is_empty() {
                    set.push_str(" ADD ");
                    set.push_str(&add.join(", "));
                }
                b = b
                    .update_expression(set)
                    .condition_expression(last_condition);
            }
            CheckpointUpdate::Buffer {
                sequence,
                event,
                max,
                ..
            } => {
                b = b
                    .update_expression("SET #b = :ev, updated_at = :now ADD buffered_count :one")
                    .condition_expression(format!(
                        "{last_condition} AND attribute_not_exists(#b) AND (attribute_not_exists(buffered_count) OR buffered_count < :max)"
                    ))
                    .expression_attribute_names("#b", buffer_attr(*sequence))
                    .expression_attribute_values(":ev", s(event.clone()))
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":max", n(max));
            }
        }
        b.build()
            .map_err(|e| ConsumerError::permanent("dynamodb", e.to_string()))
    }
}

impl CheckpointStore for DynamoCheckpoints {
    /// `TransactWriteItem`s committed with the checkpoint (at most 99).
    type Write = Vec<TransactWriteItem>;

    async fn load(&self, consumer: &str, entity: &str) -> Result<Checkpoint, ConsumerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(checkpoint_pk(consumer)))
            .key("sk", s(checkpoint_sk(entity)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let mut cp = Checkpoint::default();
        let Some(item) = out.item else {
            return Ok(cp);
        };
        let num = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        cp.last_sequence = num("last_sequence");
        cp.gaps_accepted = num("gaps_accepted");
        for (k, v) in &item {
            if let Some(seq) = k.strip_prefix(BUFFER_PREFIX)
                && let (Ok(seq), Ok(event)) = (seq.parse::<u64>(), v.as_s())
            {
                cp.buffered.insert(seq, event.clone());
            }
        }
        Ok(cp)
    }

    async fn commit(
        &self,
        consumer: &str,
        entity: &str,
        update: CheckpointUpdate,
        write: Option<Vec<TransactWriteItem>>,
    ) -> Result<(), ConsumerError> {
        let conflict = ConsumerError::Conflict {
            entity: entity.to_string(),
            expected: update.expected(),
        };
        let checkpoint = self.update(consumer, entity, &update)?;
        let items = write.unwrap_or_default();
        if items.len() > MAX_HANDLER_ITEMS {
            return Err(ConsumerError::Rejected(format!(
                "handler returned {} items; a transaction takes at most {MAX_HANDLER_ITEMS} besides the checkpoint",
                items.len()
            )));
        }
        if items.is_empty() {
            let u = checkpoint;
            let result = self
                .client
                .update_item()
                .table_name(u.table_name())
                .set_key(Some(u.key().clone()))
                .update_expression(u.update_expression())
                .set_condition_expression(u.condition_expression().map(str::to_string))
                .set_expression_attribute_names(u.expression_attribute_names().cloned())
                .set_expression_attribute_values(u.expression_attribute_values().cloned())
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => Err(conflict),
                Err(e) => Err(classify(&e)),
            };
        }
        let mut all = Vec::with_capacity(items.len() + 1);
        all.push(TransactWriteItem::builder().update(checkpoint).build());
        all.extend(items);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(all))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                if let SdkError::ServiceError(se) = &e
                    && let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(tc) = se.err()
                {
                    let reasons = tc.cancellation_reasons();
                    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
                    if code(0) == "ConditionalCheckFailed" {
                        return Err(conflict);
                    }
                    if let Some(i) = (1..reasons.len()).find(|&i| code(i) == "ConditionalCheckFailed") {
                        return Err(ConsumerError::Rejected(format!(
                            "the condition of handler item {} failed",
                            i - 1
                        )));
                    }
                    if (0..reasons.len()).any(|i| matches!(code(i), "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")) {
                        return Err(ConsumerError::retryable("dynamodb", format!("transaction cancelled: {reasons:?}")));
                    }
                }
                Err(classify(&e))
            }
        }
    }

    async fn reset(&self, consumer: &str, entity: Option<&str>) -> Result<u64, ConsumerError> {
        let pk = checkpoint_pk(consumer);
        let mut keys: Vec<HashMap<String, AttributeValue>> = Vec::new();
        match entity {
            Some(e) => {
                let mut key = HashMap::new();
                key.insert("pk".to_string(), s(&pk));
                key.insert("sk".to_string(), s(checkpoint_sk(e)));
                keys.push(key);
            }
            None => {
                // Every page (Query returns at most 1 MB per page).
                let mut start: Option<HashMap<String, AttributeValue>> = None;
                loop {
                    let out = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(&pk))
                        .projection_expression("pk, sk")
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| classify(&e))?;
                    keys.extend(out.items.unwrap_or_default());
                    match out.last_evaluated_key {
                        Some(k) if !k.is_empty() => start = Some(k),
                        _ => break,
                    }
                }
            }
        }
        let mut removed = 0;
        for key in keys {
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
                .await
                .map_err(|e| classify(&e))?;
            if out.attributes.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
