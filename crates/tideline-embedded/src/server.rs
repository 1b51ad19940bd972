//! The HTTP front of local mode: the Firehose API at `/` (POST with
//! `X-Amz-Target`), the query API, and operational endpoints under `/_tideline/`.
//!
//! `GET /_tideline/tail?pattern=<JSON>` streams the bus live as server-sent
//! events (what `tideline tail` follows): each published event that matches
//! the pattern (all events without one) is a `data:` line with the archive
//! position as `id:`. A client too slow for the live broadcast gets an
//! `event: lagged` with `{"skipped": n}` instead of a silent gap.

use crate::firehose;
use crate::stack::Shared;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::convert::Infallible;
use std::sync::Arc;
use tideline_pattern::Pattern;
use tideline_ports::stages::query::{QueryRequest, handle_query};
use tokio::sync::broadcast::error::RecvError;

/// Largest request body: a 4 MiB PutRecordBatch grows by a third in base64.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Builds the router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(firehose_api))
        .route("/_tideline/metrics", get(metrics))
        .route("/_tideline/dead-letters", get(dead_letters))
        .route("/_tideline/replay", post(replay))
        .route("/_tideline/tail", get(tail))
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

#[derive(serde::Deserialize)]
struct TailParams {
    pattern: Option<String>,
}

/// Live events as server-sent events, filtered here with the compiled pattern.
async fn tail(State(shared): State<Arc<Shared>>, Query(params): Query<TailParams>) -> Response {
    let pattern = match params.pattern.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => match Pattern::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("invalid pattern: {e}\n"))
                    .into_response();
            }
        },
        _ => None,
    };
    // Subscribed before the response starts: a client that has the headers misses nothing after them.
    let live = shared.bus.subscribe();
    let stop = shared.stop.clone();
    let stream = futures::stream::unfold(
        (live, stop, pattern),
        |(mut live, mut stop, pattern)| async move {
            loop {
                let received = tokio::select! {
                    r = live.recv() => r,
                    _ = stop.wait_for(|s| *s) => return None,
                };
                let event = match received {
                    Ok(a) => {
                        let keep = pattern
                            .as_ref()
                            .is_none_or(|p| p.matches_json(&a.event).unwrap_or(false));
                        if !keep {
                            continue;
                        }
                        Event::default().id(a.position.to_string()).data(&*a.event)
                    }
                    Err(RecvError::Lagged(skipped)) => Event::default()
                        .event("lagged")
                        .data(serde_json::json!({ "skipped": skipped }).to_string()),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok::<_, Infallible>(event), (live, stop, pattern)));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Body of `POST /_tideline/replay`: one entity's range, or a stored-at window.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    entity: Option<String>,
    from_seq: Option<u64>,
    to_seq: Option<u64>,
    since: Option<String>,
    until: Option<String>,
}

/// Events read from the store per page.
const REPLAY_PAGE: usize = 500;

fn replay_refusal(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"error": "BadReplayRequest", "message": message.into()})),
    )
        .into_response()
}

/// `tideline replay` against local mode: re-emits stored events to the bus,
/// marked `metadata.replay = true`, in `seq` order per entity (the emit
/// stage's `replay_events`). Consumers with the guard ignore them unless
/// their checkpoint was reset.
async fn replay(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    use tideline_core::keys::{format_timestamp, parse_timestamp};
    use tideline_ports::EventStore;
    use tideline_ports::stages::emit::{EmitConfig, replay_events};
    let req: ReplayRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return replay_refusal(format!("body: {e}")),
    };
    let config = EmitConfig {
        source: shared.config.source.clone(),
        retry: shared.config.retry,
    };
    let (mut published, mut failed) = (0u64, 0u64);
    let mut stop: Option<(Option<String>, Option<String>)> = None;
    match (&req.entity, &req.since, &req.until) {
        (Some(entity), None, None) => {
            let entity = match tideline_core::EntityId::new(entity.as_str()) {
                Ok(e) => e,
                Err(e) => return replay_refusal(format!("entity: {e}")),
            };
            let from = req.from_seq.unwrap_or(1).max(1);
            let to = req.to_seq.unwrap_or(u64::MAX);
            if to < from {
                return replay_refusal(format!("to_seq {to} is below from_seq {from}"));
            }
            let mut after = from - 1;
            while after < to {
                let page = match shared.store.read_events(&entity, after, REPLAY_PAGE).await {
                    Ok(p) => p,
                    Err(e) => {
                        return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
                    }
                };
                let Some(last) = page.last().map(|e| e.seq) else {
                    break;
                };
                let events: Vec<_> = page.into_iter().filter(|e| e.seq <= to).collect();
                let out = replay_events(&*shared.bus, &config, &events).await;
                published += out.counts.sent;
                failed += out.counts.failed;
                if out.rewind_from.is_some() {
                    stop = Some((out.rewind_from, out.error));
                    break;
                }
                after = last;
            }
        }
        (None, since, until) if since.is_some() || until.is_some() => {
            let bound = |t: &Option<String>, name: &str| match t {
                None => Ok(None),
                Some(t) => parse_timestamp(t)
                    .map(|t| Some(format_timestamp(t)))
                    .ok_or_else(|| format!("{name} {t:?} is not an RFC 3339 time")),
            };
            let (since, until) = match (bound(since, "since"), bound(until, "until")) {
                (Ok(s), Ok(u)) => (s, u),
                (Err(e), _) | (_, Err(e)) => return replay_refusal(e),
            };
            // The whole store in commit order: per entity, that is `seq` order.
            let mut position = 0;
            loop {
                let page = match shared.store.events_after(position, REPLAY_PAGE) {
                    Ok(p) => p,
                    Err(e) => {
                        return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
                    }
                };
                let Some(last) = page.last().map(|(p, _)| *p) else {
                    break;
                };
                let events: Vec<_> = page
                    .into_iter()
                    .map(|(_, e)| e)
                    .filter(|e| since.as_ref().is_none_or(|s| &e.stored_at >= s))
                    .filter(|e| until.as_ref().is_none_or(|u| &e.stored_at < u))
                    .collect();
                let out = replay_events(&*shared.bus, &config, &events).await;
                published += out.counts.sent;
                failed += out.counts.failed;
                if out.rewind_from.is_some() {
                    stop = Some((out.rewind_from, out.error));
                    break;
                }
                position = last;
            }
        }
        _ => {
            return replay_refusal(
                "give either {\"entity\", \"from_seq\"?, \"to_seq\"?} or {\"since\"?, \"until\"?}",
            );
        }
    }
    let (rewind_from, error) = stop.unwrap_or_default();
    let status = if rewind_from.is_some() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    (
        status,
        axum::Json(serde_json::json!({
            "published": published,
            "failed": failed,
            "rewind_from": rewind_from,
            "error": error,
        })),
    )
        .into_response()
}
