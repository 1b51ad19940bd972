//! `tideline replay --aws` and `tideline consumer reset --aws` against moto:
//! stored events are re-emitted to the bus marked `replay`, in order per
//! entity, reach a rule's SQS target; a reset clears a consumer's checkpoint.
//! A time window finds its entities in the data lake (`--lake`), never by
//! scanning the table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tideline_consumer::{CheckpointStore, CheckpointUpdate, DynamoCheckpoints};
use tideline_core::{EntityId, ExpectedSeq};
use tideline_stages::EventStore;
use tideline_testkit::fixtures::{new_event, record};
use tideline_testkit::moto;

fn tideline(args: &[&str]) -> std::process::Output {
    tideline_testkit::cli::run_on_moto(env!("CARGO_BIN_EXE_tideline"), args)
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, n: usize) -> Vec<Value> {
    let bodies = moto::drain_bodies(sqs, url, n, Duration::from_secs(20)).await;
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect()
}

fn by_entity(events: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut map: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in events {
        let m = &e["detail"]["metadata"];
        assert_eq!(m["replay"], true, "{e}");
        map.entry(m["entity_id"].as_str().unwrap().to_string())
            .or_default()
            .push(m["sequence"].as_u64().unwrap());
    }
    for seqs in map.values_mut() {
        seqs.sort();
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_to_eventbridge_and_reset_a_checkpoint_on_aws() {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("events");
    moto::create_event_table(&ddb, &table, false).await;
    let store = tideline_aws::DynamoStore::new(ddb.clone(), &table);
    // The data lake, as Firehose writes it: every accepted record, a JSON
    // line, under events/ (what a replay by time window reads its entities from).
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let lake_bucket = moto::unique("lake");
    s3.create_bucket()
        .bucket(&lake_bucket)
        .send()
        .await
        .unwrap();
    let mut lake_lines = String::new();
    for (entity, n) in [("order-1", 3), ("order-2", 2)] {
        let events: Vec<_> = (0..n)
            .map(|i| {
                new_event(
                    &record(entity, "OrderNoted")
                        .id(format!("{entity}-{i}"))
                        .data(json!({"i": i})),
                )
            })
            .collect();
        for e in &events {
            lake_lines += &(serde_json::to_string(e).unwrap() + "\n");
        }
        store
            .append(
                &EntityId::new(entity).unwrap(),
                events,
                ExpectedSeq::Exactly(0),
            )
            .await
            .unwrap();
    }
    s3.put_object()
        .bucket(&lake_bucket)
        .key(format!(
            "lake/{}tideline-ingest-1-part",
            tideline_core::lake_layout::events_dir("OrderNoted", "2026-11-23T08:00:00Z")
        ))
        .body(lake_lines.into_bytes().into())
        .send()
        .await
        .unwrap();
    let lake = format!("s3://{lake_bucket}/lake");

    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (bus, url) = moto::create_bus_with_queue_target(&events, &sqs).await;

    // By entity and sequence range.
    let out = tideline(&[
        "replay",
        "--aws",
        "--table",
        &table,
        "--bus",
        &bus,
        "--entity",
        "order-1",
        "--from-seq",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = by_entity(&drain(&sqs, &url, 2).await);
    assert_eq!(got, BTreeMap::from([("order-1".to_string(), vec![2, 3])]));

    // By time window: every entity, in full.
    let out = tideline(&[
        "replay",
        "--aws",
        "--table",
        &table,
        "--bus",
        &bus,
        "--since",
        "2000-01-01T00:00:00Z",
        "--until",
        "2100-01-01T00:00:00Z",
        "--lake",
        &lake,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = by_entity(&drain(&sqs, &url, 5).await);
    assert_eq!(
        got,
        BTreeMap::from([
            ("order-1".to_string(), vec![1, 2, 3]),
            ("order-2".to_string(), vec![1, 2])
        ])
    );

    // A consumer's checkpoint, reset for one entity.
    let checkpoints_table = moto::unique("checkpoints");
    moto::create_key_table(&ddb, &checkpoints_table, true).await;
    let checkpoints = DynamoCheckpoints::new(ddb.clone(), &checkpoints_table);
    for entity in ["order-1", "order-2"] {
        let advance = CheckpointUpdate::Advance {
            expected: 0,
            to: 2,
            unbuffer: None,
            accepted_gap: false,
        };
        checkpoints
            .commit("reader", entity, advance, None)
            .await
            .unwrap();
    }
    let out = tideline(&[
        "consumer",
        "reset",
        "--consumer",
        "reader",
        "--entity",
        "order-1",
        "--aws",
        "--table",
        &checkpoints_table,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        checkpoints
            .load("reader", "order-1")
            .await
            .unwrap()
            .last_sequence,
        0
    );
    assert_eq!(
        checkpoints
            .load("reader", "order-2")
            .await
            .unwrap()
            .last_sequence,
        2
    );
}
