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
use std::sync::Mutex;
use tideline_core::EntityId;
use tideline_eventstore::{
    Backend, Direct, Error, EventStore, Expected, ProposedEvent, RecordedEvent, Snapshotted,
    StoredSnapshot,
};
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

/// A backend that records where each page read started.
#[derive(Debug)]
struct Reads<B> {
    inner: B,
    afters: Mutex<Vec<u64>>,
}

impl<B: Backend> Backend for Reads<B> {
    async fn append(
        &self,
        entity: &EntityId,
        expected: Expected,
        events: Vec<ProposedEvent>,
    ) -> Result<u64, Error> {
        self.inner.append(entity, expected, events).await
    }
    async fn read_page(
        &self,
        entity: &EntityId,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<RecordedEvent>, bool), Error> {
        self.afters.lock().unwrap().push(after);
        self.inner.read_page(entity, after, limit).await
    }
    async fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> Result<Option<StoredSnapshot>, Error> {
        self.inner
            .read_snapshot(entity, name, aggregate_version)
            .await
    }
    async fn write_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        snapshot: &StoredSnapshot,
    ) -> Result<(), Error> {
        self.inner.write_snapshot(entity, name, snapshot).await
    }
}

/// The same order, folded by a newer version of the aggregate's code.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct OrderV2(Order);

impl tideline_eventstore::Aggregate for OrderV2 {
    fn apply(&mut self, event: &RecordedEvent) {
        self.0.apply(event);
    }
}

impl Snapshotted for OrderV2 {
    const NAME: &'static str = "Order";
    const VERSION: u32 = 2;
}

/// Snapshots on any backend: a load that folded enough events stores one,
/// the next load starts after it and folds only the events since, a new
/// aggregate version ignores it, and a snapshot that does not decode or one
/// past the entity's head changes no answer.
async fn the_snapshot_story<B: Backend + 'static>(backend: B, order_id: &str) {
    use tideline_eventstore::Aggregate;
    let store = EventStore::new(Reads {
        inner: backend,
        afters: Mutex::default(),
    })
    .with_snapshot_every(3);
    let afters = |store: &EventStore<Reads<B>>| -> Vec<u64> {
        std::mem::take(&mut *store.backend().afters.lock().unwrap())
    };
    let mut events = vec![ProposedEvent::new("OrderPlaced", serde_json::json!({})).with_id("s-0")];
    for i in 1..=4 {
        events.push(
            ProposedEvent::new(
                "ItemAdded",
                serde_json::json!({"sku": format!("k{i}"), "price": i}),
            )
            .with_id(format!("s-{i}")),
        );
    }
    assert_eq!(
        store.append(order_id, Expected::NoStream, events).await,
        Ok(5)
    );

    // No snapshot yet: every event is folded, then a snapshot at 5 stored.
    let first = store.load_snapshotted::<Order>(order_id).await.unwrap();
    assert_eq!((first.version, first.state.total), (5, 10));
    assert_eq!(afters(&store), [0]);

    // One more event: the next load starts after the snapshot.
    let more = vec![
        ProposedEvent::new("ItemAdded", serde_json::json!({"sku": "k5", "price": 5}))
            .with_id("s-5"),
    ];
    assert_eq!(
        store.append(order_id, Expected::Exactly(5), more).await,
        Ok(6)
    );
    let second = store.load_snapshotted::<Order>(order_id).await.unwrap();
    assert_eq!(afters(&store), [5], "read from the snapshot on");
    let full = store.load::<Order>(order_id).await.unwrap();
    afters(&store);
    assert_eq!((second.version, &second.state), (full.version, &full.state));

    // A new version of the aggregate ignores version 1's snapshot.
    let v2 = store.load_snapshotted::<OrderV2>(order_id).await.unwrap();
    assert_eq!(afters(&store), [0]);
    assert_eq!(v2.state.0, full.state);

    // A snapshot past the head is refused: it would fold events that do
    // not exist into every later load.
    let ahead = StoredSnapshot {
        aggregate_version: 1,
        sequence: 99,
        state: serde_json::to_value(&full.state).unwrap(),
    };
    let refused = store
        .backend()
        .write_snapshot(&EntityId::new(order_id).unwrap(), "Order", &ahead)
        .await;
    assert!(matches!(refused, Err(Error::Refused { .. })), "{refused:?}");

    // A snapshot that does not decode as the aggregate is passed over: the
    // load folds every event and answers as without it.
    let garbled = StoredSnapshot {
        aggregate_version: 1,
        sequence: 6,
        state: serde_json::json!("not an order"),
    };
    store
        .backend()
        .write_snapshot(&EntityId::new(order_id).unwrap(), "Order", &garbled)
        .await
        .unwrap();
    let third = store.load_snapshotted::<Order>(order_id).await.unwrap();
    assert_eq!(afters(&store), [0]);
    assert_eq!((third.version, &third.state), (full.version, &full.state));
    let mut by_hand = Order::default();
    by_hand.apply(&RecordedEvent {
        entity_id: order_id.into(),
        sequence: 1,
        event_id: "x".into(),
        event_type: "OrderPlaced".into(),
        data: serde_json::json!({}),
        occurred_at: String::new(),
        stored_at: String::new(),
        correlation_id: None,
    });
    assert!(by_hand.placed && third.state.placed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_over_http_against_tideline_up() {
    let stack = LocalHarness::start().await;
    the_snapshot_story(
        tideline_eventstore::Http::new(stack.url()),
        "order/snap-http",
    )
    .await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_directly_on_dynamodb() {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("tl-snap");
    moto::create_event_table(&ddb, &table, true).await.unwrap();
    the_snapshot_story(
        Direct::new(tideline_aws::DynamoStore::new(ddb, &table)),
        "order-snap-ddb",
    )
    .await;
}

#[tokio::test]
async fn snapshots_over_the_in_memory_table() {
    use tideline_stages::store::slot::{MemoryItemTable, SlotStore};
    the_snapshot_story(
        Direct::new(SlotStore::new(MemoryItemTable::default(), "memory")),
        "order-snap-mem",
    )
    .await;
}
