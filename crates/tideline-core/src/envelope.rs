//! The integration event: what the bus carries, locally and on EventBridge.
//!
//! The shape is EventBridge's (`source`, `detail-type`, `detail`, ...), and
//! `detail` is `{"metadata": {...}, "data": ...}`. `metadata.sequence` is the
//! entity's gapless `seq`, so consumers can restore order and drop duplicates
//! where the bus reorders or redelivers (INVARIANTS.md #4).
//!
//! One definition serves both sides: the emitter builds
//! [`IntegrationEvent`] (its `data` a JSON value) and consumers read
//! `IntegrationEvent<T>` with a typed payload (`tideline-consumer`). Readers
//! are lenient where a sender might be: unknown fields are ignored, and
//! `version`, `id`, `time`, `account`, `region` and `resources` may be
//! missing (local mode and some emulators leave some out).
//!
//! The JSON Schema under `schemas/` is generated from these types
//! ([`integration_event_schema`]); a test fails when the checked-in copy is stale.

use crate::event::StoredEvent;
use crate::limits::{DETAIL_TYPE_CHARS, SOURCE_CHARS};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ops::Range;

/// Default `source` of integration events.
pub const DEFAULT_SOURCE: &str = "tideline";

/// `detail-type` of the event emitted when TTL or an erasure removes an event.
pub const EVENT_EXPIRED: &str = "EventExpired";

/// EventBridge PutEvents: at most 10 entries per call (AWS-CONTRACTS.md).
pub const MAX_PUT_EVENTS_ENTRIES: usize = 10;

/// EventBridge PutEvents total request size; 1 MB since January 2026 (it was
/// 256 KB). A setting, with today's value as the default.
pub const DEFAULT_MAX_PUT_EVENTS_BYTES: usize = 1024 * 1024;

// The doc comments of these types and fields are the descriptions in the
// checked-in schema: changing one changes the published contract.
// `T` is the type of `detail.data`: a JSON value by default, a consumer's
// payload type when it reads.

/// An EventBridge event as delivered to targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "IntegrationEvent", transform = always_sent)]
pub struct IntegrationEvent<T = Value> {
    /// Always "0" on EventBridge.
    #[serde(default = "default_version")]
    pub version: String,
    /// Unique per delivery attempt's publish (not the event id).
    #[serde(default)]
    pub id: String,
    /// The event type.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// Configurable, default `tideline`.
    pub source: String,
    /// AWS account; absent locally and in some emulators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Publish time, RFC 3339.
    #[serde(default)]
    pub time: String,
    /// AWS region; absent locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Resources; Tideline sends none.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Metadata and data.
    pub detail: EventDetail<T>,
}

fn default_version() -> String {
    "0".to_string()
}

/// Fields every event Tideline sends carries, which readers default when
/// missing: the published schema states what is sent, so it lists them as
/// required and without the readers' empty default.
const ALWAYS_SENT: [&str; 2] = ["id", "time"];

/// Restores [`ALWAYS_SENT`] in the schema: the derive reads `#[serde(default)]`
/// as "optional" (the schema is of what a reader accepts), but the checked-in
/// schema is the publisher's contract.
fn always_sent(schema: &mut schemars::Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let mut order = Vec::new();
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        for field in ALWAYS_SENT {
            if let Some(Value::Object(property)) = properties.get_mut(field) {
                property.remove("default");
            }
        }
        order = properties.keys().cloned().collect();
    }
    let required: Vec<Value> = {
        let listed = object.get("required").and_then(Value::as_array);
        order
            .into_iter()
            .filter(|name| {
                ALWAYS_SENT.contains(&name.as_str())
                    || listed.is_some_and(|l| l.iter().any(|r| r == name.as_str()))
            })
            .map(Value::String)
            .collect()
    };
    object.insert("required".into(), Value::Array(required));
}

impl<T> IntegrationEvent<T> {
    /// The metadata.
    pub fn metadata(&self) -> &DetailMetadata {
        &self.detail.metadata
    }
    /// The entity id.
    pub fn entity_id(&self) -> &str {
        &self.detail.metadata.entity_id
    }
    /// The entity's sequence number.
    pub fn sequence(&self) -> u64 {
        self.detail.metadata.sequence
    }
}

/// `detail` of an integration event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "EventDetail")]
pub struct EventDetail<T = Value> {
    /// Identity, order and provenance.
    pub metadata: DetailMetadata,
    /// The producer's payload, unchanged.
    pub data: T,
}

/// `detail.metadata` of an integration event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DetailMetadata {
    /// Stable event id: the de-duplication key.
    pub event_id: String,
    /// Event type (same as `detail-type`).
    pub event_type: String,
    /// Envelope schema version.
    pub schema_version: u32,
    /// The entity.
    pub entity_id: String,
    /// Gapless per-entity sequence, from 1.
    pub sequence: u64,
    /// When it happened, RFC 3339 UTC.
    pub occurred_at: String,
    /// When it was stored, RFC 3339 UTC.
    pub stored_at: String,
    /// Correlation id, or null.
    pub correlation_id: Option<String>,
    /// Test events: production consumers skip them.
    pub test: bool,
    /// True when re-emitted by `tideline replay`.
    #[serde(default)]
    pub replay: bool,
    /// Set on `EventExpired` only: what removed the event (`ttl` or
    /// `erasure`). An expiry notice is not a live event: its `event_id` is its
    /// own ([`expiry_event_id`]), and consumers handle it outside the ordering
    /// of live events (its `sequence` names the removed event, it does not
    /// take a place of its own in the entity's sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<Removal>,
    /// The W3C trace context carried from ingest (the producer's trace id, or
    /// one ingest started); absent on events stored before traces were carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// What removed a stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// DynamoDB's TTL (retention).
    Ttl,
    /// An explicit, logged erasure.
    Erasure,
}

/// The `event_id` of the `EventExpired` notice for a removed event. A space
/// is never part of an ingested event id (SQS's id characters exclude it), so
/// this cannot collide with any live event's id, and it is stable, so a
/// redelivered notice de-duplicates.
pub fn expiry_event_id(expired_event_id: &str) -> String {
    format!("{expired_event_id} expired")
}

impl DetailMetadata {
    /// True for an `EventExpired` notice (handled outside live-event ordering).
    pub fn is_expiry(&self) -> bool {
        self.removed_by.is_some()
    }
}

impl EventDetail {
    /// The detail of a stored event.
    pub fn from_stored(event: &StoredEvent, replay: bool) -> Self {
        Self {
            metadata: DetailMetadata {
                event_id: event.event_id.to_string(),
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                entity_id: event.entity_id.to_string(),
                sequence: event.seq,
                occurred_at: event.occurred_at.clone(),
                stored_at: event.stored_at.clone(),
                correlation_id: event.correlation_id.clone(),
                test: event.test,
                replay,
                removed_by: None,
                traceparent: event.traceparent.clone(),
            },
            data: event.data.clone(),
        }
    }

    /// The detail of the `EventExpired` notice for a removed event: an
    /// identity of its own ([`expiry_event_id`]), `removed_by` set, and the
    /// removed event's entity and sequence so consumers can tie it to what
    /// they applied. Its data is small and fixed, so it always fits the bus.
    pub fn expired(event: &StoredEvent, by_ttl: bool) -> Self {
        let removal = if by_ttl {
            Removal::Ttl
        } else {
            Removal::Erasure
        };
        let mut detail = Self::from_stored(event, false);
        detail.metadata.event_id = expiry_event_id(event.event_id.as_str());
        detail.metadata.event_type = EVENT_EXPIRED.to_string();
        detail.metadata.removed_by = Some(removal);
        detail.data = serde_json::json!({
            "expired_event_id": event.event_id.as_str(),
            "expired_event_type": event.event_type,
            "expired_sequence": event.seq,
            "expires_at": event.expires_at,
            "removed_by": removal,
        });
        detail
    }
}

/// `detail` of a stored event, borrowed: serialises to the same bytes as
/// [`EventDetail::from_stored`] (same fields, order and rules; a test holds
/// them together) without copying `data` and every string first. The
/// emitter builds one per event, so the copy was a second pass over `data`.
#[derive(Serialize)]
struct StoredDetailView<'a> {
    metadata: StoredMetadataView<'a>,
    data: &'a Value,
}

/// `detail.metadata` of a live stored event, borrowed (see [`DetailMetadata`]).
#[derive(Serialize)]
struct StoredMetadataView<'a> {
    event_id: &'a str,
    event_type: &'a str,
    schema_version: u32,
    entity_id: &'a str,
    sequence: u64,
    occurred_at: &'a str,
    stored_at: &'a str,
    correlation_id: Option<&'a str>,
    test: bool,
    replay: bool,
    // `removed_by` is never set on a live event and skipped when unset, so
    // the view leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

impl<'a> StoredDetailView<'a> {
    fn new(event: &'a StoredEvent, replay: bool) -> Self {
        Self {
            metadata: StoredMetadataView {
                event_id: event.event_id.as_str(),
                event_type: &event.event_type,
                schema_version: event.schema_version,
                entity_id: event.entity_id.as_str(),
                sequence: event.seq,
                occurred_at: &event.occurred_at,
                stored_at: &event.stored_at,
                correlation_id: event.correlation_id.as_deref(),
                test: event.test,
                replay,
                traceparent: event.traceparent.as_deref(),
            },
            data: &event.data,
        }
    }
}

/// One PutEvents entry, with what ordering needs kept beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEntry {
    /// `Source`.
    pub source: String,
    /// `DetailType`.
    pub detail_type: String,
    /// `Detail`, serialised once.
    pub detail: String,
    /// The entity, for per-entity ordering (not sent).
    pub entity_id: String,
    /// `TraceHeader`: the event's trace in X-Ray form ([`crate::trace`]).
    pub trace_header: Option<String>,
    /// The sequence, for per-entity ordering (not sent).
    pub sequence: u64,
}

impl BusEntry {
    /// Builds the entry for a detail.
    pub fn new(source: &str, detail: &EventDetail) -> Self {
        Self {
            source: source.to_string(),
            detail_type: detail.metadata.event_type.clone(),
            // A struct of strings, numbers and a Value always serialises.
            detail: serde_json::to_string(detail).unwrap_or_default(),
            entity_id: detail.metadata.entity_id.clone(),
            trace_header: detail
                .metadata
                .traceparent
                .as_deref()
                .and_then(crate::trace::xray_header_of),
            sequence: detail.metadata.sequence,
        }
    }

    /// The entry of a live stored event (`replay` marks a re-emission):
    /// the same entry as `BusEntry::new(source, &EventDetail::from_stored(event, replay))`,
    /// with `detail` serialised straight from the event, once.
    pub fn for_stored(source: &str, event: &StoredEvent, replay: bool) -> Self {
        Self {
            source: source.to_string(),
            detail_type: event.event_type.clone(),
            // A struct of strings, numbers and a Value always serialises.
            detail: serde_json::to_string(&StoredDetailView::new(event, replay))
                .unwrap_or_default(),
            entity_id: event.entity_id.to_string(),
            sequence: event.seq,
            trace_header: event
                .traceparent
                .as_deref()
                .and_then(crate::trace::xray_header_of),
        }
    }

    /// Size as EventBridge counts it: Source + DetailType + Detail + Resources
    /// (UTF-8 bytes; AWS-CONTRACTS.md, PutEvents).
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len()
    }

    /// The full event as a target receives it.
    pub fn to_integration_event(
        &self,
        id: String,
        time: String,
    ) -> Result<IntegrationEvent, serde_json::Error> {
        Ok(IntegrationEvent {
            version: default_version(),
            id,
            detail_type: self.detail_type.clone(),
            source: self.source.clone(),
            account: None,
            time,
            region: None,
            resources: Vec::new(),
            detail: serde_json::from_str(&self.detail)?,
        })
    }
}

impl BusEntry {
    /// The full event as a target receives it, as JSON text, built without
    /// re-parsing `detail` (it is already JSON). Equal to serialising
    /// [`BusEntry::to_integration_event`]; a test holds them together.
    pub fn to_event_json(&self, id: &str, time: &str) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        format!(
            r#"{{"version":"0","id":{},"detail-type":{},"source":{},"time":{},"resources":[],"detail":{}}}"#,
            quote(id),
            quote(&self.detail_type),
            quote(&self.source),
            quote(time),
            self.detail
        )
    }
}

/// An entry that can never fit a PutEvents call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index} is {size} bytes; a PutEvents call takes at most {limit} bytes")]
pub struct OversizedEntry {
    /// Index in the input.
    pub index: usize,
    /// Its size.
    pub size: usize,
    /// The limit.
    pub limit: usize,
}

/// Splits entries, in order, into PutEvents calls of at most `max_entries`
/// (EventBridge: [`MAX_PUT_EVENTS_ENTRIES`]) entries and
/// `max_bytes` each. Order is kept: calls are sent one after the other.
pub fn put_events_chunks(
    entries: &[BusEntry],
    max_entries: usize,
    max_bytes: usize,
) -> Result<Vec<Range<usize>>, OversizedEntry> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, entry) in entries.iter().enumerate() {
        let size = entry.size();
        if size > max_bytes {
            return Err(OversizedEntry {
                index,
                size,
                limit: max_bytes,
            });
        }
        if index - start == max_entries.max(1) || bytes + size > max_bytes {
            chunks.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        chunks.push(start..entries.len());
    }
    Ok(chunks)
}

/// The JSON Schema of [`IntegrationEvent`], as checked in under `schemas/`.
pub fn integration_event_schema() -> String {
    let schema = schemars::schema_for!(IntegrationEvent);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Why PutEvents refuses one entry, with EventBridge's per-entry `ErrorCode`,
/// or `None` if it takes it: a `DetailType` of 1 to [`DETAIL_TYPE_CHARS`](crate::limits::DETAIL_TYPE_CHARS)
/// characters, a `Source` of 1 to [`SOURCE_CHARS`](crate::limits::SOURCE_CHARS), an entry within the
/// request size (`max_request_bytes`), and a `Detail` that is a JSON object
/// (AWS-CONTRACTS.md, "Limits at the edges"). Local mode's bus asks this of
/// every entry, so a local test sees what EventBridge would refuse. It lives
/// with [`BusEntry`], above the limits model it reads, so `limits` needs no
/// bus type.
pub fn put_events_refusal(
    entry: &BusEntry,
    max_request_bytes: usize,
) -> Option<(&'static str, String)> {
    let detail_type = entry.detail_type.chars().count();
    if detail_type == 0 || detail_type > DETAIL_TYPE_CHARS {
        return Some((
            "InvalidArgument",
            format!(
                "DetailType is {detail_type} characters; PutEvents takes 1 to {DETAIL_TYPE_CHARS}"
            ),
        ));
    }
    let source = entry.source.chars().count();
    if source == 0 || source > SOURCE_CHARS {
        return Some((
            "InvalidArgument",
            format!("Source is {source} characters; PutEvents takes 1 to {SOURCE_CHARS}"),
        ));
    }
    if entry.size() > max_request_bytes {
        return Some((
            "InvalidArgument",
            format!(
                "the entry is {} bytes (Source + DetailType + Detail); a PutEvents request carries at most {max_request_bytes}",
                entry.size()
            ),
        ));
    }
    // Entries come from the emit stage, whose detail is always a JSON object;
    // as EventBridge does, anything else is refused.
    if !entry.detail.trim_start().starts_with('{') {
        return Some(("MalformedDetail", "Detail is not a JSON object".into()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(detail_len: usize) -> BusEntry {
        BusEntry {
            source: "s".into(),
            detail_type: "t".into(),
            detail: "x".repeat(detail_len),
            entity_id: "e".into(),
            sequence: 1,
            trace_header: None,
        }
    }

    #[test]
    fn schema_on_disk_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/integration-event.schema.json"
        );
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        let current = integration_event_schema();
        if std::env::var_os("TIDELINE_UPDATE_SCHEMAS").is_some() {
            std::fs::write(path, &current).unwrap();
            return;
        }
        assert!(
            on_disk == current,
            "schemas/integration-event.schema.json is stale: run `TIDELINE_UPDATE_SCHEMAS=1 cargo test -p tideline-core schema_on_disk_is_current`"
        );
    }

    #[test]
    fn a_reader_defaults_what_a_sender_may_leave_out_and_types_the_payload() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Order {
            total: u32,
        }
        let raw = serde_json::json!({
            "detail-type": "OrderPlaced", "source": "tideline",
            "detail": {"metadata": {"event_id": "e1", "event_type": "OrderPlaced", "schema_version": 1,
                "entity_id": "o-1", "sequence": 3, "occurred_at": "t", "stored_at": "t",
                "correlation_id": null, "test": false}, "data": {"total": 42}}
        });
        let typed: IntegrationEvent<Order> = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(typed.detail.data, Order { total: 42 });
        assert_eq!((typed.entity_id(), typed.sequence()), ("o-1", 3));
        assert_eq!(
            (
                typed.version.as_str(),
                typed.id.as_str(),
                typed.time.as_str()
            ),
            ("0", "", "")
        );
        let untyped: IntegrationEvent = serde_json::from_value(raw).unwrap();
        assert_eq!(untyped.detail.data, serde_json::json!({"total": 42}));
        // The published schema still requires what every sent event carries.
        let schema: Value = serde_json::from_str(&integration_event_schema()).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["id", "detail-type", "source", "time", "detail"])
        );
    }

    #[test]
    fn event_json_equals_the_typed_serialisation() {
        let detail = EventDetail {
            metadata: DetailMetadata {
                event_id: "e\"1".into(),
                event_type: "Grüße \"quoted\"".into(),
                schema_version: 1,
                entity_id: "ä/1".into(),
                sequence: 7,
                occurred_at: "2026-01-01T00:00:00.000000Z".into(),
                stored_at: "2026-01-01T00:00:00.000001Z".into(),
                correlation_id: None,
                test: true,
                replay: false,
                removed_by: None,
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            },
            data: serde_json::json!({"z": 1, "a": [1.5, "東京"]}),
        };
        let entry = BusEntry::new("src", &detail);
        let typed = serde_json::to_string(
            &entry
                .to_integration_event("id-1".into(), "t".into())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(entry.to_event_json("id-1", "t"), typed);
    }

    fn stored_event(
        event_type: &str,
        correlation_id: Option<&str>,
        test: bool,
        data: Value,
    ) -> StoredEvent {
        StoredEvent {
            entity_id: crate::EntityId::new("order/1").unwrap(),
            seq: 42,
            sk: "2026-01-01T00:00:00.000001Z#e-1".into(),
            event_id: crate::EventId::new("e-1").unwrap(),
            event_type: event_type.into(),
            data,
            occurred_at: "2026-01-01T00:00:00.000000Z".into(),
            received_at: "2026-01-01T00:00:00.000000Z".into(),
            stored_at: "2026-01-01T00:00:00.000001Z".into(),
            correlation_id: correlation_id.map(String::from),
            test,
            schema_version: 1,
            expires_at: Some(1_800_000_000),
            // With and without a trace: both forms must serialise alike.
            traceparent: correlation_id
                .map(|_| "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        }
    }

    #[test]
    fn entry_for_stored_equals_the_entry_of_the_typed_detail() {
        let events = [
            stored_event(
                "T",
                None,
                false,
                serde_json::json!({"z": 1, "a": [1.5, "東京"]}),
            ),
            stored_event("Grüße \"q\"\n", Some("c-\"1"), true, Value::Null),
            stored_event("T", Some(""), false, serde_json::json!("x\u{1}y")),
        ];
        for event in &events {
            for replay in [false, true] {
                let typed = BusEntry::new("src", &EventDetail::from_stored(event, replay));
                assert_eq!(BusEntry::for_stored("src", event, replay), typed);
            }
        }
    }

    #[test]
    fn oversized_entry_is_refused() {
        assert_eq!(
            put_events_chunks(&[entry(10), entry(100)], MAX_PUT_EVENTS_ENTRIES, 50),
            Err(OversizedEntry {
                index: 1,
                size: 102,
                limit: 50
            })
        );
    }

    proptest! {
        #[test]
        fn chunks_cover_in_order_within_limits(sizes in proptest::collection::vec(0usize..300, 0..60), max in 302usize..2000) {
            let entries: Vec<_> = sizes.iter().map(|&s| entry(s)).collect();
            let chunks = put_events_chunks(&entries, MAX_PUT_EVENTS_ENTRIES, max).unwrap();
            let mut next = 0;
            for c in &chunks {
                prop_assert_eq!(c.start, next);
                prop_assert!(!c.is_empty() && c.len() <= MAX_PUT_EVENTS_ENTRIES);
                prop_assert!(entries[c.clone()].iter().map(BusEntry::size).sum::<usize>() <= max);
                next = c.end;
            }
            prop_assert_eq!(next, entries.len());
        }
    }
}
