//! End-to-end tests of local mode (`tideline up` in-process): the Firehose API
//! through the real `aws-sdk-firehose` crate, invalid records next to valid
//! ones, per-entity order and gapless sequences, and paging across many pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tideline_core::route::parse_rules;
use tideline_local::{LocalConfig, LocalStack};

/// A local stack's configuration: data under `dir`, any free port, `rules`.
fn config(dir: &std::path::Path, rules: Value) -> LocalConfig {
    LocalConfig {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        rules: parse_rules(&rules.to_string()).unwrap(),
        ..LocalConfig::default()
    }
}

async fn start(dir: &std::path::Path, rules: Value) -> LocalStack {
    LocalStack::start(config(dir, rules)).await.unwrap()
}

/// Everything ingest refused into the lake's processing-failed/ prefix.
fn refused_records(dir: &std::path::Path) -> String {
    walk(&dir.join("data/lake/processing-failed"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

async fn firehose(stack: &LocalStack) -> aws_sdk_firehose::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_firehose::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .endpoint_url(format!("http://{}", stack.local_addr()))
        .load()
        .await;
    aws_sdk_firehose::Client::new(&config)
}

fn record(bytes: impl Into<Vec<u8>>) -> Record {
    Record::builder()
        .data(Blob::new(bytes.into()))
        .build()
        .unwrap()
}

async fn history(stack: &LocalStack, entity: &str, limit: usize) -> (Vec<Value>, usize) {
    let client = reqwest::Client::new();
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "http://{}/entities/{entity}/events?limit={limit}",
            stack.local_addr()
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        pages += 1;
        items.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    (items, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_sdk_ingest_with_invalid_records_next_to_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let stack = start(dir.path(), json!([{"name": "log", "event_pattern": {"source": ["tideline"]}, "target": {"type": "log", "path": log}}])).await;
    let client = firehose(&stack).await;

    // Three entities interleaved, with non-ASCII payloads, and invalid records between them.
    let mut batch = Vec::new();
    let mut expected: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for n in 0..60u32 {
        let entity = format!("cust-{}", n % 3);
        batch.push(record(json!({"entity_id": entity, "type": "Noted", "data": {"n": n, "text": "Grüße, 東京 — ✓"}}).to_string()));
        expected.entry(entity).or_default().push(n);
        if n % 20 == 7 {
            batch.push(record(b"\xff\xfe not utf-8".to_vec()));
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
            json!({"entity_id": "cust-9", "type": "Single", "data": null}).to_string(),
        ))
        .send()
        .await
        .unwrap();

    stack.wait_idle(Duration::from_secs(30)).await.unwrap();

    for (entity, ns) in &expected {
        let (items, _) = history(&stack, entity, 100).await;
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
    let failed_dir = dir.path().join("data/lake/processing-failed");
    let mut reasons = Vec::new();
    for path in walk(&failed_dir) {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            reasons.push(v["errorMessage"].as_str().unwrap().to_string());
        }
    }
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
    let lake_lines: usize = walk(&dir.path().join("data/lake"))
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
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path(), json!([])).await;
    let client = firehose(&stack).await;
    let batch: Vec<_> = (0..20)
        .map(|n| {
            record(json!({"entity_id": "acct-1", "type": "Posted", "data": {"n": n}}).to_string())
        })
        .collect();
    for _ in 0..3 {
        // A producer retry resends the same bytes: same derived ids.
        client
            .put_record_batch()
            .delivery_stream_name("tideline-ingest")
            .set_records(Some(batch.clone()))
            .send()
            .await
            .unwrap();
        stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    }
    let (items, _) = history(&stack, "acct-1", 1000).await;
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
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path(), json!([])).await;
    let client = firehose(&stack).await;
    for chunk in 0..5 {
        let batch: Vec<_> = (0..500)
            .map(|n| record(json!({"entity_id": "big/entity", "type": "Tick", "data": {"n": chunk * 500 + n}}).to_string()))
            .collect();
        client
            .put_record_batch()
            .delivery_stream_name("tideline-ingest")
            .set_records(Some(batch))
            .send()
            .await
            .unwrap();
    }
    stack.wait_idle(Duration::from_secs(60)).await.unwrap();
    let (items, pages) = history(&stack, "big%2Fentity", 97).await;
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

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Issue 13, trace propagation in local mode: a producer's trace id reaches
/// a rule's target unchanged (W3C or X-Ray form), a record without one gets
/// the trace ingest starts, and the query API returns it with the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_follows_each_record_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let stack = start(
        dir.path(),
        json!([{"name": "log", "event_pattern": {"source": ["tideline"]}, "target": {"type": "log", "path": log}}]),
    )
    .await;
    let client = firehose(&stack).await;
    let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let records = vec![
        record(json!({"entity_id": "tr-1", "type": "T", "id": "a", "traceparent": w3c, "data": {}}).to_string()),
        record(json!({"entity_id": "tr-2", "type": "T", "id": "b", "traceparent": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", "data": {}}).to_string()),
        record(json!({"entity_id": "tr-3", "type": "T", "id": "c", "data": {}}).to_string()),
        record(json!({"entity_id": "tr-4", "type": "T", "id": "d", "traceparent": "not a trace", "data": {}}).to_string()),
    ];
    let out = client
        .put_record_batch()
        .delivery_stream_name("tideline-ingest")
        .set_records(Some(records))
        .send()
        .await
        .unwrap();
    // Firehose takes any bytes; the transform refuses the malformed trace
    // header with a reason, into processing-failed.
    assert_eq!(out.failed_put_count(), 0, "{out:?}");
    stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    let refused = refused_records(dir.path());
    assert!(refused.contains("traceparent"), "{refused}");
    let mut delivered = BTreeMap::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        delivered = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
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
            .collect::<BTreeMap<_, _>>();
        if delivered.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered["tr-1"], w3c);
    assert_eq!(
        delivered["tr-2"],
        "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    );
    assert_eq!(
        delivered["tr-3"],
        tideline_core::trace::TraceContext::start_for("tr-3", "c").traceparent()
    );
    let (items, _) = history(&stack, "tr-1", 10).await;
    assert_eq!(items[0]["metadata"]["traceparent"], w3c);
    stack.shutdown().await;
}

/// Issue 13, bundled emission in local mode: with bundling on, the rule's
/// target receives `TidelineBundle` entries whose events, unpacked in order,
/// are every stored event once, in per-entity `seq` order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_emission_delivers_every_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let config = LocalConfig {
        bundle: tideline_core::bundle::BundleConfig::from_max_events(5),
        ..config(
            dir.path(),
            json!([{"name": "log", "event_pattern": {"source": ["tideline"]}, "target": {"type": "log", "path": log}}]),
        )
    };
    let stack = LocalStack::start(config).await.unwrap();
    let client = firehose(&stack).await;
    let records: Vec<_> = (1..=6)
        .flat_map(|n| {
            ["b-1", "b-2"].map(|e| record(json!({"entity_id": e, "type": "T", "id": format!("{e}-{n}"), "data": {"n": n}}).to_string()))
        })
        .collect();
    client
        .put_record_batch()
        .delivery_stream_name("tideline-ingest")
        .set_records(Some(records))
        .send()
        .await
        .unwrap();
    stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    let mut by_entity: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut bundles = 0;
    for _ in 0..100 {
        by_entity.clear();
        bundles = 0;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
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
        if by_entity.values().map(Vec::len).sum::<usize>() >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let dir = tempfile::tempdir().unwrap();
    let registry =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/registry.json");
    let validator = tideline_schema::SchemaRegistry::load(&registry).unwrap();
    let ingest = tideline_core::IngestConfig {
        data_validator: Some(tideline_core::data_validator::SharedDataValidator::new(
            validator,
        )),
        ..tideline_core::IngestConfig::default()
    };
    let config = LocalConfig {
        ingest,
        ..config(dir.path(), json!([]))
    };
    let stack = LocalStack::start(config).await.unwrap();
    let client = firehose(&stack).await;
    let order = |qty: i64| {
        json!({"order_no": "SO-100042", "currency": "EUR", "total": 12.5,
               "items": [{"sku": "A-1", "qty": qty, "unit_price": 12.5}]})
    };
    let records = vec![
        record(
            json!({"entity_id": "s-1", "type": "OrderPlaced", "id": "ok", "data": order(1)})
                .to_string(),
        ),
        record(
            json!({"entity_id": "s-2", "type": "OrderPlaced", "id": "bad", "data": order(0)})
                .to_string(),
        ),
        record(
            json!({"entity_id": "s-3", "type": "Unregistered", "id": "free", "data": {"x": 1}})
                .to_string(),
        ),
    ];
    client
        .put_record_batch()
        .delivery_stream_name("tideline-ingest")
        .set_records(Some(records))
        .send()
        .await
        .unwrap();
    stack.wait_idle(Duration::from_secs(30)).await.unwrap();
    assert_eq!(history(&stack, "s-1", 10).await.0.len(), 1);
    assert_eq!(history(&stack, "s-3", 10).await.0.len(), 1);
    assert_eq!(history(&stack, "s-2", 10).await.0.len(), 0);
    let refused = refused_records(dir.path());
    assert!(refused.contains("SchemaViolation"), "{refused}");
    assert!(refused.contains("/items/0/qty"), "{refused}");
    assert!(refused.contains("minimum"), "{refused}");
    stack.shutdown().await;
}
