//! `event-emitter` Lambda: DynamoDB stream → EventBridge (classic, or the
//! enhanced custom event bus with `TIDELINE_BUS_MODE=ordered`).
use lambda_runtime::{run, service_fn};
use tideline_aws::config::{EmitterConfig, ProcessEnv};
use tideline_lambdas::emit::{State, handler};
use tideline_lambdas::start::fail;
use tideline_stages::emit::EmitConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tideline_lambdas::Error> {
    tideline_aws::logging::init();
    let config = EmitterConfig::load(&ProcessEnv).map_err(|e| fail("event-emitter", e))?;
    let sdk = tideline_aws::load_sdk_config().await;
    let state = State {
        // TIDELINE_BUS_MODE: the classic bus, or the enhanced (ordered) one.
        bus: tideline_aws::EmitterBus::from_config(&sdk, &config),
        config: EmitConfig {
            // TIDELINE_BUNDLE_MAX_EVENTS: bundled emission, off by default (decision 0014).
            bundle: config.bundle(),
            source: config.source,
            ..EmitConfig::default()
        },
    };
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
