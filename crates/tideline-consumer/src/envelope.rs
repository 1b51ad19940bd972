//! The integration event as a consumer receives it, with a typed `data`.
//!
//! The metadata is the core's [`DetailMetadata`], so producer and consumer
//! agree on one definition. Unknown fields are ignored (the envelope may grow),
//! and `account`, `region` and `resources` may be missing (local mode and some
//! emulators leave them out).

use serde::{Deserialize, Serialize};
pub use tideline_core::envelope::DetailMetadata;

/// An EventBridge event whose `detail.data` is a `T`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationEvent<T = serde_json::Value> {
    /// Always "0" on EventBridge.
    #[serde(default)]
    pub version: String,
    /// Unique per publish (not the event id: see `detail.metadata.event_id`).
    #[serde(default)]
    pub id: String,
    /// The event type.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// `source`.
    pub source: String,
    /// AWS account; absent locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Publish time.
    #[serde(default)]
    pub time: String,
    /// AWS region; absent locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Resources; Tideline sends none.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Metadata and typed data.
    pub detail: EventDetail<T>,
}

/// `detail`: metadata and the producer's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDetail<T = serde_json::Value> {
    /// Identity, order and provenance.
    pub metadata: DetailMetadata,
    /// The payload.
    pub data: T,
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

#[cfg(test)]
mod tests {
    use super::*;

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
