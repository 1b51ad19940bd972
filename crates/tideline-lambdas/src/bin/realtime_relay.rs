//! `realtime-relay` Lambda: a bus rule's target, posting each event to the
//! connections subscribed to it.
use lambda_runtime::{run, service_fn};
use tideline_aws::realtime::{ApiGatewayPoster, ConnectionsTable};
use tideline_core::retry::RetryPolicy;
use tideline_lambdas::realtime::{RelayState, relay};
use tideline_lambdas::start::fail;
use tideline_realtime::protocol::API_GATEWAY_FRAME_BYTES;
use tideline_realtime::relay::RelayConfig;

fn var(name: &str) -> Result<String, tideline_lambdas::Error> {
    std::env::var(name).map_err(|_| fail("realtime-relay", format!("{name} is not set")))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let table = var("TIDELINE_CONNECTIONS_TABLE")?;
    // The WebSocket API stage's HTTPS URL: the Management API's endpoint.
    let endpoint = var("TIDELINE_REALTIME_MANAGEMENT_ENDPOINT")?;
    let concurrency = match std::env::var("TIDELINE_RELAY_CONCURRENCY") {
        Ok(v) => v.parse().map_err(|_| {
            fail(
                "realtime-relay",
                format!("TIDELINE_RELAY_CONCURRENCY {v:?} is not a number"),
            )
        })?,
        Err(_) => 32,
    };
    let sdk = tideline_aws::load_sdk_config().await;
    let management = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    let state = RelayState {
        subscribers: ConnectionsTable::new(aws_sdk_dynamodb::Client::new(&sdk), &table),
        poster: ApiGatewayPoster::new(aws_sdk_apigatewaymanagement::Client::from_conf(management)),
        config: RelayConfig {
            concurrency,
            retry: RetryPolicy::default(),
            max_message_bytes: API_GATEWAY_FRAME_BYTES,
        },
    };
    let state = &state;
    run(service_fn(move |event| relay(state, event))).await
}
