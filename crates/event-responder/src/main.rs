//! `event-responder` Lambda: the example consumer (see the library docs).
use event_responder::{Config, Responder};
use lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use tideline_core::Classify;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::load(|k| std::env::var(k).ok()).map_err(|e| {
        tracing::error!(function = "event-responder", error = %e, "start-up failed");
        e
    })?;
    let responder = Responder::new(&config).await?;
    let responder = &responder;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        match responder.handle(event.payload).await {
            Ok(outcome) => {
                tracing::info!(outcome = ?outcome, counts = ?responder.counts(), "event handled");
                Ok(serde_json::json!({"outcome": format!("{outcome:?}")}))
            }
            // Retryable (a gap, throttling) or permanent: either way the
            // invocation fails, Lambda retries, then the event goes to the DLQ.
            Err(e) => {
                let class = if e.is_retryable() { "Retryable" } else { "Permanent" };
                tracing::warn!(error = %e, class, "event not applied");
                Err(Diagnostic {
                    error_type: format!("ConsumerError.{class}"),
                    error_message: e.to_string(),
                })
            }
        }
    }))
    .await
}
