//! `event-storer` Lambda: SQS FIFO → DynamoDB.
use lambda_runtime::{run, service_fn};
use tideline_aws::config::{ProcessEnv, StorerConfig};
use tideline_lambdas::start::fail;
use tideline_lambdas::store::{State, handler};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let config = StorerConfig::load(&ProcessEnv).map_err(|e| fail("event-storer", e))?;
    let sdk = tideline_aws::load_sdk_config().await;
    let state = State {
        store: tideline_aws::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table_name,
        )
        .with_ttl(config.ttl())
        .with_rejected_ttl(config.rejected_ttl()),
        max_concurrent_entities: config.max_concurrent_entities,
    };
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
