//! Stored events and the append plan.
//!
//! [`plan_append`] is the one place that decides de-duplication, the
//! expected-version check and `seq` assignment. Both stores execute its plan in
//! one atomic write (a SQLite transaction, a DynamoDB `TransactWriteItems`), so
//! `seq` is never assigned in a separate step (INVARIANTS.md #3).

use crate::ids::{EntityId, EventId};
use crate::keys::{event_sort_key, format_timestamp, parse_timestamp};
use crate::limits::EventItemFields;
use crate::record::{NormalizedRecord, SCHEMA_VERSION};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// An event to append: a normalised record.
pub type NewEvent = NormalizedRecord;

/// An immutable stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Partition key.
    pub entity_id: EntityId,
    /// Gapless per-entity sequence, from 1.
    pub seq: u64,
    /// Range key: sortable time plus event id.
    pub sk: String,
    /// Stable event id.
    pub event_id: EventId,
    /// Event type.
    pub event_type: String,
    /// Payload.
    pub data: Value,
    /// When it happened.
    pub occurred_at: String,
    /// When it was received at ingest.
    pub received_at: String,
    /// When it was appended (the time in `sk`).
    pub stored_at: String,
    /// Correlation id.
    pub correlation_id: Option<String>,
    /// Test event flag.
    pub test: bool,
    /// Envelope schema version.
    pub schema_version: u32,
    /// Epoch seconds after which TTL may expire the item, if retention is set.
    pub expires_at: Option<i64>,
    /// W3C trace context carried from ingest ([`crate::trace`]); absent on
    /// events stored before traces were carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The per-entity head: what the next append needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityHead {
    /// The entity.
    pub entity_id: EntityId,
    /// Highest assigned `seq` (0: none).
    pub last_seq: u64,
    /// `stored_at` of the last event.
    pub last_stored_at: String,
}

/// The optimistic-concurrency expectation of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedSeq {
    /// Append whatever the current version (the pipeline's storer).
    #[default]
    Any,
    /// The entity must have no events yet (the same as `Exactly(0)`, named
    /// for the command that creates an entity).
    NoStream,
    /// The entity's last `seq` must be exactly this (0: the entity is new).
    Exactly(u64),
}

impl ExpectedSeq {
    /// Whether an entity whose last `seq` is `actual` meets this expectation.
    pub fn check(self, entity_id: &EntityId, actual: u64) -> Result<(), AppendConflict> {
        match self.expected_last() {
            Some(expected) if expected != actual => Err(AppendConflict {
                entity_id: entity_id.clone(),
                expected,
                actual,
            }),
            _ => Ok(()),
        }
    }

    /// The last `seq` this expectation requires, or `None` for `Any`.
    pub fn expected_last(self) -> Option<u64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(0),
            Self::Exactly(seq) => Some(seq),
        }
    }
}

/// An expected-version append whose expectation was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("append to {entity_id}: expected last sequence {expected}, but it is {actual}")]
pub struct AppendConflict {
    /// The entity.
    pub entity_id: EntityId,
    /// What the caller expected.
    pub expected: u64,
    /// What the store holds.
    pub actual: u64,
}

/// What one append must write, atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendPlan {
    /// The events to insert, with their `seq` and `sk`.
    pub to_store: Vec<StoredEvent>,
    /// Ids that were already stored, or repeated within the call: written nowhere.
    pub duplicates: Vec<EventId>,
    /// The head after the write; `None` when nothing is stored.
    pub new_head: Option<EntityHead>,
    /// The head the write is conditional on (`last_seq` before; 0 for a new entity).
    pub previous_seq: u64,
}

/// What happened to one event of an append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AppendOutcome {
    /// Stored now, with this sequence.
    Stored {
        /// Event id.
        event_id: EventId,
        /// Its sequence number.
        seq: u64,
    },
    /// Already stored earlier: nothing written, no sequence used.
    Duplicate {
        /// Event id.
        event_id: EventId,
    },
}

/// Plans an append: drops duplicates, checks the expectation, assigns `seq`
/// and `stored_at`.
///
/// `stored_at` never goes backwards within an entity, even if the clock does,
/// so `sk` order and `seq` order agree.
pub fn plan_append(
    entity_id: &EntityId,
    head: Option<&EntityHead>,
    expected: ExpectedSeq,
    events: Vec<NewEvent>,
    already_stored: impl Fn(&EventId) -> bool,
    now: DateTime<Utc>,
    ttl: Option<Duration>,
) -> Result<AppendPlan, AppendConflict> {
    let previous_seq = head.map_or(0, |h| h.last_seq);
    let mut seen = HashSet::new();
    let mut fresh = Vec::with_capacity(events.len());
    let mut duplicates = Vec::new();
    for event in events {
        if already_stored(&event.id) || !seen.insert(event.id.clone()) {
            duplicates.push(event.id);
        } else {
            fresh.push(event);
        }
    }
    // An append whose events are all stored already is a retry that succeeded
    // before: idempotent success, whatever the expectation says now.
    if fresh.is_empty() {
        return Ok(AppendPlan {
            to_store: Vec::new(),
            duplicates,
            new_head: None,
            previous_seq,
        });
    }
    expected.check(entity_id, previous_seq)?;
    let floor = head
        .and_then(|h| parse_timestamp(&h.last_stored_at))
        .map(|t| t + Duration::microseconds(1));
    let mut stored_at_time = match floor {
        Some(f) if f > now => f,
        _ => now,
    };
    let mut to_store = Vec::with_capacity(fresh.len());
    for (i, event) in fresh.into_iter().enumerate() {
        if i > 0 {
            stored_at_time += Duration::microseconds(1);
        }
        let stored_at = format_timestamp(stored_at_time);
        let seq = previous_seq + 1 + i as u64;
        to_store.push(StoredEvent {
            sk: event_sort_key(&stored_at, event.id.as_str()),
            entity_id: entity_id.clone(),
            seq,
            event_id: event.id,
            event_type: event.event_type,
            data: event.data,
            occurred_at: event.occurred_at,
            received_at: event.received_at,
            expires_at: ttl.map(|d| (stored_at_time + d).timestamp()),
            stored_at,
            correlation_id: event.correlation_id,
            test: event.test,
            schema_version: SCHEMA_VERSION,
            traceparent: event.traceparent,
        });
    }
    let new_head = to_store.last().map(|last| EntityHead {
        entity_id: entity_id.clone(),
        last_seq: last.seq,
        last_stored_at: last.stored_at.clone(),
    });
    Ok(AppendPlan {
        to_store,
        duplicates,
        new_head,
        previous_seq,
    })
}

impl AppendPlan {
    /// Per-event outcomes, in the order stored, then duplicates.
    pub fn outcomes(&self) -> Vec<AppendOutcome> {
        self.to_store
            .iter()
            .map(|e| AppendOutcome::Stored {
                event_id: e.event_id.clone(),
                seq: e.seq,
            })
            .chain(self.duplicates.iter().map(|id| AppendOutcome::Duplicate {
                event_id: id.clone(),
            }))
            .collect()
    }
}

impl StoredEvent {
    /// The event's item fields.
    pub fn item_fields(&self) -> EventItemFields<'_> {
        EventItemFields {
            entity_id: self.entity_id.as_str(),
            sk: &self.sk,
            seq: self.seq,
            event_id: self.event_id.as_str(),
            event_type: &self.event_type,
            occurred_at: &self.occurred_at,
            received_at: &self.received_at,
            stored_at: &self.stored_at,
            correlation_id: self.correlation_id.as_deref(),
            test: self.test,
            schema_version: self.schema_version,
            expires_at: self.expires_at,
            traceparent: self.traceparent.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given::given;
    use crate::ingest::{IngestConfig, normalize_record};
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn t0() -> DateTime<Utc> {
        parse_timestamp("2026-11-23T08:00:00.000000Z").unwrap()
    }

    fn ev(entity: &str, id: &str) -> NewEvent {
        let rec = format!(r#"{{"entity_id":"{entity}","type":"T","data":{{}},"id":"{id}"}}"#);
        normalize_record(&IngestConfig::default(), rec.as_bytes(), t0()).unwrap()
    }

    /// A minimal in-memory store executing plans, to test the rules alone.
    #[derive(Default)]
    struct Model {
        heads: HashMap<EntityId, EntityHead>,
        ids: HashSet<EventId>,
        events: Vec<StoredEvent>,
    }

    impl Model {
        fn append(&mut self, e: NewEvent, now: DateTime<Utc>) {
            let entity = e.entity_id.clone();
            let plan = plan_append(
                &entity,
                self.heads.get(&entity),
                ExpectedSeq::Any,
                vec![e],
                |id| self.ids.contains(id),
                now,
                None,
            )
            .unwrap();
            for s in plan.to_store {
                self.ids.insert(s.event_id.clone());
                self.events.push(s);
            }
            if let Some(h) = plan.new_head {
                self.heads.insert(entity, h);
            }
        }
    }

    /// An entity as the store holds it before an append: its head, if any,
    /// and the event ids it holds.
    struct Entity {
        id: EntityId,
        head: Option<EntityHead>,
        holds: HashSet<EventId>,
    }

    /// An entity with no events yet.
    fn new_entity(id: &str) -> Entity {
        Entity {
            id: EntityId::new(id).unwrap(),
            head: None,
            holds: HashSet::new(),
        }
    }

    /// An entity whose last event has `last_seq`, stored at `last_stored_at`.
    fn entity_at(id: &str, last_seq: u64, last_stored_at: &str) -> Entity {
        let entity = new_entity(id);
        Entity {
            head: Some(EntityHead {
                entity_id: entity.id.clone(),
                last_seq,
                last_stored_at: last_stored_at.into(),
            }),
            ..entity
        }
    }

    impl Entity {
        /// Also holding these event ids.
        fn holding(mut self, ids: &[&str]) -> Self {
            self.holds
                .extend(ids.iter().map(|id| EventId::new(*id).unwrap()));
            self
        }

        /// Plans appending the events `ids` at `t0()`.
        fn append(
            &self,
            expected: ExpectedSeq,
            ids: &[&str],
            ttl: Option<Duration>,
        ) -> Result<AppendPlan, AppendConflict> {
            plan_append(
                &self.id,
                self.head.as_ref(),
                expected,
                ids.iter().map(|id| ev(self.id.as_str(), id)).collect(),
                |id| self.holds.contains(id),
                t0(),
                ttl,
            )
        }
    }

    #[test]
    fn expected_version_conflict_is_typed() {
        given(new_entity("e"))
            .when(|e| e.append(ExpectedSeq::Exactly(3), &["a"], None))
            .then_err(AppendConflict {
                entity_id: EntityId::new("e").unwrap(),
                expected: 3,
                actual: 0,
            });
        given(new_entity("e"))
            .when(|e| e.append(ExpectedSeq::Exactly(0), &["a", "b"], None))
            .then_ok(|ok| {
                assert_eq!(
                    ok.to_store.iter().map(|s| s.seq).collect::<Vec<_>>(),
                    vec![1, 2]
                );
                assert!(ok.to_store[0].sk < ok.to_store[1].sk);
            });
    }

    #[test]
    fn no_stream_is_an_expectation_of_an_empty_entity() {
        given(entity_at("e", 2, "2026-11-23T08:00:00.000000Z").holding(&["a"]))
            .when(|e| e.append(ExpectedSeq::NoStream, &["b"], None))
            .then_err(AppendConflict {
                entity_id: EntityId::new("e").unwrap(),
                expected: 0,
                actual: 2,
            });
        given(new_entity("e"))
            .when(|e| e.append(ExpectedSeq::NoStream, &["a"], None))
            .then_ok(|ok| assert_eq!(ok.to_store[0].seq, 1));
    }

    #[test]
    fn all_duplicates_is_idempotent_even_with_stale_expectation() {
        given(entity_at("e", 5, "2026-11-23T08:00:00.000000Z").holding(&["a"]))
            .when(|e| e.append(ExpectedSeq::Exactly(4), &["a"], None))
            .then_ok(|plan| {
                assert!(plan.to_store.is_empty());
                assert_eq!(
                    plan.outcomes(),
                    vec![AppendOutcome::Duplicate {
                        event_id: EventId::new("a").unwrap()
                    }]
                );
            });
    }

    #[test]
    fn clock_going_backwards_keeps_sk_in_seq_order() {
        given(entity_at("e", 1, "2026-11-23T09:00:00.000000Z"))
            .when(|e| e.append(ExpectedSeq::Any, &["b"], Some(Duration::days(1))))
            .then_ok(|plan| {
                assert_eq!(plan.to_store[0].stored_at, "2026-11-23T09:00:00.000001Z");
                assert_eq!(
                    plan.to_store[0].expires_at,
                    Some(
                        parse_timestamp("2026-11-24T09:00:00.000001Z")
                            .unwrap()
                            .timestamp()
                    )
                );
            });
    }

    proptest! {
        /// seq stays gapless under duplicates and redeliveries.
        #[test]
        fn seq_is_gapless_under_redelivery(deliveries in proptest::collection::vec((0usize..4, 0usize..30), 1..200)) {
            let mut model = Model::default();
            for (i, (entity, id)) in deliveries.iter().enumerate() {
                let now = t0() + Duration::microseconds((i as i64 * 7919) % 1000);
                model.append(ev(&format!("e{entity}"), &format!("id-{entity}-{id}")), now);
            }
            let distinct: HashSet<_> = deliveries.iter().collect();
            prop_assert_eq!(model.events.len(), distinct.len());
            for entity in 0..4 {
                let name = EntityId::new(format!("e{entity}")).unwrap();
                let mine: Vec<_> = model.events.iter().filter(|e| e.entity_id == name).collect();
                let seqs: Vec<u64> = mine.iter().map(|e| e.seq).collect();
                prop_assert_eq!(seqs, (1..=mine.len() as u64).collect::<Vec<_>>());
                prop_assert!(mine.windows(2).all(|w| w[0].sk < w[1].sk));
            }
        }
    }
}
