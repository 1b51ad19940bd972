//! `tideline reingest --lake s3://bucket/prefix` against moto: the Firehose
//! data lake's objects (day partitions, `processing-failed/` with `rawData`)
//! go back through ingest, filtered by time, idempotently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use tideline_testkit::fixtures::{b64, record};
use tideline_testkit::local::LocalHarness;
use tideline_testkit::moto;

fn line(entity: &str, id: &str) -> String {
    record(entity, "OrderPlaced")
        .id(id)
        .data(json!({"note": "Grüße"}))
        .json()
        .to_string()
}

fn reingest(lake: &str, endpoint: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args([
            "reingest",
            "--lake",
            lake,
            "--endpoint",
            endpoint,
            "--from",
            "2026-11-01T00:00:00Z",
        ])
        .env("AWS_ENDPOINT_URL_S3", moto::endpoint())
        .envs(moto::aws_env())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingest_from_an_s3_lake_is_filtered_and_idempotent() {
    let sdk = moto::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = moto::unique("lake");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let put = |key: String, body: String| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into_bytes().into())
                .send()
                .await
                .unwrap()
        }
    };
    let fixed = b64(line("order-2", "ev-fixed"));
    put(
        "lake/events/event_type=OrderPlaced/date=2026-11-20/part-1".into(),
        format!(
            "{}\n{}\n{}\n",
            line("order-1", "ev-1"),
            line("order-1", "ev-2"),
            line("order-2", "ev-3")
        ),
    )
    .await;
    put(
        "lake/processing-failed/processing-failed/date=2026-11-21/part-2".into(),
        format!(
            "{}\n",
            json!({"rawData": fixed, "errorCode": "Lambda.FunctionError"})
        ),
    )
    .await;
    put(
        "lake/events/event_type=OrderPlaced/date=2026-10-01/part-old".into(),
        format!("{}\n", line("order-9", "ev-old")),
    )
    .await;

    let stack = LocalHarness::start().await;
    let endpoint = stack.url();
    let lake = format!("s3://{bucket}/lake");
    for _ in 0..2 {
        let out = reingest(&lake, &endpoint);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["files"], 2, "{summary}");
        assert_eq!(summary["sent"], 4, "{summary}");
        stack.wait_idle(Duration::from_secs(30)).await;
    }
    let (events, entities) = stack.shared().store.totals().unwrap();
    assert_eq!(
        (events, entities),
        (4, 2),
        "each event stored once; the old partition left out"
    );
    stack.shutdown().await;
}
