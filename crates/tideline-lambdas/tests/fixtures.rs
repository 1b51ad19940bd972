//! Handler tests on Lambda event JSON fixtures, with the in-memory ports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tideline_core::ingest::IngestConfig;
use tideline_core::retry::RetryPolicy;
use tideline_lambdas::{emit, query, store, transform};
use tideline_stages::emit::EmitConfig;
use tideline_stages::memory::{MemoryBus, MemoryQueue, MemoryStore, throttled};
use tideline_stages::*;
use tideline_testkit::fixtures::{FirehoseEvent, SqsRecord, StreamRecord, b64, lambda, sqs_event};

fn firehose(records: &[&str]) -> Value {
    FirehoseEvent::new().build(records)
}

fn t_state(queue: MemoryQueue) -> transform::State<MemoryQueue> {
    transform::State {
        max_concurrent_sends: tideline_aws::config::DEFAULT_MAX_CONCURRENT_SENDS,
        queue,
        ingest: IngestConfig::default(),
        retry: RetryPolicy::fast(3),
    }
}

#[tokio::test]
async fn transformer_empty_batch() {
    let resp = transform::handler(&t_state(MemoryQueue::default()), lambda(firehose(&[])))
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(resp).unwrap(), json!({"records": []}));
}

#[tokio::test]
async fn transformer_one_result_per_record_id() {
    let state = t_state(MemoryQueue::default());
    let records = [
        r#"{"entity_id":"a","type":"Opened","id":"e1","occurred_at":"2026-11-23T08:00:00Z","data":{"x":"é"}}"#,
        r#"{"entity_id":"a","data":{}}"#,
        "",
        r#"{"entity_id":"b","type":"Closed","data":[1,2]}"#,
    ];
    let resp = transform::handler(&state, lambda(firehose(&records)))
        .await
        .unwrap();
    let v = serde_json::to_value(resp).unwrap();
    let out = v["records"].as_array().unwrap();
    assert_eq!(out.len(), 4);
    let results: Vec<&str> = out.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(
        results,
        ["Ok", "ProcessingFailed", "ProcessingFailed", "Ok"]
    );
    for (i, r) in out.iter().enumerate() {
        assert!(r["recordId"].as_str().unwrap().ends_with(&format!("-{i}")));
    }
    assert_eq!(
        out[0]["metadata"]["partitionKeys"],
        json!({"event_type": "Opened", "date": "2026-11-23"})
    );
    // A failed record carries its original bytes back.
    assert_eq!(out[1]["data"], b64(records[1]));
    let sent = state.queue.messages();
    assert_eq!(sent.len(), 2);
    // De-duplication is per entity: the id is derived from (entity, event id).
    let dedup = |entity: &str, id: &str| {
        tideline_core::ids::queue_dedup_id(
            &tideline_core::EntityId::new(entity).unwrap(),
            &tideline_core::EventId::new(id).unwrap(),
        )
    };
    assert_eq!(
        (sent[0].group_id.as_str(), sent[0].dedup_id.clone()),
        ("a", dedup("a", "e1"))
    );
    assert_eq!(sent[1].group_id, "b");
    assert!(
        sent[1].dedup_id.starts_with("1:bsha256-"),
        "{}",
        sent[1].dedup_id
    );
}

/// A valid record the queue cannot take now is not a refusal: the invocation
/// fails, so Firehose retries it (it used to become ProcessingFailed).
#[tokio::test]
async fn transformer_transient_enqueue_failure_fails_the_invocation() {
    let queue = MemoryQueue::default();
    // Throttled on each of the three attempts the retry policy allows.
    queue.faults.script((0..3).map(|_| Some(throttled())));
    let state = t_state(queue);
    let err = transform::handler(
        &state,
        lambda(firehose(&[r#"{"entity_id":"a","type":"T","data":{}}"#])),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("could not be enqueued"), "{err}");
    // The retry that Firehose makes succeeds once the queue recovers.
    let resp = transform::handler(
        &state,
        lambda(firehose(&[r#"{"entity_id":"a","type":"T","data":{}}"#])),
    )
    .await
    .unwrap();
    assert_eq!(resp.records[0].result.as_deref(), Some("Ok"));
    assert_eq!(state.queue.messages().len(), 1);
}

/// What Lambda records for that failed invocation: the runtime turns the
/// handler's error into a `Diagnostic`, whose `errorType` says the failure
/// is retryable (an alarm or an operator can tell it from a broken
/// contract), and whose message carries the queue's own error.
#[tokio::test]
async fn transformer_invocation_error_type_says_retryable() {
    let queue = MemoryQueue::default();
    // Each entry of each attempt is throttled (faults are per entry).
    queue.faults.script((0..6).map(|_| Some(throttled())));
    let err = transform::handler(
        &t_state(queue),
        lambda(firehose(&[
            r#"{"entity_id":"a","type":"T","data":{}}"#,
            r#"{"entity_id":"b","type":"T","data":{}}"#,
        ])),
    )
    .await
    .unwrap_err();
    assert!(tideline_core::Classify::is_retryable(&err));
    let diagnostic = serde_json::to_value(lambda_runtime::Diagnostic::from(err)).unwrap();
    assert_eq!(
        diagnostic["errorType"],
        "Tideline.Retryable.TransientEnqueueFailure"
    );
    let message = diagnostic["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("2 valid records could not be enqueued"),
        "{message}"
    );
    // The cause travels with it: the queue's error after the retries.
    assert!(
        message.contains("enqueue failed after 3 attempts"),
        "{message}"
    );
}

fn normalized(entity: &str, id: &str) -> String {
    json!({"id": id, "entity_id": entity, "type": "T", "data": {"id": id},
           "occurred_at": "2026-11-23T08:00:00.000000Z", "received_at": "2026-11-23T08:00:01.000000Z"})
    .to_string()
}

#[derive(Default)]
struct Store {
    events: MemoryStore,
    rejects: memory::MemoryRejects,
    /// Event ids whose append fails retryably.
    failing_ids: Mutex<HashSet<String>>,
    /// Appends in flight now, overall and per entity, and the most seen.
    in_flight: Mutex<InFlight>,
}

#[derive(Default)]
struct InFlight {
    now: usize,
    most: usize,
    per_entity: HashMap<String, usize>,
    one_entity_twice: bool,
}

impl EventStore for Store {
    async fn append(
        &self,
        e: &tideline_core::EntityId,
        ev: Vec<tideline_core::NewEvent>,
        x: tideline_core::ExpectedSeq,
    ) -> Result<Vec<tideline_core::AppendOutcome>, StoreError> {
        {
            let mut f = self.in_flight.lock().unwrap();
            f.now += 1;
            f.most = f.most.max(f.now);
            let mine = f.per_entity.entry(e.to_string()).or_default();
            *mine += 1;
            if *mine > 1 {
                f.one_entity_twice = true;
            }
        }
        // Give the other appends of the batch the chance to start.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let fails = ev
            .iter()
            .any(|event| self.failing_ids.lock().unwrap().contains(event.id.as_str()));
        let out = if fails {
            Err(StoreError::from(PortError::retryable(
                "memory",
                "throttled",
            )))
        } else {
            self.events.append(e, ev, x).await
        };
        let mut f = self.in_flight.lock().unwrap();
        f.now -= 1;
        *f.per_entity.entry(e.to_string()).or_default() -= 1;
        out
    }
    async fn read_events(
        &self,
        e: &tideline_core::EntityId,
        a: u64,
        l: usize,
    ) -> Result<Vec<tideline_core::StoredEvent>, StoreError> {
        self.events.read_events(e, a, l).await
    }
    async fn head(
        &self,
        e: &tideline_core::EntityId,
    ) -> Result<Option<tideline_core::event::EntityHead>, StoreError> {
        self.events.head(e).await
    }
}

impl RejectSink for Store {
    async fn reject(&self, r: RejectedRecord) -> Result<(), PortError> {
        self.rejects.reject(r).await
    }
}

#[tokio::test]
async fn storer_empty_batch() {
    let state = store::State {
        max_concurrent_entities: tideline_aws::config::DEFAULT_MAX_CONCURRENT_ENTITIES,
        store: Store::default(),
    };
    let resp = store::handler(&state, lambda(json!({"Records": []})))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(resp).unwrap(),
        json!({"batchItemFailures": []})
    );
}

/// A failure stops only its entity: that message and every later message
/// of the entity are reported; the other entity's messages, before and
/// after it in the batch, are stored and not reported; the poison message
/// goes to the rejected records.
#[tokio::test]
async fn storer_mixed_groups_with_poison_and_a_failure() {
    for max_concurrent_entities in [1, 10] {
        let state = store::State {
            max_concurrent_entities,
            store: Store::default(),
        };
        state.store.failing_ids.lock().unwrap().insert("a".into());
        let (b1, b3, b4, b5) = (
            normalized("g1", "a"),
            normalized("g2", "b"),
            normalized("g1", "c"),
            normalized("g2", "d"),
        );
        let event = sqs_event([
            SqsRecord::fifo("m1", "g1", &b1),
            SqsRecord::fifo("m2", "g2", "{bad json put on the queue by hand"),
            SqsRecord::fifo("m3", "g2", &b3),
            SqsRecord::fifo("m4", "g1", &b4),
            SqsRecord::fifo("m5", "g2", &b5),
        ]);
        let resp = store::handler(&state, lambda(event)).await.unwrap();
        assert_eq!(
            serde_json::to_value(resp).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m4"}]}),
            "max_concurrent_entities = {max_concurrent_entities}"
        );
        let rejected = state.store.rejects.records.lock().unwrap().clone();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].source_id, "m2");
        let stored: Vec<String> = state
            .store
            .events
            .all_events()
            .iter()
            .map(|e| e.event_id.to_string())
            .collect();
        assert_eq!(stored, vec!["b", "d"]);
    }
}

/// The entities of a batch are appended concurrently, up to the bound, and
/// an entity's messages never: each waits for the one before it.
#[tokio::test]
async fn storer_appends_entities_concurrently_and_each_entity_in_order() {
    for (bound, most) in [(1, 1), (2, 2), (10, 4)] {
        let state = store::State {
            max_concurrent_entities: bound,
            store: Store::default(),
        };
        let mut records = Vec::new();
        for i in 0..12 {
            let entity = format!("e{}", i % 4);
            let body = normalized(&entity, &format!("ev-{i}"));
            records.push(SqsRecord::fifo(&format!("m{i}"), &entity, &body));
        }
        let resp = store::handler(&state, lambda(sqs_event(records)))
            .await
            .unwrap();
        assert!(resp.batch_item_failures.is_empty());
        let f = state.store.in_flight.lock().unwrap();
        assert_eq!(f.most, most, "appends in flight at most, bound {bound}");
        assert!(!f.one_entity_twice, "an entity had two appends in flight");
        for e in 0..4 {
            let entity = tideline_core::EntityId::new(format!("e{e}")).unwrap();
            let ids: Vec<(u64, String)> = state
                .store
                .events
                .all_events()
                .iter()
                .filter(|x| x.entity_id == entity)
                .map(|x| (x.seq, x.event_id.to_string()))
                .collect();
            let expected: Vec<(u64, String)> = (0..3)
                .map(|k| (k as u64 + 1, format!("ev-{}", e + 4 * k)))
                .collect();
            assert_eq!(ids, expected, "entity e{e} in batch order");
        }
    }
}

fn image(kind: &str, entity: &str, seq: u64) -> Value {
    match kind {
        "event" => json!({
            "pk": {"S": entity}, "sk": {"S": format!("2026-11-23T08:00:00.00000{seq}Z#ev-{seq}")},
            "seq": {"N": seq.to_string()}, "kind": {"S": "event"}, "event_id": {"S": format!("ev-{seq}")},
            "event_type": {"S": "Opened"}, "data": {"S": "{\"name\":\"Zoë\",\"n\":1}"},
            "occurred_at": {"S": "2026-11-23T08:00:00.000000Z"}, "received_at": {"S": "2026-11-23T08:00:00.000000Z"},
            "stored_at": {"S": format!("2026-11-23T08:00:00.00000{seq}Z")}, "test": {"BOOL": false},
            "schema_version": {"N": "1"}, "expires_at": {"N": "1795420800"}
        }),
        "head" => {
            json!({"pk": {"S": entity}, "sk": {"S": "#head"}, "kind": {"S": "head"}, "last_seq": {"N": seq.to_string()}, "last_stored_at": {"S": "2026-11-23T08:00:00.000000Z"}})
        }
        "dedup" => {
            json!({"pk": {"S": entity}, "sk": {"S": format!("id#ev-{seq}")}, "kind": {"S": "dedup"}, "event_seq": {"N": seq.to_string()}})
        }
        "snapshot" => json!({
            "pk": {"S": entity}, "sk": {"S": "snapshot#Order#1"}, "kind": {"S": "snapshot"},
            "snapshot_name": {"S": "Order"}, "aggregate_version": {"N": "1"},
            "snapshot_seq": {"N": seq.to_string()}, "state": {"S": "{}"},
            "stored_at": {"S": "2026-11-23T08:00:00.000000Z"}
        }),
        _ => json!({"pk": {"S": "rejected#store"}, "sk": {"S": "x#m"}, "kind": {"S": "rejected"}}),
    }
}

fn stream_record(
    name: &str,
    seqno: &str,
    new: Option<Value>,
    old: Option<Value>,
    ttl: bool,
) -> Value {
    let mut r = StreamRecord::new(name, seqno);
    r.new_image = new;
    r.old_image = old;
    if ttl {
        r = r.removed_by_ttl();
    }
    r.to_json()
}

fn e_state(bus: MemoryBus) -> emit::State<MemoryBus> {
    emit::State {
        bus,
        config: EmitConfig {
            retry: RetryPolicy::fast(2),
            ..EmitConfig::default()
        },
    }
}

#[tokio::test]
async fn emitter_every_record_shape() {
    let state = e_state(MemoryBus::default());
    let records = json!({"Records": [
        stream_record("INSERT", "100", Some(image("head", "a", 1)), None, false),
        stream_record("INSERT", "200", Some(image("event", "a", 1)), None, false),
        stream_record("INSERT", "300", Some(image("dedup", "a", 1)), None, false),
        stream_record("MODIFY", "400", Some(image("head", "a", 2)), Some(image("head", "a", 1)), false),
        stream_record("INSERT", "500", Some(image("rejected", "", 0)), None, false),
        stream_record("REMOVE", "600", None, Some(image("event", "a", 1)), true),
        stream_record("REMOVE", "700", None, Some(image("dedup", "a", 1)), true),
        // A command-side snapshot is not an event: skipped, never published.
        stream_record("INSERT", "750", Some(image("snapshot", "a", 1)), None, false),
        // An item of no known kind is never skipped: the batch rewinds to it.
        stream_record("INSERT", "800", Some(json!({"pk": {"S": "x"}})), None, false),
    ]});
    let resp = emit::handler(&state, lambda(records)).await.unwrap();
    assert_eq!(
        serde_json::to_value(resp).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "800"}]})
    );
    let published = state.bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].detail_type, "Opened");
    let d: Value = serde_json::from_str(&published[0].detail).unwrap();
    assert_eq!(d["data"]["name"], "Zoë");
    assert_eq!(d["metadata"]["sequence"], 1);
    assert_eq!(published[1].detail_type, "EventExpired");
    let d: Value = serde_json::from_str(&published[1].detail).unwrap();
    assert_eq!(
        (
            d["metadata"]["entity_id"].as_str(),
            d["metadata"]["sequence"].as_u64()
        ),
        (Some("a"), Some(1))
    );
    // Its own identity, and what removed it (TTL here).
    assert_eq!(d["metadata"]["event_id"], "ev-1 expired");
    assert_eq!(d["metadata"]["removed_by"], "ttl");

    // The stream decoding itself, with the kinds counted by the stage.
    let ev: aws_lambda_events::dynamodb::Event = serde_json::from_value(json!({"Records": [
        stream_record("REMOVE", "1", None, Some(image("event", "a", 1)), true),
        stream_record("REMOVE", "2", None, Some(image("event", "a", 1)), false),
        stream_record("MODIFY", "3", Some(image("head", "a", 2)), Some(image("head", "a", 1)), false),
        stream_record("REMOVE", "4", None, Some(image("head", "a", 1)), false),
        stream_record("INSERT", "5", Some(image("dedup", "a", 1)), None, false),
    ]})).unwrap();
    let changes = tideline_aws::feed::decode_records(&ev.records);
    assert!(matches!(
        &changes[0].kind,
        ChangeKind::EventRemoved { by_ttl: true, .. }
    ));
    assert!(matches!(
        &changes[1].kind,
        ChangeKind::EventRemoved { by_ttl: false, .. }
    ));
    let kinds: Vec<String> = changes[2..]
        .iter()
        .map(|c| match &c.kind {
            ChangeKind::Skipped { kind } => kind.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["modify", "remove", "dedup"]);
}

#[tokio::test]
async fn emitter_empty_batch() {
    let resp = emit::handler(
        &e_state(MemoryBus::default()),
        lambda(json!({"Records": []})),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(resp).unwrap(),
        json!({"batchItemFailures": []})
    );
}

#[tokio::test]
async fn emitter_rewinds_to_lowest_failed_sequence_number() {
    let bus = MemoryBus::default();
    // Entry 2 of 3 fails on both attempts.
    bus.faults
        .script([None, Some(throttled()), None, Some(throttled())]);
    let state = e_state(bus);
    let records = json!({"Records": [
        stream_record("INSERT", "1000000000000000000001", Some(image("event", "a", 1)), None, false),
        stream_record("INSERT", "1000000000000000000002", Some(image("head", "a", 1)), None, false),
        stream_record("INSERT", "1000000000000000000003", Some(image("event", "a", 2)), None, false),
        stream_record("INSERT", "1000000000000000000004", Some(image("event", "a", 3)), None, false),
    ]});
    let resp = emit::handler(&state, lambda(records)).await.unwrap();
    assert_eq!(
        serde_json::to_value(resp).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "1000000000000000000003"}]})
    );
}

fn http(method: &str, path: &str, qs: Value) -> Value {
    json!({"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
           "headers": {"accept": "application/json"}, "queryStringParameters": qs,
           "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "x", "domainPrefix": "x",
               "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
               "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "23/Nov/2026:08:00:00 +0000", "timeEpoch": 0},
           "isBase64Encoded": false})
}

fn body(r: &aws_lambda_events::apigw::ApiGatewayV2httpResponse) -> Value {
    match r.body.as_ref().unwrap() {
        aws_lambda_events::encodings::Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn query_api_routes() {
    let store = MemoryStore::default();
    for n in 1..=3 {
        let rec: tideline_core::NewEvent =
            serde_json::from_str(&normalized("acct-1", &format!("e{n}"))).unwrap();
        store
            .append(
                &rec.entity_id.clone(),
                vec![rec],
                tideline_core::ExpectedSeq::Any,
            )
            .await
            .unwrap();
    }
    let state = query::State { store };
    let r = query::handler(&state, lambda(http("GET", "/health", json!({}))))
        .await
        .unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let r = query::handler(&state, lambda(http("GET", "/entities/acct-1", json!({}))))
        .await
        .unwrap();
    assert_eq!(body(&r)["last_sequence"], 3);
    let r = query::handler(
        &state,
        lambda(http(
            "GET",
            "/entities/acct-1/events",
            json!({"limit": "2"}),
        )),
    )
    .await
    .unwrap();
    let b = body(&r);
    assert_eq!(b["items"].as_array().unwrap().len(), 2);
    let cursor = b["next_cursor"].as_str().unwrap().to_string();
    let r = query::handler(
        &state,
        lambda(http(
            "GET",
            "/entities/acct-1/events",
            json!({"limit": "2", "cursor": cursor}),
        )),
    )
    .await
    .unwrap();
    let b = body(&r);
    assert_eq!(b["items"][0]["metadata"]["sequence"], 3);
    assert_eq!(b["next_cursor"], Value::Null);
    let r = query::handler(&state, lambda(http("GET", "/entities/nobody", json!({}))))
        .await
        .unwrap();
    assert_eq!(r.status_code, 404);
    let r = query::handler(&state, lambda(http("POST", "/health", json!({}))))
        .await
        .unwrap();
    assert_eq!(r.status_code, 405);
    let r = query::handler(
        &state,
        lambda(http(
            "GET",
            "/entities/acct-1/events",
            json!({"cursor": "garbage"}),
        )),
    )
    .await
    .unwrap();
    assert_eq!(r.status_code, 400);
}

/// An API Gateway v2 request with a body, base64-encoded as API Gateway may send it.
fn http_post(path: &str, body: &Value, base64: bool) -> Value {
    let mut event = http("POST", path, json!({}));
    let text = body.to_string();
    event["body"] = if base64 {
        json!(b64(text.as_bytes()))
    } else {
        json!(text)
    };
    event["isBase64Encoded"] = json!(base64);
    event
}

#[tokio::test]
async fn command_api_routes() {
    use tideline_lambdas::command;
    let state = command::State {
        store: tideline_stages::store::slot::SlotStore::new(
            tideline_stages::store::slot::MemoryItemTable::default(),
            "memory",
        ),
        lake: tideline_stages::memory::MemoryLake::default(),
        ingest: IngestConfig::default(),
    };
    let placed = json!({"expected_sequence": 0, "events": [{"id": "c-0", "type": "OrderPlaced", "data": {}}]});
    let r = command::handler(
        &state,
        lambda(http_post("/entities/order%2F1/events", &placed, true)),
    )
    .await
    .unwrap();
    assert_eq!(r.status_code, 201, "{:?}", body(&r));
    assert_eq!(body(&r)["last_sequence"], 1);
    assert_eq!(body(&r)["entity_id"], "order/1");
    let stale = json!({"expected_sequence": 0, "events": [{"id": "c-1", "type": "OrderPlaced", "data": {}}]});
    let r = command::handler(
        &state,
        lambda(http_post("/entities/order%2F1/events", &stale, false)),
    )
    .await
    .unwrap();
    assert_eq!(r.status_code, 409);
    assert_eq!(body(&r)["actual_sequence"], 1);
    // The appended event reached the lake, as Firehose delivers an ingested
    // one; the conflicting command's did not.
    let lake: Vec<String> = state
        .lake
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.record.id.as_str().to_string())
        .collect();
    assert_eq!(lake, ["c-0"]);
    // The lake is down: the events are stored, the answer is 503, and the
    // same command again (idempotent) answers 201 and writes the lake.
    let next = json!({"expected_sequence": 1, "events": [{"id": "c-2", "type": "OrderShipped", "data": {}}]});
    *state.lake.fail_next.lock().unwrap() = 1;
    let r = command::handler(
        &state,
        lambda(http_post("/entities/order%2F1/events", &next, false)),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status_code, body(&r)["error"].clone()),
        (503, json!("LakeUnavailable"))
    );
    let r = command::handler(
        &state,
        lambda(http_post("/entities/order%2F1/events", &next, false)),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status_code, body(&r)["last_sequence"].clone()),
        (201, json!(2))
    );
    assert_eq!(state.lake.records.lock().unwrap().len(), 2);
    let refused = json!({"expected_sequence": 2, "events": [{"type": "T"}]});
    let r = command::handler(
        &state,
        lambda(http_post("/entities/order%2F1/events", &refused, false)),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status_code, body(&r)["error"].clone()),
        (400, json!("MissingField"))
    );
    let r = command::handler(
        &state,
        lambda(http("GET", "/entities/order%2F1/events", json!({}))),
    )
    .await
    .unwrap();
    assert_eq!(r.status_code, 405);
    let r = command::handler(&state, lambda(http("POST", "/health", json!({}))))
        .await
        .unwrap();
    assert_eq!(r.status_code, 404);

    // Snapshots: written at a sequence the entity has, read back by
    // aggregate version, refused past the head.
    let snapshot_path = "/entities/order%2F1/snapshots/Order";
    let mut put = http_post(
        snapshot_path,
        &json!({"aggregate_version": 1, "sequence": 2, "state": {"placed": true}}),
        false,
    );
    put["requestContext"]["http"]["method"] = json!("PUT");
    let r = command::handler(&state, lambda(put.clone())).await.unwrap();
    assert_eq!(
        (r.status_code, body(&r)["status"].clone()),
        (201, json!("written"))
    );
    let r = command::handler(
        &state,
        lambda(http(
            "GET",
            snapshot_path,
            json!({"aggregate_version": "1"}),
        )),
    )
    .await
    .unwrap();
    assert_eq!(r.status_code, 200, "{:?}", body(&r));
    assert_eq!(
        (body(&r)["sequence"].clone(), body(&r)["state"].clone()),
        (json!(2), json!({"placed": true}))
    );
    let r = command::handler(
        &state,
        lambda(http(
            "GET",
            snapshot_path,
            json!({"aggregate_version": "2"}),
        )),
    )
    .await
    .unwrap();
    assert_eq!(r.status_code, 404);
    let r = command::handler(&state, lambda(http("GET", snapshot_path, json!({}))))
        .await
        .unwrap();
    assert_eq!(r.status_code, 400);
    put["body"] = json!(json!({"aggregate_version": 1, "sequence": 9, "state": {}}).to_string());
    let r = command::handler(&state, lambda(put)).await.unwrap();
    assert_eq!(
        (r.status_code, body(&r)["error"].clone()),
        (400, json!("PastHead"))
    );
}
