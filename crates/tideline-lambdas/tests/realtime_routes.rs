//! The realtime route handler on API Gateway WebSocket fixtures (`$connect`,
//! `subscribe` with `since`, `$disconnect`), over the connections table on
//! moto, the in-memory store, and a poster that records what the connection
//! was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::PathBuf;
use std::sync::Mutex;
use tideline_aws::realtime::ConnectionsTable;
use tideline_core::{EntityId, ExpectedSeq};
use tideline_lambdas::realtime::{RoutesState, routes};
use tideline_realtime::relay::{ConnectionPoster, PostError, Subscribers};
use tideline_stages::EventStore;
use tideline_stages::memory::MemoryStore;
use tideline_testkit::fixtures::{lambda, new_event, record};
use tideline_testkit::moto;

#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(String, Value)>>,
}

impl ConnectionPoster for Recorder {
    async fn post(&self, connection_id: &str, data: &str) -> Result<(), PostError> {
        self.sent.lock().unwrap().push((
            connection_id.to_string(),
            serde_json::from_str(data).unwrap(),
        ));
        Ok(())
    }
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/realtime")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_subscribe_with_since_and_disconnect() {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("tl-connections");
    moto::create_key_table(&ddb, &table, true).await;
    let store = MemoryStore::default();
    let entity = EntityId::new("order-1").unwrap();
    for (i, kind) in ["OrderPlaced", "OrderShipped", "OrderPlaced", "OrderPlaced"]
        .iter()
        .enumerate()
    {
        store
            .append(
                &entity,
                vec![new_event(&record("order-1", *kind).id(format!("e{i}")))],
                ExpectedSeq::Any,
            )
            .await
            .unwrap();
    }
    let state = RoutesState {
        store,
        connections: ConnectionsTable::new(ddb, &table),
        poster: Recorder::default(),
        max_message_bytes: 32 * 1024,
    };
    routes(&state, lambda(fixture("connect-route.json")))
        .await
        .unwrap();
    routes(&state, lambda(fixture("subscribe-route.json")))
        .await
        .unwrap();
    // The relay now finds the connection by topic and entity.
    let found = state
        .connections
        .connections_for("OrderPlaced", "order-1")
        .await
        .unwrap();
    assert_eq!(found, ["Ab1CdeFgHiJklMn="]);
    // It was told `subscribed`, then the OrderPlaced events after sequence 1, in order.
    let sent: Vec<Value> = state
        .poster
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(sent[0]["type"], "subscribed", "{sent:?}");
    let seqs: Vec<u64> = sent[1..]
        .iter()
        .map(|v| v["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4], "sequence 2 is another topic: {sent:?}");

    // A subscribe the claims do not cover is refused, and nothing is written.
    let mut other = fixture("subscribe-route.json");
    other["body"] = r#"{"action":"subscribe","topic":"OrderPlaced","entities":["order-9"]}"#.into();
    routes(&state, lambda(other)).await.unwrap();
    let last = state.poster.sent.lock().unwrap().last().unwrap().1.clone();
    assert_eq!(last["code"], "EntityNotAllowed", "{last}");
    assert!(
        state
            .connections
            .connections_for("OrderPlaced", "order-9")
            .await
            .unwrap()
            .is_empty()
    );

    routes(&state, lambda(fixture("disconnect-route.json")))
        .await
        .unwrap();
    assert!(
        state
            .connections
            .connections_for("OrderPlaced", "order-1")
            .await
            .unwrap()
            .is_empty()
    );
}

fn http_event(method: &str, path: &str, body: Option<&str>) -> Value {
    serde_json::json!({"version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "backend"},
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example", "requestId": "r", "routeKey": format!("{method} {path}"), "stage": "$default", "time": "07/Dec/2026:20:00:00 +0000", "timeEpoch": 1796500800000i64},
        "body": body, "isBase64Encoded": false})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_and_delete_subscriptions_manage_a_connection_server_side() {
    use tideline_lambdas::realtime::subscriptions;
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("tl-connections");
    moto::create_key_table(&ddb, &table, true).await;
    let connections = ConnectionsTable::new(ddb, &table);
    connections
        .put_connection("conn-7", "user", 4_000_000_000)
        .await
        .unwrap();
    let created = subscriptions(
        &connections,
        lambda(http_event(
            "POST",
            "/subscriptions",
            Some(r#"{"connection_id":"conn-7","topic":"OrderPlaced","entities":["order-3"]}"#),
        )),
    )
    .await
    .unwrap();
    assert_eq!(created["statusCode"], 201, "{created}");
    let body: Value = serde_json::from_str(created["body"].as_str().unwrap()).unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        connections
            .connections_for("OrderPlaced", "order-3")
            .await
            .unwrap(),
        ["conn-7"]
    );
    let bad = subscriptions(
        &connections,
        lambda(http_event(
            "POST",
            "/subscriptions",
            Some(r#"{"topic":"T"}"#),
        )),
    )
    .await
    .unwrap();
    assert_eq!(bad["statusCode"], 400, "{bad}");
    let deleted = subscriptions(
        &connections,
        lambda(http_event("DELETE", &format!("/subscriptions/{id}"), None)),
    )
    .await
    .unwrap();
    assert_eq!(deleted["statusCode"], 204, "{deleted}");
    assert!(
        connections
            .connections_for("OrderPlaced", "order-3")
            .await
            .unwrap()
            .is_empty()
    );
    let unknown = subscriptions(
        &connections,
        lambda(http_event("DELETE", "/subscriptions/nope", None)),
    )
    .await
    .unwrap();
    assert_eq!(unknown["statusCode"], 404);
}
