//! The writer of the design before decision 0009, as it ran: it reads the
//! head, then writes one transaction of the head (conditional on the
//! `last_seq` it read), the event at `<time>#<id>` and a marker without
//! `event_sk`. It refuses a head it cannot decode (its message goes to its
//! DLQ with the reason). A deploy rollback, or an old invocation still
//! running during a deploy, runs this code against this version's table.

use tideline_core::item::{AttrValue, Item};
use tideline_core::keys::format_timestamp;
use tideline_stages::store::slot::{CondPut, Condition, ItemTable, key_of};

/// What the old writer did.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyOutcome {
    Stored(u64),
    Duplicate,
    /// It could not read the head (fenced): refused, nothing written.
    Refused,
    /// A call failed, or it kept losing races: the message is retried.
    Failed,
}

fn s(v: &str) -> AttrValue {
    AttrValue::S(v.to_string())
}

fn n(v: u64) -> AttrValue {
    AttrValue::N(v.to_string())
}

fn legacy_event(entity: &str, seq: u64, id: &str, t: &str) -> Item {
    Item::from([
        ("pk".into(), s(entity)),
        ("sk".into(), s(&format!("{t}#{id}"))),
        ("seq".into(), n(seq)),
        ("kind".into(), s("event")),
        ("event_id".into(), s(id)),
        ("event_type".into(), s("T")),
        ("data".into(), s("{}")),
        ("occurred_at".into(), s(t)),
        ("received_at".into(), s(t)),
        ("stored_at".into(), s(t)),
        ("test".into(), AttrValue::Bool(false)),
        ("schema_version".into(), n(1)),
    ])
}

fn legacy_marker(entity: &str, seq: u64, id: &str) -> Item {
    Item::from([
        ("pk".into(), s(entity)),
        ("sk".into(), s(&format!("id#{id}"))),
        ("kind".into(), s("dedup")),
        ("event_seq".into(), n(seq)),
    ])
}

fn legacy_head(entity: &str, seq: u64, t: &str) -> Item {
    Item::from([
        ("pk".into(), s(entity)),
        ("sk".into(), s("#head")),
        ("kind".into(), s("head")),
        ("last_seq".into(), n(seq)),
        ("last_stored_at".into(), s(t)),
    ])
}

/// An entity as the transactional design left it: events `old-1`, `old-2`.
pub fn legacy_items(entity: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for (seq, id) in [(1u64, "old-1"), (2, "old-2")] {
        let t = format!("2026-11-01T00:00:00.00000{seq}Z");
        items.push(legacy_event(entity, seq, id, &t));
        items.push(legacy_marker(entity, seq, id));
    }
    items.push(legacy_head(entity, 2, "2026-11-01T00:00:00.000002Z"));
    items
}

/// The key of an item (re-exported for seeding tables).
pub fn key(item: &Item) -> (String, String) {
    key_of(item)
}

/// One append by the old writer at `now`.
pub async fn legacy_append<T: ItemTable>(
    table: &T,
    entity: &str,
    id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> LegacyOutcome {
    for _ in 0..3 {
        let Ok(head) = table.get(entity, "#head").await else {
            return LegacyOutcome::Failed;
        };
        let prev = match &head {
            None => 0,
            Some(h) => match (h.get("last_seq"), h.get("last_stored_at")) {
                (Some(AttrValue::N(v)), Some(AttrValue::S(_))) => match v.parse::<u64>() {
                    Ok(v) => v,
                    Err(_) => return LegacyOutcome::Refused,
                },
                _ => return LegacyOutcome::Refused,
            },
        };
        let t = format_timestamp(now);
        let seq = prev + 1;
        let puts = vec![
            CondPut {
                item: legacy_head(entity, seq, &t),
                condition: if prev == 0 {
                    Condition::NotExists
                } else {
                    Condition::Equals("last_seq", n(prev))
                },
            },
            CondPut {
                item: legacy_event(entity, seq, id, &t),
                condition: Condition::NotExists,
            },
            CondPut {
                item: legacy_marker(entity, seq, id),
                condition: Condition::NotExists,
            },
        ];
        match table.transact(puts).await {
            Ok(Ok(())) => return LegacyOutcome::Stored(seq),
            Ok(Err(failed)) if failed.contains(&2) => return LegacyOutcome::Duplicate,
            Ok(Err(_)) => continue,
            Err(_) => return LegacyOutcome::Failed,
        }
    }
    LegacyOutcome::Failed
}
