//! The SQS target against moto: records reach the FIFO queue with the entity
//! as message group and the event id as de-duplication id, as normalised
//! records, in per-entity generator order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use tideline_testkit::moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_target_enqueues_normalised_records_per_entity_in_order() {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{}.fifo", moto::unique("gen")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tideline-generator"))
        .args([
            "send",
            "--target",
            "sqs",
            "--queue-url",
            &queue_url,
            "--endpoint-url",
            &moto::endpoint(),
        ])
        .args([
            "--count",
            "60",
            "--entities",
            "4",
            "--seed",
            "7",
            "--profile",
            "orders",
            "--progress",
            "none",
            "--json",
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut by_entity: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut dedup_ids = HashSet::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let attrs = m.attributes.clone().unwrap_or_default();
            let group = attrs
                .get(&MessageSystemAttributeName::MessageGroupId)
                .cloned()
                .unwrap();
            let dedup = attrs
                .get(&MessageSystemAttributeName::MessageDeduplicationId)
                .cloned()
                .unwrap();
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            // The body is what the transform would enqueue: a normalised record.
            assert_eq!(body["entity_id"], group.as_str());
            // De-duplication is per entity: derived from (entity, event id).
            let expected = tideline_core::ids::queue_dedup_id(
                &tideline_core::EntityId::new(group.as_str()).unwrap(),
                &tideline_core::EventId::new(body["id"].as_str().unwrap()).unwrap(),
            );
            assert_eq!(expected, dedup);
            assert!(dedup_ids.insert(dedup));
            by_entity
                .entry(group)
                .or_default()
                .push(body["data"]["gen_seq"].as_u64().unwrap());
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(dedup_ids.len(), 60);
    for (entity, seqs) in by_entity {
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "{entity} in generator order"
        );
    }
}
