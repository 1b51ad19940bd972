//! Events as the frames a subscriber receives, built once per event.
//!
//! The bus carries integration events, some of them bundles (decision
//! 0014); [`from_integration_event`] parses one once, unpacks a bundle
//! with the bundle reader, and renders each event's `event` message. The
//! fan-out then copies the same text to every subscriber: no per-subscriber
//! parse or render. [`from_stored`] renders a stored event the same way for
//! the resume's backfill, so both paths send identical frames.
//!
//! **Size.** A message over `max_message_bytes` (by default API Gateway's
//! 32 KB frame) becomes a `reference`: the entity, the sequence, the event
//! id and the query API path whose first item is the event.

use crate::protocol::ServerMessage;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use std::sync::Arc;
use tideline_core::bundle::{BUNDLE_DETAIL_TYPE, unpack_detail};
use tideline_core::envelope::EventDetail;
use tideline_core::{IntegrationEvent, StoredEvent};
use tideline_stages::query::encode_cursor;

/// One event ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The topic (event type).
    pub topic: String,
    /// The entity.
    pub entity_id: String,
    /// The entity's sequence.
    pub sequence: u64,
    /// An `EventExpired` notice: its `sequence` names the removed event, so it
    /// is delivered outside the de-duplication of live events.
    pub expiry: bool,
    /// The message text: an `event`, or a `reference` when too large.
    pub text: Arc<str>,
}

/// Characters an entity id keeps in a path segment (RFC 3986 unreserved).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The query API path whose first item is `entity`'s event `sequence`.
pub fn reference_href(entity: &str, sequence: u64) -> String {
    format!(
        "/entities/{}/events?limit=1&cursor={}",
        utf8_percent_encode(entity, PATH_SEGMENT),
        encode_cursor(entity, sequence.saturating_sub(1))
    )
}

/// Renders one event detail (`max_message_bytes`: the reference threshold).
pub fn from_detail(detail: &EventDetail, max_message_bytes: usize) -> Outgoing {
    let meta = &detail.metadata;
    let message = ServerMessage::Event {
        topic: meta.event_type.clone(),
        entity_id: meta.entity_id.clone(),
        sequence: meta.sequence,
        detail: serde_json::to_value(detail).unwrap_or(Value::Null),
    };
    let mut text = message.to_text();
    if text.len() > max_message_bytes {
        text = ServerMessage::Reference {
            topic: meta.event_type.clone(),
            entity_id: meta.entity_id.clone(),
            sequence: meta.sequence,
            event_id: meta.event_id.clone(),
            size: text.len(),
            href: reference_href(&meta.entity_id, meta.sequence),
        }
        .to_text();
    }
    Outgoing {
        topic: meta.event_type.clone(),
        entity_id: meta.entity_id.clone(),
        sequence: meta.sequence,
        expiry: meta.is_expiry(),
        text: Arc::from(text),
    }
}

/// Renders a stored event (the resume's backfill).
pub fn from_stored(event: &StoredEvent, max_message_bytes: usize) -> Outgoing {
    from_detail(&EventDetail::from_stored(event, false), max_message_bytes)
}

/// Why a bus event could not be read.
#[derive(Debug, thiserror::Error)]
#[error("integration event unreadable: {0}")]
pub struct Unreadable(#[from] serde_json::Error);

impl tideline_core::Classify for Unreadable {
    fn class(&self) -> tideline_core::ErrorClass {
        tideline_core::ErrorClass::Permanent
    }
}

/// The events one integration event carries (several for a bundle), in order.
pub fn from_integration_event(
    json: &str,
    max_message_bytes: usize,
) -> Result<Vec<Outgoing>, Unreadable> {
    let event: IntegrationEvent<Value> = match serde_json::from_str(json) {
        Ok(e) => e,
        Err(plain_error) => {
            // A bundle's detail is not an `EventDetail`: read it as one.
            let raw: Value = serde_json::from_str(json)?;
            if raw.get("detail-type").and_then(Value::as_str) != Some(BUNDLE_DETAIL_TYPE) {
                return Err(Unreadable(plain_error));
            }
            let detail = raw.get("detail").map(Value::to_string).unwrap_or_default();
            let bundle = unpack_detail(&detail)?;
            return Ok(bundle
                .events
                .iter()
                .map(|d| from_detail(d, max_message_bytes))
                .collect());
        }
    };
    Ok(vec![from_detail(&event.detail, max_message_bytes)])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn event_json(entity: &str, seq: u64, data: Value) -> String {
        json!({"version":"0","id":"x","detail-type":"OrderPlaced","source":"tideline","time":"t","resources":[],
            "detail":{"metadata":{"event_id":format!("{entity}-{seq}"),"event_type":"OrderPlaced","schema_version":1,
            "entity_id":entity,"sequence":seq,"occurred_at":"t","stored_at":"t","correlation_id":null,"test":false},
            "data":data}}).to_string()
    }

    #[test]
    fn an_event_becomes_one_message_with_entity_and_sequence() {
        let out = from_integration_event(&event_json("o/1", 3, json!({"n":1})), 32 * 1024).unwrap();
        assert_eq!(out.len(), 1);
        let m: Value = serde_json::from_str(&out[0].text).unwrap();
        assert_eq!(m["type"], "event");
        assert_eq!(m["entity_id"], "o/1");
        assert_eq!(m["sequence"], 3);
        assert_eq!(m["detail"]["data"]["n"], 1);
    }

    #[test]
    fn an_oversize_event_becomes_a_reference_to_the_query_api() {
        let big = json!({"blob": "x".repeat(40_000)});
        let out = from_integration_event(&event_json("o/1", 3, big), 32 * 1024).unwrap();
        let m: Value = serde_json::from_str(&out[0].text).unwrap();
        assert_eq!(m["type"], "reference");
        assert_eq!(m["sequence"], 3);
        assert!(m["size"].as_u64().unwrap() > 40_000);
        let href = m["href"].as_str().unwrap();
        assert!(
            href.starts_with("/entities/o%2F1/events?limit=1&cursor="),
            "{href}"
        );
        assert!(out[0].text.len() < 1024);
    }

    #[test]
    fn a_bundle_unpacks_into_its_events_in_order() {
        let a: Value = serde_json::from_str(&event_json("a", 1, json!(1))).unwrap();
        let b: Value = serde_json::from_str(&event_json("b", 7, json!(2))).unwrap();
        let bundle = json!({"detail-type": BUNDLE_DETAIL_TYPE, "source":"tideline",
            "detail": {"events": [a["detail"], b["detail"]], "test_events": false}});
        let out = from_integration_event(&bundle.to_string(), 32 * 1024).unwrap();
        let seen: Vec<(String, u64)> = out
            .iter()
            .map(|o| (o.entity_id.clone(), o.sequence))
            .collect();
        assert_eq!(seen, [("a".to_string(), 1), ("b".to_string(), 7)]);
        assert!(from_integration_event("{}", 1024).is_err());
    }
}
