//! The moto harness: the emulator, SDK clients for it, resources with the
//! shapes Terraform creates, and the parts of AWS that moto cannot run.
//!
//! - [`endpoint`]: `TIDELINE_MOTO_ENDPOINT`, or moto started once per test
//!   binary from `.venv/bin/moto_server` (installed by `scripts/moto.sh`) and
//!   stopped when the test process exits;
//! - [`sdk_config`]: explicit endpoint, region and dummy credentials, with no
//!   global environment changes, so tests can run in parallel; [`aws_env`]
//!   gives a child process (the `tideline` binary) the same;
//! - [`unique`]: resource names no two tests share;
//! - resources: [`create_event_table`] (the table contract),
//!   [`create_key_table`], [`create_fifo_queue`],
//!   [`create_bus_with_queue_target`], and all of the chain's at once
//!   ([`ChainResources`]);
//! - the event source mappings, which moto cannot run: [`firehose_event`]
//!   plays Firehose's transform invocation, [`receive_sqs_event`] and
//!   [`settle_sqs`] the FIFO mapping, [`StreamReader`] and
//!   [`stream_record_json`] the stream mapping; [`drain_bodies`] and
//!   [`receive_and_delete`] read what a bus rule's queue target received. They build the exact Lambda
//!   event JSON with the builders of [`crate::fixtures`], and the tests hand
//!   it to the handlers.

use crate::fixtures::{FirehoseEvent, RecordBytes, SqsRecord, StreamRecord};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// The account id in the ARNs the harness makes up (moto's default account).
pub const ACCOUNT: &str = "123456789012";

static ENDPOINT: OnceLock<String> = OnceLock::new();

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The moto endpoint, starting moto if needed.
pub fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| match std::env::var("TIDELINE_MOTO_ENDPOINT") {
            Ok(e) if !e.is_empty() => e,
            _ => start_moto(),
        })
        .clone()
}

fn start_moto() -> String {
    let server = repo_root().join(".venv/bin/moto_server");
    assert!(
        server.exists(),
        "moto is not installed at {}: run scripts/moto.sh (or set TIDELINE_MOTO_ENDPOINT to a running moto)",
        server.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A watchdog shell stops moto when this test process exits.
    let parent = std::process::id();
    let script = format!(
        "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m"
    );
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&server)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start moto_server");
    // The watchdog ends with this process; it is deliberately not waited on.
    std::mem::forget(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// SDK config for moto.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(&endpoint()).await
}

/// SDK config for another endpoint (the fault proxy in front of moto, or a
/// local stack's Firehose API), with the same region and dummy credentials.
pub async fn sdk_config_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// The environment a child process (the `tideline` binary) needs to reach
/// moto as [`sdk_config`] does: dummy credentials and the region. The
/// endpoint is left to the caller, who knows which variable the process reads
/// (`AWS_ENDPOINT_URL`, a per-service one, or a flag).
pub fn aws_env() -> [(&'static str, &'static str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
    ]
}

/// A unique resource name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Creates a table with the table contract (decision 0009): string `pk`/`sk`;
/// with `stream`, a NEW_AND_OLD_IMAGES stream whose ARN is returned.
pub async fn create_event_table(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    stream: bool,
) -> Option<String> {
    create_event_table_with(ddb, name, stream, false).await
}

fn attr(
    name: &str,
    kind: aws_sdk_dynamodb::types::ScalarAttributeType,
) -> aws_sdk_dynamodb::types::AttributeDefinition {
    aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .unwrap()
}

fn key(
    name: &str,
    kind: aws_sdk_dynamodb::types::KeyType,
) -> aws_sdk_dynamodb::types::KeySchemaElement {
    aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// As [`create_event_table`]; with `legacy_index`, also the numeric `seq`
/// attribute and the LSI `by-sequence` on (`pk`, `seq`) that tables created
/// before decision 0009 have.
pub async fn create_event_table_with(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    stream: bool,
    legacy_index: bool,
) -> Option<String> {
    use aws_sdk_dynamodb::types::*;
    let mut request = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range));
    if legacy_index {
        request = request
            .attribute_definitions(attr("seq", ScalarAttributeType::N))
            .local_secondary_indexes(
                LocalSecondaryIndex::builder()
                    .index_name("by-sequence")
                    .key_schema(key("pk", KeyType::Hash))
                    .key_schema(key("seq", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            );
    }
    if stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        );
    }
    let out = request.send().await.unwrap();
    out.table_description.and_then(|t| t.latest_stream_arn)
}

/// Creates a table with a string `pk` (and a string `sk` when `with_sk`), as
/// the Terraform `consumer` module (checkpoints) and the example (read model) create.
pub async fn create_key_table(ddb: &aws_sdk_dynamodb::Client, name: &str, with_sk: bool) {
    use aws_sdk_dynamodb::types::*;
    let mut request = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash));
    if with_sk {
        request = request
            .attribute_definitions(attr("sk", ScalarAttributeType::S))
            .key_schema(key("sk", KeyType::Range));
    }
    request.send().await.unwrap();
}

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

/// The resources of the whole chain, as Terraform makes them: the FIFO
/// queue, the event table with its stream, and a bus whose rule targets a
/// standard queue (so a test can read what the bus delivered).
pub struct ChainResources {
    /// The FIFO queue between transformer and storer.
    pub fifo_url: String,
    /// The event table.
    pub table: String,
    /// Its NEW_AND_OLD_IMAGES stream.
    pub stream_arn: String,
    /// The custom bus the emitter publishes to.
    pub bus: String,
    /// The standard queue the bus's rule targets.
    pub target_url: String,
}

impl ChainResources {
    /// Creates a fresh set on moto, through `sdk`.
    pub async fn create(sdk: &SdkConfig) -> Self {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let eb = aws_sdk_eventbridge::Client::new(sdk);
        let fifo_url = create_fifo_queue(&sqs).await;
        let table = unique("tl-events");
        let stream_arn = create_event_table(&ddb, &table, true).await.unwrap();
        let (bus, target_url) = create_bus_with_queue_target(&eb, &sqs).await;
        Self {
            fifo_url,
            table,
            stream_arn,
            bus,
            target_url,
        }
    }
}

/// Firehose's transform invocation for these records, as it happens now: a
/// unique invocation id, arrival time now, record ids `rec-0000`, `rec-0001`, ….
pub fn firehose_event<R: RecordBytes>(records: &[R]) -> Value {
    FirehoseEvent::new()
        .invocation_id(unique("inv"))
        .arrived_at_ms(chrono::Utc::now().timestamp_millis())
        .record_ids(|i| format!("rec-{i:04}"))
        .build(records)
}

/// A received SQS message, in the Lambda event record shape.
pub fn sqs_record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    SqsRecord {
        message_id: m.message_id().map(str::to_string),
        receipt_handle: m.receipt_handle().map(str::to_string),
        body: m.body().map(str::to_string),
        attributes: m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                    .collect()
            })
            .unwrap_or_default(),
        md5_of_body: m.md5_of_body().map(str::to_string),
        queue_arn: queue_arn.to_string(),
    }
    .to_json()
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
        "arn:aws:sqs:{REGION}:{ACCOUNT}:{}",
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

/// One receive from a (standard) queue, up to 10 messages, each deleted
/// once received; their bodies in receive order (none when it was empty).
pub async fn receive_and_delete(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for m in out.messages.unwrap_or_default() {
        bodies.push(m.body().unwrap_or_default().to_string());
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    bodies
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
        let got = receive_and_delete(sqs, url).await;
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bodies.extend(got);
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
    /// A reader at the trim horizon of every shard of the stream `arn`.
    pub async fn new(sdk: &SdkConfig, arn: &str) -> Self {
        Self::with_client(aws_sdk_dynamodbstreams::Client::new(sdk), arn).await
    }

    /// The same with a given client (a function's role, an interceptor).
    pub async fn with_client(client: aws_sdk_dynamodbstreams::Client, arn: &str) -> Self {
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

/// A DynamoDB item (a stream image or keys) as DynamoDB JSON.
pub fn item_json(item: &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attr_json(v)))
            .collect(),
    )
}

/// A stream record read from moto, in the exact shape the Lambda event source delivers.
pub fn stream_record_json(r: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let d = r.dynamodb().unwrap();
    StreamRecord {
        event_id: r.event_id().unwrap_or_default().to_string(),
        event_name: r
            .event_name()
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        event_version: r.event_version().unwrap_or("1.1").to_string(),
        region: r.aws_region().unwrap_or(REGION).to_string(),
        approximate_creation: d
            .approximate_creation_date_time()
            .map_or(0.0, |t| t.as_secs_f64()),
        keys: d.keys().map(item_json),
        new_image: d.new_image().map(item_json),
        old_image: d.old_image().map(item_json),
        sequence_number: d.sequence_number().unwrap_or_default().to_string(),
        size_bytes: d.size_bytes().unwrap_or(0),
        stream_arn: arn.to_string(),
        user_identity: r.user_identity().map(|u| {
            (
                u.r#type().unwrap_or_default().to_string(),
                u.principal_id().unwrap_or_default().to_string(),
            )
        }),
    }
    .to_json()
}
