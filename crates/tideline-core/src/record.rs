//! The record model: a record as ingest admitted it, which the queue, the
//! lake and the store all carry.
//!
//! It sits below both [`crate::ingest`] (which makes records) and
//! [`crate::event`] (which stores them as events), so neither needs the other.

use crate::ids::{EntityId, EventId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the normalised record and of the integration-event envelope.
pub const SCHEMA_VERSION: u32 = 1;

/// A record that passed the transform: what goes on the queue, into the lake
/// and (as a [`crate::NewEvent`]) into the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedRecord {
    /// Stable event id (producer's or derived from the bytes).
    pub id: EventId,
    /// Partition and ordering key.
    pub entity_id: EntityId,
    /// Event type, e.g. `OrderPlaced`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload, unchanged.
    pub data: Value,
    /// When it happened: fixed-width UTC, microseconds.
    pub occurred_at: String,
    /// When Tideline first received it: fixed-width UTC, microseconds.
    pub received_at: String,
    /// Correlation id, if any.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Test events are stored and emitted with the flag so consumers can skip them.
    #[serde(default)]
    pub test: bool,
    /// W3C trace context: the producer's (from a `traceparent` or X-Ray
    /// header), or one ingest started ([`crate::trace`]). Absent only in
    /// messages enqueued before traces were carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl NormalizedRecord {
    /// The fewest bytes the record's JSON takes besides `data`: field names,
    /// punctuation, and each string at its unescaped length (escaping only
    /// adds). A test holds it to the serialisation.
    pub fn envelope_len_lower_bound(&self) -> usize {
        // `{"id":,"entity_id":,"type":,"data":,"occurred_at":,"received_at":,"correlation_id":,"test":}`
        const FIELDS: usize = 92;
        // `,"traceparent":` when present.
        const TRACE_FIELD: usize = 15;
        let quoted = |s: &str| s.len() + 2;
        FIELDS
            + quoted(self.id.as_str())
            + quoted(self.entity_id.as_str())
            + quoted(&self.event_type)
            + quoted(&self.occurred_at)
            + quoted(&self.received_at)
            + self.correlation_id.as_deref().map_or(4, quoted)
            + if self.test { 4 } else { 5 }
            + self
                .traceparent
                .as_deref()
                .map_or(0, |t| TRACE_FIELD + quoted(t))
    }

    /// The record as compact JSON.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and a Value cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record as one JSON Lines line (newline-terminated), as Firehose
    /// writes it to the lake: Firehose concatenates records, so the newline is ours.
    pub fn to_json_line(&self) -> Vec<u8> {
        // Serialising a struct of strings and a Value cannot fail.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}
