//! The replay stage on the AWS adapters, against moto: a time window and an
//! entity range are replayed exactly, and the table is never scanned. Every
//! DynamoDB request goes through an interceptor that records its operation
//! (`X-Amz-Target`), so a `Scan` anywhere in the replay fails the test; the
//! test first checks that the interceptor does see a `Scan`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tideline_testkit::moto as support;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tideline_aws::DynamoStore;
use tideline_aws::lake::S3Lake;
use tideline_core::envelope::EventDetail;
use tideline_core::keys::format_timestamp;
use tideline_core::replay::{Selection, StoredWindow};
use tideline_core::{EntityId, ExpectedSeq, NewEvent};
use tideline_stages::EventStore;
use tideline_stages::emit::EmitConfig;
use tideline_stages::memory::MemoryBus;
use tideline_stages::replay::{LakeIndex, OnFailure, ReplayConfig, replay};
use tideline_testkit::fixtures::{new_event, record};

/// Records the operation of every request the client sends.
#[derive(Debug, Clone, Default)]
struct Operations(Arc<Mutex<Vec<String>>>);

impl Operations {
    fn taken(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Operations {
    fn name(&self) -> &'static str {
        "RecordOperations"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // `DynamoDB_20120810.Query`, `DynamoDB_20120810.Scan`, ...
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_string();
        self.0.lock().unwrap().push(operation);
        Ok(())
    }
}

fn event(entity: &str, id: &str) -> NewEvent {
    new_event(&record(entity, "OrderNoted").id(id).data(json!({"id": id})))
}

/// A time a few milliseconds clear of the appends around it (stored times
/// are to the microsecond).
async fn mark() -> String {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = format_timestamp(chrono::Utc::now());
    tokio::time::sleep(Duration::from_millis(20)).await;
    t
}

/// What the bus got, per entity; every event marked replay.
fn published(bus: &MemoryBus) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for entry in bus.published.lock().unwrap().drain(..) {
        let detail: EventDetail = serde_json::from_str(&entry.detail).unwrap();
        assert!(detail.metadata.replay);
        out.entry(entry.entity_id).or_default().push(entry.sequence);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reads_by_query_and_never_scans_the_table() {
    let sdk = support::sdk_config().await;
    let plain = aws_sdk_dynamodb::Client::new(&sdk);
    let table = support::unique("events");
    // No stream: a replay reads the table, never the feed.
    tideline_testkit::moto::create_event_table(&plain, &table, false).await;
    let operations = Operations::default();
    let watched = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(operations.clone())
            .build(),
    );
    // The detector works: a Scan through this client is seen.
    watched.scan().table_name(&table).send().await.unwrap();
    assert_eq!(operations.taken(), ["Scan"]);

    // order-A: 1, 2 | window: A3 (whose sk is A2's stored time, before the
    // window), B1, B2 | C1 after it.
    let store = DynamoStore::new(plain.clone(), &table);
    let mut lake_lines = String::new();
    let mut put = async |entity: &str, id: &str| {
        let e = event(entity, id);
        lake_lines += &(serde_json::to_string(&e).unwrap() + "\n");
        store
            .append(&EntityId::new(entity).unwrap(), vec![e], ExpectedSeq::Any)
            .await
            .unwrap();
    };
    put("order-A", "a1").await;
    put("order-A", "a2").await;
    let since = mark().await;
    put("order-A", "a3").await;
    put("order-B", "b1").await;
    put("order-B", "b2").await;
    let until = mark().await;
    put("order-C", "c1").await;

    // The lake Firehose writes: every accepted record, under events/.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = support::unique("lake");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("lake/events/event_type=OrderNoted/date=2026-11-23/tideline-1-part")
        .body(lake_lines.into_bytes().into())
        .send()
        .await
        .unwrap();
    let lake = S3Lake::new(s3, &bucket, "lake");

    let store = DynamoStore::new(watched, &table);
    let bus = MemoryBus::default();
    let config = ReplayConfig {
        emit: EmitConfig::default(),
        on_failure: OnFailure::NextEntity,
    };
    let window = Selection::Window(StoredWindow {
        since: Some(since),
        until: Some(until),
    });
    let report = replay(&store, &LakeIndex::new(&lake), &bus, &config, &window)
        .await
        .unwrap();
    assert_eq!((report.published, report.failed), (3, 0));
    assert_eq!(
        published(&bus),
        BTreeMap::from([
            ("order-A".to_string(), vec![3]),
            ("order-B".to_string(), vec![1, 2]),
        ])
    );

    let range = Selection::entity("order-A", Some(2), None).unwrap();
    let report = replay(&store, &LakeIndex::new(&lake), &bus, &config, &range)
        .await
        .unwrap();
    assert_eq!(report.published, 2);
    assert_eq!(
        published(&bus),
        BTreeMap::from([("order-A".to_string(), vec![2, 3])])
    );

    let ops = operations.taken();
    assert!(ops.iter().any(|o| o == "Query"), "{ops:?}");
    assert!(
        ops.iter().all(|o| o == "Query" || o == "GetItem"),
        "a replay reads by key only, never by Scan: {ops:?}"
    );
}
