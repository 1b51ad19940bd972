//! The command side (`tideline_stages::command`) over the store the storer
//! uses on DynamoDB (the slot protocol, here over the in-memory table that
//! behaves and bills like DynamoDB): expected versions, typed conflicts that
//! report the true last sequence, idempotent repeats, admission all or none,
//! and a property test over arbitrary interleavings of writers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tideline_core::ingest::{AdmittedRecord, IngestConfig, admit};
use tideline_core::item::{AttrValue, decode_event, lookup};
use tideline_core::limits::HopLimits;
use tideline_core::{EntityId, ExpectedSeq};
use tideline_stages::command::{
    CommandError, admit_command, append_command, command_path, handle_command,
};
use tideline_stages::store::slot::{MemoryItemTable, SlotStore};
use tideline_stages::{FailedRecord, Lake, PortError};

/// A lake that keeps what it was given.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Lake for Lines {
    async fn write_records(&self, records: &[AdmittedRecord]) -> Result<(), PortError> {
        let mut lines = self.0.lock().unwrap();
        lines.extend(records.iter().map(|r| r.body.clone()));
        Ok(())
    }
    async fn write_failed(&self, _: &[FailedRecord]) -> Result<(), PortError> {
        Ok(())
    }
}

fn store() -> SlotStore<MemoryItemTable> {
    SlotStore::new(MemoryItemTable::default(), "memory")
}

fn entity(name: &str) -> EntityId {
    EntityId::new(name).unwrap()
}

fn event(id: &str) -> Value {
    json!({"id": id, "type": "OrderPlaced", "data": {"id": id}})
}

/// `(seq, event id)` of every stored event of `entity`, in the table's key
/// order (never sorted here: the order is what is checked).
fn stored(table: &MemoryItemTable, entity: &str) -> Vec<(u64, String)> {
    table
        .items()
        .iter()
        .filter(|i| i.get("pk") == Some(&AttrValue::S(entity.into())))
        .filter(|i| i.get("kind") == Some(&AttrValue::S("event".into())))
        .map(|i| decode_event(lookup(i)).unwrap())
        .map(|e| (e.seq, e.event_id.as_str().to_string()))
        .collect()
}

async fn append(
    store: &SlotStore<MemoryItemTable>,
    name: &str,
    expected: ExpectedSeq,
    ids: &[&str],
) -> Result<u64, CommandError> {
    let admitted = admit_command(
        &IngestConfig::default(),
        &entity(name),
        ids.iter().map(|id| event(id)).collect(),
        chrono::Utc::now(),
    )?;
    append_command(store, &entity(name), expected, &admitted)
        .await
        .map(|a| a.last_sequence)
}

#[tokio::test]
async fn an_append_at_the_expected_version_wins_and_a_stale_one_gets_the_true_actual() {
    let s = store();
    assert_eq!(
        append(&s, "order-1", ExpectedSeq::NoStream, &["a", "b"])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        append(&s, "order-1", ExpectedSeq::Exactly(2), &["c"])
            .await
            .unwrap(),
        3
    );
    let err = append(&s, "order-1", ExpectedSeq::Exactly(2), &["d", "e"])
        .await
        .unwrap_err();
    match err {
        CommandError::Conflict(c) => assert_eq!((c.expected, c.actual), (2, 3)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let err = append(&s, "order-1", ExpectedSeq::NoStream, &["f"])
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Conflict(ref c) if c.expected == 0 && c.actual == 3),
        "{err:?}"
    );
    assert_eq!(
        append(&s, "order-1", ExpectedSeq::Any, &["g"])
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        stored(s.table(), "order-1"),
        vec![
            (1, "a".into()),
            (2, "b".into()),
            (3, "c".into()),
            (4, "g".into())
        ]
    );
}

#[tokio::test]
async fn a_repeated_append_answers_the_first_answer_and_stores_nothing() {
    let s = store();
    append(&s, "order-2", ExpectedSeq::NoStream, &["x"])
        .await
        .unwrap();
    assert_eq!(
        append(&s, "order-2", ExpectedSeq::Exactly(1), &["y", "z"])
            .await
            .unwrap(),
        3
    );
    append(&s, "order-2", ExpectedSeq::Exactly(3), &["w"])
        .await
        .unwrap();
    // The response to the second command was lost; its retry carries the
    // expectation it was decided on, which is stale by now.
    assert_eq!(
        append(&s, "order-2", ExpectedSeq::Exactly(1), &["y", "z"])
            .await
            .unwrap(),
        3
    );
    assert_eq!(stored(s.table(), "order-2").len(), 4);
}

#[tokio::test]
async fn a_refused_event_refuses_the_whole_command_naming_the_limit() {
    let s = store();
    let config = IngestConfig {
        limits: HopLimits {
            sqs_message_bytes: 2048,
            ..HopLimits::default()
        },
        ..IngestConfig::default()
    };
    let big = json!({"id": "big", "type": "T", "data": {"pad": "x".repeat(4096)}});
    let err = admit_command(
        &config,
        &entity("order-3"),
        vec![event("ok"), big],
        chrono::Utc::now(),
    )
    .unwrap_err();
    match &err {
        CommandError::Refused { index, reason } => {
            assert_eq!(*index, 1);
            assert_eq!(reason.code(), "OverLimit");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("events[1]"), "{err}");
    let lake = Lines::default();
    let body =
        json!({"expected_sequence": null, "events": [event("ok"), {"id": "no-type", "data": {}}]});
    let resp = handle_command(
        &s,
        Some(&lake),
        &config,
        "order-3",
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 400, "{:?}", resp.body);
    assert_eq!(resp.body["error"], "MissingField");
    assert_eq!(resp.body["index"], 1);
    assert!(stored(s.table(), "order-3").is_empty(), "all or none");
    assert!(lake.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn http_answers_201_409_and_400_and_hands_stored_events_to_the_lake() {
    let s = store();
    let lake = Lines::default();
    let config = IngestConfig::default();
    let post = |body: Value| {
        let (s, lake, config) = (&s, &lake, &config);
        async move {
            handle_command(
                s,
                Some(lake),
                config,
                "order%2F4",
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    let created = post(json!({"expected_sequence": 0, "events": [event("a"), event("b")]})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["last_sequence"], 2);
    assert_eq!(created.body["entity_id"], "order/4");
    assert_eq!(created.body["events"][1]["sequence"], 2);
    let conflict = post(json!({"expected_sequence": 0, "events": [event("c")]})).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["actual_sequence"], 2);
    assert_eq!(conflict.body["expected_sequence"], 0);
    let wrong_entity = post(json!({"expected_sequence": 2, "events": [{"entity_id": "other", "type": "T", "data": {}}]})).await;
    assert_eq!(wrong_entity.status, 400);
    let not_a_command = post(json!({"events": "nope"})).await;
    assert_eq!(not_a_command.status, 400);
    let lines = lake.0.lock().unwrap().clone();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains(r#""entity_id":"order/4""#), "{lines:?}");
    assert_eq!(
        command_path("/entities/order%2F4/events"),
        Some("order%2F4")
    );
    assert_eq!(command_path("/entities//events"), None);
    assert_eq!(command_path("/entities/a/b/events"), None);
}

#[tokio::test]
async fn an_event_is_admitted_exactly_as_ingest_admits_the_same_record() {
    let arrival = chrono::Utc::now();
    let admitted = admit_command(
        &IngestConfig::default(),
        &entity("order-5"),
        vec![json!({"type": "T", "data": {"n": 1}, "correlation_id": "c-1"})],
        arrival,
    )
    .unwrap();
    let ingested = admit(
        &IngestConfig::default(),
        br#"{"entity_id":"order-5","type":"T","data":{"n":1},"correlation_id":"c-1"}"#,
        arrival,
    )
    .unwrap();
    // Same record, same derived id: a command retried without ids is still idempotent.
    assert_eq!(admitted[0], ingested);
}

/// One step of a run: writer `w` reads the entity's version, appends `n`
/// events at the version it read, or repeats its last append.
#[derive(Debug, Clone)]
enum Step {
    Read(usize),
    Append(usize, usize),
    Repeat(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            (0..3usize).prop_map(Step::Read),
            (0..3usize, 1..4usize).prop_map(|(w, n)| Step::Append(w, n)),
            (0..3usize).prop_map(Step::Repeat),
        ],
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Writers interleave reads and appends at the version each read: an
    /// append wins exactly when nobody appended since its writer read, a
    /// loser's conflict names the true last sequence, a repeat is a no-op
    /// answering the first answer, and each version has exactly one owner.
    #[test]
    fn exactly_one_writer_wins_each_version(run in steps()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let s = store();
            let mut version = 0u64; // the model
            let mut read: HashMap<usize, u64> = HashMap::new();
            // Per writer: its last acknowledged append (ids, expected, answer).
            let mut last: HashMap<usize, (Vec<String>, u64, u64)> = HashMap::new();
            let mut owner: BTreeMap<u64, (usize, String)> = BTreeMap::new();
            for (i, step) in run.into_iter().enumerate() {
                match step {
                    Step::Read(w) => { read.insert(w, version); }
                    Step::Append(w, n) => {
                        let expected = read.get(&w).copied().unwrap_or(0);
                        let ids: Vec<String> = (0..n).map(|k| format!("w{w}-s{i}-{k}")).collect();
                        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                        match append(&s, "e", ExpectedSeq::Exactly(expected), &refs).await {
                            Ok(seq) => {
                                prop_assert_eq!(expected, version, "won at a stale version");
                                prop_assert_eq!(seq, version + n as u64);
                                for (k, id) in ids.iter().enumerate() {
                                    let v = version + 1 + k as u64;
                                    prop_assert!(owner.insert(v, (w, id.clone())).is_none(), "version {} held twice", v);
                                }
                                version = seq;
                                read.insert(w, version);
                                last.insert(w, (ids, expected, seq));
                            }
                            Err(CommandError::Conflict(c)) => {
                                prop_assert_ne!(expected, version, "lost at the current version");
                                prop_assert_eq!(c.actual, version, "the conflict's actual is not the true one");
                                prop_assert_eq!(c.expected, expected);
                            }
                            Err(other) => prop_assert!(false, "unexpected {other:?}"),
                        }
                    }
                    Step::Repeat(w) => {
                        if let Some((ids, expected, answer)) = last.get(&w).cloned() {
                            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                            let seq = append(&s, "e", ExpectedSeq::Exactly(expected), &refs).await;
                            prop_assert_eq!(seq.ok(), Some(answer), "a repeat is not a no-op");
                        }
                    }
                }
            }
            let held: Vec<(u64, String)> = owner.into_iter().map(|(v, (_, id))| (v, id)).collect();
            prop_assert_eq!(stored(s.table(), "e"), held);
            Ok(())
        })?;
    }
}
