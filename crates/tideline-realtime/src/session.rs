//! One connection's state: its subscriptions and what it has been sent.
//!
//! **Resume without gap or duplicate.** A `subscribe` with `since` makes the
//! server (1) start taking live events for the subscription, (2) read the
//! entity's events after `since` from the store and send them, (3) send the
//! live events taken meanwhile and after. An event committed before step 1
//! is in the store read; one published after step 1 arrives live (the bus
//! publishes only committed events). Both paths can carry the same event,
//! so [`Delivered`] keeps the last `sequence` sent per (topic, entity) and
//! drops anything at or below it: the switch-over is de-duplicated by
//! `sequence`, which is gapless per entity (INVARIANTS.md #3, #4).

use crate::auth::Claims;
use crate::protocol::{RefusalCode, ServerMessage};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tideline_core::EntityId;
use tideline_core::limits::DETAIL_TYPE_CHARS;

/// Most (topic, entity) subscriptions one connection holds: on AWS each is a
/// DynamoDB item written on subscribe and read by the relay.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 100;

/// Which entities of a topic a connection receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every entity (the token allows `*`).
    All,
    /// These entities.
    Entities(BTreeSet<String>),
}

/// A connection's subscriptions, topic by topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions {
    topics: BTreeMap<String, Scope>,
}

/// An accepted `subscribe`: the message to send, and the entities to
/// backfill (entity, last sequence the client saw).
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// `subscribed`.
    pub reply: ServerMessage,
    /// The resume points, in entity order.
    pub resume: Vec<(EntityId, u64)>,
}

fn refusal(
    topic: &str,
    entity: Option<&str>,
    code: RefusalCode,
    reason: String,
) -> Box<ServerMessage> {
    Box::new(ServerMessage::refused(
        "subscribe",
        Some(topic),
        entity,
        code,
        reason,
    ))
}

/// Checks a topic name as ingest checks event types (they are the same names).
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.chars().count() > DETAIL_TYPE_CHARS {
        return Err(format!(
            "topic must be an event type of 1 to {DETAIL_TYPE_CHARS} characters"
        ));
    }
    Ok(())
}

impl Subscriptions {
    /// Applies a `subscribe` for `claims`. All or nothing: a refusal changes nothing.
    pub fn subscribe(
        &mut self,
        claims: &Claims,
        topic: &str,
        entities: &[String],
        since: &BTreeMap<String, u64>,
    ) -> Result<Accepted, Box<ServerMessage>> {
        if let Err(reason) = check_topic(topic) {
            return Err(refusal(topic, None, RefusalCode::BadName, reason));
        }
        let mut resume = Vec::with_capacity(since.len());
        for entity in entities.iter().chain(since.keys()) {
            if let Err(e) = EntityId::new(entity) {
                return Err(refusal(
                    topic,
                    Some(entity),
                    RefusalCode::BadName,
                    format!("entity id {e}"),
                ));
            }
        }
        if let Err(n) = claims.check(topic, entities) {
            return Err(refusal(topic, n.entity_id.as_deref(), n.code, n.reason));
        }
        for (entity, &after) in since {
            let covered = if entities.is_empty() {
                claims.allows_event(topic, entity)
            } else {
                entities.contains(entity)
            };
            if !covered {
                let code = if entities.is_empty() {
                    RefusalCode::EntityNotAllowed
                } else {
                    RefusalCode::SinceOutsideSubscription
                };
                return Err(refusal(
                    topic,
                    Some(entity),
                    code,
                    format!(
                        "`since` names entity {entity:?}, which this subscription does not cover"
                    ),
                ));
            }
            // Checked above: a valid id.
            if let Ok(id) = EntityId::new(entity) {
                resume.push((id, after));
            }
        }
        let mut next = self.topics.clone();
        let scope = next
            .entry(topic.to_string())
            .or_insert_with(|| Scope::Entities(BTreeSet::new()));
        if entities.is_empty() {
            *scope = Scope::All;
        } else if let Scope::Entities(set) = scope {
            set.extend(entities.iter().cloned());
        }
        let size: usize = next
            .values()
            .map(|s| match s {
                Scope::All => 1,
                Scope::Entities(set) => set.len(),
            })
            .sum();
        if size > MAX_SUBSCRIPTIONS_PER_CONNECTION {
            return Err(refusal(
                topic,
                None,
                RefusalCode::TooManySubscriptions,
                format!(
                    "a connection holds at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} (topic, entity) subscriptions; this one would hold {size}"
                ),
            ));
        }
        self.topics = next;
        Ok(Accepted {
            reply: ServerMessage::Subscribed {
                topic: topic.to_string(),
                entities: entities.to_vec(),
            },
            resume,
        })
    }

    /// Applies an `unsubscribe` (of what is not subscribed: a no-op).
    pub fn unsubscribe(&mut self, topic: &str, entities: &[String]) -> ServerMessage {
        if entities.is_empty() {
            self.topics.remove(topic);
        } else if let Some(Scope::Entities(set)) = self.topics.get_mut(topic) {
            for e in entities {
                set.remove(e);
            }
            if set.is_empty() {
                self.topics.remove(topic);
            }
        }
        ServerMessage::Unsubscribed {
            topic: topic.to_string(),
            entities: entities.to_vec(),
        }
    }

    /// Whether an event of `topic` on `entity` is for this connection.
    pub fn wants(&self, topic: &str, entity: &str) -> bool {
        match self.topics.get(topic) {
            Some(Scope::All) => true,
            Some(Scope::Entities(set)) => set.contains(entity),
            None => false,
        }
    }

    /// The (topic, entity) pairs subscribed (`None`: every entity), in order:
    /// the items a connections table holds for this connection.
    pub fn pairs(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for (topic, scope) in &self.topics {
            match scope {
                Scope::All => out.push((topic.clone(), None)),
                Scope::Entities(set) => {
                    out.extend(set.iter().map(|e| (topic.clone(), Some(e.clone()))));
                }
            }
        }
        out
    }
}

/// The last `sequence` sent per (topic, entity): drops duplicates at the
/// switch-over from backfill to live, and redeliveries (the bus is at least once).
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    last: HashMap<(String, String), u64>,
}

impl Delivered {
    /// Records that the client has seen `(topic, entity)` up to `sequence`
    /// (its `since`); never lowers what was already sent.
    pub fn seen(&mut self, topic: &str, entity: &str, sequence: u64) {
        let last = self
            .last
            .entry((topic.to_string(), entity.to_string()))
            .or_insert(0);
        *last = (*last).max(sequence);
    }

    /// True (and recorded) when `sequence` is after what was sent for
    /// (topic, entity): send it. False: a duplicate, drop it.
    pub fn admit(&mut self, topic: &str, entity: &str, sequence: u64) -> bool {
        match self.last.get_mut(&(topic.to_string(), entity.to_string())) {
            Some(last) if sequence <= *last => false,
            Some(last) => {
                *last = sequence;
                true
            }
            None => {
                self.last
                    .insert((topic.to_string(), entity.to_string()), sequence);
                true
            }
        }
    }

    /// Forgets a topic's entries (after an unsubscribe, a new subscribe
    /// starts afresh from its own `since`).
    pub fn forget(&mut self, topic: &str, entities: &[String]) {
        self.last
            .retain(|(t, e), _| t != topic || (!entities.is_empty() && !entities.contains(e)));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(entities: &[&str]) -> Claims {
        Claims {
            sub: "u".into(),
            exp: u64::MAX / 2,
            iss: None,
            topics: vec!["OrderPlaced".into()],
            entities: entities.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_refused_subscribe_changes_nothing_and_names_the_entity() {
        let mut subs = Subscriptions::default();
        let c = claims(&["a", "b"]);
        subs.subscribe(&c, "OrderPlaced", &["a".into()], &BTreeMap::new())
            .unwrap();
        let refused = subs
            .subscribe(
                &c,
                "OrderPlaced",
                &["b".into(), "z".into()],
                &BTreeMap::new(),
            )
            .unwrap_err();
        let text = refused.to_text();
        assert!(
            text.contains("EntityNotAllowed") && text.contains("\"z\""),
            "{text}"
        );
        assert!(!subs.wants("OrderPlaced", "b"), "all or nothing");
        assert!(subs.wants("OrderPlaced", "a"));
        let since = BTreeMap::from([("b".to_string(), 3)]);
        let refused = subs
            .subscribe(&c, "OrderPlaced", &["a".into()], &since)
            .unwrap_err();
        assert!(refused.to_text().contains("SinceOutsideSubscription"));
        let ok = subs
            .subscribe(&c, "OrderPlaced", &["b".into()], &since)
            .unwrap();
        assert_eq!(ok.resume, vec![(EntityId::new("b").unwrap(), 3)]);
        subs.unsubscribe("OrderPlaced", &["a".into()]);
        assert!(!subs.wants("OrderPlaced", "a") && subs.wants("OrderPlaced", "b"));
    }

    #[test]
    fn the_switch_over_drops_what_was_sent_and_keeps_what_was_not() {
        let mut d = Delivered::default();
        d.seen("T", "e", 4);
        // Backfill 5, 6; the live copy of 6 and a redelivered 3 are dropped.
        assert!(d.admit("T", "e", 5));
        assert!(d.admit("T", "e", 6));
        assert!(!d.admit("T", "e", 6));
        assert!(!d.admit("T", "e", 3));
        assert!(d.admit("T", "e", 7));
        // Another topic of the same entity is counted apart.
        assert!(d.admit("U", "e", 2));
        d.forget("T", &[]);
        assert!(d.admit("T", "e", 1));
    }

    #[test]
    fn too_many_subscriptions_are_refused() {
        let mut subs = Subscriptions::default();
        let c = claims(&["*"]);
        let many: Vec<String> = (0..=MAX_SUBSCRIPTIONS_PER_CONNECTION)
            .map(|i| format!("e{i}"))
            .collect();
        let refused = subs
            .subscribe(&c, "OrderPlaced", &many, &BTreeMap::new())
            .unwrap_err();
        assert!(refused.to_text().contains("TooManySubscriptions"));
    }
}
