//! The query API, one implementation for local mode (axum) and the
//! `query-api` Lambda (API Gateway HTTP API, payload v2).
//!
//! Routes:
//! - `GET /entities/{entity_id}/events?limit=N&cursor=C` →
//!   `{"items": [<integration event detail>...], "next_cursor": string|null}`, in sequence order;
//! - `GET /entities/{entity_id}` → `{"entity_id", "last_sequence", "last_event_at"}`;
//! - `GET /health` → 200.
//!
//! The cursor is opaque to clients: base64url of the entity and the last
//! sequence returned. Every page is read through the store's own paging, so a
//! history longer than one DynamoDB page (1 MB) is read completely.

use crate::EventStore;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tideline_core::envelope::EventDetail;
use tideline_core::limits::json_string_bound;
use tideline_core::{Classify, EntityId};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size a client may ask for.
pub const MAX_LIMIT: usize = 1000;
/// Most bytes of items one page carries. A page is bounded by bytes as well
/// as count: 1,000 items of up to 400 KB could not fit the query Lambda's
/// 6 MB response (API Gateway carries the body as an escaped JSON string, so
/// each item is counted at its escaped length), with room for the envelope.
pub const MAX_PAGE_BYTES: usize = tideline_core::limits::LAMBDA_PAYLOAD_BYTES - 64 * 1024;

/// An HTTP request, reduced to what the routes need.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    /// HTTP method.
    pub method: String,
    /// Raw (percent-encoded) path.
    pub path: String,
    /// Decoded query-string parameters.
    pub params: Vec<(String, String)>,
}

/// An HTTP response: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl QueryResponse {
    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": code, "message": message.into()}),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    v: u8,
    e: String,
    s: u64,
}

/// Encodes the opaque cursor.
pub fn encode_cursor(entity: &str, last_seq: u64) -> String {
    let text = serde_json::to_vec(&Cursor {
        v: 1,
        e: entity.to_string(),
        s: last_seq,
    })
    .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str, entity: &EntityId) -> Result<u64, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| "cursor is not one this API issued".to_string())?;
    let c: Cursor = serde_json::from_slice(&bytes)
        .map_err(|_| "cursor is not one this API issued".to_string())?;
    if c.v != 1 || c.e != entity.as_str() {
        return Err("cursor belongs to another entity or API version".into());
    }
    Ok(c.s)
}

fn param<'a>(req: &'a QueryRequest, name: &str) -> Option<&'a str> {
    req.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Serves one request.
pub async fn handle_query<S: EventStore>(store: &S, req: &QueryRequest) -> QueryResponse {
    if req.method != "GET" {
        return QueryResponse::error(
            405,
            "MethodNotAllowed",
            format!("{} is not supported; use GET", req.method),
        );
    }
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["health"] => QueryResponse {
            status: 200,
            body: json!({"status": "ok"}),
        },
        ["entities", raw] => match entity_from(raw) {
            Ok(entity) => entity_summary(store, &entity).await,
            Err(r) => r,
        },
        ["entities", raw, "events"] => match entity_from(raw) {
            Ok(entity) => entity_events(store, &entity, req).await,
            Err(r) => r,
        },
        _ => QueryResponse::error(404, "NotFound", format!("no route for {}", req.path)),
    }
}

fn entity_from(raw: &str) -> Result<EntityId, QueryResponse> {
    let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| {
        QueryResponse::error(
            400,
            "BadEntityId",
            "entity id is not valid UTF-8 once decoded",
        )
    })?;
    EntityId::new(decoded.as_ref())
        .map_err(|e| QueryResponse::error(400, "BadEntityId", format!("entity id {e}")))
}

fn store_failure(e: impl Classify + std::fmt::Display) -> QueryResponse {
    let status = if e.is_retryable() { 503 } else { 500 };
    QueryResponse::error(status, "StoreUnavailable", e.to_string())
}

async fn entity_summary<S: EventStore>(store: &S, entity: &EntityId) -> QueryResponse {
    match store.head(entity).await {
        Ok(Some(head)) => QueryResponse {
            status: 200,
            body: json!({"entity_id": entity.as_str(), "last_sequence": head.last_seq, "last_event_at": head.last_stored_at}),
        },
        Ok(None) => QueryResponse::error(
            404,
            "EntityNotFound",
            format!("entity {entity} has no events"),
        ),
        Err(e) => store_failure(e),
    }
}

async fn entity_events<S: EventStore>(
    store: &S,
    entity: &EntityId,
    req: &QueryRequest,
) -> QueryResponse {
    let limit = match param(req, "limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return QueryResponse::error(
                    400,
                    "BadLimit",
                    format!("limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"),
                );
            }
        },
    };
    let after = match param(req, "cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match decode_cursor(c, entity) {
            Ok(s) => s,
            Err(m) => return QueryResponse::error(400, "BadCursor", m),
        },
    };
    // One more than asked tells whether another page exists without an extra call.
    match store.read_events(entity, after, limit + 1).await {
        Ok(mut events) => {
            let mut more = events.len() > limit;
            events.truncate(limit);
            let mut items: Vec<Value> = Vec::with_capacity(events.len());
            let mut bytes = 0;
            for e in &events {
                let item =
                    serde_json::to_value(EventDetail::from_stored(e, false)).unwrap_or(Value::Null);
                let size = json_string_bound(&item.to_string()) + 1;
                // Always at least one item, so a page always makes progress
                // (one event item is at most 400 KB: it always fits).
                if !items.is_empty() && bytes + size > MAX_PAGE_BYTES {
                    more = true;
                    break;
                }
                bytes += size;
                items.push(item);
            }
            let next_cursor = match (more, events.get(items.len().wrapping_sub(1))) {
                (true, Some(last)) => Value::String(encode_cursor(entity.as_str(), last.seq)),
                _ => Value::Null,
            };
            QueryResponse {
                status: 200,
                body: json!({"items": items, "next_cursor": next_cursor}),
            }
        }
        Err(e) => store_failure(e),
    }
}
