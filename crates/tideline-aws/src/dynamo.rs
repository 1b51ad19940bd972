//! The event store on DynamoDB, executing the core's append plan.
//!
//! Item layout (one table, string keys `pk`/`sk`, LSI `by-sequence` on `pk`, `seq`):
//! - event: `pk` = entity, `sk` = `<stored_at>#<event_id>`, `seq` N, `kind` = `event`,
//!   `event_id`, `event_type`, `data` (the payload as JSON text), `occurred_at`,
//!   `received_at`, `stored_at`, `correlation_id` (omitted when none), `test`,
//!   `schema_version`, `expires_at` (the TTL attribute; omitted when none);
//! - head: `sk` = `#head`, `kind` = `head`, `last_seq`, `last_stored_at`;
//! - de-duplication marker: `sk` = `id#<event_id>`, `kind` = `dedup`, `event_seq`,
//!   `expires_at` (its event's, so the id is forgotten when the event is; omitted when none);
//! - rejected record: `pk` = `rejected#<stage>#<nn>` (16 partitions, `keys::rejected_partition_key`), `sk` = `<rejected_at>#<source_id>`, `kind` = `rejected`,
//!   `expires_at` (`rejected_at` + the retention; omitted when none).
//!
//! Head and markers carry no `seq`, so they stay out of the `by-sequence` index.
//!
//! An append reads the head (consistent read), asks
//! [`tideline_core::event::plan_append`] what to write, and writes it in one
//! `TransactWriteItems`: the head conditional on the `last_seq` it read, each
//! event and marker conditional on not existing. So `seq` is assigned in the
//! same atomic write as the event (INVARIANTS.md #3), and an event id is stored
//! at most once (#2): a marker whose condition fails names a duplicate, and the
//! plan is made again with that id known as stored.

use crate::error::{classify, is_retryable_code};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use std::collections::{HashMap, HashSet};
use tideline_core::event::{EntityHead, plan_append};
use tideline_core::keys::{HEAD_SK, dedup_sort_key, rejected_partition_key};
use tideline_core::limits::{DYNAMODB_ITEM_BYTES, ItemValue, event_item_attributes, item_size};
use tideline_core::{AppendOutcome, EntityId, EventId, ExpectedSeq, NewEvent, StoredEvent};
use tideline_ports::{EventStore, PortError, RejectSink, RejectedRecord, StoreError};
use tracing::debug;

/// DynamoDB: at most 100 actions per `TransactWriteItems` (AWS-CONTRACTS.md).
pub const MAX_TRANSACT_ACTIONS: usize = 100;
/// One head plus an event and a marker per event: 1 + 2n ≤ 100.
pub const MAX_EVENTS_PER_APPEND: usize = (MAX_TRANSACT_ACTIONS - 1) / 2;
/// The local secondary index on (`pk`, `seq`).
pub const BY_SEQUENCE_INDEX: &str = "by-sequence";
/// Re-plans after a concurrent writer moved the head, before giving up (retryably).
pub const DEFAULT_CONFLICT_RETRIES: u32 = 5;

/// `kind` values: the core's, one definition for every store.
pub use tideline_core::keys::item_kind as kind;

/// The DynamoDB adapter: [`EventStore`] and [`RejectSink`].
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    ttl: Option<chrono::Duration>,
    rejected_ttl: Option<chrono::Duration>,
    conflict_retries: u32,
}

impl DynamoStore {
    /// An adapter over a client built once per process.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            ttl: None,
            rejected_ttl: None,
            conflict_retries: DEFAULT_CONFLICT_RETRIES,
        }
    }

    /// Sets the retention written as `expires_at`.
    pub fn with_ttl(mut self, ttl: Option<chrono::Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the retention of rejected records (default: the events').
    pub fn with_rejected_ttl(mut self, ttl: Option<chrono::Duration>) -> Self {
        self.rejected_ttl = ttl;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn write_plan(
        &self,
        entity: &EntityId,
        plan: &tideline_core::AppendPlan,
    ) -> Result<(), SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>>
    {
        let mut actions = Vec::with_capacity(1 + 2 * plan.to_store.len());
        if let Some(head) = &plan.new_head {
            let mut put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(head_item(head)));
            put = if plan.previous_seq == 0 {
                put.condition_expression("attribute_not_exists(pk)")
            } else {
                put.condition_expression("last_seq = :prev")
                    .expression_attribute_values(":prev", n(plan.previous_seq))
            };
            actions.push(put);
        }
        for event in &plan.to_store {
            actions.push(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(event_item(event)))
                    .condition_expression("attribute_not_exists(pk)"),
            );
        }
        for event in &plan.to_store {
            actions.push(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(marker_item(entity, event)))
                    .condition_expression("attribute_not_exists(pk)"),
            );
        }
        let mut items = Vec::with_capacity(actions.len());
        for put in actions {
            // `build` fails only without table name or item, both always set.
            if let Ok(put) = put.build() {
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
    }

    async fn read_head(&self, entity: &EntityId) -> Result<Option<EntityHead>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(entity.as_str()))
            .key("sk", s(HEAD_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", "GetItem", &e))?;
        match out.item() {
            None => Ok(None),
            Some(item) => decode_head(entity, item)
                .map(Some)
                .map_err(|e| PortError::permanent("dynamodb", e)),
        }
    }
}

/// What a cancelled transaction tells about the plan.
enum Cancelled {
    /// These events' markers exist: they are duplicates.
    Duplicates(Vec<EventId>),
    /// Another writer moved the head (or took an `sk`): re-read and re-plan.
    Concurrent,
    /// Throttled or conflicting with another transaction: retry later.
    Retryable(String),
    /// Something the plan cannot fix.
    Permanent(String),
}

fn read_cancellation(
    plan: &tideline_core::AppendPlan,
    err: &TransactWriteItemsError,
) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(tce) = err else {
        return None;
    };
    let reasons = tce.cancellation_reasons();
    let n_events = plan.to_store.len();
    let mut duplicates = Vec::new();
    let mut concurrent = false;
    let mut retryable = None;
    let mut permanent = None;
    for (i, reason) in reasons.iter().enumerate() {
        let code = reason.code().unwrap_or("None");
        match code {
            "None" | "" => {}
            "ConditionalCheckFailed" => {
                if i == 0 {
                    concurrent = true;
                } else if i <= n_events {
                    concurrent = true; // an sk taken: a writer raced us
                } else if let Some(e) = plan.to_store.get(i - 1 - n_events) {
                    duplicates.push(e.event_id.clone());
                }
            }
            c if is_retryable_code(c) => retryable = Some(format!("item {i}: {c}")),
            c => {
                permanent = Some(format!(
                    "item {i}: {c}: {}",
                    reason.message().unwrap_or_default()
                ))
            }
        }
    }
    Some(if let Some(p) = permanent {
        Cancelled::Permanent(p)
    } else if !duplicates.is_empty() {
        Cancelled::Duplicates(duplicates)
    } else if concurrent {
        Cancelled::Concurrent
    } else if let Some(r) = retryable {
        Cancelled::Retryable(r)
    } else {
        Cancelled::Retryable(format!(
            "transaction cancelled: {}",
            tce.message().unwrap_or_default()
        ))
    })
}

impl EventStore for DynamoStore {
    async fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        if events.len() > MAX_EVENTS_PER_APPEND {
            return Err(PortError::permanent(
                "dynamodb",
                format!(
                    "{} events in one append; DynamoDB's {MAX_TRANSACT_ACTIONS}-action transaction limit allows {MAX_EVENTS_PER_APPEND}",
                    events.len()
                ),
            )
            .into());
        }
        let mut known: HashSet<EventId> = HashSet::new();
        let mut attempt = 0;
        // Serialised once per append; the item is measured as written.
        let data_json: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(&e.data).unwrap_or_default())
            .collect();
        loop {
            let head = self.read_head(entity).await?;
            let plan = plan_append(
                entity,
                head.as_ref(),
                expected,
                events.clone(),
                |id| known.contains(id),
                chrono::Utc::now(),
                self.ttl,
            )?;
            if plan.to_store.is_empty() {
                return Ok(plan.outcomes());
            }
            // DynamoDB would refuse an item over 400 KB with a ValidationException
            // after a round trip; refusing here names the limit (ingest already
            // refuses such records, so this guards records enqueued before it did).
            for event in &plan.to_store {
                let text = events
                    .iter()
                    .position(|e| e.id == event.event_id)
                    .and_then(|i| data_json.get(i))
                    .map_or("", String::as_str);
                let size = item_size(&event_item_attributes(&event.item_fields(), text))
                    + tideline_core::limits::DYNAMODB_LSI_OVERHEAD_BYTES;
                if size > DYNAMODB_ITEM_BYTES {
                    return Err(PortError::permanent(
                        "dynamodb",
                        format!(
                            "event {} is {size} bytes as a DynamoDB item (index copy included); the item limit is {DYNAMODB_ITEM_BYTES} bytes",
                            event.event_id
                        ),
                    )
                    .into());
                }
            }
            let err = match self.write_plan(entity, &plan).await {
                Ok(()) => return Ok(plan.outcomes()),
                Err(e) => e,
            };
            let cancelled = err
                .as_service_error()
                .and_then(|se| read_cancellation(&plan, se));
            match cancelled {
                None => return Err(classify("dynamodb", "TransactWriteItems", &err).into()),
                Some(Cancelled::Duplicates(ids)) => {
                    debug!(entity = %entity, duplicates = ids.len(), "event ids already stored; re-planning");
                    let before = known.len();
                    known.extend(ids);
                    if known.len() == before {
                        return Err(PortError::permanent(
                            "dynamodb",
                            "TransactWriteItems: duplicate markers keep failing",
                        )
                        .into());
                    }
                }
                Some(Cancelled::Concurrent) => {
                    attempt += 1;
                    if attempt > self.conflict_retries {
                        return Err(PortError::retryable(
                            "dynamodb",
                            format!("TransactWriteItems: the head of {entity} kept moving under {attempt} attempts"),
                        )
                        .into());
                    }
                    debug!(entity = %entity, attempt, "concurrent writer moved the head; re-planning");
                }
                Some(Cancelled::Retryable(m)) => {
                    return Err(PortError::retryable(
                        "dynamodb",
                        format!("TransactWriteItems: TransactionCanceledException: {m}"),
                    )
                    .into());
                }
                Some(Cancelled::Permanent(m)) => {
                    return Err(PortError::permanent(
                        "dynamodb",
                        format!("TransactWriteItems: TransactionCanceledException: {m}"),
                    )
                    .into());
                }
            }
        }
    }

    async fn read_events(
        &self,
        entity: &EntityId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        // DynamoDB returns at most 1 MB per page: follow LastEvaluatedKey
        // until `limit` items or the end (AWS-CONTRACTS.md, Paging).
        loop {
            let remaining = limit.saturating_sub(out.len());
            if remaining == 0 {
                break;
            }
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_SEQUENCE_INDEX)
                .key_condition_expression("pk = :pk AND seq > :after")
                .expression_attribute_values(":pk", s(entity.as_str()))
                .expression_attribute_values(":after", n(after_seq))
                .consistent_read(true)
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb", "Query", &e))?;
            for item in page.items() {
                let event = decode_event(item).map_err(|e| {
                    PortError::permanent("dynamodb", format!("event item of {entity}: {e}"))
                })?;
                out.push(event);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn head(&self, entity: &EntityId) -> Result<Option<EntityHead>, StoreError> {
        Ok(self.read_head(entity).await?)
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
        let mut item = HashMap::from([
            (
                "pk".to_string(),
                s(&rejected_partition_key(&record.stage, &record.source_id)),
            ),
            (
                "sk".to_string(),
                s(&format!("{}#{}", record.rejected_at, record.source_id)),
            ),
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
        if let Some(t) = expires_at(&record.rejected_at, self.rejected_ttl.or(self.ttl)) {
            item.insert("expires_at".to_string(), t);
        }
        match self
            .client
            .put_item()
            .table_name(&self.table)
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
            Err(e) => Err(classify("dynamodb", "PutItem", &e)),
        }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The event item of a stored event: the core's layout
/// ([`event_item_attributes`]), so what ingest measured is what is written.
pub fn event_item(e: &StoredEvent) -> HashMap<String, AttributeValue> {
    // A Value always serialises; the text is what comes back, byte for byte.
    let data = serde_json::to_string(&e.data).unwrap_or_default();
    event_item_attributes(&e.item_fields(), &data)
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                ItemValue::S(v) => s(v),
                ItemValue::N(v) => AttributeValue::N(v.to_string()),
                ItemValue::Bool(v) => AttributeValue::Bool(v),
            };
            (name.to_string(), value)
        })
        .collect()
}

fn head_item(h: &EntityHead) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(h.entity_id.as_str())),
        ("sk".to_string(), s(HEAD_SK)),
        ("kind".to_string(), s(kind::HEAD)),
        ("last_seq".to_string(), n(h.last_seq)),
        ("last_stored_at".to_string(), s(&h.last_stored_at)),
    ])
}

fn marker_item(entity: &EntityId, e: &StoredEvent) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("pk".to_string(), s(entity.as_str())),
        ("sk".to_string(), s(&dedup_sort_key(e.event_id.as_str()))),
        ("kind".to_string(), s(kind::DEDUP)),
        ("event_seq".to_string(), n(e.seq)),
    ]);
    // The marker lives as long as its event: the table's TTL removes both,
    // so markers cannot outgrow the events they guard. A redelivery after
    // that is stored as a new event (docs/deploy.md, "The events table").
    if let Some(t) = e.expires_at {
        item.insert("expires_at".into(), n(t));
    }
    item
}

/// `expires_at` (epoch seconds, the table's TTL attribute) of an item written
/// at `written_at` (RFC 3339) and kept for `ttl`; none without a retention or
/// a parsable time.
fn expires_at(written_at: &str, ttl: Option<chrono::Duration>) -> Option<AttributeValue> {
    let t = tideline_core::keys::parse_timestamp(written_at)? + ttl?;
    Some(n(t.timestamp()))
}

/// Read access to an attribute value, for both the SDK's type and the Lambda
/// event's (`serde_dynamo`), so one decoder serves queries and streams.
pub trait Attr {
    /// `S`.
    fn as_string(&self) -> Option<&str>;
    /// `N`, as text.
    fn as_number(&self) -> Option<&str>;
    /// `BOOL`.
    fn as_boolean(&self) -> Option<bool>;
}

impl Attr for AttributeValue {
    fn as_string(&self) -> Option<&str> {
        self.as_s().ok().map(String::as_str)
    }
    fn as_number(&self) -> Option<&str> {
        self.as_n().ok().map(String::as_str)
    }
    fn as_boolean(&self) -> Option<bool> {
        self.as_bool().ok().copied()
    }
}

impl Attr for serde_dynamo::AttributeValue {
    fn as_string(&self) -> Option<&str> {
        match self {
            Self::S(v) => Some(v),
            _ => None,
        }
    }
    fn as_number(&self) -> Option<&str> {
        match self {
            Self::N(v) => Some(v),
            _ => None,
        }
    }
    fn as_boolean(&self) -> Option<bool> {
        match self {
            Self::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

fn get_s<'a, A: Attr>(item: &'a HashMap<String, A>, name: &str) -> Result<&'a str, String> {
    item.get(name)
        .and_then(Attr::as_string)
        .ok_or_else(|| format!("attribute {name} is missing or not a string"))
}

fn get_n<A: Attr, T: std::str::FromStr>(
    item: &HashMap<String, A>,
    name: &str,
) -> Result<T, String> {
    item.get(name)
        .and_then(Attr::as_number)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("attribute {name} is missing or not a number"))
}

/// The `kind` attribute of an item.
pub fn item_kind<A: Attr>(item: &HashMap<String, A>) -> Option<&str> {
    item.get("kind").and_then(Attr::as_string)
}

/// Decodes an event item.
pub fn decode_event<A: Attr>(item: &HashMap<String, A>) -> Result<StoredEvent, String> {
    let data_text = get_s(item, "data")?;
    Ok(StoredEvent {
        entity_id: EntityId::new(get_s(item, "pk")?).map_err(|e| format!("pk {e}"))?,
        seq: get_n(item, "seq")?,
        sk: get_s(item, "sk")?.to_string(),
        event_id: EventId::new(get_s(item, "event_id")?).map_err(|e| format!("event_id {e}"))?,
        event_type: get_s(item, "event_type")?.to_string(),
        data: serde_json::from_str(data_text).map_err(|e| format!("data is not JSON: {e}"))?,
        occurred_at: get_s(item, "occurred_at")?.to_string(),
        received_at: get_s(item, "received_at")?.to_string(),
        stored_at: get_s(item, "stored_at")?.to_string(),
        correlation_id: item
            .get("correlation_id")
            .and_then(Attr::as_string)
            .map(str::to_string),
        test: item.get("test").and_then(Attr::as_boolean).unwrap_or(false),
        schema_version: get_n(item, "schema_version")?,
        expires_at: item
            .get("expires_at")
            .and_then(Attr::as_number)
            .and_then(|v| v.parse().ok()),
    })
}

fn decode_head<A: Attr>(
    entity: &EntityId,
    item: &HashMap<String, A>,
) -> Result<EntityHead, String> {
    Ok(EntityHead {
        entity_id: entity.clone(),
        last_seq: get_n(item, "last_seq")?,
        last_stored_at: get_s(item, "last_stored_at")?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tideline_core::ingest::{IngestConfig, normalize_record};

    #[test]
    fn event_item_round_trips() {
        let rec = normalize_record(
            &IngestConfig::default(),
            "{\"entity_id\":\"e-1\",\"type\":\"T\",\"data\":{\"name\":\"Zoë ✓\",\"n\":1.5},\"id\":\"x\"}".as_bytes(),
            chrono::Utc::now(),
        )
        .unwrap();
        let plan = plan_append(
            &rec.entity_id.clone(),
            None,
            ExpectedSeq::Any,
            vec![rec],
            |_| false,
            chrono::Utc::now(),
            Some(chrono::Duration::days(1)),
        )
        .unwrap();
        let e = &plan.to_store[0];
        let item = event_item(e);
        assert!(item.contains_key("expires_at"));
        assert!(!item.contains_key("correlation_id"));
        assert_eq!(&decode_event(&item).unwrap(), e);
        assert!(!head_item(plan.new_head.as_ref().unwrap()).contains_key("seq"));
        assert!(!marker_item(&e.entity_id, e).contains_key("seq"));
        // The marker expires with its event.
        assert_eq!(
            marker_item(&e.entity_id, e).get("expires_at"),
            item.get("expires_at")
        );
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
