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
                vec![new_event(&record("order-1", *kind).id(&format!("e{i}")))],
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
