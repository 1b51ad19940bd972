//! The realtime fan-out's AWS adapters (feature `realtime`): the
//! connections table (DynamoDB) and `PostToConnection` (API Gateway
//! Management API), the ports of `tideline_realtime::relay`.
//!
//! The connections table's key layout lets the relay find a topic's and an
//! entity's subscribers with a `Query`, never a `Scan`:
//!
//! | item          | `pk`                       | `sk`            | other attributes |
//! |---------------|----------------------------|-----------------|------------------|
//! | connection    | `conn#<connection id>`     | `conn`          | `sub`, `subscriptions` (the subscription `pk`s), `expires_at` |
//! | subscription  | `sub#<topic>#<entity>`     | `<connection id>` | `expires_at` |
//! | every entity  | `sub#<topic>#*`            | `<connection id>` | `expires_at` |
//!
//! `expires_at` (TTL) is the connection's end at the latest: API Gateway
//! closes a connection after 2 hours, and TTL removes what a lost
//! `$disconnect` left behind (the relay also deletes a connection that
//! answers `GoneException`). A `*` cannot be an entity id (`EntityId` refuses
//! it), so the two keys never collide.

use crate::error::classify;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use tideline_realtime::relay::{ConnectionPoster, PostError, Subscribers};
use tideline_stages::PortError;

const SERVICE: &str = "dynamodb";

/// The partition key of a (topic, entity) subscription; `None`: every entity.
pub fn subscription_key(topic: &str, entity: Option<&str>) -> String {
    format!("sub#{topic}#{}", entity.unwrap_or("*"))
}

fn connection_key(connection_id: &str) -> String {
    format!("conn#{connection_id}")
}

/// The connections table.
#[derive(Debug, Clone)]
pub struct ConnectionsTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    page_size: Option<i32>,
}

impl ConnectionsTable {
    /// The table `table` through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
            page_size: None,
        }
    }

    /// Items per Query page (DynamoDB's 1 MB otherwise): tests read many
    /// pages without writing megabytes.
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    /// Records a new connection (at `$connect`) for `sub`, kept until `expires_at`.
    pub async fn put_connection(
        &self,
        connection_id: &str,
        sub: &str,
        expires_at: i64,
    ) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(connection_key(connection_id)))
            .item("sk", AttributeValue::S("conn".into()))
            .item("sub", AttributeValue::S(sub.to_string()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(|e| classify(SERVICE, "PutItem", e))?;
        Ok(())
    }

    /// Adds subscriptions of a connection: one item per (topic, entity), and
    /// their keys on the connection item so that a disconnect finds them.
    pub async fn subscribe(
        &self,
        connection_id: &str,
        keys: &[String],
        expires_at: i64,
    ) -> Result<(), PortError> {
        for key in keys {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(key.clone()))
                .item("sk", AttributeValue::S(connection_id.to_string()))
                .item("expires_at", AttributeValue::N(expires_at.to_string()))
                .send()
                .await
                .map_err(|e| classify(SERVICE, "PutItem", e))?;
        }
        if !keys.is_empty() {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(connection_key(connection_id)))
                .key("sk", AttributeValue::S("conn".into()))
                .update_expression("ADD subscriptions :k")
                .expression_attribute_values(":k", AttributeValue::Ss(keys.to_vec()))
                .send()
                .await
                .map_err(|e| classify(SERVICE, "UpdateItem", e))?;
        }
        Ok(())
    }

    /// Removes subscriptions of a connection.
    pub async fn unsubscribe(&self, connection_id: &str, keys: &[String]) -> Result<(), PortError> {
        for key in keys {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(key.clone()))
                .key("sk", AttributeValue::S(connection_id.to_string()))
                .send()
                .await
                .map_err(|e| classify(SERVICE, "DeleteItem", e))?;
        }
        if !keys.is_empty() {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(connection_key(connection_id)))
                .key("sk", AttributeValue::S("conn".into()))
                .update_expression("DELETE subscriptions :k")
                .expression_attribute_values(":k", AttributeValue::Ss(keys.to_vec()))
                .send()
                .await
                .map_err(|e| classify(SERVICE, "UpdateItem", e))?;
        }
        Ok(())
    }

    /// Every connection id under one subscription key, every page read.
    async fn query_key(&self, key: &str) -> Result<Vec<String>, PortError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(key.to_string()))
                .projection_expression("sk")
                .set_limit(self.page_size)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(SERVICE, "Query", e))?;
            out.extend(
                page.items()
                    .iter()
                    .filter_map(|item| item.get("sk")?.as_s().ok().cloned()),
            );
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

impl Subscribers for ConnectionsTable {
    async fn connections_for(&self, topic: &str, entity: &str) -> Result<Vec<String>, PortError> {
        let mut ids = self
            .query_key(&subscription_key(topic, Some(entity)))
            .await?;
        ids.extend(self.query_key(&subscription_key(topic, None)).await?);
        Ok(ids)
    }

    async fn forget(&self, connection_id: &str) -> Result<(), PortError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(connection_key(connection_id)))
            .key("sk", AttributeValue::S("conn".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetItem", e))?;
        let keys: Vec<String> = item
            .item()
            .and_then(|i| i.get("subscriptions"))
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        self.unsubscribe(connection_id, &keys).await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(connection_key(connection_id)))
            .key("sk", AttributeValue::S("conn".into()))
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DeleteItem", e))?;
        Ok(())
    }
}

/// `PostToConnection` through the API Gateway Management API (its endpoint
/// is the WebSocket API's stage URL, `https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
#[derive(Debug, Clone)]
pub struct ApiGatewayPoster {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ApiGatewayPoster {
    /// A poster over `client` (built with the stage URL as its endpoint).
    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        Self { client }
    }
}

impl ConnectionPoster for ApiGatewayPoster {
    async fn post(&self, connection_id: &str, data: &str) -> Result<(), PostError> {
        use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
        use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
                data.as_bytes(),
            ))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let variant_says = match e.as_service_error() {
                    Some(PostToConnectionError::GoneException(_)) => return Err(PostError::Gone),
                    // 429: API Gateway's per-account throttle.
                    Some(PostToConnectionError::LimitExceededException(_)) => Some(true),
                    // Over 128 KB, or a role without ManageConnections: the same again.
                    Some(
                        PostToConnectionError::PayloadTooLargeException(_)
                        | PostToConnectionError::ForbiddenException(_),
                    ) => Some(false),
                    _ => None,
                };
                let code = e
                    .as_service_error()
                    .and_then(|s| s.code())
                    .map(str::to_string);
                let status = e.raw_response().map(|r| r.status().as_u16());
                let text = format!(
                    "PostToConnection: {} (HTTP {}): {}",
                    code.as_deref().unwrap_or("no code"),
                    status.map_or("-".into(), |s| s.to_string()),
                    crate::error::DisplayChain(&e)
                );
                let retryable = variant_says.unwrap_or(match (code.as_deref(), status) {
                    (Some(c), _) if crate::error::is_retryable_code(c) => true,
                    (_, Some(s)) => s >= 500 || s == 429,
                    // No response: a timeout or a dropped connection.
                    (_, None) => true,
                });
                Err(PostError::Failed(if retryable {
                    PortError::retryable("apigatewaymanagementapi", text)
                } else {
                    PortError::permanent("apigatewaymanagementapi", text)
                }))
            }
        }
    }
}
