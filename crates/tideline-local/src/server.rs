//! The HTTP front of local mode: the Firehose API at `/` (POST with
//! `X-Amz-Target`), the query API, the command API (`POST
//! /entities/{entity_id}/events`, and aggregates' snapshots at `GET`/`PUT
//! /entities/{entity_id}/snapshots/{name}`: [`tideline_stages::command`]),
//! and operational endpoints under `/_tideline/`.
//!
//! `GET /_tideline/tail?pattern=<JSON>` streams the bus live as server-sent
//! events (what `tideline tail` follows): each published event that matches
//! the pattern (all events without one) is a `data:` line with the archive
//! position as `id:`. A client too slow for the live broadcast gets an
//! `event: lagged` with `{"skipped": n}` instead of a silent gap.
//!
//! `GET /_tideline/realtime` is the realtime fan-out's WebSocket
//! ([`crate::realtime`]), on when a token verifier is configured.
//!
//! The server is meant for the developer's machine, and guards itself:
//! - A connection must send its request headers within `header_timeout` and
//!   its body within `body_timeout`, so a half-open or trickling connection is
//!   closed instead of held forever; at most `max_connections` are served at
//!   once (further ones wait in the listen backlog).
//! - The `Host` header must name a loopback host (`localhost`, `127.0.0.1`,
//!   `[::1]`), the listen address, or a host allowed by `--allow-host`:
//!   anything else gets 421, the defence against DNS rebinding (a web page on
//!   `evil.example` that resolves to 127.0.0.1 sends `Host: evil.example`).
//! - `POST /_tideline/replay` changes what consumers see, and `POST
//!   /entities/{entity_id}/events` appends events, so they accept only a
//!   request a cross-site form cannot make: `content-type:
//!   application/json`, or the header `x-tideline-request`.

use crate::firehose;
use crate::shared::Shared;
pub use crate::shared::{HttpLimits, REQUEST_HEADER};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tideline_pattern::Pattern;
use tideline_stages::command::{
    command_ingest_config, command_path, handle_command, handle_snapshot_get, handle_snapshot_put,
    snapshot_path,
};
use tideline_stages::query::{QueryRequest, handle_query};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

/// Largest request body: a 4 MiB PutRecordBatch grows by a third in base64.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Builds the router.
pub fn router(shared: Arc<Shared>) -> Router {
    let body_timeout = shared.config.http.body_timeout;
    Router::new()
        .route("/", post(firehose_api))
        .route("/_tideline/metrics", get(metrics))
        .route("/_tideline/dead-letters", get(dead_letters))
        .route("/_tideline/replay", post(replay))
        .route("/_tideline/tail", get(tail))
        .route("/_tideline/realtime", get(realtime))
        // The web console: `GET /` and `/console/…` (POST / stays the Firehose API).
        .merge(crate::console::router(shared.clone()))
        .fallback(query_api)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| read_body_within(body_timeout, req, next),
        ))
        // Outermost: a request for a foreign host is refused before its body is read.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            check_host,
        ))
        .with_state(shared)
}

/// Serves `app` on `listener` until `shutdown` turns true, with the
/// connection limits of `limits`. Waits (at most 10 s) for open connections
/// to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: HttpLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            // Upgrades: `/_tideline/realtime` turns the connection into a
            // WebSocket, which then counts against the realtime cap, not this one.
            let conn = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                // Timeouts and resets land here: the client's problem, not ours.
                debug!(%peer, error = %e, "connection closed with an error");
            }
        });
    }
    let open = tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(max as u32)).await;
    if open.is_err() {
        warn!("http server stopped with connections still open");
    }
}

/// Resolves once `rx` turns true (or its sender is gone); holds no borrow of
/// the value across an await, so the future stays `Send`.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Reads the whole body within `timeout` (a trickling body is cut off with
/// 408), then hands the request on.
async fn read_body_within(timeout: Duration, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body unreadable or over {MAX_BODY_BYTES} bytes: {e}\n"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {timeout:?}\n"),
        )
            .into_response(),
    }
}

/// Whether a `Host` header names this server: a loopback name or address,
/// the listen address (any address when listening on all interfaces: an
/// address literal cannot be rebound), or an allowed host.
pub fn host_allowed(host: &str, listen: SocketAddr, allowed: &[String]) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let name = authority.host().trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        // RFC 6761: always the loopback interface.
        return true;
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return ip.is_loopback() || listen.ip().is_unspecified() || ip == listen.ip();
    }
    allowed.iter().any(|a| a.eq_ignore_ascii_case(&name))
}

async fn check_host(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let config = &shared.config;
    match host {
        Some(h) if host_allowed(&h, config.listen, &config.allowed_hosts) => next.run(req).await,
        Some(h) => {
            warn!(host = %h, path = %req.uri().path(), "request for a foreign Host refused");
            (
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {h:?} is not served here: tideline up answers to localhost, loopback addresses and its listen address {}; \
                     start it with --allow-host <name> to accept another name (this check defends against DNS rebinding)\n",
                    config.listen
                ),
            )
                .into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            "missing Host header (HTTP/1.1 requires it)\n",
        )
            .into_response(),
    }
}

/// True when `headers` could not come from a cross-site "simple" request: a
/// JSON content type, or the custom header (either forces a CORS preflight,
/// which this server never grants).
fn is_non_simple(headers: &HeaderMap) -> bool {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    json || headers.contains_key(REQUEST_HEADER)
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
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST
        && let Some(raw_entity) = command_path(uri.path())
    {
        return command_api(&shared, &headers, raw_entity, &body).await;
    }
    if let Some((raw_entity, raw_name)) = snapshot_path(uri.path()) {
        return snapshot_api(
            &shared, &method, &params, &headers, raw_entity, raw_name, &body,
        )
        .await;
    }
    let req = QueryRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        params,
    };
    let resp = handle_query(&*shared.store, &req).await;
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(resp.body)).into_response()
}

/// `POST /entities/{entity_id}/events`: the command stage over the store and
/// the lake. It writes events, so, like the replay, it takes only a request a
/// cross-site form cannot make (a JSON body says so with its content type).
async fn command_api(
    shared: &Shared,
    headers: &HeaderMap,
    raw_entity: &str,
    body: &[u8],
) -> Response {
    if !is_non_simple(headers) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            axum::Json(serde_json::json!({
                "error": "UnsupportedMediaType",
                "message": format!("POST /entities/{{entity_id}}/events takes a JSON body: send `content-type: application/json` (or the header {REQUEST_HEADER})"),
            })),
        )
            .into_response();
    }
    let config = command_ingest_config(&shared.config.ingest);
    let lake = Some(&shared.lake);
    let resp = handle_command(&*shared.store, lake, &config, raw_entity, body).await;
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(resp.body)).into_response()
}

/// `GET` and `PUT /entities/{entity_id}/snapshots/{name}`: aggregates'
/// snapshots beside the events (the command side). `PUT` writes, so it takes
/// only a request a cross-site form cannot make, as appends do.
async fn snapshot_api(
    shared: &Shared,
    method: &Method,
    params: &[(String, String)],
    headers: &HeaderMap,
    raw_entity: &str,
    raw_name: &str,
    body: &[u8],
) -> Response {
    let resp = match *method {
        Method::GET => {
            let version = params
                .iter()
                .find(|(k, _)| k == "aggregate_version")
                .map(|(_, v)| v.as_str());
            handle_snapshot_get(&*shared.store, raw_entity, raw_name, version).await
        }
        Method::PUT if !is_non_simple(headers) => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                axum::Json(serde_json::json!({
                    "error": "UnsupportedMediaType",
                    "message": format!("PUT /entities/{{entity_id}}/snapshots/{{name}} takes a JSON body: send `content-type: application/json` (or the header {REQUEST_HEADER})"),
                })),
            )
                .into_response();
        }
        Method::PUT => handle_snapshot_put(&*shared.store, raw_entity, raw_name, body).await,
        _ => {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(serde_json::json!({
                    "error": "MethodNotAllowed",
                    "message": format!("{method} on a snapshot: use GET or PUT"),
                })),
            )
                .into_response();
        }
    };
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(resp.body)).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.metrics()).into_response()
}

/// Refused records `/_tideline/dead-letters` lists (the newest); the lake has all.
const REFUSED_LISTED: usize = 100;

async fn dead_letters(State(shared): State<Arc<Shared>>) -> Response {
    let delivery = shared.bus.deliveries().dead_letters();
    let rejected = shared.store.rejected();
    match (delivery, rejected) {
        (Ok(d), Ok(r)) => {
            let (_, refused) = shared.refused_at_ingest(REFUSED_LISTED);
            axum::Json(serde_json::json!({"delivery": d, "rejected": r, "refused": refused}))
                .into_response()
        }
        (d, r) => {
            let e = d
                .err()
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

#[derive(serde::Deserialize)]
struct RealtimeParams {
    token: Option<String>,
}

/// `GET /_tideline/realtime`: the realtime protocol over a WebSocket
/// ([`crate::realtime`]). The token is checked before the upgrade, so a
/// refused one gets an HTTP status and the reason, as on API Gateway.
async fn realtime(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<RealtimeParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    use crate::realtime::{Admission, MAX_CLIENT_MESSAGE_BYTES, admit, serve_connection};
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let token = bearer.or(params.token.as_deref());
    let claims = match admit(shared.realtime.as_deref(), token) {
        Admission::Allowed(claims) => claims,
        Admission::Refused(status, code, message) => {
            warn!(code, reason = %message, "realtime connection refused");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
            return (
                status,
                axum::Json(serde_json::json!({"error": code, "message": message})),
            )
                .into_response();
        }
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            return (
                StatusCode::UPGRADE_REQUIRED,
                axum::Json(serde_json::json!({"error": "NotAWebSocket", "message": format!("/_tideline/realtime speaks WebSocket: {e}")})),
            )
                .into_response();
        }
    };
    let Some(hub) = shared.realtime.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let store = shared.store.clone();
    let stop = shared.stop.clone();
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve_connection(hub, store, claims, socket, stop))
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

fn replay_refusal(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"error": "BadReplayRequest", "message": message.into()})),
    )
        .into_response()
}

/// `tideline replay` against local mode: re-emits stored events to the bus,
/// marked `metadata.replay = true`, in `seq` order per entity: the replay
/// stage ([`tideline_stages::replay`]) over the SQLite store, which is also
/// its own index of the entities in a window. The first failure stops the
/// replay, and the answer names where a rerun starts. Consumers with the
/// guard ignore the events unless their checkpoint was reset.
async fn replay(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    use tideline_core::replay::Selection;
    use tideline_stages::emit::EmitConfig;
    use tideline_stages::replay::{OnFailure, ReplayConfig, ReplayError, replay};
    if !is_non_simple(&headers) {
        warn!(
            content_type = ?headers.get(axum::http::header::CONTENT_TYPE),
            "replay refused: not a JSON request"
        );
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            axum::Json(serde_json::json!({
                "error": "UnsupportedMediaType",
                "message": "POST /_tideline/replay takes a JSON body with `content-type: application/json` (or the header `x-tideline-request: 1`); form and plain-text posts are refused so that a web page cannot trigger a replay",
            })),
        )
            .into_response();
    }
    let req: ReplayRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return replay_refusal(format!("body: {e}")),
    };
    let selection = match Selection::from_request(
        req.entity.as_deref(),
        req.from_seq,
        req.to_seq,
        req.since.as_deref(),
        req.until.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => return replay_refusal(e.to_string()),
    };
    let config = ReplayConfig {
        emit: EmitConfig {
            source: shared.config.source.clone(),
            retry: shared.config.retry,
            bundle: None,
        },
        on_failure: OnFailure::Stop,
    };
    let store = &*shared.store;
    let report = match replay(store, store, &*shared.bus, &config, &selection).await {
        Ok(r) => r,
        // The store's own message, as before the stage: the status says the rest.
        Err(e) => {
            let message = match e {
                ReplayError::Store(e) => e.to_string(),
                ReplayError::Index(e) => e.to_string(),
            };
            return (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
        }
    };
    let (rewind_from, error) = report
        .failures
        .into_iter()
        .next()
        .map(|f| (Some(f.rewind_from), f.error))
        .unwrap_or_default();
    let status = if rewind_from.is_some() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    (
        status,
        axum::Json(serde_json::json!({
            "published": report.published,
            "failed": report.failed,
            "rewind_from": rewind_from,
            "error": error,
        })),
    )
        .into_response()
}
