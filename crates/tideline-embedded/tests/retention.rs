//! Local retention (issue 19): the expiry sweep removes expired events only,
//! each removal enters the change feed in order (so `EventExpired` is
//! published as on AWS), an id is de-duplicated while its event is retained
//! and stored anew after, and `seq` continues after every event expired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use std::path::Path;
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_core::{AppendOutcome, EntityId, ExpectedSeq, NewEvent};
use tideline_embedded::store::{SqliteStore, Swept};
use tideline_stages::{Change, ChangeFeed, ChangeKind, EventStore};

/// Nothing downstream holds the sweep back: only the feed's own checkpoint does.
const ALL_DELIVERED: i64 = i64::MAX;

fn ev(entity: &str, id: &str) -> NewEvent {
    let rec = format!(r#"{{"entity_id":"{entity}","type":"T","data":{{"n":"{id}"}},"id":"{id}"}}"#);
    normalize_record(&IngestConfig::default(), rec.as_bytes(), Utc::now()).unwrap()
}

fn entity(id: &str) -> EntityId {
    EntityId::new(id).unwrap()
}

async fn append(store: &SqliteStore, e: &str, id: &str) -> AppendOutcome {
    let mut out = store
        .append(&entity(e), vec![ev(e, id)], ExpectedSeq::Any)
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn stored_seq(outcome: &AppendOutcome) -> u64 {
    match outcome {
        AppendOutcome::Stored { seq, .. } => *seq,
        AppendOutcome::Duplicate { event_id } => panic!("{event_id} was a duplicate"),
    }
}

/// Polls everything after the checkpoint and acknowledges it, as the emitter does.
async fn drain(store: &SqliteStore) -> Vec<Change> {
    let changes = store.poll(10_000).await.unwrap();
    if let Some(last) = changes.last() {
        store.ack(&last.sequence_number).await.unwrap();
    }
    changes
}

/// (entity, seq, event id, removed?) of each change, in feed order.
fn described(changes: &[Change]) -> Vec<(String, u64, String, bool)> {
    changes
        .iter()
        .map(|c| match &c.kind {
            ChangeKind::EventInserted(e) => (
                e.entity_id.to_string(),
                e.seq,
                e.event_id.to_string(),
                false,
            ),
            ChangeKind::EventRemoved { event, by_ttl } => {
                assert!(by_ttl, "local removals are TTL removals");
                (
                    event.entity_id.to_string(),
                    event.seq,
                    event.event_id.to_string(),
                    true,
                )
            }
            other => panic!("unexpected change {other:?}"),
        })
        .collect()
}

async fn ids_of(store: &SqliteStore, e: &str) -> Vec<(u64, String)> {
    store
        .read_events(&entity(e), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.event_id.to_string()))
        .collect()
}

fn open(path: &Path, ttl: Option<Duration>) -> SqliteStore {
    SqliteStore::open(path, ttl).unwrap()
}

fn row(e: &str, seq: u64, id: &str, removed: bool) -> (String, u64, String, bool) {
    (e.into(), seq, id.into(), removed)
}

#[tokio::test]
async fn the_sweep_removes_only_expired_events_and_the_feed_gets_each_removal_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    // Three retentions, one database: reopened with each in turn.
    let store = open(&path, Some(Duration::hours(1)));
    append(&store, "e1", "a").await;
    append(&store, "e2", "b").await;
    append(&store, "e1", "c").await;
    drop(store);
    let store = open(&path, Some(Duration::hours(10)));
    append(&store, "e1", "d").await;
    drop(store);
    let store = open(&path, None);
    append(&store, "e2", "f").await;
    let inserted = drain(&store).await;
    assert_eq!(inserted.len(), 5);
    let last_insert: i64 = inserted[4].sequence_number.parse().unwrap();

    // Not yet expired: nothing is removed.
    let now = Utc::now();
    assert_eq!(
        store.sweep_expired(now, ALL_DELIVERED).unwrap(),
        Swept::default()
    );

    // Two hours later, the 1-hour events go, in commit order, and nothing else.
    let swept = store
        .sweep_expired(now + Duration::hours(2), ALL_DELIVERED)
        .unwrap();
    assert_eq!(swept.removed, 3);
    let removals = drain(&store).await;
    assert_eq!(
        described(&removals),
        [
            row("e1", 1, "a", true),
            row("e2", 1, "b", true),
            row("e1", 2, "c", true)
        ]
    );
    // After every insert before them, in the one order of the feed.
    let positions: Vec<i64> = removals
        .iter()
        .map(|c| c.sequence_number.parse().unwrap())
        .collect();
    assert_eq!(
        positions,
        [last_insert + 1, last_insert + 2, last_insert + 3]
    );
    assert_eq!(ids_of(&store, "e1").await, [(3, "d".to_string())]);
    assert_eq!(ids_of(&store, "e2").await, [(2, "f".to_string())]);
    // The feed is caught up: the head counts removals too.
    let (head, checkpoint) = store.feed_positions().unwrap();
    assert_eq!(head, checkpoint);

    // Again at the same time: nothing more (and the delivered log is pruned).
    let again = store
        .sweep_expired(now + Duration::hours(2), ALL_DELIVERED)
        .unwrap();
    assert_eq!(again.removed, 0);
    assert_eq!(again.pruned, 3);
    assert!(drain(&store).await.is_empty());

    // Eleven hours later the 10-hour event goes; the one without retention never.
    let late = store
        .sweep_expired(now + Duration::hours(11), ALL_DELIVERED)
        .unwrap();
    assert_eq!(late.removed, 1);
    assert_eq!(described(&drain(&store).await), [row("e1", 3, "d", true)]);
    let never = store
        .sweep_expired(now + Duration::days(10_000), ALL_DELIVERED)
        .unwrap();
    assert_eq!(never.removed, 0);
    assert_eq!(ids_of(&store, "e2").await, [(2, "f".to_string())]);
}

#[tokio::test]
async fn an_expired_event_stays_until_every_consumer_of_the_feed_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("store.db"), Some(Duration::minutes(1)));
    append(&store, "e", "a").await;
    append(&store, "e", "b").await;
    let later = Utc::now() + Duration::minutes(5);
    // Not emitted yet: its insert would be lost from the feed.
    assert_eq!(
        store.sweep_expired(later, ALL_DELIVERED).unwrap().removed,
        0
    );
    let inserted = drain(&store).await;
    let first: i64 = inserted[0].sequence_number.parse().unwrap();
    // Emitted, but a target has delivered only the first: only it goes.
    assert_eq!(store.sweep_expired(later, first).unwrap().removed, 1);
    assert_eq!(ids_of(&store, "e").await, [(2, "b".to_string())]);
    // The removal stays in the log until the lagging target is past it.
    assert_eq!(store.sweep_expired(later, first).unwrap().pruned, 0);
    assert_eq!(described(&drain(&store).await), [row("e", 1, "a", true)]);
}

#[tokio::test]
async fn an_id_is_a_duplicate_while_its_event_is_retained_and_new_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("store.db"), Some(Duration::hours(1)));
    assert_eq!(stored_seq(&append(&store, "e", "x").await), 1);
    // Retained: a re-send is a duplicate, whatever the time.
    assert!(matches!(
        append(&store, "e", "x").await,
        AppendOutcome::Duplicate { .. }
    ));
    drain(&store).await;
    assert_eq!(
        store
            .sweep_expired(Utc::now() + Duration::minutes(59), ALL_DELIVERED)
            .unwrap()
            .removed,
        0
    );
    assert!(matches!(
        append(&store, "e", "x").await,
        AppendOutcome::Duplicate { .. }
    ));
    // Expired and removed: the same id is a new event, at the next seq.
    store
        .sweep_expired(Utc::now() + Duration::hours(2), ALL_DELIVERED)
        .unwrap();
    assert_eq!(stored_seq(&append(&store, "e", "x").await), 2);
    assert!(matches!(
        append(&store, "e", "x").await,
        AppendOutcome::Duplicate { .. }
    ));
    assert_eq!(ids_of(&store, "e").await, [(2, "x".to_string())]);
}

#[tokio::test]
async fn seq_continues_after_every_event_of_an_entity_expired_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open(&path, Some(Duration::hours(1)));
    for id in ["a", "b", "c"] {
        append(&store, "e", id).await;
    }
    drain(&store).await;
    let swept = store
        .sweep_expired(Utc::now() + Duration::hours(2), ALL_DELIVERED)
        .unwrap();
    assert_eq!(swept.removed, 3);
    assert!(ids_of(&store, "e").await.is_empty());
    drop(store);
    let store = open(&path, Some(Duration::hours(1)));
    assert_eq!(
        store.head(&entity("e")).await.unwrap().unwrap().last_seq,
        3,
        "the head outlives the events"
    );
    // "a" again, and a new id: neither reuses a seq.
    assert_eq!(stored_seq(&append(&store, "e", "a").await), 4);
    assert_eq!(stored_seq(&append(&store, "e", "d").await), 5);
    // Checked by the database too: (entity, seq) stays unique.
    assert_eq!(
        ids_of(&store, "e").await,
        [(4, "a".to_string()), (5, "d".to_string())]
    );
}

#[tokio::test]
async fn only_the_sweep_can_delete_an_event_and_only_once_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open(&path, Some(Duration::hours(1)));
    append(&store, "e", "a").await;
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    // A plain DELETE, and an UPDATE, are refused.
    let e = conn.execute("DELETE FROM events", []).unwrap_err();
    assert!(e.to_string().contains("expiry sweep"), "{e}");
    let e = conn
        .execute("UPDATE events SET data = '1'", [])
        .unwrap_err();
    assert!(e.to_string().contains("immutable"), "{e}");
    // A removal logged before the event expired does not open the door either.
    conn.execute(
        "INSERT INTO removals SELECT 999, strftime('%s','now'), * FROM events",
        [],
    )
    .unwrap();
    let e = conn.execute("DELETE FROM events", []).unwrap_err();
    assert!(e.to_string().contains("expiry sweep"), "{e}");
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_database_from_before_retention_is_swept_after_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = open(&path, Some(Duration::hours(1)));
    append(&store, "e", "a").await;
    drain(&store).await;
    drop(store);
    // The trigger every database had before: no DELETE at all.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_are_removed_only_by_expiry;
         CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'events are never deleted in local mode'); END;",
    )
    .unwrap();
    drop(conn);
    let store = open(&path, Some(Duration::hours(1)));
    let swept = store
        .sweep_expired(Utc::now() + Duration::hours(2), ALL_DELIVERED)
        .unwrap();
    assert_eq!(swept.removed, 1);
    assert_eq!(described(&drain(&store).await), [row("e", 1, "a", true)]);
}
