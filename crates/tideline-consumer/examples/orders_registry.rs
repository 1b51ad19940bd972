//! A registry-based consumer Lambda: one handler per order event type, each
//! with its own payload type, dispatched behind the guard.
//!
//! `orders_registry --print-event-pattern` prints the EventBridge pattern
//! of exactly these types (for the Terraform `consumer` module's
//! `event_pattern_json`); otherwise it runs as a Lambda. Environment:
//! `TIDELINE_CONSUMER_NAME`, `TIDELINE_CHECKPOINT_TABLE`,
//! `TIDELINE_READ_MODEL_TABLE`, optional `TIDELINE_HANDLER_PREFIX` (default
//! none) and `TIDELINE_EVENT_SOURCE` (default `tideline`).
use aws_sdk_dynamodb::types::{AttributeValue as V, Put, TransactWriteItem};
use lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use schemars::JsonSchema;
use serde::Deserialize;
use tideline_consumer::{
    ConsumerError, DynamoCheckpoints, Guard, HandlerRegistry, IntegrationEvent, RegistryBuilder,
    RegistryError, UnhandledPolicy,
};

/// A line of an order.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrderLine {
    /// Stock-keeping unit.
    pub sku: String,
    /// Quantity, at least 1.
    #[schemars(range(min = 1))]
    pub qty: u32,
    /// Price of one unit, in the order's currency.
    pub unit_price: f64,
}

/// `data` of `OrderPlaced` and `OrderCancelled`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Order {
    /// The shop's order number, e.g. `SO-100042`.
    #[schemars(regex(pattern = r"^SO-[0-9]{6}$"))]
    pub order_no: String,
    /// ISO 4217 code.
    #[schemars(length(equal = 3))]
    pub currency: String,
    /// The lines, at least one.
    #[schemars(length(min = 1))]
    pub items: Vec<OrderLine>,
    /// Sum of the lines.
    pub total: f64,
}

/// `data` of `OrderShipped`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrderShipped {
    /// The shop's order number.
    pub order_no: String,
    /// Who carries it.
    pub carrier: String,
}

type Write = Vec<TransactWriteItem>;

fn put_status(
    table: &str,
    entity: &str,
    status: &str,
    total: Option<f64>,
) -> Result<Write, ConsumerError> {
    let mut put = Put::builder()
        .table_name(table)
        .item("pk", V::S(entity.to_string()))
        .item("status", V::S(status.to_string()));
    if let Some(total) = total {
        put = put.item("total", V::N(total.to_string()));
    }
    let put = put
        .build()
        .map_err(|e| ConsumerError::Rejected(e.to_string()))?;
    Ok(vec![TransactWriteItem::builder().put(put).build()])
}

/// The consumer's manifest: every handler it has, by key.
pub fn registry(table: &str) -> Result<HandlerRegistry<Write>, RegistryError> {
    let (t1, t2, t3) = (table.to_string(), table.to_string(), table.to_string());
    RegistryBuilder::new()
        .on("OrderPlaced", move |e: IntegrationEvent<Order>| {
            let table = t1.clone();
            async move { put_status(&table, e.entity_id(), "placed", Some(e.detail.data.total)) }
        })
        .on("OrderShipped", move |e: IntegrationEvent<OrderShipped>| {
            let table = t2.clone();
            async move { put_status(&table, e.entity_id(), "shipped", None) }
        })
        .on("OrderCancelled", move |e: IntegrationEvent<Order>| {
            let table = t3.clone();
            async move {
                put_status(
                    &table,
                    e.entity_id(),
                    "cancelled",
                    Some(e.detail.data.total),
                )
            }
        })
        .build()
}

#[allow(dead_code)] // the schema test includes this file for `registry` only
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let prefix = std::env::var("TIDELINE_HANDLER_PREFIX").unwrap_or_default();
    let source = std::env::var("TIDELINE_EVENT_SOURCE").unwrap_or_else(|_| "tideline".into());
    let table = std::env::var("TIDELINE_READ_MODEL_TABLE").unwrap_or_default();
    let registry = registry(&table)?;
    if registry.print_event_pattern_if_asked(std::env::args(), &prefix, &source)? {
        return Ok(());
    }
    let (name, checkpoints) = (
        env("TIDELINE_CONSUMER_NAME")?,
        env("TIDELINE_CHECKPOINT_TABLE")?,
    );
    let db = aws_sdk_dynamodb::Client::new(&aws_config::load_from_env().await);
    let guard = Guard::new(DynamoCheckpoints::new(db, checkpoints), name);
    let dispatcher = registry.dispatcher(&prefix, UnhandledPolicy::Skip)?;
    let (guard, dispatcher) = (&guard, &dispatcher);
    run(service_fn(
        move |ev: LambdaEvent<serde_json::Value>| async move {
            // Boxed as a trait object: the dispatch future's type is deep enough
            // to overflow the compiler's layout recursion limit inside `run`.
            let handled: std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<_, ConsumerError>> + Send + '_>,
            > = Box::pin(dispatcher.handle_json(guard, ev.payload));
            let outcome = handled.await;
            outcome.map(|o| format!("{o:?}")).map_err(|e| Diagnostic {
                error_type: "ConsumerError".into(),
                error_message: e.to_string(),
            })
        },
    ))
    .await
}
