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
