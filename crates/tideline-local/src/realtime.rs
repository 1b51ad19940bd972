//! Realtime fan-out in local mode: the protocol of `tideline-realtime` at
//! `GET /_tideline/realtime` (a WebSocket), as API Gateway serves it on AWS.
//!
//! ```text
//! bus (live copy) ─► hub: each event parsed once, bundles unpacked, frame rendered once
//!                     └─► per connection: bounded buffer ─► de-duplicate by sequence ─► socket
//! ```
//!
//! - The connection is opened with a JWT (`Authorization: Bearer` or
//!   `?token=`), checked before the upgrade: a refused token gets HTTP 401
//!   with the reason, as API Gateway's authorizer answers.
//! - **A slow client does not hold back the others.** The hub never waits
//!   for a connection: each has a buffer of `client_buffer` messages, and a
//!   connection whose buffer is full is closed with code 4002 and a reason
//!   (it resumes with `since`, so it loses nothing).
//! - If the hub itself falls behind the bus (its live copy is bounded), it
//!   cannot promise "no gap", so it closes every connection with 4004: each
//!   resumes with `since`.
//! - API Gateway's limits hold here too: idle timeout (4000), maximum
//!   connection duration (4001), and the token's `exp` (4003).

use crate::bus::PublishedEvent;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tideline_core::metrics::{Counts, StageCounters};
use tideline_realtime::auth::{Claims, TokenVerifier, now_secs};
use tideline_realtime::backfill::Backfill;
use tideline_realtime::outgoing::{Outgoing, from_integration_event};
use tideline_realtime::protocol::{
    API_GATEWAY_FRAME_BYTES, API_GATEWAY_IDLE_TIMEOUT, API_GATEWAY_MAX_CONNECTION,
    API_GATEWAY_MESSAGE_BYTES, ClientMessage, RefusalCode, ServerMessage, close,
    parse_client_message,
};
use tideline_realtime::session::{Delivered, Subscriptions};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

/// Settings of the realtime endpoint (`tideline up --realtime-…`).
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// How tokens are checked; `None` turns the endpoint off.
    pub verifier: Option<TokenVerifier>,
    /// Largest `event` message; a larger event is sent as a `reference`.
    /// Default: API Gateway's frame, 32 KB.
    pub max_message_bytes: usize,
    /// Messages buffered per connection before it counts as slow and is closed.
    pub client_buffer: usize,
    /// A connection with no message either way for this long is closed.
    pub idle_timeout: Duration,
    /// A connection is closed after this long (the client reconnects and resumes).
    pub max_connection: Duration,
    /// Connections served at once (further ones get 503).
    pub max_connections: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            verifier: None,
            max_message_bytes: API_GATEWAY_FRAME_BYTES,
            client_buffer: 1024,
            idle_timeout: API_GATEWAY_IDLE_TIMEOUT,
            max_connection: API_GATEWAY_MAX_CONNECTION,
            max_connections: 10_000,
        }
    }
}

/// Why the hub closes a connection.
#[derive(Debug, Clone)]
struct Eviction {
    code: u16,
    reason: String,
}

struct Slot {
    subscriptions: Arc<Mutex<Subscriptions>>,
    sender: mpsc::Sender<Arc<Outgoing>>,
    evict: Mutex<Option<oneshot::Sender<Eviction>>>,
}

/// The connections and the live events they subscribed to.
pub struct RealtimeHub {
    config: RealtimeConfig,
    slots: RwLock<HashMap<u64, Slot>>,
    next_id: AtomicU64,
    open: AtomicUsize,
    /// Stage `realtime`: received (events from the bus), sent (messages
    /// handed to connections), discarded (duplicates), failed (connections
    /// closed as slow or lagged).
    pub counters: StageCounters,
}

impl std::fmt::Debug for RealtimeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeHub")
            .field("connections", &self.open.load(Ordering::Relaxed))
            .finish()
    }
}

/// A registered connection: what its task reads.
struct Registration {
    id: u64,
    subscriptions: Arc<Mutex<Subscriptions>>,
    live: mpsc::Receiver<Arc<Outgoing>>,
    evicted: oneshot::Receiver<Eviction>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RealtimeHub {
    /// A hub with `config` (its verifier must be set for connections to open).
    pub fn new(config: RealtimeConfig) -> Self {
        Self {
            config,
            slots: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            counters: StageCounters::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RealtimeConfig {
        &self.config
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn register(&self) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, live) = mpsc::channel(self.config.client_buffer.max(1));
        let (evict, evicted) = oneshot::channel();
        let subscriptions = Arc::new(Mutex::new(Subscriptions::default()));
        let slot = Slot {
            subscriptions: subscriptions.clone(),
            sender,
            evict: Mutex::new(Some(evict)),
        };
        self.slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, slot);
        Registration {
            id,
            subscriptions,
            live,
            evicted,
        }
    }

    fn unregister(&self, id: u64) {
        self.slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }

    /// Hands one event to every connection subscribed to it, without
    /// waiting: a connection whose buffer is full is closed as slow.
    fn dispatch(&self, event: Arc<Outgoing>) {
        let mut slow = Vec::new();
        let mut sent = 0;
        {
            let slots = self
                .slots
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (id, slot) in slots.iter() {
                if !lock(&slot.subscriptions).wants(&event.topic, &event.entity_id) {
                    continue;
                }
                match slot.sender.try_send(event.clone()) {
                    Ok(()) => sent += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => slow.push(*id),
                    // The connection is ending; it unregisters itself.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        let reason = format!(
            "slow client: {} messages waited unread; reconnect and resume with `since`",
            self.config.client_buffer
        );
        for id in &slow {
            self.evict(*id, close::SLOW_CLIENT, &reason);
        }
        self.counters.add(Counts {
            received: 0,
            sent,
            discarded: 0,
            failed: slow.len() as u64,
        });
    }

    fn evict(&self, id: u64, code: u16, reason: &str) {
        let slot = self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if let Some(slot) = slot
            && let Some(evict) = lock(&slot.evict).take()
        {
            warn!(
                connection = id,
                code, reason, "realtime connection closed by the server"
            );
            let _ = evict.send(Eviction {
                code,
                reason: reason.to_string(),
            });
        }
    }

    fn evict_all(&self, code: u16, reason: &str) {
        let ids: Vec<u64> = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        for id in ids {
            self.evict(id, code, reason);
        }
    }

    /// Feeds the hub from the bus's live copy until `stop`.
    pub async fn run(
        self: Arc<Self>,
        mut live: broadcast::Receiver<PublishedEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let received = tokio::select! {
                r = live.recv() => r,
                () = stopped(&mut stop) => break,
            };
            match received {
                Ok(published) => {
                    match from_integration_event(&published.event, self.config.max_message_bytes) {
                        Ok(events) => {
                            self.counters.add(Counts {
                                received: events.len() as u64,
                                ..Counts::default()
                            });
                            for event in events {
                                self.dispatch(Arc::new(event));
                            }
                        }
                        Err(e) => {
                            // The route stage dead-letters it for the rules;
                            // no subscriber could be sent it.
                            warn!(position = published.position, error = %e, "realtime: event unreadable, not fanned out");
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    self.evict_all(
                        close::LAGGED,
                        &format!("the server fell {skipped} events behind the bus; reconnect and resume with `since`"),
                    );
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        self.evict_all(close::GOING_AWAY, "tideline up is shutting down");
    }
}

/// Why a connection was refused before the upgrade.
#[derive(Debug)]
pub enum Admission {
    /// Allowed, with the token's claims.
    Allowed(Claims),
    /// Refused: HTTP status, error code, message.
    Refused(u16, &'static str, String),
}

/// Checks the token and the connection cap before the upgrade.
pub fn admit(hub: Option<&RealtimeHub>, token: Option<&str>) -> Admission {
    let Some(hub) = hub else {
        return Admission::Refused(
            404,
            "RealtimeOff",
            "realtime is off: start tideline up with --realtime-hs256-secret, --realtime-jwks-file or --realtime-insecure-dev-tokens".into(),
        );
    };
    let Some(verifier) = hub.config.verifier.as_ref() else {
        return Admission::Refused(404, "RealtimeOff", "realtime has no token verifier".into());
    };
    let claims = match verifier.verify(token.unwrap_or_default(), now_secs()) {
        Ok(c) => c,
        Err(e) => return Admission::Refused(401, "Unauthorized", e.to_string()),
    };
    if hub.connections() >= hub.config.max_connections {
        return Admission::Refused(
            503,
            "TooManyConnections",
            format!(
                "{} realtime connections are open, the most this server takes",
                hub.config.max_connections
            ),
        );
    }
    Admission::Allowed(claims)
}

/// Largest message a client may send (subscriptions are small; API
/// Gateway's route limit is 128 KB).
pub const MAX_CLIENT_MESSAGE_BYTES: usize = API_GATEWAY_MESSAGE_BYTES;

/// How long the server tries to send its close frame to a client that stopped reading.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

enum Ended {
    Close(u16, String),
    Gone,
}

/// Serves one upgraded connection until it ends.
pub async fn serve_connection<S: tideline_stages::EventStore>(
    hub: Arc<RealtimeHub>,
    store: Arc<S>,
    claims: Claims,
    socket: WebSocket,
    mut stop: watch::Receiver<bool>,
) {
    hub.open.fetch_add(1, Ordering::Relaxed);
    let Registration {
        id,
        subscriptions,
        live,
        evicted,
    } = hub.register();
    info!(connection = id, sub = %claims.sub, "realtime connection opened");
    let (mut sink, stream) = socket.split();
    let mut session = Session {
        id,
        claims,
        subscriptions,
        delivered: Delivered::default(),
        max_message_bytes: hub.config.max_message_bytes,
    };
    let mut out = Outbox {
        sink: &mut sink,
        evicted,
    };
    let ended = run_connection(
        &hub,
        &*store,
        &mut session,
        &mut out,
        live,
        stream,
        &mut stop,
    )
    .await;
    hub.unregister(id);
    hub.open.fetch_sub(1, Ordering::Relaxed);
    if let Ended::Close(code, reason) = ended {
        debug!(connection = id, code, %reason, "realtime connection closing");
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let _ = sink.send(frame).await;
            let _ = sink.close().await;
        })
        .await;
    }
    info!(connection = id, "realtime connection closed");
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;

/// One connection's protocol state.
struct Session {
    id: u64,
    claims: Claims,
    subscriptions: Arc<Mutex<Subscriptions>>,
    delivered: Delivered,
    max_message_bytes: usize,
}

/// The socket's sending half, and the hub's eviction notice that cuts a
/// blocked write short (a client that stopped reading blocks the write).
struct Outbox<'a> {
    sink: &'a mut Sink,
    evicted: oneshot::Receiver<Eviction>,
}

impl Outbox<'_> {
    async fn send(&mut self, text: &str) -> Result<(), Ended> {
        tokio::select! {
            r = self.sink.send(Message::Text(text.into())) => r.map_err(|_| Ended::Gone),
            e = &mut self.evicted => Err(evicted(e)),
        }
    }
}

fn evicted(e: Result<Eviction, oneshot::error::RecvError>) -> Ended {
    match e {
        Ok(e) => Ended::Close(e.code, e.reason),
        Err(_) => Ended::Gone,
    }
}

/// Resolves at shutdown; holds no borrow of the value across an await, so
/// the future stays `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn run_connection<S: tideline_stages::EventStore>(
    hub: &RealtimeHub,
    store: &S,
    session: &mut Session,
    out: &mut Outbox<'_>,
    mut live: mpsc::Receiver<Arc<Outgoing>>,
    mut stream: futures::stream::SplitStream<WebSocket>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let config = &hub.config;
    // The connection ends at its maximum duration or when the token expires.
    let token_left = Duration::from_secs(session.claims.exp.saturating_sub(now_secs()));
    let (deadline, deadline_code, deadline_reason) = if token_left < config.max_connection {
        (
            token_left,
            close::TOKEN_EXPIRED,
            "the token expired; reconnect with a fresh one and resume with `since`",
        )
    } else {
        (
            config.max_connection,
            close::MAX_DURATION,
            "the connection reached its maximum duration; reconnect and resume with `since`",
        )
    };
    let deadline = tokio::time::sleep(deadline);
    tokio::pin!(deadline);
    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    let idle_again = || tokio::time::Instant::now() + config.idle_timeout;
    loop {
        tokio::select! {
            biased;
            () = stopped(stop) => {
                return Ended::Close(close::GOING_AWAY, "tideline up is shutting down".into());
            }
            e = &mut out.evicted => return evicted(e),
            () = &mut deadline => return Ended::Close(deadline_code, deadline_reason.into()),
            () = &mut idle => {
                return Ended::Close(
                    close::IDLE_TIMEOUT,
                    format!("no message either way for {:?}; send {{\"action\":\"ping\"}} to keep a connection open", config.idle_timeout),
                );
            }
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        let refused = ServerMessage::refused("message", None, None, RefusalCode::BadMessage, "send JSON text frames, not binary ones");
                        if let Err(e) = out.send(&refused.to_text()).await { return e; }
                        continue;
                    }
                    // Pings are answered by the WebSocket layer; they still count as traffic.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        idle.as_mut().reset(idle_again());
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ended::Gone,
                };
                idle.as_mut().reset(idle_again());
                if let Err(e) = handle_message(store, session, out, text.as_str()).await {
                    return e;
                }
            }
            event = live.recv() => {
                let Some(event) = event else { return Ended::Gone };
                if !event.expiry && !session.delivered.admit(&event.topic, &event.entity_id, event.sequence) {
                    hub.counters.add(Counts { discarded: 1, ..Counts::default() });
                    continue;
                }
                if let Err(e) = out.send(&event.text).await { return e; }
                idle.as_mut().reset(idle_again());
            }
        }
    }
}

async fn handle_message<S: tideline_stages::EventStore>(
    store: &S,
    session: &mut Session,
    out: &mut Outbox<'_>,
    text: &str,
) -> Result<(), Ended> {
    let id = session.id;
    let message = match parse_client_message(text) {
        Ok(m) => m,
        Err(refused) => return out.send(&refused.to_text()).await,
    };
    match message {
        ClientMessage::Ping => out.send(&ServerMessage::Pong.to_text()).await,
        ClientMessage::Unsubscribe { topic, entities } => {
            let reply = lock(&session.subscriptions).unsubscribe(&topic, &entities);
            session.delivered.forget(&topic, &entities);
            out.send(&reply.to_text()).await
        }
        ClientMessage::Subscribe {
            topic,
            entities,
            since,
        } => {
            // Registered before the store is read: from here on live events
            // queue up, so the backfill and the live events overlap rather
            // than leave a gap; the overlap is de-duplicated by sequence.
            let accepted =
                lock(&session.subscriptions).subscribe(&session.claims, &topic, &entities, &since);
            let accepted = match accepted {
                Ok(a) => a,
                Err(refused) => {
                    info!(connection = id, %topic, reply = %refused.to_text(), "realtime subscribe refused");
                    return out.send(&refused.to_text()).await;
                }
            };
            info!(connection = id, %topic, entities = entities.len(), resume = accepted.resume.len(), "realtime subscribed");
            out.send(&accepted.reply.to_text()).await?;
            for (entity, after) in accepted.resume {
                session.delivered.seen(&topic, entity.as_str(), after);
                let mut backfill =
                    Backfill::new(entity.clone(), &topic, after, session.max_message_bytes);
                loop {
                    let page = match backfill.next_page(store).await {
                        Ok(Some(page)) => page,
                        Ok(None) => break,
                        Err(e) => {
                            // The subscription stays (live events flow); the
                            // client is told the backfill failed and resubscribes.
                            warn!(connection = id, entity_id = %entity, error = %e, "realtime backfill failed");
                            let refused = ServerMessage::refused(
                                "subscribe",
                                Some(&topic),
                                Some(entity.as_str()),
                                RefusalCode::BackfillFailed,
                                format!(
                                    "reading the missed events failed ({e}); subscribe again with the same `since`"
                                ),
                            );
                            out.send(&refused.to_text()).await?;
                            break;
                        }
                    };
                    for event in page {
                        if session
                            .delivered
                            .admit(&event.topic, &event.entity_id, event.sequence)
                        {
                            out.send(&event.text).await?;
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
