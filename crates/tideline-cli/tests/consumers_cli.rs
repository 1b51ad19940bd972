//! `tideline reingest`, `tideline replay --endpoint` and `tideline consumer
//! reset` against local mode in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tideline_consumer::{CheckpointStore, CheckpointUpdate, SqliteCheckpoints};
use tideline_testkit::fixtures::b64;
use tideline_testkit::local::{LocalHarness, log_lines, log_rule};

fn tideline(args: &[&str]) -> (bool, String, String) {
    use tideline_testkit::cli;
    let out = cli::run(env!("CARGO_BIN_EXE_tideline"), args);
    (out.status.success(), cli::stdout(&out), cli::stderr(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingest_is_idempotent_replay_and_reset_work_locally() {
    // What the bus publishes, read from a log target that takes every event.
    let stack =
        LocalHarness::start_with(|c, dir| c.rules = log_rule("all", &dir.join("published.jsonl")))
            .await;
    let published_log = stack.dir().join("published.jsonl");
    let endpoint = stack.url();

    // A lake: two normalised records, and one processing-failed line whose
    // cause is fixed (its raw bytes are now a valid record).
    let lake = stack.dir().join("lake");
    let hour = lake.join("2026/11/23/08");
    std::fs::create_dir_all(&hour).unwrap();
    let normal = [
        r#"{"id":"ev-1","entity_id":"o-1","type":"OrderPlaced","data":{},"occurred_at":"2026-11-23T08:00:00.000000Z","received_at":"2026-11-23T08:00:00.000000Z"}"#,
        r#"{"id":"ev-2","entity_id":"o-1","type":"OrderPaid","data":{},"occurred_at":"2026-11-23T08:00:01.000000Z","received_at":"2026-11-23T08:00:01.000000Z"}"#,
    ];
    std::fs::write(hour.join("part-1.jsonl"), normal.join("\n") + "\n").unwrap();
    let failed_dir = lake.join("processing-failed/2026/11/23/08");
    std::fs::create_dir_all(&failed_dir).unwrap();
    let raw = r#"{"id":"ev-3","entity_id":"o-1","type":"OrderShipped","data":{}}"#;
    let line = serde_json::json!({"errorCode": "MissingField", "errorMessage": "fixed since", "recordId": "r", "rawData": b64(raw)});
    std::fs::write(failed_dir.join("part-1.jsonl"), format!("{line}\n")).unwrap();

    let lake_arg = lake.to_str().unwrap();
    for _ in 0..2 {
        let (ok, out, err) = tideline(&["reingest", "--lake", lake_arg, "--endpoint", &endpoint]);
        assert!(ok, "{out}{err}");
        assert!(out.contains("\"sent\":3"), "{out}");
        stack.wait_idle(Duration::from_secs(30)).await;
    }
    // Stable ids: reingesting twice stores each event once.
    assert_eq!(stack.shared().store.totals().unwrap(), (3, 1));

    // A time window that excludes the files sends nothing.
    let (ok, out, _) = tideline(&[
        "reingest",
        "--lake",
        lake_arg,
        "--endpoint",
        &endpoint,
        "--from",
        "2026-11-23T10:00:00Z",
    ]);
    assert!(ok && out.contains("\"sent\":0"), "{out}");

    let published = || log_lines(&published_log);
    stack.wait_idle(Duration::from_secs(30)).await;
    let before = published().len();
    let (ok, out, err) = tideline(&[
        "replay",
        "--endpoint",
        &endpoint,
        "--entity",
        "o-1",
        "--from-seq",
        "2",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"published\":2"), "{out}");
    stack.wait_idle(Duration::from_secs(30)).await;
    let replayed = published().split_off(before);
    let seqs: Vec<u64> = replayed
        .iter()
        .inspect(|e| assert_eq!(e["detail"]["metadata"]["replay"], true))
        .map(|e| e["detail"]["metadata"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3]);

    let (ok, _, err) = tideline(&["replay", "--endpoint", &endpoint]);
    assert!(!ok && err.contains("--entity"), "{err}");

    // consumer reset on a local checkpoint file.
    let db = stack.dir().join("consumer.db");
    let store = SqliteCheckpoints::open(&db).unwrap();
    for entity in ["a", "b"] {
        store
            .commit(
                "c",
                entity,
                CheckpointUpdate::Advance {
                    expected: 0,
                    to: 4,
                    unbuffer: None,
                    accepted_gap: false,
                },
                None,
            )
            .await
            .unwrap();
    }
    let db_arg = db.to_str().unwrap();
    let (ok, out, err) = tideline(&[
        "consumer",
        "reset",
        "--consumer",
        "c",
        "--entity",
        "a",
        "--checkpoint-db",
        db_arg,
    ]);
    assert!(
        ok && out.contains("\"checkpoints_removed\":1"),
        "{out}{err}"
    );
    assert_eq!(store.load("c", "a").await.unwrap().last_sequence, 0);
    assert_eq!(store.load("c", "b").await.unwrap().last_sequence, 4);
    let (ok, out, _) = tideline(&[
        "consumer",
        "reset",
        "--consumer",
        "c",
        "--checkpoint-db",
        db_arg,
    ]);
    assert!(ok && out.contains("\"checkpoints_removed\":1"), "{out}");
    stack.shutdown().await;
}
