//! `command-api`: API Gateway HTTP API (payload v2) in front of the command
//! stage (`POST /entities/{entity_id}/events`, and aggregates' snapshots at
//! `GET`/`PUT /entities/{entity_id}/snapshots/{name}`), which local mode
//! serves with the same code and JSON. Its role appends to the events table and writes
//! the appended events to the data lake (`events/` of the lake bucket, as
//! Firehose writes ingested ones); the query routes stay with `query-api`.

use crate::query::response;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use base64::Engine;
use lambda_runtime::LambdaEvent;
use tideline_core::ingest::IngestConfig;
use tideline_stages::command::{
    EventLookup, SnapshotStore, command_path, handle_command, handle_snapshot_get,
    handle_snapshot_put, snapshot_path,
};
use tideline_stages::query::QueryResponse;
use tideline_stages::{EventStore, Lake};

/// What the function keeps between invocations.
#[derive(Debug)]
pub struct State<S, L> {
    /// The store (the storer's own append protocol).
    pub store: S,
    /// The data lake (S3 on AWS): appended events are written there after
    /// the append, as Firehose writes ingested ones.
    pub lake: L,
    /// Ingest's admission settings, with the contract's field names.
    pub ingest: IngestConfig,
}

/// Handles one HTTP request.
pub async fn handler<S: EventStore + EventLookup + SnapshotStore, L: Lake>(
    state: &State<S, L>,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, crate::HandlerError> {
    let e = &event.payload;
    let method = e.request_context.http.method.as_str();
    let path = e
        .raw_path
        .clone()
        .or_else(|| e.request_context.http.path.clone())
        .unwrap_or_default();
    let not_found = |status: u16, message: String| {
        response(QueryResponse {
            status,
            body: serde_json::json!({"error": "NotFound", "message": message}),
        })
    };
    let snapshot = snapshot_path(&path);
    let command = command_path(&path);
    if snapshot.is_none() && command.is_none() {
        return Ok(not_found(404, format!("no route for {method} {path}")));
    }
    let body = match (&e.body, e.is_base64_encoded) {
        (Some(b), true) => match base64::engine::general_purpose::STANDARD.decode(b) {
            Ok(bytes) => bytes,
            Err(err) => {
                return Ok(response(QueryResponse {
                    status: 400,
                    body: serde_json::json!({"error": "BadRequest", "message": format!("body is not valid base64: {err}")}),
                }));
            }
        },
        (Some(b), false) => b.clone().into_bytes(),
        (None, _) => Vec::new(),
    };
    if let Some((raw_entity, raw_name)) = snapshot {
        let r = match method {
            "GET" => {
                let version = e.query_string_parameters.first("aggregate_version");
                handle_snapshot_get(&state.store, raw_entity, raw_name, version).await
            }
            "PUT" => handle_snapshot_put(&state.store, raw_entity, raw_name, &body).await,
            _ => return Ok(not_found(405, format!("{method} {path}: use GET or PUT"))),
        };
        return Ok(response(QueryResponse {
            status: r.status,
            body: r.body,
        }));
    }
    let Some(raw_entity) = command else {
        return Ok(not_found(404, format!("no route for {method} {path}")));
    };
    if method != "POST" {
        return Ok(not_found(405, format!("{method} {path}: use POST")));
    }
    // Boxed: the command stage's future nests the store's append protocol,
    // and inline it takes the binary's `main` past rustc's layout recursion
    // limit. One allocation per request.
    let r = Box::pin(handle_command(
        &state.store,
        Some(&state.lake),
        &state.ingest,
        raw_entity,
        &body,
    ))
    .await;
    Ok(response(QueryResponse {
        status: r.status,
        body: r.body,
    }))
}
