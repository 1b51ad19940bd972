//! The realtime fan-out's functions on AWS (docs/realtime.md):
//!
//! - [`authorizer`]: API Gateway WebSocket `$connect`'s REQUEST authorizer.
//!   It checks the bearer token (`Authorization: Bearer …`, or `?token=` for
//!   browsers, which cannot set headers on a WebSocket) with the same
//!   [`TokenVerifier`] as local mode, against the configured issuer and
//!   JWKS, and passes the claims on in the authorizer context;
//! - [`relay`]: bound by a rule on the bus; the relay stage
//!   ([`tideline_realtime::relay`]) over the connections table and
//!   `PostToConnection`.

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tideline_realtime::TokenVerifier;
use tideline_realtime::auth::now_secs;
use tideline_realtime::relay::{ConnectionPoster, RelayConfig, Subscribers};
use tracing::{info, warn};

/// What the authorizer keeps between invocations.
#[derive(Debug)]
pub struct AuthorizerState {
    /// The token check (RS256 against the JWKS, with the issuer).
    pub verifier: TokenVerifier,
}

/// The bearer token of a `$connect` request: the `Authorization` header, or
/// the `token` query parameter.
pub fn bearer_token(event: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> Option<String> {
    let header = event
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_string);
    header.or_else(|| {
        event
            .query_string_parameters
            .first("token")
            .map(str::to_string)
    })
}

fn policy(principal: &str, effect: &str, resource: &str, context: Value) -> Value {
    json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    })
}

/// Checks one `$connect`: an Allow policy with the claims in the context
/// (`sub`, and `claims` as JSON text: context values must be strings,
/// numbers or booleans), or a Deny policy (API Gateway answers 403).
pub async fn authorizer(
    state: &AuthorizerState,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
) -> Result<Value, crate::HandlerError> {
    let request = &event.payload;
    let resource = request.method_arn.clone().unwrap_or_default();
    let token = bearer_token(request).unwrap_or_default();
    match state.verifier.verify(&token, now_secs()) {
        Ok(claims) => {
            info!(sub = %claims.sub, topics = claims.topics.len(), entities = claims.entities.len(), "realtime connect allowed");
            let text = serde_json::to_string(&claims).unwrap_or_default();
            Ok(policy(
                &claims.sub,
                "Allow",
                &resource,
                json!({"sub": claims.sub, "claims": text}),
            ))
        }
        Err(e) => {
            warn!(reason = %e, "realtime connect refused");
            Ok(policy(
                "anonymous",
                "Deny",
                &resource,
                json!({"reason": e.to_string()}),
            ))
        }
    }
}

/// What the relay keeps between invocations.
#[derive(Debug)]
pub struct RelayState<S, P> {
    /// The connections table.
    pub subscribers: S,
    /// `PostToConnection`.
    pub poster: P,
    /// Concurrency, retries, message size.
    pub config: RelayConfig,
}

/// Relays one event from the bus rule (the event as EventBridge delivers it).
pub async fn relay<S: Subscribers, P: ConnectionPoster>(
    state: &RelayState<S, P>,
    event: LambdaEvent<Value>,
) -> Result<Value, crate::HandlerError> {
    let text = event.payload.to_string();
    let report =
        tideline_realtime::relay::relay(&state.subscribers, &state.poster, &state.config, &text)
            .await
            .map_err(|e| crate::HandlerError::new("Relay", e))?;
    info!(
        events = report.events,
        posted = report.posted,
        gone = report.gone,
        retried = report.retried,
        "realtime relay"
    );
    Ok(json!({
        "events": report.events,
        "posted": report.posted,
        "gone": report.gone,
        "retried": report.retried,
    }))
}

/// What the WebSocket route handler keeps between invocations.
#[derive(Debug)]
pub struct RoutesState<S, P> {
    /// The event store (the resume's backfill, through the query path's port).
    pub store: S,
    /// The connections table.
    pub connections: tideline_aws::realtime::ConnectionsTable,
    /// `PostToConnection`: replies and the backfill go to the connection.
    pub poster: P,
    /// Largest `event` message; larger events go as a `reference`.
    pub max_message_bytes: usize,
}

/// Why a route invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The event lacks what API Gateway always sends (a connection id, the
    /// authorizer's claims): a misconfigured API.
    #[error("WebSocket event: {0}")]
    BadEvent(String),
    /// The connections table or the store failed.
    #[error(transparent)]
    Port(#[from] tideline_stages::PortError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] tideline_stages::error::StoreError),
    /// A reply could not be posted.
    #[error("posting to the connection: {0}")]
    Post(tideline_realtime::relay::PostError),
}

impl tideline_core::Classify for RouteError {
    fn class(&self) -> tideline_core::ErrorClass {
        use tideline_core::ErrorClass;
        use tideline_realtime::relay::PostError;
        match self {
            Self::BadEvent(_) => ErrorClass::Permanent,
            Self::Port(e) => e.class,
            Self::Store(e) => e.class(),
            // The client left: nothing to retry.
            Self::Post(PostError::Gone) => ErrorClass::Permanent,
            Self::Post(PostError::Failed(e)) => e.class,
        }
    }
}

/// The end of a connection at the latest: API Gateway closes it after 2 hours.
fn connection_expiry() -> i64 {
    let max = tideline_realtime::protocol::API_GATEWAY_MAX_CONNECTION.as_secs();
    i64::try_from(now_secs() + max + 60).unwrap_or(i64::MAX)
}

/// The `$connect`, `$disconnect`, `subscribe` and `unsubscribe` routes: one
/// handler, dispatched on `requestContext.routeKey`. Claims come from the
/// authorizer's context, which API Gateway passes to every route of the connection.
pub async fn routes<S: tideline_stages::EventStore, P: ConnectionPoster>(
    state: &RoutesState<S, P>,
    event: LambdaEvent<Value>,
) -> Result<Value, crate::HandlerError> {
    route(state, &event.payload)
        .await
        .map_err(|e| crate::HandlerError::new("Route", e))?;
    Ok(json!({"statusCode": 200}))
}

async fn route<S: tideline_stages::EventStore, P: ConnectionPoster>(
    state: &RoutesState<S, P>,
    event: &Value,
) -> Result<(), RouteError> {
    use tideline_aws::realtime::subscription_key;
    use tideline_realtime::backfill::Backfill;
    use tideline_realtime::protocol::{ClientMessage, parse_client_message};
    let context = &event["requestContext"];
    let connection = context["connectionId"]
        .as_str()
        .ok_or_else(|| RouteError::BadEvent("no requestContext.connectionId".into()))?;
    let route_key = context["routeKey"].as_str().unwrap_or_default();
    let claims = || -> Result<tideline_realtime::Claims, RouteError> {
        let text = context["authorizer"]["claims"].as_str().ok_or_else(|| {
            RouteError::BadEvent(
                "no authorizer claims: is the realtime-authorizer on $connect?".into(),
            )
        })?;
        serde_json::from_str(text)
            .map_err(|e| RouteError::BadEvent(format!("authorizer claims: {e}")))
    };
    let post = |text: String| async move {
        state
            .poster
            .post(connection, &text)
            .await
            .map_err(RouteError::Post)
    };
    match route_key {
        "$connect" => {
            let claims = claims()?;
            state
                .connections
                .put_connection(connection, &claims.sub, connection_expiry())
                .await?;
            info!(connection_id = connection, sub = %claims.sub, "realtime connected");
            Ok(())
        }
        "$disconnect" => {
            state.connections.forget(connection).await?;
            info!(connection_id = connection, "realtime disconnected");
            Ok(())
        }
        _ => {
            let body = event["body"].as_str().unwrap_or_default();
            let message = match parse_client_message(body) {
                Ok(m) => m,
                Err(refused) => return post(refused.to_text()).await,
            };
            match message {
                ClientMessage::Ping => post(tideline_realtime::ServerMessage::Pong.to_text()).await,
                ClientMessage::Unsubscribe { topic, entities } => {
                    let keys: Vec<String> = if entities.is_empty() {
                        vec![subscription_key(&topic, None)]
                    } else {
                        entities
                            .iter()
                            .map(|e| subscription_key(&topic, Some(e)))
                            .collect()
                    };
                    state.connections.unsubscribe(connection, &keys).await?;
                    let mut subs = tideline_realtime::Subscriptions::default();
                    post(subs.unsubscribe(&topic, &entities).to_text()).await
                }
                ClientMessage::Subscribe {
                    topic,
                    entities,
                    since,
                } => {
                    let claims = claims()?;
                    // The checks of local mode; each message stands alone here
                    // (the table holds what earlier ones subscribed).
                    let mut subs = tideline_realtime::Subscriptions::default();
                    let accepted = match subs.subscribe(&claims, &topic, &entities, &since) {
                        Ok(a) => a,
                        Err(refused) => return post(refused.to_text()).await,
                    };
                    let keys: Vec<String> = subs
                        .pairs()
                        .iter()
                        .map(|(t, e)| subscription_key(t, e.as_deref()))
                        .collect();
                    // Registered before the store is read: events published
                    // from here on reach the relay's Query; the overlap with
                    // the backfill is dropped by the client, by sequence.
                    state
                        .connections
                        .subscribe(connection, &keys, connection_expiry())
                        .await?;
                    post(accepted.reply.to_text()).await?;
                    for (entity, after) in accepted.resume {
                        let mut backfill =
                            Backfill::new(entity, &topic, after, state.max_message_bytes);
                        while let Some(page) = backfill.next_page(&state.store).await? {
                            for event in page {
                                post(event.text.to_string()).await?;
                            }
                        }
                    }
                    Ok(())
                }
            }
        }
    }
}

/// Body of `POST /subscriptions`: a server subscribes a connection (the
/// caller is trusted: the HTTP API's own authorization admits it).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionRequest {
    connection_id: String,
    topic: String,
    #[serde(default)]
    entities: Vec<String>,
}

/// The subscription id `POST /subscriptions` returns: base64url of the
/// connection, topic and entities, so `DELETE` needs no lookup.
fn subscription_id(connection_id: &str, topic: &str, entities: &[String]) -> String {
    use base64::Engine;
    let text = json!({"c": connection_id, "t": topic, "e": entities}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn read_subscription_id(id: &str) -> Option<(String, String, Vec<String>)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let entities = v["e"]
        .as_array()?
        .iter()
        .map(|e| e.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()?;
    Some((
        v["c"].as_str()?.to_string(),
        v["t"].as_str()?.to_string(),
        entities,
    ))
}

fn http(status: u16, body: Value) -> Value {
    json!({"statusCode": status, "headers": {"content-type": "application/json"}, "body": body.to_string()})
}

/// `POST /subscriptions` and `DELETE /subscriptions/{id}` (HTTP API, payload
/// v2): server-side management of a connection's subscriptions.
pub async fn subscriptions(
    connections: &tideline_aws::realtime::ConnectionsTable,
    event: LambdaEvent<Value>,
) -> Result<Value, crate::HandlerError> {
    use tideline_aws::realtime::subscription_key;
    let request = &event.payload;
    let method = request["requestContext"]["http"]["method"]
        .as_str()
        .unwrap_or_default();
    let path = request["rawPath"].as_str().unwrap_or_default();
    let refuse = |status: u16, code: &str, message: String| {
        Ok(http(status, json!({"error": code, "message": message})))
    };
    let keys_of = |topic: &str, entities: &[String]| -> Vec<String> {
        if entities.is_empty() {
            vec![subscription_key(topic, None)]
        } else {
            entities
                .iter()
                .map(|e| subscription_key(topic, Some(e)))
                .collect()
        }
    };
    let failed = |e: tideline_stages::PortError| {
        crate::HandlerError::new("Subscriptions", RouteError::Port(e))
    };
    match (method, path.trim_end_matches('/')) {
        ("POST", "/subscriptions") => {
            let body = request["body"].as_str().unwrap_or_default();
            let req: SubscriptionRequest = match serde_json::from_str(body) {
                Ok(r) => r,
                Err(e) => {
                    return refuse(
                        400,
                        "BadSubscription",
                        format!(
                            "body must be {{\"connection_id\": …, \"topic\": …, \"entities\": [...]}}: {e}"
                        ),
                    );
                }
            };
            for name in req
                .entities
                .iter()
                .chain(std::iter::once(&req.connection_id))
            {
                if name.is_empty() || tideline_core::EntityId::new(name).is_err() {
                    return refuse(
                        400,
                        "BadSubscription",
                        format!("{name:?} is not a valid id"),
                    );
                }
            }
            if req.topic.is_empty() {
                return refuse(400, "BadSubscription", "topic is empty".into());
            }
            let keys = keys_of(&req.topic, &req.entities);
            connections
                .subscribe(&req.connection_id, &keys, connection_expiry())
                .await
                .map_err(failed)?;
            let id = subscription_id(&req.connection_id, &req.topic, &req.entities);
            info!(connection_id = %req.connection_id, topic = %req.topic, entities = req.entities.len(), "subscription added server-side");
            Ok(http(
                201,
                json!({"id": id, "connection_id": req.connection_id, "topic": req.topic, "entities": req.entities}),
            ))
        }
        ("DELETE", p) if p.starts_with("/subscriptions/") => {
            let id = &p["/subscriptions/".len()..];
            let Some((connection, topic, entities)) = read_subscription_id(id) else {
                return refuse(
                    404,
                    "NoSuchSubscription",
                    format!("{id:?} is not an id POST /subscriptions returned"),
                );
            };
            connections
                .unsubscribe(&connection, &keys_of(&topic, &entities))
                .await
                .map_err(failed)?;
            Ok(http(204, json!({})))
        }
        _ => refuse(404, "NotFound", format!("no route {method} {path}")),
    }
}
