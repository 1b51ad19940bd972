//! Test support for the moto-backed tests: the emulator's endpoint, SDK
//! config with dummy credentials, uniquely named resources, and the harness
//! that plays the Lambda event source mappings (moto cannot run Lambdas):
//! it receives from SQS or reads the stream, builds the exact Lambda event
//! JSON, and the tests hand that to the handlers.
//!
//! The endpoint comes from `TIDELINE_MOTO_ENDPOINT`; when unset, moto is
//! started once per test binary from `.venv/bin/moto_server` (install it with
//! `scripts/moto.sh`) and stopped when the test process exits.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

// The emulator, SDK config and unique names are shared by every moto-backed test.
pub use aws_config::SdkConfig;
pub use tideline_testkit::{REGION, endpoint, sdk_config, unique};

/// Creates a FIFO queue; returns its URL.
pub async fn create_fifo_queue(sqs: &aws_sdk_sqs::Client) -> String {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    sqs.create_queue()
        .queue_name(format!("{}.fifo", unique("tl-in")))
        .attributes(A::FifoQueue, "true")
        .attributes(A::ContentBasedDeduplication, "false")
        .attributes(A::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// The table contract with its NEW_AND_OLD_IMAGES stream. Returns the stream ARN.
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, name: &str) -> String {
    tideline_testkit::create_event_table(ddb, name, true)
        .await
        .unwrap()
}

/// A custom bus with a rule (`source` = `tideline`) targeting a new standard
/// queue. Returns (bus name, target queue URL).
pub async fn create_bus_with_queue_target(
    eb: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
) -> (String, String) {
    let bus = unique("tl-bus");
    eb.create_event_bus().name(&bus).send().await.unwrap();
    let url = sqs
        .create_queue()
        .queue_name(unique("tl-target"))
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
        .unwrap()
        .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap()
        .clone();
    let rule = unique("tl-rule");
    eb.put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["tideline"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
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
    (bus, url)
}

/// A Firehose transformation event for these records.
pub fn firehose_event(records: &[&[u8]]) -> Value {
    use base64::Engine;
    let now_ms = chrono::Utc::now().timestamp_millis();
    json!({
        "invocationId": unique("inv"),
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/tideline",
        "region": REGION,
        "records": records.iter().enumerate().map(|(i, r)| json!({
            "recordId": format!("rec-{i:04}"),
            "approximateArrivalTimestamp": now_ms,
            "data": base64::engine::general_purpose::STANDARD.encode(r),
        })).collect::<Vec<_>>(),
    })
}

/// A received SQS message, in the Lambda event record shape.
pub fn sqs_record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    let attributes: HashMap<String, String> = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    })
}

/// The event source mapping for a FIFO queue, one poll: up to 10 messages,
/// as the Lambda SQS event JSON, with the received messages.
pub async fn receive_sqs_event(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> (Value, Vec<aws_sdk_sqs::types::Message>) {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = out.messages.unwrap_or_default();
    let arn = format!(
        "arn:aws:sqs:{REGION}:123456789012:{}",
        url.rsplit('/').next().unwrap()
    );
    let records: Vec<Value> = messages.iter().map(|m| sqs_record(m, &arn)).collect();
    (json!({ "Records": records }), messages)
}

/// After the handler: delete what it did not report (the mapping's job), and
/// make reported messages visible again at once.
pub async fn settle_sqs(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[aws_sdk_sqs::types::Message],
    failed_ids: &[String],
) {
    for m in messages {
        let handle = m.receipt_handle().unwrap();
        if failed_ids
            .iter()
            .any(|f| Some(f.as_str()) == m.message_id())
        {
            sqs.change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        } else {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(handle)
                .send()
                .await
                .unwrap();
        }
    }
}

/// Receives everything from a (standard) queue until `n` messages arrived or
/// the timeout passes; deletes them. Returns the bodies in receive order.
pub async fn drain_bodies(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    n: usize,
    timeout: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut bodies = Vec::new();
    while bodies.len() < n && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for m in messages {
            bodies.push(m.body().unwrap_or_default().to_string());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    bodies
}

/// Reads a DynamoDB stream from the start, as the event source mapping does.
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    iterators: Vec<Option<String>>,
}

impl StreamReader {
    pub async fn new(sdk: &SdkConfig, arn: &str) -> Self {
        let client = aws_sdk_dynamodbstreams::Client::new(sdk);
        let desc = client
            .describe_stream()
            .stream_arn(arn)
            .send()
            .await
            .unwrap();
        let mut iterators = Vec::new();
        for shard in desc.stream_description.unwrap().shards() {
            let it = client
                .get_shard_iterator()
                .stream_arn(arn)
                .shard_id(shard.shard_id().unwrap())
                .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator;
            iterators.push(it);
        }
        Self {
            client,
            arn: arn.to_string(),
            iterators,
        }
    }

    /// Everything new on every shard, as Lambda event records (stream order per shard).
    pub async fn read(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        for it in &mut self.iterators {
            let Some(current) = it.clone() else { continue };
            let page = self
                .client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            for r in page.records() {
                out.push(stream_record_json(r, &self.arn));
            }
            *it = page.next_shard_iterator;
        }
        out
    }
}

/// A DynamoDB attribute value as DynamoDB JSON.
pub fn attr_json(v: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match v {
        A::S(s) => json!({ "S": s }),
        A::N(n) => json!({ "N": n }),
        A::Bool(b) => json!({ "BOOL": b }),
        A::Null(b) => json!({ "NULL": b }),
        A::Ss(v) => json!({ "SS": v }),
        A::Ns(v) => json!({ "NS": v }),
        A::L(v) => json!({ "L": v.iter().map(attr_json).collect::<Vec<_>>() }),
        A::M(m) => json!({ "M": item_json(m) }),
        other => panic!("unsupported attribute in test: {other:?}"),
    }
}

pub fn item_json(item: &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attr_json(v)))
            .collect(),
    )
}

/// A stream record in the exact shape the Lambda event source delivers.
pub fn stream_record_json(r: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let d = r.dynamodb().unwrap();
    let mut change = serde_json::Map::new();
    change.insert(
        "ApproximateCreationDateTime".into(),
        json!(
            d.approximate_creation_date_time()
                .map_or(0.0, |t| t.as_secs_f64())
        ),
    );
    if let Some(k) = d.keys() {
        change.insert("Keys".into(), item_json(k));
    }
    if let Some(n) = d.new_image() {
        change.insert("NewImage".into(), item_json(n));
    }
    if let Some(o) = d.old_image() {
        change.insert("OldImage".into(), item_json(o));
    }
    change.insert("SequenceNumber".into(), json!(d.sequence_number()));
    change.insert("SizeBytes".into(), json!(d.size_bytes().unwrap_or(0)));
    change.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
    let mut rec = json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region().unwrap_or(REGION),
        "dynamodb": Value::Object(change),
        "eventSourceARN": arn,
    });
    if let Some(u) = r.user_identity() {
        rec["userIdentity"] = json!({ "type": u.r#type(), "principalId": u.principal_id() });
    }
    rec
}
