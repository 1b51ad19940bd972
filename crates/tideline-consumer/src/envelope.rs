//! The integration event as a consumer receives it, with a typed `data`.
//!
//! The envelope is the core's one generic [`IntegrationEvent<T>`], so producer
//! and consumer agree on one definition. Unknown fields are ignored (the
//! envelope may grow), and `account`, `region` and `resources` may be missing
//! (local mode and some emulators leave them out). What this module adds is
//! the consumer's side of bundles: [`unpack`].

use crate::error::ConsumerError;
use serde_json::Value;
pub use tideline_core::bundle::BUNDLE_DETAIL_TYPE;
pub use tideline_core::envelope::{DetailMetadata, EventDetail, IntegrationEvent};

/// A delivered event, split into the events it carries: a bundle
/// (`detail-type` [`BUNDLE_DETAIL_TYPE`], `detail.events: […]`) becomes one
/// event per element, in order, each with the bundle's envelope (`id`,
/// `source`, `time`, ...), its own `detail-type` (its `metadata.event_type`)
/// and the element as `detail`; a plain event is returned as it is. The bool
/// is true for a bundle. A bundle of the wrong shape is a permanent
/// [`ConsumerError::BadEvent`].
pub fn unpack(raw: Value) -> Result<(Vec<Value>, bool), ConsumerError> {
    let is_bundle = raw.get("detail-type").and_then(Value::as_str) == Some(BUNDLE_DETAIL_TYPE);
    if !is_bundle {
        return Ok((vec![raw], false));
    }
    let Value::Object(mut envelope) = raw else {
        return Err(ConsumerError::BadEvent(
            "a bundle must be a JSON object".into(),
        ));
    };
    let detail = envelope.remove("detail");
    let Some(Value::Array(elements)) =
        detail.and_then(|mut d| d.get_mut("events").map(Value::take))
    else {
        return Err(ConsumerError::BadEvent(
            "a bundle's detail.events must be an array".into(),
        ));
    };
    let mut events = Vec::with_capacity(elements.len());
    for (index, element) in elements.into_iter().enumerate() {
        let Some(event_type) = element
            .pointer("/metadata/event_type")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Err(ConsumerError::BadEvent(format!(
                "bundle element {index} has no metadata.event_type"
            )));
        };
        let mut event = envelope.clone();
        event.insert("detail-type".into(), Value::String(event_type));
        event.insert("detail".into(), element);
        events.push(Value::Object(event));
    }
    Ok((events, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[test]
    fn a_bundle_unpacks_into_its_events_in_order() {
        let element = |seq: u64, ty: &str| {
            serde_json::json!({"metadata": {"event_id": format!("e{seq}"),
            "event_type": ty, "schema_version": 1, "entity_id": "o-1", "sequence": seq,
            "occurred_at": "t", "stored_at": "t", "correlation_id": null, "test": false}, "data": {"n": seq}})
        };
        let raw = serde_json::json!({"version": "0", "id": "bus-1", "detail-type": BUNDLE_DETAIL_TYPE,
            "source": "tideline", "time": "t",
            "detail": {"events": [element(1, "OrderPlaced"), element(2, "OrderShipped")], "test_events": false}});
        let (events, bundled) = unpack(raw).unwrap();
        assert!(bundled);
        let typed: Vec<IntegrationEvent> = events
            .into_iter()
            .map(|e| serde_json::from_value(e).unwrap())
            .collect();
        assert_eq!(typed.len(), 2);
        assert_eq!(typed[1].detail_type, "OrderShipped");
        assert_eq!(typed[1].sequence(), 2);
        assert_eq!(typed[1].id, "bus-1");
        assert_eq!(typed[0].detail.data, serde_json::json!({"n": 1}));
        let bad =
            serde_json::json!({"detail-type": BUNDLE_DETAIL_TYPE, "source": "s", "detail": {}});
        assert!(matches!(unpack(bad), Err(ConsumerError::BadEvent(_))));
    }

    #[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
    struct Order {
        total: u32,
    }

    #[test]
    fn tolerates_unknown_fields_and_missing_account() {
        let raw = serde_json::json!({
            "version": "0", "id": "x", "detail-type": "OrderPlaced", "source": "tideline",
            "time": "2026-11-23T08:00:00Z", "new-top-level": 1,
            "detail": {"metadata": {"event_id": "e1", "event_type": "OrderPlaced", "schema_version": 1,
                "entity_id": "o-1", "sequence": 3, "occurred_at": "t", "stored_at": "t",
                "correlation_id": null, "test": false, "future_field": true},
                "data": {"total": 42, "extra": "ignored"}}
        });
        let e: IntegrationEvent<Order> = serde_json::from_value(raw).unwrap();
        assert_eq!(e.account, None);
        assert!(!e.metadata().replay);
        assert_eq!(e.sequence(), 3);
        assert_eq!(e.detail.data, Order { total: 42 });
    }
}
