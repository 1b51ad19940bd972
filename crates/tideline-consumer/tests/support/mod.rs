//! moto for the DynamoDB tests; the emulator, SDK config and unique names
//! come from `tideline-testkit`, shared by every moto-backed test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use tideline_testkit::{sdk_config, unique};

/// A table with string `pk` (and `sk` when `with_sk`): checkpoints and read models.
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, name: &str, with_sk: bool) {
    tideline_testkit::create_key_table(ddb, name, with_sk).await;
}

/// The event store's table contract: `pk`/`sk` strings, LSI `by-sequence` on (`pk`, `seq`).
pub async fn create_event_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    tideline_testkit::create_event_table(ddb, name, false).await;
}
