//! `realtime-routes` Lambda: the WebSocket API's `$connect`, `$disconnect`,
//! `subscribe` and `unsubscribe` routes.
use lambda_runtime::{run, service_fn};
use tideline_aws::realtime::{ApiGatewayPoster, ConnectionsTable};
use tideline_lambdas::realtime::{RoutesState, routes};
use tideline_lambdas::start::fail;
use tideline_realtime::protocol::API_GATEWAY_FRAME_BYTES;

fn var(name: &str) -> Result<String, tideline_lambdas::Error> {
    std::env::var(name).map_err(|_| fail("realtime-routes", format!("{name} is not set")))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let events_table = var("TIDELINE_TABLE_NAME")?;
    let connections = var("TIDELINE_CONNECTIONS_TABLE")?;
    let endpoint = var("TIDELINE_REALTIME_MANAGEMENT_ENDPOINT")?;
    let sdk = tideline_aws::load_sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let management = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    let state = RoutesState {
        store: tideline_aws::DynamoStore::new(ddb.clone(), &events_table),
        connections: ConnectionsTable::new(ddb, &connections),
        poster: ApiGatewayPoster::new(aws_sdk_apigatewaymanagement::Client::from_conf(management)),
        max_message_bytes: API_GATEWAY_FRAME_BYTES,
    };
    let state = &state;
    run(service_fn(move |event| routes(state, event))).await
}
