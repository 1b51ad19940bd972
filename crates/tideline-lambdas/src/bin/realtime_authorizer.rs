//! `realtime-authorizer` Lambda: the WebSocket API's REQUEST authorizer.
use lambda_runtime::{run, service_fn};
use tideline_lambdas::realtime::{AuthorizerState, authorizer};
use tideline_lambdas::start::fail;
use tideline_realtime::TokenVerifier;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    // The identity provider's JWKS (`{"keys": [...]}`), given as text so that
    // a cold start makes no network call; Terraform sets it from a variable.
    let jwks = std::env::var("TIDELINE_REALTIME_JWKS")
        .map_err(|_| fail("realtime-authorizer", "TIDELINE_REALTIME_JWKS is not set"))?;
    let issuer = std::env::var("TIDELINE_REALTIME_ISSUER")
        .ok()
        .filter(|s| !s.is_empty());
    let verifier = TokenVerifier::jwks_json(&jwks, issuer).map_err(|e| {
        fail(
            "realtime-authorizer",
            format!("TIDELINE_REALTIME_JWKS: {e}"),
        )
    })?;
    let state = AuthorizerState { verifier };
    let state = &state;
    run(service_fn(move |event| authorizer(state, event))).await
}
