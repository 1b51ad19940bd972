//! The guard under shuffled, duplicated and gapped delivery, with handler
//! failures: after redelivering every retried event until nothing is left,
//! each entity has exactly 1..n applied once, in order (`retry`, `buffer`),
//! or a strictly increasing run ending at n with the skips recorded (`accept`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use rusqlite::params;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use tideline_consumer::{
    CheckpointStore, ConsumerError, GapPolicy, Guard, IntegrationEvent, MemoryCheckpoints, Outcome,
    SqliteCheckpoints, SqliteWrite,
};
use tideline_core::Classify;
use tideline_testkit::fixtures::BusEvent;

fn event(entity: &str, seq: u64, test: bool) -> IntegrationEvent<Value> {
    BusEvent::new(entity, seq)
        .id(format!("{entity}-{seq}"))
        .time("2026-11-23T08:00:00Z")
        .test(test)
        .data(json!({"n": seq}))
        .read()
}

/// Delivers `deliveries` (indexes into `events`) through the guard; an event
/// whose handling fails retryably goes to the back of the queue again. A
/// handler call fails when `fail[i % fail.len()]` for the i-th call.
async fn deliver<S, W>(
    guard: &Guard<S>,
    events: &[IntegrationEvent<Value>],
    deliveries: Vec<usize>,
    fail: &[bool],
    make_write: W,
) -> usize
where
    S: CheckpointStore,
    W: Fn(String, u64) -> S::Write,
{
    let calls = AtomicUsize::new(0);
    let mut queue: VecDeque<usize> = deliveries.into();
    let mut rounds = 0;
    while let Some(i) = queue.pop_front() {
        rounds += 1;
        assert!(rounds < 100_000, "not quiescent");
        let result = guard
            .handle(events[i].clone(), |e: IntegrationEvent<Value>| {
                let k = calls.fetch_add(1, Ordering::Relaxed);
                let failing = !fail.is_empty() && fail[k % fail.len()];
                let write = make_write(e.entity_id().to_string(), e.sequence());
                async move {
                    if failing {
                        Err(ConsumerError::retryable("test", "injected"))
                    } else {
                        Ok(write)
                    }
                }
            })
            .await;
        match result {
            Ok(_) => {}
            Err(e) if e.is_retryable() => queue.push_back(i),
            Err(e) => panic!("permanent error: {e}"),
        }
    }
    rounds
}

fn memory_write(entity: String, seq: u64) -> tideline_consumer::memory::MemoryWrite {
    Box::new(move |table: &mut BTreeMap<String, Value>| {
        let list = table.entry(entity).or_insert_with(|| json!([]));
        if let Value::Array(a) = list {
            a.push(json!(seq));
        }
    })
}

fn applied(table: &BTreeMap<String, Value>, entity: &str) -> Vec<u64> {
    table
        .get(entity)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Entities with their event counts, a delivery order with duplicates, and a failure pattern.
fn scenario() -> impl Strategy<Value = (Vec<u64>, Vec<usize>, Vec<bool>, u64)> {
    (
        prop::collection::vec(1u64..15, 1..5),
        prop::collection::vec(any::<bool>(), 0..7),
        any::<u64>(),
    )
        .prop_flat_map(|(counts, fail, seed)| {
            let total: u64 = counts.iter().sum();
            (
                Just(counts),
                prop::collection::vec(0..total as usize, 0..(total as usize)),
                Just(fail),
                Just(seed),
            )
        })
        .prop_map(|(counts, dups, fail, seed)| (counts, dups, fail, seed))
}

fn build(counts: &[u64], dups: &[usize], seed: u64) -> (Vec<IntegrationEvent<Value>>, Vec<usize>) {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut events = Vec::new();
    for (k, &n) in counts.iter().enumerate() {
        for seq in 1..=n {
            events.push(event(&format!("e{k}"), seq, false));
        }
    }
    let mut deliveries: Vec<usize> = (0..events.len()).chain(dups.iter().copied()).collect();
    deliveries.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    (events, deliveries)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn no_failing_forever(fail: &[bool]) -> Vec<bool> {
    // A pattern of only failures would never let anything through.
    if fail.iter().all(|f| *f) {
        Vec::new()
    } else {
        fail.to_vec()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn retry_policy_applies_each_event_once_in_order((counts, dups, fail, seed) in scenario()) {
        let (events, deliveries) = build(&counts, &dups, seed);
        let guard = Guard::new(MemoryCheckpoints::new(), "c");
        runtime().block_on(deliver(&guard, &events, deliveries, &no_failing_forever(&fail), memory_write));
        let table = guard.store().table();
        for (k, &n) in counts.iter().enumerate() {
            prop_assert_eq!(applied(&table, &format!("e{k}")), (1..=n).collect::<Vec<_>>());
        }
        let c = guard.counts();
        prop_assert_eq!(c.applied, counts.iter().sum::<u64>());
        prop_assert!(c.duplicate >= dups.len() as u64);
    }

    #[test]
    fn buffer_policy_applies_each_event_once_in_order((counts, dups, fail, seed) in scenario(), max in 0usize..4) {
        let (events, deliveries) = build(&counts, &dups, seed);
        let guard = Guard::new(MemoryCheckpoints::new(), "c").with_gap_policy(GapPolicy::Buffer).with_max_buffered(max);
        runtime().block_on(deliver(&guard, &events, deliveries, &no_failing_forever(&fail), memory_write));
        let table = guard.store().table();
        for (k, &n) in counts.iter().enumerate() {
            prop_assert_eq!(applied(&table, &format!("e{k}")), (1..=n).collect::<Vec<_>>());
            let cp = runtime().block_on(guard.store().load("c", &format!("e{k}"))).unwrap();
            prop_assert!(cp.buffered.is_empty());
        }
        prop_assert_eq!(guard.counts().applied, counts.iter().sum::<u64>());
    }

    #[test]
    fn accept_policy_applies_an_increasing_run_and_records_gaps((counts, dups, fail, seed) in scenario()) {
        let (events, deliveries) = build(&counts, &dups, seed);
        let guard = Guard::new(MemoryCheckpoints::new(), "c").with_gap_policy(GapPolicy::Accept);
        runtime().block_on(deliver(&guard, &events, deliveries, &no_failing_forever(&fail), memory_write));
        let table = guard.store().table();
        for (k, &n) in counts.iter().enumerate() {
            let entity = format!("e{k}");
            let got = applied(&table, &entity);
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "not increasing: {:?}", got);
            prop_assert_eq!(got.last().copied(), Some(n));
            let cp = runtime().block_on(guard.store().load("c", &entity)).unwrap();
            let skipped_somewhere = got.len() as u64 != n;
            prop_assert_eq!(skipped_somewhere, cp.gaps_accepted > 0);
        }
    }

    #[test]
    fn sqlite_store_applies_each_event_once_in_order((counts, dups, fail, seed) in scenario(), policy in prop_oneof![Just(GapPolicy::Retry), Just(GapPolicy::Buffer)]) {
        let (events, deliveries) = build(&counts, &dups, seed);
        let store = SqliteCheckpoints::from_connection(rusqlite::Connection::open_in_memory().unwrap()).unwrap();
        store.with_connection(|c| c.execute_batch("CREATE TABLE applied (entity TEXT, seq INTEGER, at INTEGER PRIMARY KEY AUTOINCREMENT)")).unwrap();
        let guard = Guard::new(store, "c").with_gap_policy(policy).with_max_buffered(2);
        let write = |entity: String, seq: u64| -> SqliteWrite {
            Box::new(move |tx| {
                tx.execute("INSERT INTO applied (entity, seq) VALUES (?1, ?2)", params![entity, seq as i64])
                    .map(|_| ())
                    .map_err(tideline_consumer::sqlite::sqlite_error)
            })
        };
        runtime().block_on(deliver(&guard, &events, deliveries, &no_failing_forever(&fail), write));
        for (k, &n) in counts.iter().enumerate() {
            let got: Vec<u64> = guard.store().with_connection(|c| {
                let mut s = c.prepare("SELECT seq FROM applied WHERE entity = ?1 ORDER BY at").unwrap();
                s.query_map([format!("e{k}")], |r| r.get::<_, i64>(0)).unwrap().map(|r| r.unwrap() as u64).collect()
            });
            prop_assert_eq!(got, (1..=n).collect::<Vec<_>>());
        }
    }
}

#[tokio::test]
async fn test_events_are_skipped_unless_accepted() {
    let guard = Guard::new(MemoryCheckpoints::new(), "c");
    let out = guard
        .handle(event("t", 1, true), |e| async move {
            Ok(memory_write(e.entity_id().into(), 1))
        })
        .await
        .unwrap();
    assert_eq!(out, Outcome::TestSkipped);
    assert_eq!(guard.counts().test_skipped, 1);
    let guard = Guard::new(MemoryCheckpoints::new(), "c").accept_test_events(true);
    let out = guard
        .handle(event("t", 1, true), |e| async move {
            Ok(memory_write(e.entity_id().into(), 1))
        })
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Applied { sequence: 1, .. }));
}

#[tokio::test]
async fn reset_makes_a_replay_apply_again() {
    let guard = Guard::new(MemoryCheckpoints::new(), "c");
    let h = |e: IntegrationEvent<Value>| async move {
        Ok(memory_write(e.entity_id().into(), e.sequence()))
    };
    for seq in 1..=3 {
        guard.handle(event("r", seq, false), h).await.unwrap();
    }
    // A replay without a reset is ignored.
    for seq in 1..=3 {
        assert_eq!(
            guard.handle(event("r", seq, false), h).await.unwrap(),
            Outcome::Duplicate
        );
    }
    assert_eq!(guard.store().reset("c", Some("r")).await.unwrap(), 1);
    for seq in 1..=3 {
        assert!(matches!(
            guard.handle(event("r", seq, false), h).await.unwrap(),
            Outcome::Applied { .. }
        ));
    }
    assert_eq!(applied(&guard.store().table(), "r"), vec![1, 2, 3, 1, 2, 3]);
}

#[tokio::test]
async fn gap_with_retry_is_a_retryable_error() {
    let guard = Guard::new(MemoryCheckpoints::new(), "c");
    let err = guard
        .handle(event("g", 2, false), |e| async move {
            Ok(memory_write(e.entity_id().into(), 2))
        })
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(matches!(
        err,
        ConsumerError::Gap {
            expected: 1,
            got: 2,
            ..
        }
    ));
    assert_eq!(guard.counts().gap, 1);
}
