//! `command-api` Lambda: API Gateway HTTP API (payload v2) → the command
//! stage → DynamoDB, with the storer's own append protocol, then the S3 lake.
use lambda_runtime::{run, service_fn};
use tideline_aws::config::{CommandApiConfig, ProcessEnv};
use tideline_lambdas::command::{State, handler};
use tideline_lambdas::start::fail;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let mut config = CommandApiConfig::load(&ProcessEnv).map_err(|e| fail("command-api", e))?;
    if let Some(path) = &config.schema_registry {
        // Ingest's registry: a command's events are held to the same schemas.
        let registry = tideline_schema::SchemaRegistry::load(path).map_err(|e| {
            fail(
                "command-api",
                format!("{}: {e}", tideline_aws::config::SCHEMA_REGISTRY),
            )
        })?;
        config.ingest.data_validator = Some(
            tideline_core::data_validator::SharedDataValidator::new(registry),
        );
    }
    let ttl = config.ttl();
    tracing::debug!(table = %config.table_name, lake_bucket = %config.lake_bucket, ttl_days = ?config.ttl_days, "command-api starting");
    let sdk = tideline_aws::load_sdk_config().await;
    // The lake's root is the bucket's, where Firehose writes `events/`.
    let lake = tideline_aws::lake::S3Lake::connect(&config.lake_bucket, "").await;
    let state = State {
        lake,
        store: tideline_aws::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.table_name,
        )
        .with_ttl(ttl),
        ingest: tideline_stages::command::command_ingest_config(&config.ingest),
    };
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
