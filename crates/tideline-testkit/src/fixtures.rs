//! Fixture builders: producer records, Firehose `PutRecordBatch` bodies, and
//! the Lambda events the event sources deliver (a Firehose transform
//! invocation, an SQS batch, a DynamoDB stream batch).
//!
//! Each builder's defaults are fixed values shaped as AWS documents them
//! (AWS-CONTRACTS.md), so a test names only what it is about. The JSON keys
//! come out in a fixed order, so the same builder call always gives the same
//! bytes (and so the same derived event ids).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Map, Value, json};

/// The delivery stream the local Firehose API answers to by default.
pub const STREAM_NAME: &str = "tideline-ingest";

/// Standard base64, as Firehose carries record data.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Anything a test sends as a record: raw bytes, text, a JSON value (sent as
/// its compact text) or a [`ProducerRecord`].
pub trait RecordBytes {
    /// The record's bytes, as the producer puts them.
    fn record_bytes(&self) -> Vec<u8>;
}

impl RecordBytes for [u8] {
    fn record_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl RecordBytes for Vec<u8> {
    fn record_bytes(&self) -> Vec<u8> {
        self.clone()
    }
}

impl RecordBytes for str {
    fn record_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl RecordBytes for String {
    fn record_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl RecordBytes for Value {
    fn record_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl<T: RecordBytes + ?Sized> RecordBytes for &T {
    fn record_bytes(&self) -> Vec<u8> {
        (**self).record_bytes()
    }
}

/// A producer record (the ingest contract): `entity_id`, `type`, then `id`,
/// `occurred_at` and other fields when set, then `data` (`{}` unless set).
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRecord {
    entity_id: String,
    event_type: String,
    id: Option<String>,
    occurred_at: Option<String>,
    fields: Vec<(String, Value)>,
    data: Value,
}

/// A producer record of `entity_id` and `event_type`; see [`ProducerRecord`].
pub fn record(entity_id: impl Into<String>, event_type: impl Into<String>) -> ProducerRecord {
    ProducerRecord {
        entity_id: entity_id.into(),
        event_type: event_type.into(),
        id: None,
        occurred_at: None,
        fields: Vec::new(),
        data: json!({}),
    }
}

impl ProducerRecord {
    /// The producer's event id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// When it happened (RFC 3339).
    pub fn occurred_at(mut self, at: impl Into<String>) -> Self {
        self.occurred_at = Some(at.into());
        self
    }

    /// Any other field of the contract (`traceparent`, `test`, …), after
    /// `occurred_at` and before `data`, in the order set.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// The payload.
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// The record as JSON.
    pub fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("entity_id".into(), json!(self.entity_id));
        m.insert("type".into(), json!(self.event_type));
        if let Some(id) = &self.id {
            m.insert("id".into(), json!(id));
        }
        if let Some(at) = &self.occurred_at {
            m.insert("occurred_at".into(), json!(at));
        }
        for (k, v) in &self.fields {
            m.insert(k.clone(), v.clone());
        }
        m.insert("data".into(), self.data.clone());
        Value::Object(m)
    }

    /// The record's bytes: its compact JSON text.
    pub fn bytes(&self) -> Vec<u8> {
        self.json().to_string().into_bytes()
    }
}

impl RecordBytes for ProducerRecord {
    fn record_bytes(&self) -> Vec<u8> {
        self.bytes()
    }
}

/// A Firehose `PutRecordBatch` request body for [`STREAM_NAME`], as an AWS
/// SDK sends it (`Data` base64).
pub fn put_record_batch_body<R: RecordBytes>(records: &[R]) -> Value {
    json!({
        "DeliveryStreamName": STREAM_NAME,
        "Records": records
            .iter()
            .map(|r| json!({"Data": b64(r.record_bytes())}))
            .collect::<Vec<_>>(),
    })
}

/// A Lambda invocation of `payload`, read as the runtime reads it, with a
/// default context.
pub fn lambda<T: serde::de::DeserializeOwned>(payload: Value) -> LambdaEvent<T> {
    LambdaEvent::new(serde_json::from_value(payload).unwrap(), Context::default())
}

/// The record ids Firehose gives by default: a 56-digit number, `-`, the index.
fn firehose_record_id(i: usize) -> String {
    format!("49546986683135544286507457936321625675700192471156785154-{i}")
}

/// A Firehose data-transformation invocation (AWS-CONTRACTS.md, Firehose):
/// `{invocationId, deliveryStreamArn, region, records: [{recordId,
/// approximateArrivalTimestamp, data}]}`.
pub struct FirehoseEvent {
    invocation_id: String,
    arrived_at_ms: i64,
    record_id: Box<dyn Fn(usize) -> String>,
}

impl Default for FirehoseEvent {
    fn default() -> Self {
        Self::new()
    }
}

impl FirehoseEvent {
    /// Invocation `inv-1` of the `tideline` stream in us-east-1, every record
    /// arrived at 2026-11-23T08:00:00Z, record ids as Firehose makes them
    /// (`49546…154-<index>`).
    pub fn new() -> Self {
        Self {
            invocation_id: "inv-1".into(),
            arrived_at_ms: 1_795_420_800_000,
            record_id: Box::new(firehose_record_id),
        }
    }

    /// Another invocation id.
    pub fn invocation_id(mut self, id: impl Into<String>) -> Self {
        self.invocation_id = id.into();
        self
    }

    /// Another arrival time, in epoch milliseconds.
    pub fn arrived_at_ms(mut self, ms: i64) -> Self {
        self.arrived_at_ms = ms;
        self
    }

    /// Record ids from the record's index.
    pub fn record_ids(mut self, id: impl Fn(usize) -> String + 'static) -> Self {
        self.record_id = Box::new(id);
        self
    }

    /// The event carrying `records`, in order.
    pub fn build<R: RecordBytes>(&self, records: &[R]) -> Value {
        json!({
            "invocationId": self.invocation_id,
            "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/tideline",
            "region": "us-east-1",
            "records": records.iter().enumerate().map(|(i, r)| json!({
                "recordId": (self.record_id)(i),
                "approximateArrivalTimestamp": self.arrived_at_ms,
                "data": b64(r.record_bytes()),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The queue of [`SqsRecord::fifo`] messages.
const FIFO_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:tideline-events.fifo";

/// One record of a Lambda SQS event.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsRecord {
    /// `messageId`.
    pub message_id: Option<String>,
    /// `receiptHandle`.
    pub receipt_handle: Option<String>,
    /// `body`.
    pub body: Option<String>,
    /// `attributes`: the system attributes, in this order.
    pub attributes: Map<String, Value>,
    /// `md5OfBody`.
    pub md5_of_body: Option<String>,
    /// `eventSourceARN`: the queue.
    pub queue_arn: String,
}

impl SqsRecord {
    /// A message of the FIFO queue, received once: group `group`, the
    /// de-duplication id and the receipt handle (`rh-<id>`) from `id`.
    pub fn fifo(id: &str, group: &str, body: &str) -> Self {
        let attributes = [
            ("ApproximateReceiveCount", "1"),
            ("SentTimestamp", "1795420800000"),
            ("MessageGroupId", group),
            ("MessageDeduplicationId", id),
            ("SequenceNumber", "18849496460467696128"),
        ];
        Self {
            message_id: Some(id.into()),
            receipt_handle: Some(format!("rh-{id}")),
            body: Some(body.into()),
            attributes: attributes
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
            md5_of_body: Some("x".into()),
            queue_arn: FIFO_QUEUE_ARN.into(),
        }
    }

    /// The record as the event source mapping delivers it.
    pub fn to_json(&self) -> Value {
        json!({
            "messageId": self.message_id,
            "receiptHandle": self.receipt_handle,
            "body": self.body,
            "attributes": self.attributes,
            "messageAttributes": {},
            "md5OfBody": self.md5_of_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": "us-east-1",
        })
    }
}

/// A Lambda SQS event of these records.
pub fn sqs_event(records: impl IntoIterator<Item = SqsRecord>) -> Value {
    json!({"Records": records.into_iter().map(|r| r.to_json()).collect::<Vec<_>>()})
}

/// One record of a Lambda DynamoDB Streams event (view type NEW_AND_OLD_IMAGES).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// `eventID`.
    pub event_id: String,
    /// `eventName`: `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    /// `eventVersion`.
    pub event_version: String,
    /// `awsRegion`.
    pub region: String,
    /// `dynamodb.ApproximateCreationDateTime`, epoch seconds.
    pub approximate_creation: f64,
    /// `dynamodb.Keys`, DynamoDB JSON.
    pub keys: Option<Value>,
    /// `dynamodb.NewImage`, DynamoDB JSON.
    pub new_image: Option<Value>,
    /// `dynamodb.OldImage`, DynamoDB JSON.
    pub old_image: Option<Value>,
    /// `dynamodb.SequenceNumber`.
    pub sequence_number: String,
    /// `dynamodb.SizeBytes`.
    pub size_bytes: i64,
    /// `eventSourceARN`: the stream.
    pub stream_arn: String,
    /// `userIdentity` (`type`, `principalId`): set on a TTL removal.
    pub user_identity: Option<(String, String)>,
}

impl StreamRecord {
    /// A change `event_name` at `sequence_number` (event id `id-<sequence
    /// number>`) of table `t`'s stream, with empty keys and no images.
    pub fn new(event_name: &str, sequence_number: &str) -> Self {
        Self {
            event_id: format!("id-{sequence_number}"),
            event_name: event_name.into(),
            event_version: "1.1".into(),
            region: "us-east-1".into(),
            approximate_creation: 1_795_420_800.0,
            keys: Some(json!({})),
            new_image: None,
            old_image: None,
            sequence_number: sequence_number.into(),
            size_bytes: 100,
            stream_arn:
                "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-23T00:00:00.000"
                    .into(),
            user_identity: None,
        }
    }

    /// The item after the change.
    pub fn new_image(mut self, image: Value) -> Self {
        self.new_image = Some(image);
        self
    }

    /// The item before the change.
    pub fn old_image(mut self, image: Value) -> Self {
        self.old_image = Some(image);
        self
    }

    /// Made by TTL expiry: `userIdentity` is the DynamoDB service (AWS-CONTRACTS.md, Streams).
    pub fn removed_by_ttl(mut self) -> Self {
        self.user_identity = Some(("Service".into(), "dynamodb.amazonaws.com".into()));
        self
    }

    /// The record as the event source mapping delivers it.
    pub fn to_json(&self) -> Value {
        let mut change = Map::new();
        change.insert(
            "ApproximateCreationDateTime".into(),
            json!(self.approximate_creation),
        );
        if let Some(k) = &self.keys {
            change.insert("Keys".into(), k.clone());
        }
        if let Some(n) = &self.new_image {
            change.insert("NewImage".into(), n.clone());
        }
        if let Some(o) = &self.old_image {
            change.insert("OldImage".into(), o.clone());
        }
        change.insert("SequenceNumber".into(), json!(self.sequence_number));
        change.insert("SizeBytes".into(), json!(self.size_bytes));
        change.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
        let mut record = json!({
            "eventID": self.event_id,
            "eventName": self.event_name,
            "eventVersion": self.event_version,
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": Value::Object(change),
            "eventSourceARN": self.stream_arn,
        });
        if let Some((kind, principal)) = &self.user_identity {
            record["userIdentity"] = json!({"type": kind, "principalId": principal});
        }
        record
    }
}

/// A Lambda DynamoDB Streams event of these records (each already JSON, as
/// [`StreamRecord::to_json`] or the moto harness's reader gives them).
pub fn stream_event(records: impl IntoIterator<Item = Value>) -> Value {
    json!({"Records": records.into_iter().collect::<Vec<_>>()})
}

/// The event a record becomes at ingest now, with the default contract
/// (what a store's tests append).
pub fn new_event<R: RecordBytes + ?Sized>(record: &R) -> tideline_core::NewEvent {
    tideline_core::ingest::normalize_record(
        &tideline_core::ingest::IngestConfig::default(),
        &record.record_bytes(),
        chrono::Utc::now(),
    )
    .unwrap()
}

/// An integration event as the bus delivers it to a consumer (EventBridge's
/// envelope around Tideline's `detail`: `metadata` and `data`).
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    entity_id: String,
    sequence: u64,
    id: String,
    detail_type: String,
    time: String,
    test: bool,
    traceparent: Option<String>,
    data: Value,
}

impl BusEvent {
    /// Event `<entity>-<sequence>` of type `T`, bus id `x`, times `t`, not a
    /// test event, no trace, data `{}`.
    pub fn new(entity_id: &str, sequence: u64) -> Self {
        Self {
            entity_id: entity_id.into(),
            sequence,
            id: "x".into(),
            detail_type: "T".into(),
            time: "t".into(),
            test: false,
            traceparent: None,
            data: json!({}),
        }
    }

    /// The bus's event id (`id`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The event type: `detail-type` and `metadata.event_type`.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.detail_type = event_type.into();
        self
    }

    /// The bus's `time`.
    pub fn time(mut self, time: impl Into<String>) -> Self {
        self.time = time.into();
        self
    }

    /// `metadata.test`.
    pub fn test(mut self, test: bool) -> Self {
        self.test = test;
        self
    }

    /// `metadata.traceparent`.
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// `data`.
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// The event JSON.
    pub fn to_json(&self) -> Value {
        let mut metadata = json!({
            "event_id": format!("{}-{}", self.entity_id, self.sequence),
            "event_type": self.detail_type, "schema_version": 1,
            "entity_id": self.entity_id, "sequence": self.sequence,
            "occurred_at": "t", "stored_at": "t",
            "correlation_id": null, "test": self.test,
        });
        if let Some(t) = &self.traceparent {
            metadata["traceparent"] = json!(t);
        }
        json!({
            "version": "0", "id": self.id, "detail-type": self.detail_type,
            "source": "tideline", "time": self.time,
            "detail": {"metadata": metadata, "data": self.data},
        })
    }

    /// The event, read as type `T` (a consumer's `IntegrationEvent<…>`).
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.to_json()).unwrap()
    }
}

/// The `default` of the root Terraform module's variable `name`, as written
/// in `terraform/variables.tf` (`10`, `0.3`, `true`, `null`): the tests that
/// hold a Rust default equal to the module's read it here.
pub fn terraform_default(name: &str) -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../terraform/variables.tf");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = text
        .find(&format!("variable \"{name}\""))
        .unwrap_or_else(|| panic!("variable {name} is not in {}", path.display()));
    let line = text[start..]
        .lines()
        .find(|l| l.trim_start().starts_with("default"))
        .unwrap_or_else(|| panic!("variable {name} has no default"));
    line.split('=')
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string()
}
