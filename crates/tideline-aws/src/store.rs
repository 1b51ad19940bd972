//! The event store on DynamoDB: the append protocol of decision record 0009
//! ([`tideline_stages::store::slot`]) over single-item conditional writes, and
//! the rejected-records sink.
//!
//! Item layout (one table, string keys `pk`/`sk`; [`tideline_core::item`]):
//! - event: `pk` = entity, `sk` = its slot (a fixed-width UTC time, strictly
//!   increasing per entity), `seq` N, `kind` = `event`, `event_id`,
//!   `event_type`, `data` (the payload as JSON text) or `data_z` (deflated,
//!   when that saves a write unit), `occurred_at`, `received_at`, `stored_at`,
//!   `correlation_id` (omitted when none), `test`, `schema_version`,
//!   `expires_at` (the TTL attribute; omitted when none);
//! - head: `sk` = `#head`, `kind` = `head`, `last_seq`, `last_stored_at`,
//!   `last_sk`: written when the entity is created, and per append only with a
//!   retention;
//! - de-duplication marker: `sk` = `id#<event_id>`, `kind` = `dedup`,
//!   `event_seq`, `event_sk`, `expires_at` (its event's);
//! - rejected record: `pk` = `rejected#<stage>#<nn>` and `sk` = `<rejected_at>#<source_id>` (`keys::rejected_key`; 16 partitions), `kind` = `rejected`,
//!   `expires_at` (`rejected_at` + the retention; omitted when none).
//!
//! An append reads the latest event (one strongly consistent `Query`), puts
//! the marker, then the event item at the slot the latest event opened, each
//! conditional on its key being free: no transaction, so each write costs one
//! unit per KB instead of two. `sk` order is `seq` order, so no index is needed
//! to read an entity's history in order, and a replay reads a time window as
//! a key range (decision record 0017; never a `Scan`); a table created with the
//! `by-sequence` index before 0009 keeps working (the index is no longer read).

use crate::error::{classify, is_retryable_code};
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use std::collections::HashMap;
use tideline_core::event::EntityHead;
use tideline_core::item::{
    self as core_item, AttrRef, AttrValue, DecodeError, EVENT_SK_RANGE, Item,
};
use tideline_core::keys::rejected_key;
use tideline_core::limits::DYNAMODB_ITEM_BYTES;
use tideline_core::replay::StoredWindow;
use tideline_core::{AppendOutcome, EntityId, ExpectedSeq, NewEvent, StoredEvent};
use tideline_stages::store::slot::{
    CondPut, Condition, ConditionFailed, ItemPage, ItemTable, SlotStore, sk_of,
};
use tideline_stages::{EventStore, PortError, RejectSink, RejectedRecord, StoreError};

pub use tideline_stages::store::slot::{DEFAULT_CONFLICT_RETRIES, MAX_EVENTS_PER_APPEND};

/// DynamoDB: at most 100 actions per `TransactWriteItems` (AWS-CONTRACTS.md).
pub const MAX_TRANSACT_ACTIONS: usize = 100;
/// The local secondary index on (`pk`, `seq`) of tables created before
/// decision 0009; kept by such tables, read by nothing.
pub const BY_SEQUENCE_INDEX: &str = "by-sequence";

/// `kind` values: the core's, one definition for every store.
pub use tideline_core::keys::item_kind as kind;

/// The events table as single-item operations ([`ItemTable`]).
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// The DynamoDB adapter: [`EventStore`] and [`RejectSink`].
#[derive(Debug, Clone)]
pub struct DynamoStore {
    store: SlotStore<DynamoTable>,
    rejected_ttl: Option<chrono::Duration>,
}

impl DynamoStore {
    /// An adapter over a client built once per process.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        let table = DynamoTable {
            client,
            table: table.into(),
        };
        Self {
            store: SlotStore::new(table, "dynamodb"),
            rejected_ttl: None,
        }
    }

    /// Sets the retention written as `expires_at`.
    pub fn with_ttl(mut self, ttl: Option<chrono::Duration>) -> Self {
        self.store = self.store.with_ttl(ttl);
        self
    }

    /// Sets the retention of rejected records (default: the events').
    pub fn with_rejected_ttl(mut self, ttl: Option<chrono::Duration>) -> Self {
        self.rejected_ttl = ttl;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.store.table().table
    }

    fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.store.table().client
    }
}

fn to_sdk_value(value: AttrValue) -> AttributeValue {
    match value {
        AttrValue::S(s) => AttributeValue::S(s),
        AttrValue::N(n) => AttributeValue::N(n),
        AttrValue::B(b) => AttributeValue::B(aws_smithy_types::Blob::new(b)),
        AttrValue::Bool(b) => AttributeValue::Bool(b),
    }
}

fn to_sdk(item: Item) -> HashMap<String, AttributeValue> {
    item.into_iter()
        .map(|(k, v)| (k, to_sdk_value(v)))
        .collect()
}

/// An SDK item as the core's; attribute types the store never writes are dropped.
fn from_sdk(item: HashMap<String, AttributeValue>) -> Item {
    item.into_iter()
        .filter_map(|(k, v)| {
            let v = match v {
                AttributeValue::S(s) => AttrValue::S(s),
                AttributeValue::N(n) => AttrValue::N(n),
                AttributeValue::B(b) => AttrValue::B(b.into_inner()),
                AttributeValue::Bool(b) => AttrValue::Bool(b),
                _ => return None,
            };
            Some((k, v))
        })
        .collect()
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A condition expression with its attribute names and values.
type Expression = (
    &'static str,
    Option<HashMap<String, String>>,
    Option<HashMap<String, AttributeValue>>,
);

/// The condition expression of a [`Condition`], with its names and values.
fn expression(condition: &Condition) -> Expression {
    match condition {
        Condition::NotExists => ("attribute_not_exists(pk)", None, None),
        Condition::Equals(name, value) => (
            "#c = :c",
            Some(HashMap::from([("#c".to_string(), (*name).to_string())])),
            Some(HashMap::from([(
                ":c".to_string(),
                to_sdk_value(value.clone()),
            )])),
        ),
        Condition::HeadBelow(seq) => (
            "attribute_not_exists(pk) OR high_seq < :c",
            None,
            Some(HashMap::from([(":c".to_string(), n(seq))])),
        ),
        Condition::SnapshotBelow(seq) => (
            "attribute_not_exists(pk) OR snapshot_seq < :c",
            None,
            Some(HashMap::from([(":c".to_string(), n(seq))])),
        ),
        Condition::MarkerAt {
            event_sk,
            expires_before: None,
        } => (
            "event_sk = :s",
            None,
            Some(HashMap::from([(":s".to_string(), s(event_sk))])),
        ),
        Condition::MarkerAt {
            event_sk,
            expires_before: Some(e),
        } => (
            "event_sk = :s AND expires_at < :e",
            None,
            Some(HashMap::from([
                (":s".to_string(), s(event_sk)),
                (":e".to_string(), n(e)),
            ])),
        ),
    }
}

impl DynamoTable {
    /// The table `table`, through a client built once per process.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A strongly consistent `Query` of one entity's items with `sk` in
    /// `[low, high]`: a key condition, so only that range is read.
    fn range_query(
        &self,
        pk: &str,
        (low, high): (&str, &str),
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":lo", s(low))
            .expression_attribute_values(":hi", s(high))
            .consistent_read(true)
    }
}

impl ItemTable for DynamoTable {
    async fn latest_event(&self, pk: &str) -> Result<Option<Item>, PortError> {
        let out = self
            .range_query(pk, EVENT_SK_RANGE)
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| classify("dynamodb", "Query", e))?;
        Ok(out.items.and_then(|mut items| items.pop()).map(from_sdk))
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", "GetItem", e))?;
        Ok(out.item.map(from_sdk))
    }

    async fn put(&self, put: CondPut) -> Result<Result<(), ConditionFailed>, PortError> {
        let (expr, names, values) = expression(&put.condition);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_sdk(put.item)))
            .condition_expression(expr)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            // The item that was there comes back with the failure, for free:
            // no second read to tell a duplicate from a lost race.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Err(ConditionFailed(c.item().cloned().map(from_sdk))))
                }
                _ => Err(classify("dynamodb", "PutItem", e)),
            },
        }
    }

    async fn transact(&self, puts: Vec<CondPut>) -> Result<Result<(), Vec<usize>>, PortError> {
        let mut items = Vec::with_capacity(puts.len());
        for put in puts {
            let (expr, names, values) = expression(&put.condition);
            let built = Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_sdk(put.item)))
                .condition_expression(expr)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .build()
                .map_err(|e| {
                    PortError::permanent("dynamodb", format!("TransactWriteItems: {e}"))
                        .with_source(e)
                })?;
            items.push(TransactWriteItem::builder().put(built).build());
        }
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(Ok(())),
            Err(e) => e,
        };
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let Some(TransactWriteItemsError::TransactionCanceledException(tce)) =
            err.as_service_error()
        else {
            return Err(classify("dynamodb", "TransactWriteItems", err));
        };
        let mut failed = Vec::new();
        let mut refused = None;
        for (i, reason) in tce.cancellation_reasons().iter().enumerate() {
            match reason.code().unwrap_or("None") {
                "None" | "" => {}
                "ConditionalCheckFailed" => failed.push(i),
                c if is_retryable_code(c) => {
                    refused = Some(PortError::retryable(
                        "dynamodb",
                        format!("TransactWriteItems: item {i}: {c}"),
                    ));
                    break;
                }
                c => {
                    refused = Some(PortError::permanent(
                        "dynamodb",
                        format!(
                            "TransactWriteItems: item {i}: {c}: {}",
                            reason.message().unwrap_or_default()
                        ),
                    ));
                    break;
                }
            }
        }
        if refused.is_none() && failed.is_empty() {
            refused = Some(PortError::retryable(
                "dynamodb",
                format!(
                    "TransactWriteItems: cancelled: {}",
                    tce.message().unwrap_or_default()
                ),
            ));
        }
        if let Some(error) = refused {
            // The cancellation (with every item's reason) is the cause.
            return Err(error.with_source(err));
        }
        Ok(Err(failed))
    }

    async fn events_after(
        &self,
        pk: &str,
        after_sk: Option<&str>,
        limit: usize,
    ) -> Result<ItemPage, PortError> {
        self.events_between(pk, EVENT_SK_RANGE, after_sk, limit)
            .await
    }

    async fn events_between(
        &self,
        pk: &str,
        range: (&str, &str),
        after_sk: Option<&str>,
        limit: usize,
    ) -> Result<ItemPage, PortError> {
        let start = after_sk
            .map(|sk| HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))]));
        // DynamoDB returns at most 1 MB per page (AWS-CONTRACTS.md, Paging):
        // the caller follows `next`.
        let out = self
            .range_query(pk, range)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify("dynamodb", "Query", e))?;
        let next = out
            .last_evaluated_key
            .as_ref()
            .and_then(|k| k.get("sk"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(ItemPage {
            items: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(from_sdk)
                .collect(),
            next,
        })
    }

    async fn event_below(&self, pk: &str, below: &str) -> Result<Option<Item>, PortError> {
        if below <= EVENT_SK_RANGE.0 {
            return Ok(None);
        }
        // Backwards from `below` (inclusive in BETWEEN): the first item under it.
        let out = self
            .range_query(pk, (EVENT_SK_RANGE.0, below))
            .scan_index_forward(false)
            .limit(2)
            .send()
            .await
            .map_err(|e| classify("dynamodb", "Query", e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_sdk)
            .find(|item| sk_of(item).is_some_and(|sk| sk < below)))
    }
}

impl EventStore for DynamoStore {
    async fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        self.store.append(entity, events, expected).await
    }

    async fn read_events(
        &self,
        entity: &EntityId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store.read_events(entity, after_seq, limit).await
    }

    async fn read_window(
        &self,
        entity: &EntityId,
        window: &StoredWindow,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.store
            .read_window(entity, window, after_seq, limit)
            .await
    }

    async fn head(&self, entity: &EntityId) -> Result<Option<EntityHead>, StoreError> {
        self.store.head(entity).await
    }
}

/// One `GetItem`: the de-duplication marker records its event's `seq`.
impl tideline_stages::command::EventLookup for DynamoStore {
    async fn sequence_of(
        &self,
        entity: &EntityId,
        event_id: &tideline_core::EventId,
    ) -> Result<Option<u64>, StoreError> {
        self.store.sequence_of(entity, event_id).await
    }
}

/// Aggregates' snapshots, as items of kind `snapshot` in the entity's
/// partition (one `GetItem` to read, one conditional `PutItem` to write).
impl tideline_stages::command::SnapshotStore for DynamoStore {
    async fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> Result<Option<tideline_core::item::Snapshot>, tideline_stages::command::SnapshotError>
    {
        self.store
            .read_snapshot(entity, name, aggregate_version)
            .await
    }

    async fn put_snapshot(
        &self,
        entity: &EntityId,
        snapshot: &tideline_core::item::Snapshot,
    ) -> Result<tideline_stages::command::SnapshotWritten, tideline_stages::command::SnapshotError>
    {
        self.store.put_snapshot(entity, snapshot).await
    }
}

/// Room a rejected record's item keeps for everything but the body: its
/// keys, reason and bookkeeping attributes, with margin.
const REJECTED_ITEM_RESERVE: usize = 16 * 1024;

/// The body as stored in a rejected-record item: whole when it fits the
/// 400 KB item limit, else cut at a character boundary. A poison message can
/// be as large as the queue allows (up to 1 MiB), and an item that cannot be
/// written would block its entity and reach the DLQ with no reason; the full
/// bytes stay in the lake (Firehose wrote the record) and the DLQ.
pub fn stored_body(body: &str, reason_len: usize) -> (&str, bool) {
    let room = DYNAMODB_ITEM_BYTES.saturating_sub(REJECTED_ITEM_RESERVE + reason_len);
    let stored = prefix_at_char_boundary(body, room);
    (stored, stored.len() < body.len())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

impl RejectSink for DynamoStore {
    async fn reject(&self, record: RejectedRecord) -> Result<(), PortError> {
        // The reason is ours and short, but bound it too.
        let reason = prefix_at_char_boundary(&record.reason, 8 * 1024);
        let (body, truncated) = stored_body(&record.body, reason.len());
        let (pk, sk) = rejected_key(&record.stage, &record.source_id, &record.rejected_at);
        let mut item = HashMap::from([
            ("pk".to_string(), s(&pk)),
            ("sk".to_string(), s(&sk)),
            ("kind".to_string(), s(kind::REJECTED)),
            ("stage".to_string(), s(&record.stage)),
            ("source_id".to_string(), s(&record.source_id)),
            ("reason".to_string(), s(reason)),
            ("body".to_string(), s(body)),
            ("body_bytes".to_string(), n(record.body.len())),
            ("rejected_at".to_string(), s(&record.rejected_at)),
        ]);
        if truncated {
            item.insert("body_truncated".to_string(), AttributeValue::Bool(true));
            item.insert(
                "body_sha256".to_string(),
                s(&hex_sha256(record.body.as_bytes())),
            );
        }
        // Rejected records expire after their own retention (or the events'),
        // so a stream of bad input cannot fill the table.
        if let Some(t) = expires_at(&record.rejected_at, self.rejected_ttl.or(self.store.ttl())) {
            item.insert("expires_at".to_string(), t);
        }
        match self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The same rejection written before: idempotent.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("dynamodb", "PutItem", e)),
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The event item of a stored event, as written ([`core_item::event_item`]).
pub fn event_item(e: &StoredEvent) -> HashMap<String, AttributeValue> {
    // A Value always serialises; the text is what comes back, byte for byte.
    let data = serde_json::to_string(&e.data).unwrap_or_default();
    to_sdk(core_item::event_item(e, &data))
}

/// `expires_at` (epoch seconds, the table's TTL attribute) of an item written
/// at `written_at` (RFC 3339) and kept for `ttl`; none without a retention or
/// a parsable time.
fn expires_at(written_at: &str, ttl: Option<chrono::Duration>) -> Option<AttributeValue> {
    let t = tideline_core::keys::parse_timestamp(written_at)? + ttl?;
    Some(n(t.timestamp()))
}

/// Read access to an attribute value, for both the SDK's type and the Lambda
/// event's (`serde_dynamo`), so one decoder (the core's) serves queries and streams.
pub trait Attr {
    /// The value as the core's decoders read it; `None` for types the store never writes.
    fn attr_ref(&self) -> Option<AttrRef<'_>>;
}

impl Attr for AttributeValue {
    fn attr_ref(&self) -> Option<AttrRef<'_>> {
        Some(match self {
            Self::S(v) => AttrRef::S(v),
            Self::N(v) => AttrRef::N(v),
            Self::B(v) => AttrRef::B(v.as_ref()),
            Self::Bool(v) => AttrRef::Bool(*v),
            _ => return None,
        })
    }
}

impl Attr for serde_dynamo::AttributeValue {
    fn attr_ref(&self) -> Option<AttrRef<'_>> {
        Some(match self {
            Self::S(v) => AttrRef::S(v),
            Self::N(v) => AttrRef::N(v),
            Self::B(v) => AttrRef::B(v),
            Self::Bool(v) => AttrRef::Bool(*v),
            _ => return None,
        })
    }
}

fn lookup<'a, A: Attr>(item: &'a HashMap<String, A>) -> impl Fn(&str) -> Option<AttrRef<'a>> + 'a {
    move |name| item.get(name).and_then(Attr::attr_ref)
}

/// The `kind` attribute of an item.
pub fn item_kind<A: Attr>(item: &HashMap<String, A>) -> Option<&str> {
    core_item::kind_of(lookup(item))
}

/// Decodes an event item (this design's or the one before 0009).
pub fn decode_event<A: Attr>(item: &HashMap<String, A>) -> Result<StoredEvent, DecodeError> {
    core_item::decode_event(lookup(item))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tideline_core::ingest::{IngestConfig, normalize_record};

    #[test]
    fn event_item_round_trips_through_the_sdk_types() {
        let rec = normalize_record(
            &IngestConfig::default(),
            "{\"entity_id\":\"e-1\",\"type\":\"T\",\"data\":{\"name\":\"Zoë ✓\",\"n\":1.5},\"id\":\"x\"}".as_bytes(),
            chrono::Utc::now(),
        )
        .unwrap();
        let e = StoredEvent {
            entity_id: rec.entity_id,
            seq: 1,
            sk: "2026-11-23T08:00:00.000000Z".into(),
            event_id: rec.id,
            event_type: rec.event_type,
            data: rec.data,
            occurred_at: rec.occurred_at,
            received_at: rec.received_at,
            stored_at: "2026-11-23T08:00:00.000000Z".into(),
            correlation_id: None,
            test: false,
            schema_version: 1,
            expires_at: Some(1_795_420_800),
            traceparent: None,
        };
        let item = event_item(&e);
        assert!(item.contains_key("expires_at"));
        assert!(!item.contains_key("correlation_id"));
        assert_eq!(decode_event(&item).unwrap(), e);
        assert_eq!(from_sdk(item.clone()).len(), item.len());
    }

    #[test]
    fn rejected_records_expire_after_the_retention() {
        let day = chrono::Duration::days(1);
        assert_eq!(
            expires_at("2026-11-23T00:00:00.000000Z", Some(day)),
            Some(n(1_795_392_000 + 86_400))
        );
        assert_eq!(expires_at("2026-11-23T00:00:00.000000Z", None), None);
        assert_eq!(expires_at("not a time", Some(day)), None);
    }
}
