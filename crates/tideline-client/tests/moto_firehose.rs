//! `publish` and `publish_batch` against moto's Firehose (S3 destination):
//! the bytes that land in S3 are the bytes published, non-ASCII included;
//! behind the fault proxy a partly failed `PutRecordBatch` is completed by
//! re-sending only the failed records, so each record lands exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::HashMap;
use tideline_client::{Event, EventId, Publisher, RetryPolicy};
use tideline_testkit::fault_proxy::{Fault, FaultProxy, Rule};
use tideline_testkit::moto::{endpoint, sdk_config, unique};

const NON_ASCII: &str = "Zoë ✓ 日本 🚀";

/// A delivery stream writing to a new bucket. Returns (stream, bucket).
async fn stream_to_bucket(sdk: &aws_config::SdkConfig) -> (String, String) {
    use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
    let s3 = aws_sdk_s3::Client::new(sdk);
    let bucket = unique("tl-lake");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let stream = unique("tl-ingest");
    aws_sdk_firehose::Client::new(sdk)
        .create_delivery_stream()
        .delivery_stream_name(&stream)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::123456789012:role/firehose")
                .bucket_arn(format!("arn:aws:s3:::{bucket}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (stream, bucket)
}

/// Every object in the bucket, concatenated in key order.
async fn bucket_bytes(sdk: &aws_config::SdkConfig, bucket: &str) -> Vec<Vec<u8>> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut out = Vec::new();
    for o in listed.contents() {
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(o.key().unwrap())
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        out.push(body.to_vec());
    }
    out
}

/// Firehose concatenates records; split the objects back into JSON documents.
fn records_in(objects: &[Vec<u8>]) -> Vec<Value> {
    objects
        .iter()
        .flat_map(|o| {
            serde_json::Deserializer::from_slice(o)
                .into_iter::<Value>()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn record(n: usize) -> Event {
    Event::new(
        format!("order-{n}"),
        "OrderPlaced",
        json!({ "n": n, "name": NON_ASCII }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_bytes_reach_the_lake_byte_exact() {
    let sdk = sdk_config().await;
    let (stream, bucket) = stream_to_bucket(&sdk).await;
    let publisher = Publisher::firehose(aws_sdk_firehose::Client::new(&sdk), &stream);

    let one = record(0).to_bytes();
    let id = publisher.publish(one.clone()).await.unwrap();
    assert_eq!(id, EventId::derive(&one));
    assert_eq!(bucket_bytes(&sdk, &bucket).await, vec![one.clone()]);

    let batch: Vec<Vec<u8>> = (1..4).map(|n| record(n).to_bytes()).collect();
    let ids = publisher.publish_batch(batch.clone()).await;
    assert!(ids.iter().all(Result::is_ok));
    let mut objects = bucket_bytes(&sdk, &bucket).await;
    objects.retain(|o| o != &one);
    // One call, one object: the records end to end, byte for byte.
    assert_eq!(objects, vec![batch.concat()]);
    let text = String::from_utf8(objects[0].clone()).unwrap();
    assert_eq!(text.matches(NON_ASCII).count(), 3);

    // An unknown stream is a permanent refusal after one call.
    let lost = Publisher::firehose(aws_sdk_firehose::Client::new(&sdk), unique("tl-missing"));
    let e = lost.publish(record(9)).await.unwrap_err();
    assert_eq!(e.code(), "Rejected", "{e}");
    assert!(e.to_string().contains("ResourceNotFound"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_failed_put_record_batch_resends_only_the_failed_records() {
    let moto = sdk_config().await;
    let (stream, bucket) = stream_to_bucket(&moto).await;
    let proxy = FaultProxy::start(&endpoint(), 0x0b_0c).await;
    let partial = proxy.add(Rule::new("PutRecordBatch", Fault::PartialFailure).nth(&[1, 2]));
    let sdk = proxy.sdk_config().await;
    let publisher = Publisher::firehose(aws_sdk_firehose::Client::new(&sdk), &stream)
        .with_retry(RetryPolicy::fast(6));

    let batch: Vec<Vec<u8>> = (0..40).map(|n| record(n).to_bytes()).collect();
    let results = publisher.publish_batch(batch.clone()).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(proxy.injected(partial), 2);
    // Three calls: the first two partly failed, each later call carried only
    // what had failed, so moto saw every record exactly once.
    assert_eq!(proxy.forwarded("PutRecordBatch"), 3);
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for r in records_in(&bucket_bytes(&moto, &bucket).await) {
        assert_eq!(r["data"]["name"], NON_ASCII);
        *seen.entry(r["data"]["n"].as_u64().unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|&c| c == 1), "{seen:?}");
}
