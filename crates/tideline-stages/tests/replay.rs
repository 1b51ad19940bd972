//! The replay stage over the in-memory adapters: by entity and by window,
//! in `seq` order per entity, marked `replay`, stopping an entity at a
//! failure; the lake index reads only the objects that can hold the window;
//! a store's key-range window read finds what the filtering default finds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use tideline_core::envelope::EventDetail;
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_core::keys::format_timestamp;
use tideline_core::replay::{Selection, StoredWindow};
use tideline_core::retry::RetryPolicy;
use tideline_core::{EntityId, ErrorClass, ExpectedSeq, NewEvent};
use tideline_stages::emit::EmitConfig;
use tideline_stages::memory::{MemoryBus, MemoryLakeObjects, MemoryStore};
use tideline_stages::replay::{EntityIndex, LakeIndex, OnFailure, ReplayConfig, replay};
use tideline_stages::store::slot::{MemoryItemTable, SlotStore};
use tideline_stages::{EntryFailure, EventStore};

fn event(entity: &str, id: &str) -> NewEvent {
    let rec = json!({"entity_id": entity, "type": "T", "id": id, "data": {"id": id}});
    normalize_record(
        &IngestConfig::default(),
        rec.to_string().as_bytes(),
        Utc::now(),
    )
    .unwrap()
}

async fn append<S: EventStore>(store: &S, entity: &str, n: usize) {
    // Ids unique across calls, so a later append is never a duplicate.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    for _ in 0..n {
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        store
            .append(
                &EntityId::new(entity).unwrap(),
                vec![event(entity, &format!("{entity}-{i}"))],
                ExpectedSeq::Any,
            )
            .await
            .unwrap();
    }
}

fn config(on_failure: OnFailure) -> ReplayConfig {
    ReplayConfig {
        emit: EmitConfig {
            retry: RetryPolicy::fast(2),
            ..EmitConfig::default()
        },
        on_failure,
    }
}

/// What the bus got, per entity, in publish order; every one marked replay.
fn published(bus: &MemoryBus) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for entry in bus.published.lock().unwrap().iter() {
        let detail: EventDetail = serde_json::from_str(&entry.detail).unwrap();
        assert!(detail.metadata.replay);
        out.entry(entry.entity_id.clone())
            .or_default()
            .push(entry.sequence);
    }
    out
}

fn window(since: DateTime<Utc>, until: DateTime<Utc>) -> Selection {
    Selection::Window(StoredWindow {
        since: Some(format_timestamp(since)),
        until: Some(format_timestamp(until)),
    })
}

#[tokio::test]
async fn an_entity_range_is_replayed_in_order_up_to_its_head() {
    let store = MemoryStore::default();
    append(&store, "a", 1200).await;
    append(&store, "b", 3).await;
    let bus = MemoryBus::default();
    let selection = Selection::entity("a", Some(2), None).unwrap();
    let report = replay(&store, &store, &bus, &config(OnFailure::Stop), &selection)
        .await
        .unwrap();
    assert_eq!((report.published, report.failed), (1199, 0));
    assert_eq!(published(&bus)["a"], (2..=1200).collect::<Vec<u64>>());
    assert!(!published(&bus).contains_key("b"));

    let bus = MemoryBus::default();
    let selection = Selection::entity("missing", None, None).unwrap();
    let report = replay(&store, &store, &bus, &config(OnFailure::Stop), &selection)
        .await
        .unwrap();
    assert_eq!(report.published, 0);
    assert_eq!(*bus.calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_window_replays_the_events_stored_in_it_per_entity() {
    let store = MemoryStore::default();
    // Marks a millisecond clear of the appends around them: times are
    // stored to the microsecond.
    let mark = || async {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let t = Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        t
    };
    append(&store, "a", 2).await;
    let since = mark().await;
    append(&store, "a", 2).await;
    append(&store, "b", 1).await;
    let until = mark().await;
    append(&store, "b", 1).await;
    let bus = MemoryBus::default();
    let report = replay(
        &store,
        &store,
        &bus,
        &config(OnFailure::Stop),
        &window(since, until),
    )
    .await
    .unwrap();
    assert_eq!(report.published, 3);
    assert_eq!(
        published(&bus),
        BTreeMap::from([("a".into(), vec![3, 4]), ("b".into(), vec![1])])
    );
}

#[tokio::test]
async fn a_failure_stops_its_entity_and_on_failure_says_whether_the_rest_go_on() {
    let store = MemoryStore::default();
    append(&store, "a", 3).await;
    append(&store, "b", 2).await;
    let all = Selection::Window(StoredWindow::default());
    let refused = || {
        Some(EntryFailure {
            code: "MalformedDetail".into(),
            message: "no".into(),
            class: ErrorClass::Permanent,
        })
    };

    // a#2 refused: a stops there; with NextEntity, b goes on.
    let bus = MemoryBus::default();
    bus.faults.script([None, refused()]);
    let report = replay(&store, &store, &bus, &config(OnFailure::NextEntity), &all)
        .await
        .unwrap();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].entity.as_str(), "a");
    assert_eq!(report.failures[0].rewind_from, "a#2");
    assert!(
        report.failures[0]
            .error
            .as_deref()
            .unwrap()
            .contains("MalformedDetail")
    );
    assert_eq!(
        published(&bus),
        BTreeMap::from([("a".into(), vec![1, 3]), ("b".into(), vec![1, 2])]),
        "a#3 went out in the failed call; a rerun from a#2 sends it again"
    );

    // With Stop, nothing after a's failure.
    let bus = MemoryBus::default();
    bus.faults.script([None, refused()]);
    let report = replay(&store, &store, &bus, &config(OnFailure::Stop), &all)
        .await
        .unwrap();
    assert_eq!(report.failures.len(), 1);
    assert!(!published(&bus).contains_key("b"));
}

fn lake_line(entity: &str, received_at: DateTime<Utc>) -> String {
    json!({"id": "x", "entity_id": entity, "type": "T", "data": {}, "received_at": format_timestamp(received_at)})
        .to_string()
}

#[tokio::test]
async fn the_lake_index_reads_only_objects_that_can_hold_the_window() {
    let now = Utc::now();
    let lake = MemoryLakeObjects::default();
    let day = |d: i64| now + Duration::days(d);
    // Written in the window: a's record.
    lake.put(
        "events/event_type=T/date=2020-01-01/in",
        Some(day(0)),
        lake_line("a", day(0)) + "\n",
    );
    // Written 10 days before the window: may have waited in the queue (b).
    lake.put(
        "events/event_type=T/date=2026-01-01/early",
        Some(day(-10)),
        lake_line("b", day(-10)) + "\n",
    );
    // Written 20 days before: beyond SQS's longest retention, not read.
    lake.put(
        "events/event_type=T/date=2026-01-01/old",
        Some(day(-20)),
        lake_line("c", day(-20)),
    );
    // Written after the window, for a record that arrived after it: read, not kept.
    lake.put(
        "events/event_type=T/date=2026-01-01/late",
        Some(day(1)),
        lake_line("d", day(1) + Duration::hours(1)),
    );
    // Refused records are never stored: not read.
    lake.put(
        "processing-failed/error_type=processing-failed/date=2026-01-01/x",
        Some(day(0)),
        "{}",
    );
    let w = StoredWindow {
        since: Some(format_timestamp(day(-1))),
        until: Some(format_timestamp(day(1))),
    };
    let entities = LakeIndex::new(&lake).entities_in(&w).await.unwrap();
    let names: Vec<&str> = entities.iter().map(EntityId::as_str).collect();
    assert_eq!(names, ["a", "b"]);
    let reads = lake.reads.lock().unwrap().clone();
    assert_eq!(
        reads,
        [
            "events/event_type=T/date=2020-01-01/in",
            "events/event_type=T/date=2026-01-01/early",
            "events/event_type=T/date=2026-01-01/late",
        ]
    );
}

#[tokio::test]
async fn the_key_range_window_read_finds_what_the_filtering_default_finds() {
    // The slot store reads the predecessor and the `sk` range; the memory
    // store filters the whole history. Both must return the same events.
    let slot = SlotStore::new(MemoryItemTable::default(), "memory");
    let memory = MemoryStore::default();
    let entity = EntityId::new("e").unwrap();
    let mut marks = vec![Utc::now()];
    for i in 0..6 {
        for store in [&slot as &dyn Probe, &memory] {
            store.put(&entity, &format!("e-{i}")).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        marks.push(Utc::now());
    }
    for (i, &since) in marks.iter().enumerate() {
        for (j, &until) in marks.iter().enumerate().skip(i) {
            let w = StoredWindow {
                since: Some(format_timestamp(since)),
                until: Some(format_timestamp(until)),
            };
            let seqs = |events: Vec<tideline_core::StoredEvent>| {
                events.into_iter().map(|e| e.seq).collect::<Vec<_>>()
            };
            let from_slot = seqs(slot.read_window(&entity, &w, 0, 100).await.unwrap());
            let from_memory = seqs(memory.read_window(&entity, &w, 0, 100).await.unwrap());
            // Event k was stored between marks k and k + 1, in both stores.
            let expected: Vec<u64> = (i as u64 + 1..=j as u64).collect();
            assert_eq!(from_slot, expected, "{w:?}");
            assert_eq!(from_memory, expected, "{w:?}");
        }
    }
}

/// Appends through either store, so both get the same history.
trait Probe {
    fn put<'a>(
        &'a self,
        entity: &'a EntityId,
        id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
}

impl<S: EventStore> Probe for S {
    fn put<'a>(
        &'a self,
        entity: &'a EntityId,
        id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> {
        Box::pin(async move {
            self.append(entity, vec![event(entity.as_str(), id)], ExpectedSeq::Any)
                .await
                .unwrap();
        })
    }
}
