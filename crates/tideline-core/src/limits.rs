//! One model of every hop's limits.
//!
//! A record crosses Firehose, the transformer's Lambda response, SQS FIFO,
//! DynamoDB, the stream, PutEvents and a consumer. Each hop has limits, and a
//! record that one hop accepts but a later one cannot carry is lost at that
//! later hop, far from the producer. So every limit lives here, once, with its
//! AWS source and today's value, and ingest ([`crate::ingest::admit`]) refuses
//! every record that some later hop could not carry, with a reason that names
//! the limit and the hop (INVARIANTS.md #1). Local mode's adapters enforce the
//! same values, so a local test fails where AWS would.
//!
//! Where AWS lets users change a limit (the queue's `MaximumMessageSize`,
//! PutEvents' request size, which AWS raised in January 2026), it is a field of
//! [`HopLimits`] with today's value as the default. `docs/limits.md` lists each
//! limit, its source, and where it is enforced.

use serde_json::Value;
use std::fmt;

/// Firehose `PutRecord`/`PutRecordBatch`: a record is at most 1,000 KiB before base64.
pub const FIREHOSE_RECORD_BYTES: usize = 1_000 * 1024;
/// Firehose `PutRecordBatch`: at most 500 records per call.
pub const FIREHOSE_BATCH_RECORDS: usize = 500;
/// Firehose `PutRecordBatch`: at most 4 MiB per call.
pub const FIREHOSE_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Lambda: a synchronous invocation's request and response are each at most
/// 6 MB; a Firehose transformation response counts.
pub const LAMBDA_PAYLOAD_BYTES: usize = 6 * 1000 * 1000;
/// SQS: `MessageGroupId` and `MessageDeduplicationId` are 1–128 characters.
pub const SQS_ID_CHARS: usize = 128;
/// SQS: at most 10 entries per `SendMessageBatch`/`ReceiveMessage`/`DeleteMessageBatch`.
pub const SQS_BATCH_ENTRIES: usize = 10;
/// SQS: the Terraform provider's default `max_message_size` for `aws_sqs_queue`
/// (256 KiB); AWS allows up to 1 MiB since January 2026. The queue's configured
/// value is what counts, so it is a setting.
pub const DEFAULT_SQS_MESSAGE_BYTES: usize = 256 * 1024;
/// SQS: the largest `MaximumMessageSize` a queue can have (1 MiB since January 2026).
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// SQS: a `SendMessageBatch` call's total payload (the sum of its bodies).
pub const SQS_BATCH_BYTES: usize = 1024 * 1024;
/// DynamoDB: an item is at most 400 KB, attribute names included.
pub const DYNAMODB_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB: what a local secondary index adds to each projected item: the
/// index key and 100 bytes of overhead (`by-sequence` projects ALL).
pub const DYNAMODB_LSI_OVERHEAD_BYTES: usize = 100;
/// DynamoDB: `TransactWriteItems` takes at most 100 actions.
pub const DYNAMODB_TRANSACTION_ACTIONS: usize = 100;
/// DynamoDB: `TransactWriteItems` carries at most 4 MB.
pub const DYNAMODB_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// DynamoDB: a Query page is at most 1 MB.
pub const DYNAMODB_QUERY_PAGE_BYTES: usize = 1024 * 1024;
/// EventBridge PutEvents: at most 10 entries per call.
pub const PUT_EVENTS_ENTRIES: usize = 10;
/// EventBridge PutEvents: total request size; 1 MB since January 2026 (it was 256 KB).
pub const DEFAULT_PUT_EVENTS_REQUEST_BYTES: usize = 1024 * 1024;
/// EventBridge PutEvents: `DetailType` is 1–128 characters.
pub const DETAIL_TYPE_CHARS: usize = 128;
/// EventBridge PutEvents: `Source` is 1–256 characters.
pub const SOURCE_CHARS: usize = 256;
/// The deepest JSON that serde_json (every Rust reader along the way: the
/// storer, the emitter, the local dispatcher, Rust consumers) parses: its
/// recursion limit is 128, so a document 128 levels deep fails and 127 parses.
/// EventBridge itself accepts 1,100 levels, so Rust readers are the binding hop.
pub const JSON_READER_DEPTH: usize = 127;
/// The deepest wrapper any hop puts around a record's `data`: a bundled bus
/// event's `detail.events[i].data` (event → detail → events → entry → data).
/// A plain bus event adds 2, the queue message 1, the stored item 0 (`data`
/// is stored as JSON text).
pub const ENVELOPE_DEPTH: usize = 4;
/// The `seq` ingest sizes a record's stored item with: the widest there is.
pub const WORST_CASE_SEQ: u64 = u64::MAX;
/// `detail-type` of a bundle entry ([`crate::bundle`]). Rules that should
/// receive bundles match on it; an event type of this name is reserved (ingest
/// refuses it), so a consumer can tell a bundle from a plain event by
/// `detail-type` alone. It lives here, with the bus's other names and numbers,
/// because both ingest and the emit side's bundles use it.
pub const BUNDLE_DETAIL_TYPE: &str = "TidelineBundle";

/// A limit, named by the hop that imposes it. Its `Display` is what a refusal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Firehose's per-record size (or a lower configured maximum).
    FirehoseRecord,
    /// The queue's `MaximumMessageSize`.
    SqsMessage,
    /// DynamoDB's item size, measured on the event item as written, index copy included.
    DynamoDbItem,
    /// PutEvents' request size, which one entry must fit.
    PutEventsEntry,
    /// PutEvents `DetailType` length.
    DetailType,
    /// The nesting Rust readers (serde_json) parse, envelope included.
    JsonDepth,
    /// SQS `MessageGroupId`/`MessageDeduplicationId` rules.
    SqsId,
}

impl Limit {
    /// The hop, and the service's own name for the limit.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Self::FirehoseRecord => ("Firehose PutRecordBatch", "record size"),
            Self::SqsMessage => ("SQS SendMessageBatch", "queue MaximumMessageSize"),
            Self::DynamoDbItem => ("DynamoDB TransactWriteItems", "item size (400 KB)"),
            Self::PutEventsEntry => ("EventBridge PutEvents", "entry size"),
            Self::DetailType => ("EventBridge PutEvents", "DetailType length"),
            Self::JsonDepth => ("Rust readers (serde_json)", "JSON nesting depth"),
            Self::SqsId => ("SQS FIFO", "MessageGroupId/MessageDeduplicationId"),
        }
    }

    /// The unit the limit is counted in.
    pub fn unit(self) -> &'static str {
        match self {
            Self::DetailType | Self::SqsId => "characters",
            Self::JsonDepth => "levels",
            _ => "bytes",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (hop, name) = self.describe();
        write!(f, "{hop} {name}")
    }
}

/// Every hop's limits, with today's AWS values as defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopLimits {
    /// Largest record ingest accepts: Firehose's 1,000 KiB, or lower.
    pub record_bytes: usize,
    /// The queue's `MaximumMessageSize` (`max_message_size` in Terraform).
    pub sqs_message_bytes: usize,
    /// A `SendMessageBatch` call's total payload.
    pub sqs_batch_bytes: usize,
    /// DynamoDB's item size limit.
    pub dynamodb_item_bytes: usize,
    /// PutEvents' request size.
    pub put_events_request_bytes: usize,
    /// Longest `Source` the emitter may be configured with.
    pub source_chars: usize,
    /// A Lambda's response (the transformer's, the query API's).
    pub lambda_payload_bytes: usize,
}

impl Default for HopLimits {
    fn default() -> Self {
        Self {
            record_bytes: FIREHOSE_RECORD_BYTES,
            sqs_message_bytes: DEFAULT_SQS_MESSAGE_BYTES,
            sqs_batch_bytes: SQS_BATCH_BYTES,
            dynamodb_item_bytes: DYNAMODB_ITEM_BYTES,
            put_events_request_bytes: DEFAULT_PUT_EVENTS_REQUEST_BYTES,
            source_chars: SOURCE_CHARS,
            lambda_payload_bytes: LAMBDA_PAYLOAD_BYTES,
        }
    }
}

/// A record some hop could not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{size} {unit} is over the {limit} limit of {max} {unit}", unit = limit.unit())]
pub struct OverLimit {
    /// Which limit.
    pub limit: Limit,
    /// What the record measures.
    pub size: usize,
    /// The limit's value.
    pub max: usize,
}

fn check(limit: Limit, size: usize, max: usize) -> Result<(), OverLimit> {
    if size > max {
        Err(OverLimit { limit, size, max })
    } else {
        Ok(())
    }
}

/// The most `data` may nest so that the deepest envelope still parses.
pub const MAX_DATA_DEPTH: usize = JSON_READER_DEPTH - ENVELOPE_DEPTH;

/// `true` when `value` nests deeper than `max` levels (a scalar is 0, `[]` is 1).
/// Stops descending once past `max`, so a deep document costs no more than
/// the limit allows.
pub fn deeper_than(value: &Value, max: usize) -> bool {
    fn depth_exceeds(v: &Value, remaining: usize) -> bool {
        match v {
            Value::Array(items) => {
                remaining == 0 || items.iter().any(|i| depth_exceeds(i, remaining - 1))
            }
            Value::Object(map) => {
                remaining == 0 || map.values().any(|i| depth_exceeds(i, remaining - 1))
            }
            _ => false,
        }
    }
    depth_exceeds(value, max)
}

/// The most bytes `s` takes as a JSON string: quotes, and each character
/// serde_json escapes at its longest (`\u00XX`, 6 bytes).
pub fn json_string_bound(s: &str) -> usize {
    s.len()
        + 2
        + s.bytes()
            .filter(|b| matches!(b, b'"' | b'\\') || *b < 0x20)
            .count()
            * 5
}

/// The nesting depth of `value` (a scalar is 0, `[]` and `{}` are 1).
pub fn json_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A DynamoDB attribute value as the store writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemValue<'a> {
    /// `S`.
    S(&'a str),
    /// `N`: every number the store writes is an integer.
    N(i128),
    /// `BOOL`.
    Bool(bool),
}

impl ItemValue<'_> {
    /// Its size by DynamoDB's rules: a string's UTF-8 bytes; a number's
    /// significant digits / 2, rounded up, plus 1; a boolean 1 byte.
    pub fn size(&self) -> usize {
        match self {
            Self::S(s) => s.len(),
            Self::N(n) => number_size(*n),
            Self::Bool(_) => 1,
        }
    }
}

pub(crate) fn number_size(n: i128) -> usize {
    // Every number the store writes fits 64 bits; u64 division is far cheaper
    // than u128's on ingest's hot path.
    let Ok(mut m) = u64::try_from(n.unsigned_abs()) else {
        return 21; // DynamoDB's largest number size
    };
    if m == 0 {
        return 1;
    }
    // Significant digits: trailing zeros do not count (DynamoDB trims them).
    while m.is_multiple_of(10) {
        m /= 10;
    }
    let digits = m.ilog10() as usize + 1;
    digits.div_ceil(2) + 1
}

/// The size DynamoDB counts for an item: attribute names plus values.
pub fn item_size<'a>(attributes: impl IntoIterator<Item = &'a (&'a str, ItemValue<'a>)>) -> usize {
    attributes
        .into_iter()
        .map(|(name, value)| name.len() + value.size())
        .sum()
}

/// What an event item is made of, borrowed: from a stored event
/// ([`crate::event::StoredEvent::item_fields`]) when the store writes it, or
/// from a record at ingest when its size is checked.
#[derive(Debug, Clone, Copy)]
pub struct EventItemFields<'a> {
    /// `pk`.
    pub entity_id: &'a str,
    /// `sk`.
    pub sk: &'a str,
    /// `seq`.
    pub seq: u64,
    /// `event_id`.
    pub event_id: &'a str,
    /// `event_type`.
    pub event_type: &'a str,
    /// `occurred_at`.
    pub occurred_at: &'a str,
    /// `received_at`.
    pub received_at: &'a str,
    /// `stored_at`.
    pub stored_at: &'a str,
    /// `correlation_id`, omitted when none.
    pub correlation_id: Option<&'a str>,
    /// `test`.
    pub test: bool,
    /// `schema_version`.
    pub schema_version: u32,
    /// `expires_at`, omitted when none.
    pub expires_at: Option<i64>,
    /// `traceparent`, omitted when none.
    pub traceparent: Option<&'a str>,
}

/// The attributes of an event item, in the store's layout (the DynamoDB
/// adapter writes exactly these; a test holds the two together). `data` is
/// the payload as JSON text, so the stored item's nesting is that of the text.
pub fn event_item_attributes<'a>(
    e: &EventItemFields<'a>,
    data_json: &'a str,
) -> Vec<(&'static str, ItemValue<'a>)> {
    let mut item = Vec::with_capacity(14);
    item.push(("pk", ItemValue::S(e.entity_id)));
    item.push(("sk", ItemValue::S(e.sk)));
    item.push(("seq", ItemValue::N(i128::from(e.seq))));
    item.push(("kind", ItemValue::S(crate::keys::item_kind::EVENT)));
    item.push(("event_id", ItemValue::S(e.event_id)));
    item.push(("event_type", ItemValue::S(e.event_type)));
    item.push(("data", ItemValue::S(data_json)));
    item.push(("occurred_at", ItemValue::S(e.occurred_at)));
    item.push(("received_at", ItemValue::S(e.received_at)));
    item.push(("stored_at", ItemValue::S(e.stored_at)));
    if let Some(c) = e.correlation_id {
        item.push(("correlation_id", ItemValue::S(c)));
    }
    item.push(("test", ItemValue::Bool(e.test)));
    item.push(("schema_version", ItemValue::N(i128::from(e.schema_version))));
    if let Some(t) = e.expires_at {
        item.push(("expires_at", ItemValue::N(i128::from(t))));
    }
    if let Some(t) = e.traceparent {
        item.push(("traceparent", ItemValue::S(t)));
    }
    item
}

/// The size of the event item [`event_item_attributes`] builds, with
/// `data_len` bytes of data, computed without building it (ingest's hot
/// path). A test holds it equal to `item_size(event_item_attributes(..))`.
pub fn event_item_size(e: &EventItemFields<'_>, data_len: usize) -> usize {
    // Attribute names, always present: pk sk seq kind event_id event_type
    // data occurred_at received_at stored_at test schema_version.
    const NAMES: usize = 2 + 2 + 3 + 4 + 8 + 10 + 4 + 11 + 11 + 9 + 4 + 14;
    NAMES
        + e.entity_id.len()
        + e.sk.len()
        + number_size(i128::from(e.seq))
        + crate::keys::item_kind::EVENT.len()
        + e.event_id.len()
        + e.event_type.len()
        + data_len
        + e.occurred_at.len()
        + e.received_at.len()
        + e.stored_at.len()
        + e.correlation_id
            .map_or(0, |c| "correlation_id".len() + c.len())
        + 1
        + number_size(i128::from(e.schema_version))
        + e.expires_at
            .map_or(0, |t| "expires_at".len() + number_size(i128::from(t)))
        + e.traceparent.map_or(0, |t| "traceparent".len() + t.len())
}

impl HopLimits {
    /// Checks the limits that the configuration itself must respect.
    pub fn validate(&self) -> Result<(), String> {
        if self.record_bytes == 0 || self.record_bytes > FIREHOSE_RECORD_BYTES {
            return Err(format!(
                "record size limit must be 1–{FIREHOSE_RECORD_BYTES} bytes (Firehose), got {}",
                self.record_bytes
            ));
        }
        if self.sqs_message_bytes < 1024 || self.sqs_message_bytes > SQS_MAX_MESSAGE_BYTES {
            return Err(format!(
                "queue message size must be 1024–{SQS_MAX_MESSAGE_BYTES} bytes (SQS MaximumMessageSize), got {}",
                self.sqs_message_bytes
            ));
        }
        Ok(())
    }

    /// Whether a queue message of `body_len` bytes fits the queue: its
    /// `MaximumMessageSize`, and (one message is also one batch's whole
    /// payload at worst) the `SendMessageBatch` total.
    pub fn check_queue_message(&self, body_len: usize) -> Result<(), OverLimit> {
        check(
            Limit::SqsMessage,
            body_len,
            self.sqs_message_bytes.min(self.sqs_batch_bytes),
        )
    }

    /// Checks that a normalised record, `body_len` bytes as a queue message
    /// with `data_len` bytes of serialised `data`, fits every hop after ingest.
    ///
    /// The store and bus sizes are computed for the worst case the record can
    /// meet: the largest `seq`, a retention attribute, the longest `Source`.
    pub fn check_record(
        &self,
        event: &EventItemFields<'_>,
        body_len: usize,
        data_len: usize,
    ) -> Result<(), OverLimit> {
        check(
            Limit::DetailType,
            event.event_type.chars().count(),
            DETAIL_TYPE_CHARS,
        )?;
        self.check_queue_message(body_len)?;
        let item = event_item_size(event, data_len);
        check(
            Limit::DynamoDbItem,
            item + DYNAMODB_LSI_OVERHEAD_BYTES,
            self.dynamodb_item_bytes,
        )?;
        check(
            Limit::PutEventsEntry,
            self.source_chars + bus_entry_len(event, data_len),
            self.put_events_request_bytes,
        )?;
        Ok(())
    }
}

/// Upper bound of `DetailType` + `Detail` of the bus entry for `event`, with
/// `data_len` bytes of data: the metadata's JSON is measured with every string
/// at its escaped length.
fn bus_entry_len(event: &EventItemFields<'_>, data_len: usize) -> usize {
    let quoted = json_string_bound;
    // `{"metadata":{...},"data":...}` with the fixed field names and the
    // widest values the envelope can carry (see `envelope::DetailMetadata`).
    const FIXED: usize = 400;
    FIXED
        + quoted(event.event_id)
        + 2 * quoted(event.event_type)
        + quoted(event.entity_id)
        + quoted(event.occurred_at)
        + quoted(event.stored_at)
        + event.correlation_id.map_or(4, quoted)
        + data_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        "[".repeat(depth) + &"]".repeat(depth)
    }

    #[test]
    fn serde_json_reader_depth_is_what_the_model_says() {
        assert!(serde_json::from_str::<Value>(&nested(JSON_READER_DEPTH)).is_ok());
        assert!(serde_json::from_str::<Value>(&nested(JSON_READER_DEPTH + 1)).is_err());
    }

    #[test]
    fn depth_is_measured_and_bounded() {
        let v: Value = serde_json::from_str(&nested(5)).unwrap();
        assert_eq!(json_depth(&v), 5);
        assert!(deeper_than(&v, 4));
        assert!(!deeper_than(&v, 5));
        assert_eq!(json_depth(&Value::from(1)), 0);
        let obj: Value = serde_json::json!({"a": {"b": [1]}});
        assert_eq!(json_depth(&obj), 3);
        assert!(deeper_than(&obj, 2) && !deeper_than(&obj, 3));
    }

    #[test]
    fn item_size_without_building_equals_the_built_item() {
        for (correlation, expires, trace) in [
            (None, None, None),
            (
                Some("c-1"),
                Some(1_795_420_800_i64),
                Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ),
        ] {
            let fields = EventItemFields {
                entity_id: "order-1",
                sk: "2026-11-29T00:00:00.000000Z#ev-1",
                seq: 4_000,
                event_id: "ev-1",
                event_type: "OrderPlaced",
                occurred_at: "2026-11-29T00:00:00.000000Z",
                received_at: "2026-11-29T00:00:00.000001Z",
                stored_at: "2026-11-29T00:00:00.000002Z",
                correlation_id: correlation,
                test: false,
                schema_version: 1,
                expires_at: expires,
                traceparent: trace,
            };
            let data = r#"{"total":12.5}"#;
            assert_eq!(
                event_item_size(&fields, data.len()),
                item_size(&event_item_attributes(&fields, data))
            );
        }
    }

    #[test]
    fn number_sizes_follow_dynamodb() {
        assert_eq!(number_size(0), 1);
        assert_eq!(number_size(7), 2);
        assert_eq!(number_size(12), 2);
        assert_eq!(number_size(123), 3);
        assert_eq!(number_size(1000), 2);
        assert_eq!(number_size(-1000), 2);
        assert_eq!(number_size(i128::from(u64::MAX)), 11);
    }

    #[test]
    fn over_limit_names_the_hop_and_the_limit() {
        let e = OverLimit {
            limit: Limit::DetailType,
            size: 129,
            max: 128,
        };
        assert_eq!(
            e.to_string(),
            "129 characters is over the EventBridge PutEvents DetailType length limit of 128 characters"
        );
    }
}
