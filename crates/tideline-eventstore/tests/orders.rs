//! The worked example of `docs/command-side.md` (the order aggregate) run
//! through both backends: over HTTP against a `tideline up` the test starts,
//! and directly against DynamoDB (moto) with the storer's own store code.
//! Each gets a typed conflict on a concurrent write, and every acknowledged
//! append is stored once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/orders/order.rs"]
#[allow(dead_code)]
mod order;

use futures::TryStreamExt;
use order::{Command, Order, Outcome, execute};
use std::sync::Arc;
use tideline_eventstore::{Backend, Direct, Error, EventStore, Expected, ProposedEvent};
use tideline_testkit::local::LocalHarness;
use tideline_testkit::moto;

/// The example's story on any backend: place, a typed conflict for a stale
/// writer, `writers` concurrent writers each adding one item with retries,
/// an idempotent repeat, and the history read back in order.
async fn the_order_story<B: Backend + 'static>(store: EventStore<B>, order_id: &str) {
    let placed = execute(&store, order_id, "c-place", &Command::Place)
        .await
        .unwrap();
    assert!(
        matches!(placed, Outcome::Done { version: 1, .. }),
        "{placed:?}"
    );

    let stale = store
        .append(
            order_id,
            Expected::NoStream,
            vec![ProposedEvent::new("OrderPlaced", serde_json::json!({})).with_id("stale")],
        )
        .await;
    assert_eq!(
        stale,
        Err(Error::Conflict {
            entity_id: order_id.into(),
            expected: 0,
            actual: 1
        })
    );

    let store = Arc::new(store);
    let writers = 6;
    let tasks = (0..writers).map(|w| {
        let store = store.clone();
        let order_id = order_id.to_string();
        async move {
            let add = Command::AddItem {
                sku: format!("sku-{w}"),
                price: 10,
            };
            execute(&*store, &order_id, &format!("c-add-{w}"), &add)
                .await
                .unwrap()
        }
    });
    let outcomes = futures::future::join_all(tasks).await;
    let mut versions: Vec<u64> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Done { version, .. } => *version,
            Outcome::Refused(why) => panic!("refused: {why}"),
        })
        .collect();
    // Each writer held a version of its own: the set of versions is 2..=7.
    versions.sort_unstable();
    assert_eq!(versions, (2..=writers + 1).collect::<Vec<_>>());

    // A repeat of an acknowledged command (its answer lost): same ids, same
    // answer, nothing stored.
    let repeat = store
        .append(
            order_id,
            Expected::Exactly(1),
            vec![ProposedEvent::new("OrderPlaced", serde_json::json!({})).with_id("c-place-0")],
        )
        .await
        .unwrap();
    assert_eq!(repeat, 1);

    let history: Vec<_> = store.read(order_id, 1).try_collect().await.unwrap();
    let seqs: Vec<u64> = history.iter().map(|e| e.sequence).collect();
    assert_eq!(
        seqs,
        (1..=writers + 1).collect::<Vec<_>>(),
        "in order, gapless"
    );
    let ids: std::collections::HashSet<_> = history.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids.len(), history.len(), "each stored once");
    let tail: Vec<_> = store.read(order_id, 5).try_collect().await.unwrap();
    assert_eq!(tail.first().map(|e| e.sequence), Some(5));

    let loaded = store.load::<Order>(order_id).await.unwrap();
    assert_eq!(loaded.version, writers + 1);
    assert_eq!(loaded.state.items.len() as u64, writers);
    assert_eq!(loaded.state.total, 10 * writers);
    let shipped = execute(&*store, order_id, "c-ship", &Command::Ship)
        .await
        .unwrap();
    assert!(matches!(shipped, Outcome::Done { version, .. } if version == writers + 2));
    let again = execute(&*store, order_id, "c-ship-2", &Command::Ship)
        .await
        .unwrap();
    assert!(matches!(again, Outcome::Refused(_)), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_example_runs_against_tideline_up() {
    let stack = LocalHarness::start().await;
    let store = EventStore::http(stack.url()).with_page_size(3);
    the_order_story(store, "order/http-1").await;
    let refused = EventStore::http(stack.url())
        .append(
            "order-x",
            Expected::Any,
            vec![ProposedEvent::new("", serde_json::json!({}))],
        )
        .await;
    assert!(
        matches!(&refused, Err(Error::Refused { code, .. }) if code == "InvalidField"),
        "{refused:?}"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_example_runs_directly_against_dynamodb() {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("tl-command");
    moto::create_event_table(&ddb, &table, true).await.unwrap();
    let store = EventStore::dynamodb(ddb.clone(), &table).with_page_size(3);
    the_order_story(store, "order-ddb-1").await;

    // A multi-event command appends all or none, in one transaction.
    let store = EventStore::dynamodb(ddb, &table);
    let last = store
        .append(
            "order-ddb-2",
            Expected::NoStream,
            vec![
                ProposedEvent::new("OrderPlaced", serde_json::json!({})).with_id("m-0"),
                ProposedEvent::new("ItemAdded", serde_json::json!({"sku": "A", "price": 1}))
                    .with_id("m-1"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(last, 2);
    let history: Vec<_> = store.read("order-ddb-2", 1).try_collect().await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (e.sequence, e.event_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "m-0"), (2, "m-1")]
    );
}

#[tokio::test]
async fn the_order_example_runs_over_the_in_memory_table() {
    use tideline_stages::store::slot::{MemoryItemTable, SlotStore};
    let store = EventStore::new(Direct::new(SlotStore::new(
        MemoryItemTable::default(),
        "memory",
    )));
    the_order_story(store, "order-mem-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_multi_event_commands_at_one_version_on_dynamodb_one_wins_one_conflicts() {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("tl-command-race");
    moto::create_event_table(&ddb, &table, true).await.unwrap();
    for round in 0..5 {
        let order_id = format!("order-race-{round}");
        let a = EventStore::dynamodb(ddb.clone(), &table);
        let b = EventStore::dynamodb(ddb.clone(), &table);
        let events = |who: &str| {
            vec![
                ProposedEvent::new("ItemAdded", serde_json::json!({"sku": who}))
                    .with_id(format!("{who}-0")),
                ProposedEvent::new("ItemAdded", serde_json::json!({"sku": who}))
                    .with_id(format!("{who}-1")),
            ]
        };
        let (ra, rb) = tokio::join!(
            a.append(&order_id, Expected::NoStream, events("a")),
            b.append(&order_id, Expected::NoStream, events("b")),
        );
        let mut results = [ra, rb];
        results.sort_by_key(|r| r.is_err());
        assert_eq!(results[0], Ok(2), "{results:?}");
        assert_eq!(
            results[1],
            Err(Error::Conflict {
                entity_id: order_id.clone(),
                expected: 0,
                actual: 2
            }),
            "{results:?}"
        );
        let history: Vec<_> = a.read(&order_id, 1).try_collect().await.unwrap();
        assert_eq!(history.len(), 2, "{history:?}");
        assert_eq!(
            history[0].event_id[..1],
            history[1].event_id[..1],
            "one writer's batch, whole"
        );
    }
}
