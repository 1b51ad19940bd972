//! moto for the DynamoDB tests; the emulator, SDK config and unique names
//! come from `tideline-testkit`, shared by every moto-backed test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use tideline_testkit::{sdk_config, unique};

/// A table with string `pk` (and `sk` when `with_sk`), as the Terraform
/// `consumer` module (checkpoints) and the example (read model) create.
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, name: &str, with_sk: bool) {
    use aws_sdk_dynamodb::types::*;
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let mut b = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .key_schema(key("pk", KeyType::Hash));
    if with_sk {
        b = b
            .attribute_definitions(attr("sk"))
            .key_schema(key("sk", KeyType::Range));
    }
    b.send().await.unwrap();
}

/// The event store's table contract: `pk`/`sk` strings, LSI `by-sequence` on (`pk`, `seq`).
pub async fn create_event_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    tideline_testkit::create_event_table(ddb, name, false).await;
}
