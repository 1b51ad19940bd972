//! `realtime-subscriptions` Lambda: `POST /subscriptions` and
//! `DELETE /subscriptions/{id}` on the HTTP API.
use lambda_runtime::{run, service_fn};
use tideline_aws::realtime::ConnectionsTable;
use tideline_lambdas::realtime::subscriptions;
use tideline_lambdas::start::fail;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let table = std::env::var("TIDELINE_CONNECTIONS_TABLE").map_err(|_| {
        fail(
            "realtime-subscriptions",
            "TIDELINE_CONNECTIONS_TABLE is not set",
        )
    })?;
    let sdk = tideline_aws::load_sdk_config().await;
    let connections = ConnectionsTable::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let connections = &connections;
    run(service_fn(move |event| subscriptions(connections, event))).await
}
