//! The append protocol's conditions mean the same on DynamoDB (moto) as in
//! the in-memory table the simulation checks (`Condition::holds`): each
//! condition is tried against each kind of item the protocol meets, on both,
//! and the outcomes must agree. A condition expression that drifted from
//! its meaning would let the proven protocol and the deployed one differ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tideline_aws::store::DynamoTable;
use tideline_core::item::{AttrValue, Item};
use tideline_stages::store::slot::{CondPut, Condition, ItemTable, MemoryItemTable};
use tideline_testkit::moto;

fn s(v: &str) -> AttrValue {
    AttrValue::S(v.into())
}

fn n(v: i64) -> AttrValue {
    AttrValue::N(v.to_string())
}

/// An item the protocol meets: what it is, and its attributes (none: no item).
type Existing<'a> = (&'a str, Option<Vec<(&'a str, AttrValue)>>);

fn item(sk: &str, attrs: &[(&str, AttrValue)]) -> Item {
    let mut item = Item::from([("pk".into(), s("cond")), ("sk".into(), s(sk))]);
    for (k, v) in attrs {
        item.insert((*k).into(), v.clone());
    }
    item
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_mean_the_same_on_dynamodb_as_in_the_simulation() {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let name = moto::unique("tl-cond");
    moto::create_event_table(&ddb, &name, true).await.unwrap();
    let dynamo = DynamoTable::new(ddb, name);
    let memory = MemoryItemTable::default();

    let slot = "2026-12-01T00:00:00.000001Z";
    let existing: Vec<Existing> = vec![
        ("none", None),
        ("head", Some(vec![("kind", s("head")), ("high_seq", n(3))])),
        (
            "legacy-head",
            Some(vec![("kind", s("head")), ("last_seq", n(3))]),
        ),
        (
            "marker",
            Some(vec![
                ("kind", s("dedup")),
                ("event_sk", s(slot)),
                ("expires_at", n(100)),
            ]),
        ),
        (
            "marker-no-expiry",
            Some(vec![("kind", s("dedup")), ("event_sk", s(slot))]),
        ),
        (
            "snapshot",
            Some(vec![("kind", s("snapshot")), ("snapshot_seq", n(5))]),
        ),
    ];
    let conditions = vec![
        Condition::NotExists,
        Condition::Equals("last_seq", n(3)),
        Condition::Equals("last_seq", n(2)),
        Condition::HeadBelow(4),
        Condition::HeadBelow(3),
        Condition::SnapshotBelow(6),
        Condition::SnapshotBelow(5),
        Condition::MarkerAt {
            event_sk: slot.into(),
            expires_before: None,
        },
        Condition::MarkerAt {
            event_sk: "2026-12-01T00:00:00.000002Z".into(),
            expires_before: None,
        },
        Condition::MarkerAt {
            event_sk: slot.into(),
            expires_before: Some(200),
        },
        Condition::MarkerAt {
            event_sk: slot.into(),
            expires_before: Some(50),
        },
    ];
    let mut compared = 0;
    for (i, (what, attrs)) in existing.iter().enumerate() {
        for (j, condition) in conditions.iter().enumerate() {
            let sk = format!("case-{i}-{j}");
            if let Some(attrs) = attrs {
                let seed = CondPut {
                    item: item(&sk, attrs),
                    condition: Condition::NotExists,
                };
                dynamo.put(seed.clone()).await.unwrap().unwrap();
                memory.put(seed).await.unwrap().unwrap();
            }
            let put = CondPut {
                item: item(&sk, &[("kind", s("written"))]),
                condition: condition.clone(),
            };
            let on_dynamo = dynamo.put(put.clone()).await.unwrap().is_ok();
            let in_memory = memory.put(put).await.unwrap().is_ok();
            assert_eq!(
                on_dynamo, in_memory,
                "{condition:?} on {what}: DynamoDB says {on_dynamo}, the simulation's table {in_memory}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 66);
}
