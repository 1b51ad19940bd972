//! `transformer` Lambda: Firehose data transformation → SQS FIFO.
use lambda_runtime::{run, service_fn};
use tideline_aws::config::{ProcessEnv, TransformerConfig};
use tideline_lambdas::start::fail;
use tideline_lambdas::transformer::{State, handler};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let config = TransformerConfig::load(&ProcessEnv).map_err(|e| fail("transformer", e))?;
    let sdk = tideline_aws::load_sdk_config().await;
    let state = State {
        queue: tideline_aws::SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), config.queue_url),
        ingest: config.ingest,
        retry: Default::default(),
    };
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
