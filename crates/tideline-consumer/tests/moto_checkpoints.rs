//! The DynamoDB checkpoint store against moto, in the Terraform `consumer`
//! module's table layout (`pk`, `sk` strings).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::types::{AttributeValue as V, TransactWriteItem, Update};
use serde_json::Value;
use std::collections::VecDeque;
use tideline_consumer::{
    CheckpointStore, CheckpointUpdate, ConsumerError, DynamoCheckpoints, GapPolicy, Guard,
    IntegrationEvent, Outcome,
};
use tideline_core::Classify;
use tideline_testkit::fixtures::BusEvent;
use tideline_testkit::moto;

fn event(entity: &str, seq: u64) -> IntegrationEvent<Value> {
    BusEvent::new(entity, seq).read()
}

async fn tables() -> (aws_sdk_dynamodb::Client, String, String) {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let checkpoints = moto::unique("tl-cp");
    let model = moto::unique("tl-rm");
    moto::create_key_table(&ddb, &checkpoints, true).await;
    moto::create_key_table(&ddb, &model, false).await;
    (ddb, checkpoints, model)
}

/// The handler's write: append the sequence to the entity's `applied` list.
fn append_applied(table: &str, entity: &str, seq: u64) -> Vec<TransactWriteItem> {
    let update = Update::builder()
        .table_name(table)
        .key("pk", V::S(entity.to_string()))
        .update_expression("SET applied = list_append(if_not_exists(applied, :empty), :s)")
        .expression_attribute_values(":empty", V::L(vec![]))
        .expression_attribute_values(":s", V::L(vec![V::N(seq.to_string())]))
        .build()
        .unwrap();
    vec![TransactWriteItem::builder().update(update).build()]
}

async fn applied(ddb: &aws_sdk_dynamodb::Client, table: &str, entity: &str) -> Vec<u64> {
    let out = ddb
        .get_item()
        .table_name(table)
        .key("pk", V::S(entity.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item
        .and_then(|i| i.get("applied").cloned())
        .map(|l| {
            l.as_l()
                .unwrap()
                .iter()
                .map(|v| v.as_n().unwrap().parse().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_duplicated_delivery_applies_once_in_order_with_transactions() {
    let (ddb, checkpoints, model) = tables().await;
    for policy in [GapPolicy::Retry, GapPolicy::Buffer] {
        let consumer = moto::unique("c");
        let guard = Guard::new(DynamoCheckpoints::new(ddb.clone(), &checkpoints), &consumer)
            .with_gap_policy(policy)
            .with_max_buffered(3);
        let entity = moto::unique("order");
        // 8 events, reversed, each delivered twice.
        let mut queue: VecDeque<u64> = (1..=8).rev().flat_map(|s| [s, s]).collect();
        let mut rounds = 0;
        while let Some(seq) = queue.pop_front() {
            rounds += 1;
            assert!(rounds < 500);
            let model = model.clone();
            let result = guard
                .handle(event(&entity, seq), |e| {
                    let model = model.clone();
                    async move { Ok(append_applied(&model, e.entity_id(), e.sequence())) }
                })
                .await;
            match result {
                Ok(_) => {}
                Err(e) if e.is_retryable() => queue.push_back(seq),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(
            applied(&ddb, &model, &entity).await,
            (1..=8).collect::<Vec<_>>(),
            "{policy:?}"
        );
        let cp = guard.store().load(&consumer, &entity).await.unwrap();
        assert_eq!(cp.last_sequence, 8);
        assert!(cp.buffered.is_empty());
        if policy == GapPolicy::Buffer {
            assert!(guard.counts().buffered > 0);
        }
        // The item is where the Terraform module's key schema puts it.
        let item = ddb
            .get_item()
            .table_name(&checkpoints)
            .key("pk", V::S(format!("consumer#{consumer}")))
            .key("sk", V::S(format!("entity#{entity}")))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        assert_eq!(item["last_sequence"].as_n().unwrap(), "8");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_updates_refuse_a_stale_expectation_and_write_nothing() {
    let (ddb, checkpoints, model) = tables().await;
    let store = DynamoCheckpoints::new(ddb.clone(), &checkpoints);
    let advance = |expected, to| CheckpointUpdate::Advance {
        expected,
        to,
        unbuffer: None,
        accepted_gap: false,
    };
    store
        .commit(
            "c",
            "e",
            advance(0, 1),
            Some(append_applied(&model, "e", 1)),
        )
        .await
        .unwrap();
    // Stale: the checkpoint is at 1, not 0. Neither the checkpoint nor the handler's item move.
    let err = store
        .commit(
            "c",
            "e",
            advance(0, 1),
            Some(append_applied(&model, "e", 1)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConsumerError::Conflict { expected: 0, .. }));
    let err = store
        .commit("c", "e", advance(5, 6), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ConsumerError::Conflict { .. }));
    assert_eq!(applied(&ddb, &model, "e").await, vec![1]);
    // The buffer is bounded and refuses a second copy.
    let buffer = |seq| CheckpointUpdate::Buffer {
        expected: 1,
        sequence: seq,
        event: "{}".into(),
        max: 2,
    };
    store.commit("c", "e", buffer(3), None).await.unwrap();
    assert!(store.commit("c", "e", buffer(3), None).await.is_err());
    store.commit("c", "e", buffer(4), None).await.unwrap();
    assert!(matches!(
        store.commit("c", "e", buffer(5), None).await,
        Err(ConsumerError::Conflict { .. })
    ));
    let cp = store.load("c", "e").await.unwrap();
    assert_eq!(cp.buffered.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
    store
        .commit(
            "c",
            "e",
            CheckpointUpdate::Advance {
                expected: 1,
                to: 3,
                unbuffer: Some(3),
                accepted_gap: true,
            },
            None,
        )
        .await
        .unwrap();
    let cp = store.load("c", "e").await.unwrap();
    assert_eq!((cp.last_sequence, cp.gaps_accepted), (3, 1));
    assert_eq!(cp.buffered.keys().copied().collect::<Vec<_>>(), vec![4]);
    // Reset removes the checkpoint; the next event 1 applies again.
    store
        .commit("c", "other", advance(0, 1), None)
        .await
        .unwrap();
    assert_eq!(store.reset("c", Some("e")).await.unwrap(), 1);
    assert_eq!(store.load("c", "e").await.unwrap().last_sequence, 0);
    assert_eq!(store.load("c", "other").await.unwrap().last_sequence, 1);
    assert_eq!(store.reset("c", None).await.unwrap(), 1);
    assert_eq!(store.load("c", "other").await.unwrap().last_sequence, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let (_, checkpoints, model) = tables().await;
    // moto applies concurrent transactions without DynamoDB's isolation
    // (under load, two passed the same checkpoint condition): through a proxy
    // that forwards one call at a time, each call is atomic as on DynamoDB.
    let proxy = tideline_testkit::fault_proxy::FaultProxy::start(&moto::endpoint(), 7).await;
    proxy.set_serial(true);
    let ddb = aws_sdk_dynamodb::Client::new(&proxy.sdk_config().await);
    let guard = std::sync::Arc::new(Guard::new(
        DynamoCheckpoints::new(ddb.clone(), &checkpoints),
        "c",
    ));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let guard = guard.clone();
        let model = model.clone();
        tasks.push(tokio::spawn(async move {
            guard
                .handle(event("same", 1), |e| {
                    let model = model.clone();
                    async move { Ok(append_applied(&model, e.entity_id(), e.sequence())) }
                })
                .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let applied_count = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Outcome::Applied { .. })))
        .count();
    assert_eq!(applied_count, 1, "{outcomes:?}");
    assert_eq!(applied(&ddb, &model, "same").await, vec![1]);
}
