//! End-to-end tests of local mode (`tideline up` in-process): the Firehose API
//! through the real `aws-sdk-firehose` crate, invalid records next to valid
//! ones, per-entity order and gapless sequences, and paging across many pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tideline_testkit::local::{
    LocalHarness, files_under, log_lines_until, log_rule, sdk_record as record,
};

/// The log target's file, in the harness's directory.
const LOG: &str = "events.jsonl";

/// A stack with one log target writing to [`LOG`].
async fn start_with_log() -> LocalHarness {
    LocalHarness::start_with(|c, dir| c.rules = log_rule("log", &dir.join(LOG))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_sdk_ingest_with_invalid_records_next_to_valid_ones() {
    let stack = start_with_log().await;
    let log = stack.dir().join(LOG);
    let client = stack.firehose().await;

    // Three entities interleaved, with non-ASCII payloads, and invalid records between them.
    let mut batch = Vec::new();
    let mut expected: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for n in 0..60u32 {
        let entity = format!("cust-{}", n % 3);
        batch.push(record(&json!({"entity_id": entity, "type": "Noted", "data": {"n": n, "text": "Grüße, 東京 — ✓"}})));
        expected.entry(entity).or_default().push(n);
        if n % 20 == 7 {
            batch.push(record(b"\xff\xfe not utf-8".as_slice()));
            batch.push(record(r#"{"entity_id": "cust-0", "type": "Noted"}"#));
        }
    }
    let out = client
        .put_record_batch()
        .delivery_stream_name("tideline-ingest")
        .set_records(Some(batch))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_put_count(), 0);
    assert_eq!(out.request_responses().len(), 66);

    // Unknown stream: ResourceNotFoundException, as AWS answers.
    let err = client
        .put_record()
        .delivery_stream_name("nope")
        .record(record("{}"))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", err.into_service_error()).contains("ResourceNotFound"));
    // Over 500 records: refused whole.
    let too_many: Vec<_> = (0..501).map(|_| record("{}")).collect();
    let err = client
        .put_record_batch()
        .delivery_stream_name("tideline-ingest")
        .set_records(Some(too_many))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", err.into_service_error()).contains("InvalidArgument"));
    // PutRecord works too.
    client
        .put_record()
        .delivery_stream_name("tideline-ingest")
        .record(record(
            &json!({"entity_id": "cust-9", "type": "Single", "data": null}),
        ))
        .send()
        .await
        .unwrap();

    stack.wait_idle(Duration::from_secs(30)).await;

    for (entity, ns) in &expected {
        let (items, _) = stack.history(entity, 100).await;
        let seqs: Vec<u64> = items
            .iter()
            .map(|i| i["metadata"]["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=ns.len() as u64).collect::<Vec<_>>(),
            "gapless for {entity}"
        );
        let got: Vec<u32> = items
            .iter()
            .map(|i| i["data"]["n"].as_u64().unwrap() as u32)
            .collect();
        assert_eq!(&got, ns, "per-entity order for {entity}");
        assert!(items.iter().all(|i| i["data"]["text"] == "Grüße, 東京 — ✓"));
    }

    // Rejected records are in processing-failed with their reasons, never stored.
    let failed_dir = stack.lake_dir().join("processing-failed");
    let reasons: Vec<String> = stack
        .processing_failed()
        .iter()
        .map(|v| v["errorMessage"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons.len(), 6);
    assert!(reasons.iter().any(|r| r.contains("not valid UTF-8")));
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("missing required field `data`"))
    );

    // The log target received every event exactly once, byte-exact text.
    let delivered = std::fs::read_to_string(&log).unwrap();
    assert_eq!(delivered.lines().count(), 61);
    assert!(delivered.contains("Grüße, 東京 — ✓"));
    // The lake holds the normalised records as JSON Lines.
    let lake_lines: usize = files_under(&stack.lake_dir())
        .iter()
        .filter(|p| !p.starts_with(&failed_dir))
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    assert_eq!(lake_lines, 61);
    // Every stage counts received / sent / discarded / failed under one scheme.
    let m = stack.shared().metrics();
    assert_eq!(m["transform"]["received"], 67);
    assert_eq!(m["transform"]["failed"], 6);
    assert_eq!(m["store"]["sent"], 61);
    assert_eq!(m["emit"]["sent"], 61);
    assert_eq!(
        m["route"]["log"],
        json!({"received": 61, "sent": 61, "discarded": 0, "failed": 0})
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_records_are_stored_once_and_use_no_sequence() {
    let stack = LocalHarness::start().await;
    let batch: Vec<_> = (0..20)
        .map(|n| json!({"entity_id": "acct-1", "type": "Posted", "data": {"n": n}}))
        .collect();
    for _ in 0..3 {
        // A producer retry resends the same bytes: same derived ids.
        stack.put_record_batch_sdk(&batch).await;
        stack.wait_idle(Duration::from_secs(30)).await;
    }
    let (items, _) = stack.history("acct-1", 1000).await;
    assert_eq!(items.len(), 20);
    let ids: HashSet<_> = items
        .iter()
        .map(|i| i["metadata"]["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 20);
    assert_eq!(items.last().unwrap()["metadata"]["sequence"], 20);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_api_pages_across_many_pages() {
    let stack = LocalHarness::start().await;
    for chunk in 0..5 {
        let batch: Vec<_> = (0..500)
            .map(|n| json!({"entity_id": "big/entity", "type": "Tick", "data": {"n": chunk * 500 + n}}))
            .collect();
        stack.put_record_batch_sdk(&batch).await;
    }
    stack.wait_idle(Duration::from_secs(60)).await;
    let (items, pages) = stack.history("big%2Fentity", 97).await;
    assert_eq!(items.len(), 2500);
    assert_eq!(pages, 26);
    let ns: Vec<u64> = items
        .iter()
        .map(|i| i["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, (0..2500).collect::<Vec<_>>());
    let summary: Value = reqwest::get(format!(
        "http://{}/entities/big%2Fentity",
        stack.local_addr()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(summary["last_sequence"], 2500);
    assert_eq!(summary["entity_id"], "big/entity");
    let health = reqwest::get(format!("http://{}/health", stack.local_addr()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    stack.shutdown().await;
}

/// Issue 13, trace propagation in local mode: a producer's trace id reaches
/// a rule's target unchanged (W3C or X-Ray form), a record without one gets
/// the trace ingest starts, and the query API returns it with the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_follows_each_record_to_the_target() {
    let stack = start_with_log().await;
    let log = stack.dir().join(LOG);
    let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let records = [
        json!({"entity_id": "tr-1", "type": "T", "id": "a", "traceparent": w3c, "data": {}}),
        json!({"entity_id": "tr-2", "type": "T", "id": "b", "traceparent": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", "data": {}}),
        json!({"entity_id": "tr-3", "type": "T", "id": "c", "data": {}}),
        json!({"entity_id": "tr-4", "type": "T", "id": "d", "traceparent": "not a trace", "data": {}}),
    ];
    let out = stack.put_record_batch_sdk(&records).await;
    // Firehose takes any bytes; the transform refuses the malformed trace
    // header with a reason, into processing-failed.
    assert_eq!(out.failed_put_count(), 0, "{out:?}");
    stack.wait_idle(Duration::from_secs(30)).await;
    let refused = stack.processing_failed_text();
    assert!(refused.contains("traceparent"), "{refused}");
    let traces = |lines: &[Value]| {
        lines
            .iter()
            .map(|v| {
                (
                    v["detail"]["metadata"]["entity_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    v["detail"]["metadata"]["traceparent"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let delivered = traces(&log_lines_until(&log, |lines| traces(lines).len() == 3).await);
    assert_eq!(delivered["tr-1"], w3c);
    assert_eq!(
        delivered["tr-2"],
        "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    );
    assert_eq!(
        delivered["tr-3"],
        tideline_core::trace::TraceContext::start_for("tr-3", "c").traceparent()
    );
    let (items, _) = stack.history("tr-1", 10).await;
    assert_eq!(items[0]["metadata"]["traceparent"], w3c);
    stack.shutdown().await;
}

/// Issue 13, bundled emission in local mode: with bundling on, the rule's
/// target receives `TidelineBundle` entries whose events, unpacked in order,
/// are every stored event once, in per-entity `seq` order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_emission_delivers_every_event_once_in_order() {
    let stack = LocalHarness::start_with(|c, dir| {
        c.rules = log_rule("log", &dir.join(LOG));
        c.bundle = tideline_core::bundle::BundleConfig::from_max_events(5);
    })
    .await;
    let log = stack.dir().join(LOG);
    let records: Vec<_> = (1..=6)
        .flat_map(|n| {
            ["b-1", "b-2"].map(|e| json!({"entity_id": e, "type": "T", "id": format!("{e}-{n}"), "data": {"n": n}}))
        })
        .collect();
    stack.put_record_batch_sdk(&records).await;
    stack.wait_idle(Duration::from_secs(30)).await;
    // Per entity, the sequences delivered (bundles unpacked), and the number of bundles.
    let unpack = |lines: &[Value]| {
        let mut by_entity: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut bundles = 0;
        for v in lines {
            let details: Vec<Value> =
                if v["detail-type"] == tideline_core::bundle::BUNDLE_DETAIL_TYPE {
                    bundles += 1;
                    v["detail"]["events"].as_array().unwrap().clone()
                } else {
                    vec![v["detail"].clone()]
                };
            for d in details {
                by_entity
                    .entry(d["metadata"]["entity_id"].as_str().unwrap().to_string())
                    .or_default()
                    .push(d["metadata"]["sequence"].as_u64().unwrap());
            }
        }
        (by_entity, bundles)
    };
    let lines = log_lines_until(&log, |lines| {
        unpack(lines).0.values().map(Vec::len).sum::<usize>() >= 12
    })
    .await;
    let (by_entity, bundles) = unpack(&lines);
    assert!(bundles > 0, "bundling was on: some entries are bundles");
    for (entity, seqs) in &by_entity {
        assert_eq!(
            seqs,
            &(1..=6).collect::<Vec<u64>>(),
            "{entity}: once each, in order"
        );
    }
    stack.shutdown().await;
}

/// Issue 13, schemas at ingest in local mode (`tideline up --schema-registry`):
/// a record whose `data` breaks its type's schema is refused into
/// processing-failed with the JSON Pointer and the rule; a valid one and a
/// type without a schema are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_breaking_their_schema_are_refused_with_pointer_and_rule() {
    let registry =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/registry.json");
    let validator = tideline_schema::SchemaRegistry::load(&registry).unwrap();
    let ingest = tideline_core::IngestConfig {
        data_validator: Some(tideline_core::data_validator::SharedDataValidator::new(
            validator,
        )),
        ..tideline_core::IngestConfig::default()
    };
    let stack = LocalHarness::start_with(|c, _| c.ingest = ingest).await;
    let order = |qty: i64| {
        json!({"order_no": "SO-100042", "currency": "EUR", "total": 12.5,
               "items": [{"sku": "A-1", "qty": qty, "unit_price": 12.5}]})
    };
    let records = [
        json!({"entity_id": "s-1", "type": "OrderPlaced", "id": "ok", "data": order(1)}),
        json!({"entity_id": "s-2", "type": "OrderPlaced", "id": "bad", "data": order(0)}),
        json!({"entity_id": "s-3", "type": "Unregistered", "id": "free", "data": {"x": 1}}),
    ];
    stack.put_record_batch_sdk(&records).await;
    stack.wait_idle(Duration::from_secs(30)).await;
    assert_eq!(stack.history("s-1", 10).await.0.len(), 1);
    assert_eq!(stack.history("s-3", 10).await.0.len(), 1);
    assert_eq!(stack.history("s-2", 10).await.0.len(), 0);
    let refused = stack.processing_failed_text();
    assert!(refused.contains("SchemaViolation"), "{refused}");
    assert!(refused.contains("/items/0/qty"), "{refused}");
    assert!(refused.contains("minimum"), "{refused}");
    stack.shutdown().await;
}
