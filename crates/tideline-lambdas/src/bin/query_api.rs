//! `query-api` Lambda: API Gateway HTTP API (payload v2) → DynamoDB.
use lambda_runtime::{run, service_fn};
use tideline_aws::config::{ProcessEnv, QueryConfig};
use tideline_lambdas::query::{State, handler};
use tideline_lambdas::start::fail;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let config = QueryConfig::load(&ProcessEnv).map_err(|e| fail("query-api", e))?;
    tracing::debug!(table = %config.table_name, source = %config.source, "query-api starting");
    let sdk = tideline_aws::load_sdk_config().await;
    let state = State {
        store: tideline_aws::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table_name,
        ),
    };
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
