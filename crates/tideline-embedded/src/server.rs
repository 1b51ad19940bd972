//! The HTTP front of local mode: the Firehose API at `/` (POST with
//! `X-Amz-Target`), the query API, and operational endpoints under `/_tideline/`.

use crate::firehose;
use crate::stack::Shared;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use tideline_ports::stages::query::{QueryRequest, handle_query};

/// Largest request body: a 4 MiB PutRecordBatch grows by a third in base64.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Builds the router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(firehose_api))
        .route("/_tideline/metrics", get(metrics))
        .route("/_tideline/dead-letters", get(dead_letters))
        .fallback(query_api)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn firehose_api(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    firehose::handle(&shared, &headers, &body).await
}

async fn query_api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let req = QueryRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        params,
    };
    let resp = handle_query(&*shared.store, &req).await;
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(resp.body)).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.metrics()).into_response()
}

async fn dead_letters(State(shared): State<Arc<Shared>>) -> Response {
    let queue = shared.queue.dead_letters();
    let delivery = shared.bus.dead_letters();
    let rejected = shared.store.rejected();
    match (queue, delivery, rejected) {
        (Ok(q), Ok(d), Ok(r)) => {
            axum::Json(serde_json::json!({"queue": q, "delivery": d, "rejected": r}))
                .into_response()
        }
        (q, d, r) => {
            let e = q
                .err()
                .or(d.err())
                .or(r.err())
                .map(|e| e.to_string())
                .unwrap_or_default();
            (StatusCode::SERVICE_UNAVAILABLE, e).into_response()
        }
    }
}
