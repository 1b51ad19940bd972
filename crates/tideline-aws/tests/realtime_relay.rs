//! The realtime relay over its AWS adapters: the connections table against
//! moto (Query by topic and entity across pages), `PostToConnection`
//! against moto's API Gateway Management API, and, with `aws-smithy-mocks`,
//! what moto cannot answer: `GoneException`, throttling, a payload too large.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_apigatewaymanagement::operation::post_to_connection::{
    PostToConnectionError, PostToConnectionOutput,
};
use aws_sdk_apigatewaymanagement::types::error::{
    GoneException, LimitExceededException, PayloadTooLargeException,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use tideline_aws::realtime::{ApiGatewayPoster, ConnectionsTable, subscription_key};
use tideline_core::Classify;
use tideline_core::retry::RetryPolicy;
use tideline_realtime::relay::{ConnectionPoster, PostError, RelayConfig, Subscribers, relay};
use tideline_testkit::moto;

async fn table() -> ConnectionsTable {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let name = moto::unique("tl-connections");
    moto::create_key_table(&ddb, &name, true).await;
    ConnectionsTable::new(ddb, &name).with_page_size(7)
}

fn event(entity: &str, seq: u64) -> String {
    serde_json::json!({"detail-type":"OrderPlaced","source":"tideline",
        "detail":{"metadata":{"event_id":format!("{entity}-{seq}"),"event_type":"OrderPlaced","schema_version":1,
        "entity_id":entity,"sequence":seq,"occurred_at":"t","stored_at":"t","correlation_id":null,"test":false},"data":{}}})
    .to_string()
}

fn config() -> RelayConfig {
    RelayConfig {
        concurrency: 8,
        retry: RetryPolicy::fast(3),
        max_message_bytes: 32 * 1024,
    }
}

async fn connect(table: &ConnectionsTable, id: &str, keys: &[String]) {
    table
        .put_connection(id, "user", 4_000_000_000)
        .await
        .unwrap();
    table.subscribe(id, keys, 4_000_000_000).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_finds_entity_and_topic_subscribers_across_query_pages() {
    let table = table().await;
    let entity_key = subscription_key("OrderPlaced", Some("o-1"));
    let topic_key = subscription_key("OrderPlaced", None);
    for i in 0..30 {
        connect(&table, &format!("e{i}"), std::slice::from_ref(&entity_key)).await;
    }
    for i in 0..12 {
        connect(&table, &format!("t{i}"), std::slice::from_ref(&topic_key)).await;
    }
    connect(
        &table,
        "other",
        &[subscription_key("OrderPlaced", Some("o-2"))],
    )
    .await;
    let mut found = table.connections_for("OrderPlaced", "o-1").await.unwrap();
    found.sort();
    assert_eq!(found.len(), 42, "30 + 12 over pages of 7: {found:?}");
    assert!(!found.contains(&"other".to_string()));
    // Forgetting a connection removes its subscriptions.
    table.forget("e3").await.unwrap();
    let found = table.connections_for("OrderPlaced", "o-1").await.unwrap();
    assert_eq!(found.len(), 41);
    assert!(!found.contains(&"e3".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_posts_through_motos_management_api() {
    let table = table().await;
    let key = subscription_key("OrderPlaced", Some("o-9"));
    for i in 0..20 {
        connect(&table, &format!("m{i}"), std::slice::from_ref(&key)).await;
    }
    let sdk = moto::sdk_config().await;
    let poster = ApiGatewayPoster::new(aws_sdk_apigatewaymanagement::Client::new(&sdk));
    let report = relay(&table, &poster, &config(), &event("o-9", 1))
        .await
        .unwrap();
    assert_eq!((report.posted, report.gone), (20, 0));
}

fn mocked(rules: &[&aws_smithy_mocks::Rule]) -> ApiGatewayPoster {
    let client = mock_client!(
        aws_sdk_apigatewaymanagement,
        RuleMode::MatchAny,
        rules,
        |c| c.retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
    );
    ApiGatewayPoster::new(client)
}

#[tokio::test]
async fn post_errors_are_classed_gone_retryable_or_permanent() {
    let gone = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("gone"))
        .then_error(|| PostToConnectionError::GoneException(GoneException::builder().build()));
    let throttled = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("busy"))
        .then_error(|| {
            PostToConnectionError::LimitExceededException(LimitExceededException::builder().build())
        });
    let too_big = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("big"))
        .then_error(|| {
            PostToConnectionError::PayloadTooLargeException(
                PayloadTooLargeException::builder().build(),
            )
        });
    let poster = mocked(&[&gone, &throttled, &too_big]);
    assert!(matches!(
        poster.post("gone", "{}").await,
        Err(PostError::Gone)
    ));
    match poster.post("busy", "{}").await {
        Err(PostError::Failed(e)) => assert!(e.is_retryable(), "{e}"),
        other => panic!("{other:?}"),
    }
    match poster.post("big", "{}").await {
        Err(PostError::Failed(e)) => assert!(!e.is_retryable(), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_connections_are_deleted_from_the_table_and_throttled_ones_retried_alone() {
    let table = table().await;
    let key = subscription_key("OrderPlaced", Some("o-5"));
    for id in ["ok", "gone", "busy"] {
        connect(&table, id, std::slice::from_ref(&key)).await;
    }
    let gone = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("gone"))
        .then_error(|| PostToConnectionError::GoneException(GoneException::builder().build()));
    // "busy" is throttled once, then accepted; "ok" is accepted once.
    let busy = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("busy"))
        .sequence()
        .error(|| {
            PostToConnectionError::LimitExceededException(LimitExceededException::builder().build())
        })
        .output(|| PostToConnectionOutput::builder().build())
        .build();
    let ok = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(|r| r.connection_id() == Some("ok"))
        .then_output(|| PostToConnectionOutput::builder().build());
    let poster = mocked(&[&gone, &busy, &ok]);
    let report = relay(&table, &poster, &config(), &event("o-5", 4))
        .await
        .unwrap();
    assert_eq!((report.posted, report.gone, report.retried), (2, 1, 1));
    assert_eq!(ok.num_calls(), 1, "a served connection is not posted again");
    assert_eq!(busy.num_calls(), 2);
    let mut left = table.connections_for("OrderPlaced", "o-5").await.unwrap();
    left.sort();
    assert_eq!(left, ["busy", "ok"]);
}
