//! Bundles as the emitter builds them, through the guard and the registry:
//! unpacked transparently, one handler call per event, the guard per event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tideline_consumer::memory::MemoryWrite;
use tideline_consumer::{
    ConsumerError, Guard, IntegrationEvent, MemoryCheckpoints, Outcome, RegistryBuilder,
    UnhandledPolicy,
};
use tideline_core::bundle::{BUNDLE_DETAIL_TYPE, BundleConfig, pack};
use tideline_core::envelope::{BusEntry, DetailMetadata, EventDetail};

fn detail(entity: &str, seq: u64, event_type: &str, test: bool) -> EventDetail {
    EventDetail {
        metadata: DetailMetadata {
            event_id: format!("{entity}-{seq}"),
            event_type: event_type.into(),
            schema_version: 1,
            entity_id: entity.into(),
            sequence: seq,
            occurred_at: "2026-11-29T00:00:00.000000Z".into(),
            stored_at: "2026-11-29T00:00:00.000001Z".into(),
            correlation_id: None,
            test,
            replay: false,
            removed_by: None,
            traceparent: None,
        },
        data: json!({"n": seq}),
    }
}

/// The delivered event of one bundle of `details`, built by the emitter's packing.
fn bundle(details: &[EventDetail]) -> Value {
    let entries: Vec<BusEntry> = details
        .iter()
        .map(|d| BusEntry::new("tideline", d))
        .collect();
    let config = BundleConfig::from_max_events(details.len()).unwrap();
    let packed = pack(&entries, |i| details[i].metadata.test, &config, 1 << 20);
    assert_eq!(packed.len(), 1, "one bundle");
    assert_eq!(packed[0].entry.detail_type, BUNDLE_DETAIL_TYPE);
    serde_json::from_str(
        &packed[0]
            .entry
            .to_event_json("bus-id", "2026-11-29T00:00:01Z"),
    )
    .unwrap()
}

fn write(entity: String, seq: u64) -> MemoryWrite {
    Box::new(move |table: &mut BTreeMap<String, Value>| {
        if let Value::Array(a) = table.entry(entity).or_insert_with(|| json!([])) {
            a.push(json!(seq));
        }
    })
}

fn applied(guard: &Guard<MemoryCheckpoints>, entity: &str) -> Vec<u64> {
    guard
        .store()
        .table()
        .get(entity)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_bundle_reaches_the_handler_one_event_at_a_time_with_duplicates_dropped() {
    let guard = Guard::new(MemoryCheckpoints::new(), "c");
    let seen = Arc::new(Mutex::new(Vec::new()));
    // o#2 twice inside the bundle (a redelivered stream record re-bundled).
    let raw = bundle(&[
        detail("o", 1, "OrderPlaced", false),
        detail("p", 1, "OrderPlaced", false),
        detail("o", 2, "OrderPaid", false),
        detail("o", 2, "OrderPaid", false),
        detail("o", 3, "OrderShipped", false),
    ]);
    let out = guard
        .handle_json(raw.clone(), |e: IntegrationEvent<Value>| {
            seen.lock().unwrap().push((
                e.detail_type.clone(),
                e.entity_id().to_string(),
                e.sequence(),
            ));
            async move { Ok(write(e.entity_id().into(), e.sequence())) }
        })
        .await
        .unwrap();
    let Outcome::Bundle { outcomes } = out else {
        panic!("a bundle gives a bundle outcome: {out:?}");
    };
    assert!(matches!(outcomes[0], Outcome::Applied { sequence: 1, .. }));
    assert!(matches!(outcomes[2], Outcome::Applied { sequence: 2, .. }));
    assert_eq!(outcomes[3], Outcome::Duplicate);
    assert!(matches!(outcomes[4], Outcome::Applied { sequence: 3, .. }));
    assert_eq!(applied(&guard, "o"), vec![1, 2, 3]);
    assert_eq!(applied(&guard, "p"), vec![1]);
    // The handler saw each event once, with its own detail-type.
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![
            ("OrderPlaced".to_string(), "o".to_string(), 1),
            ("OrderPlaced".to_string(), "p".to_string(), 1),
            ("OrderPaid".to_string(), "o".to_string(), 2),
            ("OrderShipped".to_string(), "o".to_string(), 3),
        ]
    );
    // The whole bundle redelivered: every event a duplicate.
    let again = guard
        .handle_json(raw, |e: IntegrationEvent<Value>| async move {
            Ok(write(e.entity_id().into(), e.sequence()))
        })
        .await
        .unwrap();
    assert_eq!(
        again,
        Outcome::Bundle {
            outcomes: vec![Outcome::Duplicate; 5]
        }
    );
    assert_eq!(guard.counts().duplicate, 6);
}

#[tokio::test]
async fn a_failure_inside_a_bundle_stops_it_and_the_redelivery_resumes_there() {
    let guard = Guard::new(MemoryCheckpoints::new(), "c");
    let raw = bundle(&[
        detail("o", 1, "T", false),
        detail("o", 2, "T", false),
        detail("o", 3, "T", false),
    ]);
    let err = guard
        .handle_json(raw.clone(), |e: IntegrationEvent<Value>| async move {
            if e.sequence() == 2 {
                Err(ConsumerError::retryable("test", "injected"))
            } else {
                Ok(write(e.entity_id().into(), e.sequence()))
            }
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ConsumerError::Unavailable { .. }));
    assert_eq!(
        applied(&guard, "o"),
        vec![1],
        "o#3 not applied past the failure"
    );
    guard
        .handle_json(raw, |e: IntegrationEvent<Value>| async move {
            Ok(write(e.entity_id().into(), e.sequence()))
        })
        .await
        .unwrap();
    assert_eq!(applied(&guard, "o"), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_test_bundle_is_skipped_per_event() {
    let guard = Guard::new(MemoryCheckpoints::new(), "c");
    let raw = bundle(&[detail("t", 1, "T", true), detail("t", 2, "T", true)]);
    assert_eq!(raw["detail"]["test_events"], json!(true));
    let out = guard
        .handle_json(raw, |e: IntegrationEvent<Value>| async move {
            Ok(write(e.entity_id().into(), e.sequence()))
        })
        .await
        .unwrap();
    assert_eq!(
        out,
        Outcome::Bundle {
            outcomes: vec![Outcome::TestSkipped; 2]
        }
    );
    assert_eq!(guard.counts().test_skipped, 2);
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Order {
    n: u64,
}

#[tokio::test]
async fn the_registry_dispatches_each_bundled_event_to_its_own_handler() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (placed, shipped) = (log.clone(), log.clone());
    let registry = RegistryBuilder::new()
        .on("OrderPlaced", move |e: IntegrationEvent<Order>| {
            placed
                .lock()
                .unwrap()
                .push(format!("placed {}", e.detail.data.n));
            let w = write(e.entity_id().into(), e.sequence());
            async move { Ok(w) }
        })
        .on("OrderShipped", move |e: IntegrationEvent<Order>| {
            shipped
                .lock()
                .unwrap()
                .push(format!("shipped {}", e.detail.data.n));
            let w = write(e.entity_id().into(), e.sequence());
            async move { Ok(w) }
        })
        .build()
        .unwrap();
    let dispatcher = registry.dispatcher("", UnhandledPolicy::Skip).unwrap();
    let guard = Guard::new(MemoryCheckpoints::new(), "c");
    let raw = bundle(&[
        detail("o", 1, "OrderPlaced", false),
        detail("o", 2, "OrderNoted", false),
        detail("o", 3, "OrderShipped", false),
    ]);
    let out = dispatcher.handle_json(&guard, raw).await.unwrap();
    assert!(matches!(out, Outcome::Bundle { ref outcomes } if outcomes.len() == 3));
    assert_eq!(log.lock().unwrap().clone(), vec!["placed 1", "shipped 3"]);
    assert_eq!(dispatcher.unhandled_count(), 1);
    assert_eq!(applied(&guard, "o"), vec![1, 3]);
}
