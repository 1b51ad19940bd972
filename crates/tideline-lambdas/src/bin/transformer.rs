//! `transformer` Lambda: Firehose data transformation → SQS FIFO.
use lambda_runtime::{run, service_fn};
use tideline_aws::config::{ProcessEnv, TransformerConfig};
use tideline_lambdas::start::fail;
use tideline_lambdas::transform::{State, handler};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let mut config = TransformerConfig::load(&ProcessEnv).map_err(|e| fail("transformer", e))?;
    if let Some(path) = &config.schema_registry {
        // Loaded once per cold start; a bad registry fails start-up, naming the file.
        let registry = tideline_schema::SchemaRegistry::load(path).map_err(|e| {
            fail(
                "transformer",
                format!("{}: {e}", tideline_aws::config::SCHEMA_REGISTRY),
            )
        })?;
        config.ingest.data_validator = Some(
            tideline_core::data_validator::SharedDataValidator::new(registry),
        );
    }
    let sdk = tideline_aws::load_sdk_config().await;
    let state = State {
        queue: tideline_aws::SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), config.queue_url),
        ingest: config.ingest,
        retry: Default::default(),
        max_concurrent_sends: config.max_concurrent_sends,
    };
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
