//! `tideline-test-consumer`: a consumer Lambda for tests of local Lambda targets.
//!
//! It is an ordinary `lambda_runtime` binary, so it runs unchanged on AWS and
//! under `tideline up`. For each EventBridge event it appends one line,
//! `<detail.metadata.entity_id> <detail.metadata.sequence>`, to the file named
//! by `TEST_CONSUMER_OUT`, and it returns an error for events whose
//! `detail.data.fail` is `true` (to exercise retries and dead-lettering).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};
use std::io::Write;

/// Handles one EventBridge event.
pub async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let detail = &event.payload["detail"];
    if detail["data"]["fail"] == Value::Bool(true) {
        return Err(format!(
            "asked to fail: entity {} sequence {}",
            detail["metadata"]["entity_id"], detail["metadata"]["sequence"]
        )
        .into());
    }
    let entity = detail["metadata"]["entity_id"]
        .as_str()
        .ok_or("detail.metadata.entity_id is missing")?;
    let sequence = detail["metadata"]["sequence"]
        .as_u64()
        .ok_or("detail.metadata.sequence is missing")?;
    let path = std::env::var("TEST_CONSUMER_OUT").map_err(|_| "TEST_CONSUMER_OUT is not set")?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    writeln!(file, "{entity} {sequence}")?;
    Ok(json!({"ok": true, "request_id": event.context.request_id}))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
