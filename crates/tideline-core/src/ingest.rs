//! The ingest contract: what a producer sends, and how the transform stage
//! validates and normalises it.
//!
//! A record is one JSON object (UTF-8, trailing newline optional) with
//! `entity_id`, `type` and `data`, and optionally `id`, `occurred_at`,
//! `correlation_id` and `test`. Where those fields live is configurable with
//! JSON Pointers ([`FieldMap`]), so existing payloads can be ingested as they
//! are. A record that breaks the contract gets a [`RejectReason`] that says
//! what and where; it is never stored and never blocks its neighbours.

use crate::ids::{EntityId, EventId, IdError};
use crate::keys::{event_sort_key, format_timestamp};
use crate::limits::{
    ENVELOPE_DEPTH, EventItemFields, HopLimits, JSON_READER_DEPTH, Limit, MAX_DATA_DEPTH,
    OverLimit, WORST_CASE_SEQ, deeper_than, json_depth,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

// The record model sits below ingest and the store (`crate::record`); its
// names stay reachable here, where producers' code has always found them.
pub use crate::record::{NormalizedRecord, SCHEMA_VERSION};

/// Firehose's per-record limit: 1,000 KiB before base64 (AWS-CONTRACTS.md).
pub const DEFAULT_MAX_RECORD_BYTES: usize = crate::limits::FIREHOSE_RECORD_BYTES;

/// Longest accepted event type: the type becomes PutEvents' `DetailType`,
/// which takes 1–128 characters. A longer one could be stored but never published.
pub const MAX_EVENT_TYPE_CHARS: usize = crate::limits::DETAIL_TYPE_CHARS;

/// Where each contract field lives in the producer's JSON, as JSON Pointers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldMap {
    /// Pointer to the entity id (required field).
    pub entity_id: String,
    /// Pointer to the event type (required unless `default_type` is set).
    #[serde(rename = "type")]
    pub event_type: String,
    /// Pointer to the payload; `""` takes the whole record.
    pub data: String,
    /// Pointer to the producer's event id.
    pub id: String,
    /// Pointer to the RFC 3339 time the event happened.
    pub occurred_at: String,
    /// Pointer to the correlation id.
    pub correlation_id: String,
    /// Pointer to the test flag.
    pub test: String,
    /// Pointer to the trace context: a W3C `traceparent` or an X-Ray trace header.
    pub traceparent: String,
    /// Event type used when the record has none, for payloads that carry no type.
    pub default_type: Option<String>,
}

impl Default for FieldMap {
    fn default() -> Self {
        Self {
            entity_id: "/entity_id".into(),
            event_type: "/type".into(),
            data: "/data".into(),
            id: "/id".into(),
            occurred_at: "/occurred_at".into(),
            correlation_id: "/correlation_id".into(),
            test: "/test".into(),
            traceparent: "/traceparent".into(),
            default_type: None,
        }
    }
}

/// A field map that is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "field map: {field} = {pointer:?} is not a JSON Pointer (it must be empty or start with '/')"
)]
pub struct FieldMapError {
    /// The contract field.
    pub field: &'static str,
    /// The offending pointer.
    pub pointer: String,
}

impl FieldMap {
    /// Parses a field map from JSON, e.g. `{"entity_id": "/order_id"}`; unset fields keep their defaults.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let map: FieldMap = serde_json::from_str(text).map_err(|e| format!("field map: {e}"))?;
        map.validate().map_err(|e| e.to_string())?;
        Ok(map)
    }

    /// Checks every pointer is well formed.
    pub fn validate(&self) -> Result<(), FieldMapError> {
        let all = [
            ("entity_id", &self.entity_id),
            ("type", &self.event_type),
            ("data", &self.data),
            ("id", &self.id),
            ("occurred_at", &self.occurred_at),
            ("correlation_id", &self.correlation_id),
            ("test", &self.test),
            ("traceparent", &self.traceparent),
        ];
        for (field, pointer) in all {
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(FieldMapError {
                    field,
                    pointer: pointer.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Settings of the transform stage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngestConfig {
    /// Every hop's limits a record must fit, the record size among them.
    pub limits: HopLimits,
    /// Where the contract fields live.
    pub fields: FieldMap,
    /// Optional per-type check of `data` (a schema registry); `None` accepts
    /// any `data`.
    pub data_validator: Option<crate::data_validator::SharedDataValidator>,
}

/// Why a record was refused. The `Display` text is the reason stored next to
/// the record in `processing-failed/`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// Zero bytes, or only whitespace.
    #[error("record is empty")]
    Empty,
    /// Over the configured size (Firehose's record limit, or lower).
    #[error("record is {size} bytes; the limit is {limit} bytes (Firehose record size)")]
    TooLarge {
        /// Record size.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// Not valid UTF-8.
    #[error("record is not valid UTF-8: invalid byte at offset {offset}")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Not parseable JSON.
    #[error("record is not valid JSON: {message} at line {line}, column {column}")]
    NotJson {
        /// serde_json's message.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// JSON, but not an object.
    #[error("record must be a JSON object, found {found}")]
    NotObject {
        /// The JSON kind found.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("missing required field `{field}` (at {pointer:?})")]
    MissingField {
        /// Contract field.
        field: &'static str,
        /// Where it was looked for.
        pointer: String,
    },
    /// A field has the wrong JSON type.
    #[error("field `{field}` (at {pointer:?}) must be {expected}, found {found}")]
    WrongType {
        /// Contract field.
        field: &'static str,
        /// Where it was found.
        pointer: String,
        /// Expected kind.
        expected: &'static str,
        /// Found kind.
        found: &'static str,
    },
    /// A field's value breaks a rule.
    #[error("field `{field}` (at {pointer:?}) {problem}")]
    InvalidField {
        /// Contract field.
        field: &'static str,
        /// Where it was found.
        pointer: String,
        /// What is wrong.
        problem: String,
    },
    /// Valid here, but a later hop could not carry it.
    #[error("record would not fit every hop: {0}")]
    OverLimit(#[from] OverLimit),
    /// `data` does not match the schema registered for its type.
    #[error(
        "`data` of {event_type} does not match its schema (version {schema_version}): at {pointer:?} rule `{rule}`: {message}"
    )]
    SchemaViolation {
        /// The event type.
        event_type: String,
        /// JSON Pointer of the first violation, relative to `data`.
        pointer: String,
        /// The schema keyword broken.
        rule: String,
        /// What is wrong.
        message: String,
        /// The schema's version.
        schema_version: u32,
    },
}

impl RejectReason {
    /// A short machine-readable code, used as the `errorCode` in lake failure records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::TooLarge { .. } => "TooLarge",
            Self::NotUtf8 { .. } => "NotUtf8",
            Self::NotJson { .. } => "NotJson",
            Self::NotObject { .. } => "NotObject",
            Self::MissingField { .. } => "MissingField",
            Self::WrongType { .. } => "WrongType",
            Self::InvalidField { .. } => "InvalidField",
            Self::OverLimit(_) => "OverLimit",
            Self::SchemaViolation { .. } => "SchemaViolation",
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The top-level member a pointer such as `/entity_id` names, or `None` when
/// the pointer is not a single plain segment. `Value::pointer` unescapes
/// every segment into new strings; the default field map only has plain
/// top-level names, looked up several times per record.
fn top_level_name(pointer: &str) -> Option<&str> {
    pointer
        .strip_prefix('/')
        .filter(|name| !name.contains(['/', '~']))
}

/// `Value::pointer`, with plain top-level names looked up directly.
fn at_pointer<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    match (top_level_name(pointer), doc) {
        (Some(name), Value::Object(members)) => members.get(name),
        _ => doc.pointer(pointer),
    }
}

/// `Value::pointer_mut`, with plain top-level names looked up directly.
fn at_pointer_mut<'a>(doc: &'a mut Value, pointer: &str) -> Option<&'a mut Value> {
    match top_level_name(pointer) {
        Some(name) if doc.is_object() => doc.as_object_mut().and_then(|m| m.get_mut(name)),
        _ => doc.pointer_mut(pointer),
    }
}

fn lookup<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    // A null is treated as absent: producers commonly send `"id": null`.
    at_pointer(doc, pointer).filter(|v| !v.is_null())
}

fn required_string<'a>(
    doc: &'a Value,
    field: &'static str,
    pointer: &str,
) -> Result<&'a str, RejectReason> {
    match lookup(doc, pointer) {
        None => Err(RejectReason::MissingField {
            field,
            pointer: pointer.to_string(),
        }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(RejectReason::WrongType {
            field,
            pointer: pointer.to_string(),
            expected: "a string",
            found: kind(other),
        }),
    }
}

fn optional_string<'a>(
    doc: &'a Value,
    field: &'static str,
    pointer: &str,
) -> Result<Option<&'a str>, RejectReason> {
    if pointer.is_empty() {
        return Ok(None);
    }
    match lookup(doc, pointer) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(RejectReason::WrongType {
            field,
            pointer: pointer.to_string(),
            expected: "a string",
            found: kind(other),
        }),
    }
}

fn invalid_id(field: &'static str, pointer: &str, e: IdError) -> RejectReason {
    RejectReason::InvalidField {
        field,
        pointer: pointer.to_string(),
        problem: e.to_string(),
    }
}

/// The transform stage for one record: validate and normalise.
///
/// Pure and total: any byte string gives `Ok` or a reason, never a panic
/// (INVARIANTS.md #8; a property test feeds it arbitrary bytes).
pub fn normalize_record(
    config: &IngestConfig,
    bytes: &[u8],
    arrival: DateTime<Utc>,
) -> Result<NormalizedRecord, RejectReason> {
    if bytes.len() > config.limits.record_bytes {
        return Err(RejectReason::TooLarge {
            size: bytes.len(),
            limit: config.limits.record_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| RejectReason::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    // The trailing newline is optional, so it must not change the derived id.
    let text = text.trim_end_matches(['\n', '\r', ' ', '\t']);
    if text.trim_start().is_empty() {
        return Err(RejectReason::Empty);
    }
    let mut doc: Value = serde_json::from_str(text).map_err(|e| {
        if e.to_string().starts_with("recursion limit exceeded") {
            // Deeper than any Rust reader along the way can parse.
            return RejectReason::OverLimit(OverLimit {
                limit: Limit::JsonDepth,
                size: JSON_READER_DEPTH + 1,
                max: JSON_READER_DEPTH,
            });
        }
        RejectReason::NotJson {
            message: e
                .to_string()
                .split(" at line")
                .next()
                .unwrap_or_default()
                .to_string(),
            line: e.line(),
            column: e.column(),
        }
    })?;
    if !doc.is_object() {
        return Err(RejectReason::NotObject { found: kind(&doc) });
    }
    let f = &config.fields;

    let entity_raw = required_string(&doc, "entity_id", &f.entity_id)?;
    let entity_id =
        EntityId::new(entity_raw).map_err(|e| invalid_id("entity_id", &f.entity_id, e))?;

    let event_type = match (lookup(&doc, &f.event_type), &f.default_type) {
        (None, Some(default)) => default.clone(),
        _ => required_string(&doc, "type", &f.event_type)?.to_string(),
    };
    let type_chars = event_type.chars().count();
    if type_chars == 0
        || type_chars > MAX_EVENT_TYPE_CHARS
        || event_type.chars().any(char::is_control)
    {
        return Err(RejectReason::InvalidField {
            field: "type",
            pointer: f.event_type.clone(),
            problem: format!(
                "must be 1–{MAX_EVENT_TYPE_CHARS} characters without control characters"
            ),
        });
    }
    // The bundle's detail-type is reserved: a consumer tells a bundle from a
    // plain event by `detail-type` alone (decision record 0014).
    if event_type == crate::limits::BUNDLE_DETAIL_TYPE {
        return Err(RejectReason::InvalidField {
            field: "type",
            pointer: f.event_type.clone(),
            problem: format!(
                "{:?} is reserved for bundled bus entries",
                crate::limits::BUNDLE_DETAIL_TYPE
            ),
        });
    }

    // `data` is checked here, in the order of the reasons, and moved out of
    // the document once every other field has been read: it is the bulk of
    // the record, and copying it was a second pass over it.
    // `data` may legitimately be JSON null, so look it up without the null filter.
    let data = at_pointer(&doc, &f.data).ok_or_else(|| RejectReason::MissingField {
        field: "data",
        pointer: f.data.clone(),
    })?;

    // `data` travels inside envelopes up to ENVELOPE_DEPTH levels deep (a
    // bundled bus event); past that, a consumer's parser would refuse the event.
    if deeper_than(data, MAX_DATA_DEPTH) {
        return Err(RejectReason::OverLimit(OverLimit {
            limit: Limit::JsonDepth,
            size: json_depth(data) + ENVELOPE_DEPTH,
            max: JSON_READER_DEPTH,
        }));
    }

    let id = match optional_string(&doc, "id", &f.id)? {
        Some(s) => EventId::new(s).map_err(|e| invalid_id("id", &f.id, e))?,
        None => EventId::derive(text.as_bytes()),
    };

    let occurred_at = match optional_string(&doc, "occurred_at", &f.occurred_at)? {
        Some(s) => {
            let t = DateTime::parse_from_rfc3339(s).map_err(|e| RejectReason::InvalidField {
                field: "occurred_at",
                pointer: f.occurred_at.clone(),
                problem: format!("is not an RFC 3339 time ({e}): {s:?}"),
            })?;
            format_timestamp(t.with_timezone(&Utc))
        }
        None => format_timestamp(arrival),
    };

    let correlation_id =
        optional_string(&doc, "correlation_id", &f.correlation_id)?.map(String::from);

    let test = if f.test.is_empty() {
        false
    } else {
        match lookup(&doc, &f.test) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(RejectReason::WrongType {
                    field: "test",
                    pointer: f.test.clone(),
                    expected: "a boolean",
                    found: kind(other),
                });
            }
        }
    };

    // The producer's trace, normalised to W3C form; a record with none gets
    // one derived from its identity, so a retried record starts the same trace.
    let traceparent = match optional_string(&doc, "traceparent", &f.traceparent)? {
        Some(text) => crate::trace::TraceContext::parse(text)
            .map_err(|e| RejectReason::InvalidField {
                field: "traceparent",
                pointer: f.traceparent.clone(),
                problem: e.to_string(),
            })?
            .traceparent(),
        None => crate::trace::started_traceparent(entity_id.as_str(), id.as_str()),
    };

    let data = if f.data.is_empty() {
        doc
    } else {
        // Found above; `take` leaves a null in the document, which is dropped.
        at_pointer_mut(&mut doc, &f.data)
            .map(Value::take)
            .unwrap_or_default()
    };

    Ok(NormalizedRecord {
        id,
        entity_id,
        event_type,
        data,
        occurred_at,
        received_at: format_timestamp(arrival),
        correlation_id,
        test,
        traceparent: Some(traceparent),
    })
}

/// A record admitted at ingest: normalised, serialised once, and checked
/// against every later hop's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmittedRecord {
    /// The normalised record.
    pub record: NormalizedRecord,
    /// The record as compact JSON (no newline): the queue message's body and,
    /// with a newline, the lake's line. Serialised once, used by every hop.
    pub body: String,
}

impl AdmittedRecord {
    /// The record as one JSON Lines line, as Firehose writes it to the lake.
    pub fn json_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(self.body.len() + 1);
        line.extend_from_slice(self.body.as_bytes());
        line.push(b'\n');
        line
    }

    /// [`AdmittedRecord::json_line`], reusing the body's buffer: the
    /// transformer's `Ok` answer, built without copying the record again.
    pub fn into_json_line(self) -> Vec<u8> {
        let mut line = self.body.into_bytes();
        line.push(b'\n');
        line
    }
}

/// The transform stage's admission of one record: [`normalize_record`], then
/// the record as it will travel, measured against every hop after ingest
/// (queue message, stored item, bus entry). A record that some later hop could
/// not carry is refused here with a reason that names the limit and the hop.
pub fn admit(
    config: &IngestConfig,
    bytes: &[u8],
    arrival: DateTime<Utc>,
) -> Result<AdmittedRecord, RejectReason> {
    let record = normalize_record(config, bytes, arrival)?;
    if let Some(validator) = &config.data_validator {
        validator
            .0
            .validate(&record.event_type, &record.data)
            .map_err(|v| RejectReason::SchemaViolation {
                event_type: record.event_type.clone(),
                pointer: v.pointer,
                rule: v.rule,
                message: v.message,
                schema_version: v.schema_version,
            })?;
    }
    let body = record.to_json();
    // The serialised `data` is at most the body less the rest of the record
    // at its shortest (strings unescaped): an upper bound, so every check
    // below errs on the safe side, without a second serialisation.
    let data_len = body.len().saturating_sub(record.envelope_len_lower_bound());
    // The item as the store will write it, at its widest: the largest `seq`,
    // a retention attribute, `stored_at` as wide as `received_at` (fixed width).
    let sk = event_sort_key(&record.received_at, record.id.as_str());
    let worst = EventItemFields {
        entity_id: record.entity_id.as_str(),
        sk: &sk,
        seq: WORST_CASE_SEQ,
        event_id: record.id.as_str(),
        event_type: &record.event_type,
        occurred_at: &record.occurred_at,
        received_at: &record.received_at,
        stored_at: &record.received_at,
        correlation_id: record.correlation_id.as_deref(),
        test: record.test,
        schema_version: SCHEMA_VERSION,
        expires_at: Some(i64::MAX),
        traceparent: record.traceparent.as_deref(),
    };
    config.limits.check_record(&worst, body.len(), data_len)?;
    Ok(AdmittedRecord { record, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T08:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ok(bytes: &str) -> NormalizedRecord {
        normalize_record(&IngestConfig::default(), bytes.as_bytes(), now()).unwrap()
    }

    fn err(bytes: &[u8]) -> RejectReason {
        normalize_record(&IngestConfig::default(), bytes, now()).unwrap_err()
    }

    #[test]
    fn the_bundle_detail_type_is_reserved() {
        let reason = err(br#"{"entity_id":"o-1","type":"TidelineBundle","data":{}}"#);
        assert!(
            matches!(&reason, RejectReason::InvalidField { field: "type", problem, .. } if problem.contains("reserved")),
            "{reason:?}"
        );
    }

    #[test]
    fn minimal_record_normalises() {
        let r = ok(r#"{"entity_id":"o-1","type":"OrderPlaced","data":{"total":12.5}}"#);
        assert_eq!(r.entity_id.as_str(), "o-1");
        assert_eq!(r.event_type, "OrderPlaced");
        assert_eq!(r.occurred_at, "2026-11-23T08:00:00.123456Z");
        assert!(r.id.as_str().starts_with("sha256-"));
        assert!(!r.test);
    }

    #[test]
    fn trailing_newline_keeps_the_id() {
        let a = ok("{\"entity_id\":\"e\",\"type\":\"T\",\"data\":1}");
        let b = ok("{\"entity_id\":\"e\",\"type\":\"T\",\"data\":1}\n");
        assert_eq!(a.id, b.id);
    }

    #[test]
    fn optional_fields_are_read() {
        let r = ok(
            r#"{"entity_id":"e","type":"T","data":null,"id":"ev-1","occurred_at":"2026-01-02T03:04:05+01:00","correlation_id":"c","test":true}"#,
        );
        assert_eq!(r.id.as_str(), "ev-1");
        assert_eq!(r.occurred_at, "2026-01-02T02:04:05.000000Z");
        assert_eq!(r.correlation_id.as_deref(), Some("c"));
        assert!(r.test);
        assert_eq!(r.data, Value::Null);
    }

    #[test]
    fn envelope_bound_is_exact_without_escapes_and_never_over() {
        for text in [
            r#"{"entity_id":"o-1","type":"T","data":{"a":[1,2]}}"#,
            r#"{"entity_id":"o-1","type":"T","data":null,"id":"x","correlation_id":"c-9","test":true}"#,
            r#"{"entity_id":"o-1","type":"Quote\"d\\n","data":"x"}"#,
        ] {
            let r = ok(text);
            let data_len = serde_json::to_string(&r.data).unwrap().len();
            let envelope = r.to_json().len() - data_len;
            assert!(r.envelope_len_lower_bound() <= envelope, "{text}");
            if !r.event_type.contains(['"', '\\']) {
                assert_eq!(r.envelope_len_lower_bound(), envelope, "{text}");
            }
        }
    }

    #[test]
    fn non_ascii_survives_byte_exact() {
        let r = ok(r#"{"entity_id":"e","type":"T","data":{"name":"Zoë Ålund 東京 🚀"}}"#);
        let line = String::from_utf8(r.to_json_line()).unwrap();
        assert!(line.contains("Zoë Ålund 東京 🚀"));
    }

    #[test]
    fn each_rejection_has_a_precise_reason() {
        assert_eq!(err(b""), RejectReason::Empty);
        assert_eq!(err(b"\xff\xfe"), RejectReason::NotUtf8 { offset: 0 });
        assert!(matches!(
            err(b"{\"a\":"),
            RejectReason::NotJson { line: 1, .. }
        ));
        assert_eq!(err(b"[1]"), RejectReason::NotObject { found: "an array" });
        assert_eq!(
            err(br#"{"type":"T","data":1}"#).to_string(),
            "missing required field `entity_id` (at \"/entity_id\")"
        );
        assert_eq!(
            err(br#"{"entity_id":"e","data":1}"#),
            RejectReason::MissingField {
                field: "type",
                pointer: "/type".into()
            }
        );
        assert_eq!(
            err(br#"{"entity_id":"e","type":"T"}"#),
            RejectReason::MissingField {
                field: "data",
                pointer: "/data".into()
            }
        );
        assert_eq!(
            err(br#"{"entity_id":7,"type":"T","data":1}"#).to_string(),
            "field `entity_id` (at \"/entity_id\") must be a string, found a number"
        );
        assert!(
            err(br#"{"entity_id":"a b","type":"T","data":1}"#)
                .to_string()
                .contains("contains ' '")
        );
        assert!(matches!(
            err(br#"{"entity_id":"e","type":"T","data":1,"occurred_at":"yesterday"}"#),
            RejectReason::InvalidField {
                field: "occurred_at",
                ..
            }
        ));
        assert!(matches!(
            err(br#"{"entity_id":"e","type":"T","data":1,"test":"yes"}"#),
            RejectReason::WrongType { field: "test", .. }
        ));
        let small = IngestConfig {
            limits: HopLimits {
                record_bytes: 10,
                ..HopLimits::default()
            },
            ..IngestConfig::default()
        };
        assert_eq!(
            normalize_record(&small, b"{\"entity_id\":1}", now()).unwrap_err(),
            RejectReason::TooLarge {
                size: 15,
                limit: 10
            }
        );
    }

    #[test]
    fn field_map_ingests_existing_payloads() {
        let fields = FieldMap::from_json(
            r#"{"entity_id":"/order_id","type":"/kind","data":"","default_type":"OrderSeen"}"#,
        )
        .unwrap();
        let config = IngestConfig {
            fields,
            ..IngestConfig::default()
        };
        let r = normalize_record(&config, br#"{"order_id":"A-9","total":3}"#, now()).unwrap();
        assert_eq!(r.entity_id.as_str(), "A-9");
        assert_eq!(r.event_type, "OrderSeen");
        assert_eq!(r.data, serde_json::json!({"order_id":"A-9","total":3}));
        assert!(FieldMap::from_json(r#"{"entity_id":"order_id"}"#).is_err());
        assert!(FieldMap::from_json(r#"{"entiti":"/x"}"#).is_err());
    }

    #[test]
    fn pointer_lookups_agree_with_serde_json() {
        let doc = serde_json::json!({
            "a": 1, "a/b": 2, "a~b": 3, "": 4, "n": {"x": [5, 6]}, "z": null
        });
        for pointer in [
            "", "/a", "/a~1b", "/a~0b", "/", "/n", "/n/x", "/n/x/1", "/z", "/missing",
        ] {
            assert_eq!(at_pointer(&doc, pointer), doc.pointer(pointer), "{pointer}");
            let mut ours = doc.clone();
            let mut theirs = doc.clone();
            assert_eq!(
                at_pointer_mut(&mut ours, pointer).map(Value::take),
                theirs.pointer_mut(pointer).map(Value::take),
                "{pointer}"
            );
        }
        // A scalar document: no member, whatever the pointer.
        assert_eq!(at_pointer(&Value::Bool(true), "/a"), None);
    }

    #[test]
    fn data_is_moved_out_whole_and_nested() {
        let nested = FieldMap::from_json(r#"{"data":"/payload/body"}"#).unwrap();
        let config = IngestConfig {
            fields: nested,
            ..IngestConfig::default()
        };
        let r = normalize_record(
            &config,
            br#"{"entity_id":"e","type":"T","payload":{"body":{"k":[1,"v"]}}}"#,
            now(),
        )
        .unwrap();
        assert_eq!(r.data, serde_json::json!({"k": [1, "v"]}));
        let r = ok(r#"{"entity_id":"e","type":"T","data":null}"#);
        assert_eq!(r.data, Value::Null);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = normalize_record(&IngestConfig::default(), &bytes, now());
        }

        #[test]
        fn arbitrary_json_objects_never_panic(entity in ".{0,140}", ty in ".{0,10}", n in any::<i64>()) {
            let rec = serde_json::json!({"entity_id": entity, "type": ty, "data": {"n": n}});
            let bytes = serde_json::to_vec(&rec).unwrap();
            match normalize_record(&IngestConfig::default(), &bytes, now()) {
                Ok(r) => prop_assert_eq!(r.entity_id.as_str(), entity.as_str()),
                Err(reason) => prop_assert!(!reason.to_string().is_empty()),
            }
        }
    }
}
