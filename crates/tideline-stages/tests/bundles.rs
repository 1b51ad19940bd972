//! Bundled emission through the emit stage and the in-memory bus: order,
//! the test flag, counts per event, and what a failed bundle does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tideline_core::bundle::{BUNDLE_DETAIL_TYPE, BundleConfig, unpack_detail};
use tideline_core::envelope::{BusEntry, EventDetail};
use tideline_core::retry::RetryPolicy;
use tideline_core::{EntityId, ErrorClass, EventId, StoredEvent};
use tideline_stages::emit::{EmitConfig, emit_batch};
use tideline_stages::memory::{MemoryBus, throttled};
use tideline_stages::{Change, ChangeKind, EntryFailure};

fn stored(entity: &str, seq: u64, test: bool) -> StoredEvent {
    StoredEvent {
        entity_id: EntityId::new(entity).unwrap(),
        seq,
        sk: format!("t#{seq}"),
        event_id: EventId::new(format!("{entity}-{seq}")).unwrap(),
        event_type: "OrderPlaced".into(),
        data: serde_json::json!({"seq": seq}),
        occurred_at: "2026-11-29T00:00:00.000000Z".into(),
        received_at: "2026-11-29T00:00:00.000000Z".into(),
        stored_at: "2026-11-29T00:00:00.000001Z".into(),
        correlation_id: None,
        test,
        schema_version: 1,
        expires_at: None,
        traceparent: None,
    }
}

/// Changes for `spec`, numbered from 100 in feed order.
fn changes(spec: &[(&str, u64, bool)]) -> Vec<Change> {
    spec.iter()
        .enumerate()
        .map(|(i, &(e, s, t))| Change {
            sequence_number: format!("{}", 100 + i),
            kind: ChangeKind::EventInserted(stored(e, s, t)),
        })
        .collect()
}

/// Two entities interleaved, `n` events each.
fn interleaved(n: u64) -> Vec<(&'static str, u64, bool)> {
    (1..=n)
        .flat_map(|s| [("a", s, false), ("b", s, false)])
        .collect()
}

fn bundled(max_events: usize, attempts: u32) -> EmitConfig {
    EmitConfig {
        retry: RetryPolicy::fast(attempts),
        bundle: BundleConfig::from_max_events(max_events),
        ..EmitConfig::default()
    }
}

/// The events an entry carries, as (entity, seq).
fn events_of(entry: &BusEntry) -> Vec<(String, u64)> {
    if entry.detail_type == BUNDLE_DETAIL_TYPE {
        unpack_detail(&entry.detail)
            .unwrap()
            .events
            .into_iter()
            .map(|d| (d.metadata.entity_id, d.metadata.sequence))
            .collect()
    } else {
        let d: EventDetail = serde_json::from_str(&entry.detail).unwrap();
        vec![(d.metadata.entity_id, d.metadata.sequence)]
    }
}

fn seqs_of(published: &[BusEntry], entity: &str) -> Vec<u64> {
    published
        .iter()
        .flat_map(events_of)
        .filter(|(e, _)| e == entity)
        .map(|(_, s)| s)
        .collect()
}

fn permanent() -> EntryFailure {
    EntryFailure {
        code: "ValidationException".into(),
        message: "refused".into(),
        class: ErrorClass::Permanent,
    }
}

#[tokio::test]
async fn off_by_default_one_event_per_entry() {
    let bus = MemoryBus::default();
    let out = emit_batch(&bus, &EmitConfig::default(), &changes(&interleaved(3))).await;
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 6);
    assert!(published.iter().all(|e| e.detail_type == "OrderPlaced"));
    assert_eq!(out.counts.sent, 6);
}

#[tokio::test]
async fn bundles_keep_feed_order_and_count_events() {
    let bus = MemoryBus::default();
    let c = changes(&interleaved(5));
    let out = emit_batch(&bus, &bundled(4, 1), &c).await;
    assert!(out.rewind_from.is_none(), "{:?}", out.error);
    let published = bus.published.lock().unwrap().clone();
    // 10 events in bundles of 4, 4, 2: one PutEvents call.
    assert_eq!(published.len(), 3);
    assert!(
        published
            .iter()
            .all(|e| e.detail_type == BUNDLE_DETAIL_TYPE)
    );
    assert_eq!(*bus.calls.lock().unwrap(), 1);
    // Counts stay per event, not per entry.
    assert_eq!(out.counts.received, 10);
    assert_eq!(out.counts.sent, 10);
    // Unpacked in publish order, the events are exactly the feed.
    let flat: Vec<_> = published.iter().flat_map(events_of).collect();
    let feed: Vec<_> = interleaved(5)
        .into_iter()
        .map(|(e, s, _)| (e.to_string(), s))
        .collect();
    assert_eq!(flat, feed);
}

#[tokio::test]
async fn test_and_live_events_never_share_a_bundle() {
    let bus = MemoryBus::default();
    let c = changes(&[
        ("a", 1, false),
        ("a", 2, false),
        ("t", 1, true),
        ("t", 2, true),
        ("a", 3, false),
    ]);
    emit_batch(&bus, &bundled(10, 1), &c).await;
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 3);
    let flags: Vec<Option<bool>> = published
        .iter()
        .map(|e| unpack_detail(&e.detail).ok().map(|b| b.test_events))
        .collect();
    // The last run is one event: a plain entry.
    assert_eq!(flags, vec![Some(false), Some(true), None]);
}

#[tokio::test]
async fn a_throttled_bundle_is_resent_alone_and_each_entity_stays_in_order() {
    let bus = MemoryBus::default();
    // 24 events in 12 bundles of 2 (each bundle: a#s, b#s): calls of 10 + 2
    // entries. Bundle 2 (a#3, b#3) throttled once.
    bus.faults.script([None, None, Some(throttled())]);
    let c = changes(&interleaved(12));
    let out = emit_batch(&bus, &bundled(2, 3), &c).await;
    assert!(out.rewind_from.is_none(), "{:?}", out.error);
    assert_eq!(out.counts.sent, 24);
    // 10 + the resent bundle + 2.
    assert_eq!(*bus.calls.lock().unwrap(), 3);
    let published = bus.published.lock().unwrap().clone();
    let firsts: Vec<u64> = published.iter().map(|e| e.sequence).collect();
    assert_eq!(firsts, vec![1, 2, 4, 5, 6, 7, 8, 9, 10, 3, 11, 12]);
    // Inside each bundle and within each call the entity's events are in
    // order; the resend happens before any later call, so no later event of
    // the entity is published after the call that held it back.
    let a = seqs_of(&published, "a");
    assert_eq!(&a[..9], &[1, 2, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(&a[9..], &[3, 11, 12]);
}

#[tokio::test]
async fn a_failed_bundle_rewinds_to_its_first_event_and_nothing_later_is_sent() {
    let bus = MemoryBus::default();
    // 24 events, bundles of 3 (8 entries, one call): bundle 2 (events 6..9,
    // changes 106..108) refused for good.
    bus.faults.script([None, None, Some(permanent())]);
    let c = changes(&interleaved(12));
    let out = emit_batch(&bus, &bundled(3, 3), &c).await;
    assert_eq!(
        out.rewind_from.as_deref(),
        Some("106"),
        "the stream replays the failed bundle's first event and everything after it"
    );
    // Counted per event: the failed bundle and all after it.
    assert_eq!(out.counts.failed, 24 - 6);
    // The entries after it in the same call went out (the bus took them);
    // the rewind resends them, and the consumer guard drops the repeats.
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 7);
    assert_eq!(
        *bus.calls.lock().unwrap(),
        1,
        "a permanent refusal is not resent"
    );
}

#[tokio::test]
async fn one_entity_per_bundle_for_the_ordered_bus() {
    let bus = MemoryBus::default();
    let c = changes(&[
        ("a", 1, false),
        ("a", 2, false),
        ("b", 1, false),
        ("b", 2, false),
    ]);
    let config = EmitConfig {
        bundle: Some(BundleConfig {
            max_events: 10,
            one_entity_per_bundle: true,
        }),
        ..EmitConfig::default()
    };
    emit_batch(&bus, &config, &c).await;
    let published = bus.published.lock().unwrap().clone();
    let groups: Vec<Vec<(String, u64)>> = published.iter().map(events_of).collect();
    assert_eq!(
        groups,
        vec![
            vec![("a".to_string(), 1), ("a".to_string(), 2)],
            vec![("b".to_string(), 1), ("b".to_string(), 2)]
        ]
    );
    assert_eq!(published[1].entity_id, "b");
}
