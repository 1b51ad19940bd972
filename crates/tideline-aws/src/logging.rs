//! Tracing set-up: JSON lines when running in Lambda (CloudWatch Logs Insights
//! can query the fields), human-readable text elsewhere. `RUST_LOG` filters;
//! the default is `info`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if in_lambda {
        builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
