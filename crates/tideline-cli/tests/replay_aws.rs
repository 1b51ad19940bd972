//! `tideline replay --aws` and `tideline consumer reset --aws` against moto:
//! stored events are re-emitted to the bus marked `replay`, in order per
//! entity, reach a rule's SQS target; a reset clears a consumer's checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use tideline_consumer::{CheckpointStore, CheckpointUpdate, DynamoCheckpoints};
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_core::{EntityId, ExpectedSeq};
use tideline_ports::EventStore;

fn tideline(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(args)
        .env("AWS_ENDPOINT_URL", tideline_testkit::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
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
    let sdk = tideline_testkit::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = tideline_testkit::unique("events");
    tideline_testkit::create_event_table(&ddb, &table, false).await;
    let store = tideline_aws::DynamoStore::new(ddb.clone(), &table);
    for (entity, n) in [("order-1", 3), ("order-2", 2)] {
        let events = (0..n)
            .map(|i| {
                let rec = json!({"entity_id": entity, "type": "OrderNoted", "id": format!("{entity}-{i}"), "data": {"i": i}});
                normalize_record(&IngestConfig::default(), rec.to_string().as_bytes(), chrono::Utc::now()).unwrap()
            })
            .collect();
        store
            .append(
                &EntityId::new(entity).unwrap(),
                events,
                ExpectedSeq::Exactly(0),
            )
            .await
            .unwrap();
    }

    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let bus = tideline_testkit::unique("bus");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let url = sqs
        .create_queue()
        .queue_name(tideline_testkit::unique("target"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let rule = tideline_testkit::unique("rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(json!({"source": ["tideline"]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

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
    let got = by_entity(&drain(&sqs, &url).await);
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
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = by_entity(&drain(&sqs, &url).await);
    assert_eq!(
        got,
        BTreeMap::from([
            ("order-1".to_string(), vec![1, 2, 3]),
            ("order-2".to_string(), vec![1, 2])
        ])
    );

    // A consumer's checkpoint, reset for one entity.
    let checkpoints_table = tideline_testkit::unique("checkpoints");
    ddb.create_table()
        .table_name(&checkpoints_table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
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
