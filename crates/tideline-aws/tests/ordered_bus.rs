//! The ordered bus (EventBridge's enhanced custom event bus, EventsV2) through
//! the real SDK client with a mocked HTTP layer (`aws-smithy-mocks`): moto has
//! no EventsV2. A fake service behind the mock records every PutEvents
//! request, fails the entries a test scripts, de-duplicates by
//! `DeduplicationId` as the service does, and keeps the order in which each
//! `EventGroupId` was accepted, i.e. what a FIFO subscriber would receive.
//! The emitter's real emit stage drives the adapter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_eventbridgev2::operation::put_events::{PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridgev2::types::PutEventsResultEntry;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tideline_aws::OrderedEventBus;
use tideline_aws::bus::ordered::HELD_BEHIND_FAILED_ENTRY;
use tideline_core::envelope::{BusEntry, EventDetail};
use tideline_core::ids::bus_dedup_id;
use tideline_core::retry::RetryPolicy;
use tideline_core::{ErrorClass, StoredEvent};
use tideline_stages::emit::{EmitConfig, emit_batch};
use tideline_stages::{Bus, Change, ChangeKind};

const BUS_ARN: &str =
    "arn:aws:events:eu-west-1:123456789012:event-busv2/tideline-ordered/abcdefghij0123456789abcde";

/// How the fake answers one entry.
#[derive(Clone, Copy)]
enum Fault {
    Throttled,
    Malformed,
}

#[derive(Default)]
struct FakeService {
    /// Every request: (bus ARN, [(EventGroupId, DeduplicationId, entity, seq, event id)]).
    requests: Vec<(String, Vec<SentEntry>)>,
    /// Faults to answer, once each, by (entity, seq).
    faults: HashMap<(String, u64), Fault>,
    /// De-duplication ids accepted (the service's 5-minute window).
    accepted_ids: HashSet<String>,
    /// What FIFO subscribers receive, per group, in publish order.
    delivered: BTreeMap<String, Vec<u64>>,
}

#[derive(Clone, Debug)]
struct SentEntry {
    group: Option<String>,
    dedup: Option<String>,
    entity: String,
    seq: u64,
    event_id: String,
}

fn answer(service: &Arc<Mutex<FakeService>>, input: &PutEventsInput) -> PutEventsOutput {
    let mut s = service.lock().unwrap();
    let mut sent = Vec::new();
    let mut out = PutEventsOutput::builder();
    let mut failed = 0;
    for entry in input.entries() {
        let detail: serde_json::Value = serde_json::from_str(entry.detail().unwrap()).unwrap();
        let meta = &detail["metadata"];
        let e = SentEntry {
            group: entry
                .system_metadata()
                .and_then(|m| m.event_group_id())
                .map(str::to_string),
            dedup: entry
                .system_metadata()
                .and_then(|m| m.deduplication_id())
                .map(str::to_string),
            entity: meta["entity_id"].as_str().unwrap().to_string(),
            seq: meta["sequence"].as_u64().unwrap(),
            event_id: meta["event_id"].as_str().unwrap().to_string(),
        };
        sent.push(e.clone());
        let result = match s.faults.remove(&(e.entity.clone(), e.seq)) {
            Some(Fault::Throttled) => {
                failed += 1;
                PutEventsResultEntry::builder()
                    .error_code("ThrottlingException")
                    .error_message("Rate exceeded")
                    .build()
            }
            Some(Fault::Malformed) => {
                failed += 1;
                PutEventsResultEntry::builder()
                    .error_code("MalformedDetail")
                    .error_message("bad")
                    .build()
            }
            None => {
                let dedup = e.dedup.clone().unwrap_or_default();
                // A repeat within the window is acknowledged, not delivered again.
                if s.accepted_ids.insert(dedup) {
                    let group = e.group.clone().unwrap_or_default();
                    s.delivered.entry(group).or_default().push(e.seq);
                }
                PutEventsResultEntry::builder()
                    .event_id(format!("v2-{}", e.event_id))
                    .build()
            }
        };
        out = out.entries(result);
    }
    s.requests
        .push((input.event_bus_arn().unwrap_or_default().to_string(), sent));
    out.failed_entry_count(failed).build()
}

fn fake_bus(faults: &[(&str, u64, Fault)]) -> (OrderedEventBus, Arc<Mutex<FakeService>>) {
    let service = Arc::new(Mutex::new(FakeService {
        faults: faults
            .iter()
            .map(|(e, s, f)| ((e.to_string(), *s), *f))
            .collect(),
        ..FakeService::default()
    }));
    let in_rule = service.clone();
    let rule = mock!(aws_sdk_eventbridgev2::Client::put_events)
        .then_compute_output(move |input| answer(&in_rule, input));
    let client = mock_client!(aws_sdk_eventbridgev2, RuleMode::MatchAny, &[&rule], |c| c
        .retry_config(aws_sdk_eventbridgev2::config::retry::RetryConfig::disabled()));
    (OrderedEventBus::new(client, BUS_ARN), service)
}

fn stored(entity: &str, seq: u64) -> StoredEvent {
    // From JSON, so fields other crates add with defaults do not break this test.
    serde_json::from_value(serde_json::json!({
        "entity_id": entity,
        "seq": seq,
        "sk": format!("2026-11-23T08:00:00.{seq:06}Z"),
        "event_id": format!("{entity}-ev-{seq}"),
        "event_type": "OrderPlaced",
        "data": {"n": seq, "text": "naïve café"},
        "occurred_at": "2026-11-23T08:00:00Z",
        "received_at": "2026-11-23T08:00:00Z",
        "stored_at": "2026-11-23T08:00:00Z",
        "correlation_id": null,
        "test": false,
        "schema_version": 1,
        "expires_at": null
    }))
    .unwrap()
}

/// Interleaved changes of entities A and B: A1 A2 B1 A3 B2 B3 …
fn changes(per_entity: u64) -> Vec<Change> {
    let mut out = Vec::new();
    let mut n = 0;
    for seq in 1..=per_entity {
        for entity in ["order-A", "order-B"] {
            n += 1;
            out.push(Change {
                sequence_number: format!("{n:021}"),
                kind: ChangeKind::EventInserted(stored(entity, seq)),
            });
        }
    }
    out
}

fn config() -> EmitConfig {
    EmitConfig {
        retry: RetryPolicy::fast(5),
        ..EmitConfig::default()
    }
}

fn assert_one_entry_per_group_per_call(service: &FakeService) {
    for (_, entries) in &service.requests {
        let groups: HashSet<_> = entries.iter().map(|e| e.group.clone()).collect();
        assert_eq!(
            groups.len(),
            entries.len(),
            "a call carried two entries of one group: {entries:?}"
        );
    }
}

#[tokio::test]
async fn every_entry_carries_the_entity_as_group_and_a_dedup_id_from_the_event_id() {
    let (bus, service) = fake_bus(&[]);
    let batch = emit_batch(&bus, &config(), &changes(3)).await;
    assert_eq!(batch.rewind_from, None, "{:?}", batch.error);
    assert_eq!(batch.counts.sent, 6);
    let s = service.lock().unwrap();
    assert!(!s.requests.is_empty());
    for (arn, entries) in &s.requests {
        assert_eq!(arn, BUS_ARN);
        for e in entries {
            assert_eq!(e.group.as_deref(), Some(e.entity.as_str()));
            let dedup = e.dedup.as_deref().unwrap();
            assert_eq!(dedup, bus_dedup_id(&e.entity, &e.event_id, false));
            assert!((1..=128).contains(&dedup.len()), "DeduplicationId 1–128");
        }
    }
    assert_one_entry_per_group_per_call(&s);
    assert_eq!(s.delivered["order-A"], vec![1, 2, 3]);
    assert_eq!(s.delivered["order-B"], vec![1, 2, 3]);
}

#[tokio::test]
async fn a_throttled_entry_is_resent_alone_and_its_entity_stays_in_order() {
    // A2 is throttled once: B's entries go on, A3 waits behind A2.
    let (bus, service) = fake_bus(&[("order-A", 2, Fault::Throttled)]);
    let batch = emit_batch(&bus, &config(), &changes(3)).await;
    assert_eq!(batch.rewind_from, None, "{:?}", batch.error);
    assert_eq!(batch.counts.sent, 6);
    let s = service.lock().unwrap();
    assert_one_entry_per_group_per_call(&s);
    // Per-entity publish order, as a FIFO subscriber sees it.
    assert_eq!(s.delivered["order-A"], vec![1, 2, 3]);
    assert_eq!(s.delivered["order-B"], vec![1, 2, 3]);
    // Only the failed entry was sent twice; nothing else was resent.
    let mut sends: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for (_, entries) in &s.requests {
        for e in entries {
            *sends.entry((e.entity.clone(), e.seq)).or_default() += 1;
        }
    }
    for ((entity, seq), count) in &sends {
        let expected = if (entity.as_str(), *seq) == ("order-A", 2) {
            2
        } else {
            1
        };
        assert_eq!(*count, expected, "{entity} #{seq} sent {count} times");
    }
}

#[tokio::test]
async fn a_later_entry_of_a_failed_entity_is_held_back_not_sent() {
    let (bus, service) = fake_bus(&[("order-A", 1, Fault::Malformed)]);
    let entries: Vec<BusEntry> = [("order-A", 1), ("order-A", 2), ("order-B", 1)]
        .iter()
        .map(|(e, s)| BusEntry::new("tideline", &EventDetail::from_stored(&stored(e, *s), false)))
        .collect();
    let results = bus.put_events(&entries).await.unwrap();
    let a1 = results[0].as_ref().unwrap_err();
    assert_eq!(
        (a1.code.as_str(), a1.class),
        ("MalformedDetail", ErrorClass::Permanent)
    );
    let a2 = results[1].as_ref().unwrap_err();
    assert_eq!(
        (a2.code.as_str(), a2.class),
        (HELD_BEHIND_FAILED_ENTRY, ErrorClass::Retryable)
    );
    assert!(results[2].is_ok());
    let s = service.lock().unwrap();
    assert_eq!(s.requests.len(), 1, "A2 never went out");
    assert!(!s.delivered.contains_key("order-A"));
}

#[tokio::test]
async fn after_a_rewind_the_replayed_batch_is_deduplicated_by_the_bus() {
    // A2 fails permanently: the stage rewinds to it. The stream then delivers
    // the batch again from there; entries already published (B's) carry the
    // same DeduplicationId, so subscribers get each event once, in order.
    let (bus, service) = fake_bus(&[("order-A", 2, Fault::Malformed)]);
    let all = changes(3);
    let first = emit_batch(&bus, &config(), &all).await;
    let rewind = first.rewind_from.clone().expect("rewinds to A2");
    let from = all
        .iter()
        .position(|c| c.sequence_number == rewind)
        .unwrap();
    assert!(
        matches!(&all[from].kind, ChangeKind::EventInserted(e) if e.entity_id.as_str() == "order-A" && e.seq == 2)
    );
    let second = emit_batch(&bus, &config(), &all[from..]).await;
    assert_eq!(second.rewind_from, None, "{:?}", second.error);
    let s = service.lock().unwrap();
    assert_eq!(s.delivered["order-A"], vec![1, 2, 3]);
    assert_eq!(s.delivered["order-B"], vec![1, 2, 3]);
}

#[tokio::test]
async fn a_replay_gets_a_dedup_id_of_its_own() {
    let (bus, service) = fake_bus(&[]);
    let event = stored("order-A", 1);
    let live = BusEntry::new("tideline", &EventDetail::from_stored(&event, false));
    let replay = BusEntry::new("tideline", &EventDetail::from_stored(&event, true));
    let results = bus.put_events(&[live, replay]).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
    let s = service.lock().unwrap();
    // Same group: two calls, and the replay was delivered, not swallowed.
    assert_eq!(s.requests.len(), 2);
    assert_eq!(s.delivered["order-A"], vec![1, 1]);
}
