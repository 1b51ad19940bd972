//! A consumer Lambda in about 30 lines: keeps each order's total in its own
//! table, exactly once and in order, whatever the bus does.
use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem};
use lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use tideline_consumer::{DynamoCheckpoints, GapPolicy, Guard, IntegrationEvent};

#[derive(serde::Deserialize, serde::Serialize, Clone)]
struct Order {
    total_cents: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let (name, checkpoints, table) = (
        env("TIDELINE_CONSUMER_NAME")?,
        env("TIDELINE_CHECKPOINT_TABLE")?,
        env("TIDELINE_READ_MODEL_TABLE")?,
    );
    let db = aws_sdk_dynamodb::Client::new(&aws_config::load_from_env().await);
    let guard =
        Guard::new(DynamoCheckpoints::new(db, checkpoints), name).with_gap_policy(GapPolicy::Retry);
    let (guard, table) = (&guard, table.as_str());
    run(service_fn(
        move |ev: LambdaEvent<serde_json::Value>| async move {
            let outcome = guard
                .handle_json(ev.payload, |e: IntegrationEvent<Order>| async move {
                    // Runs once per (entity, sequence); this write commits with the checkpoint.
                    let put = Put::builder()
                        .table_name(table)
                        .item("pk", V::S(e.entity_id().to_string()))
                        .item("last_type", V::S(e.detail.metadata.event_type.clone()))
                        .item(
                            "total_cents",
                            V::N(e.detail.data.total_cents.unwrap_or(0).to_string()),
                        )
                        .build()
                        .map_err(|err| {
                            tideline_consumer::ConsumerError::Rejected(err.to_string())
                        })?;
                    Ok(vec![TransactWriteItem::builder().put(put).build()])
                })
                .await;
            // A retryable error (gap, throttling) fails the invocation: Lambda retries, then the DLQ.
            outcome.map(|o| format!("{o:?}")).map_err(|e| Diagnostic {
                error_type: "ConsumerError".into(),
                error_message: e.to_string(),
            })
        },
    ))
    .await
}
