//! The data directory: one stack per directory (a second is refused with the
//! holder's pid), unusable directories refused at start naming `--data-dir`,
//! and a failed start leaving the directory as it found it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::path::Path;
use tideline_local::{LocalConfig, LocalError, LocalStack};
use tideline_testkit::local::LocalHarness;

fn config(data_dir: &Path) -> LocalConfig {
    LocalConfig {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..LocalConfig::default()
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stack_on_a_directory_in_use_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let first = LocalStack::start(config(dir.path())).await.unwrap();
    let second = LocalStack::start(config(dir.path())).await;
    let Err(e @ LocalError::DataDirInUse { .. }) = second else {
        panic!("a second stack started on a directory in use");
    };
    let message = e.to_string();
    assert!(message.starts_with("--data-dir "), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    // The refusal removed nothing of the running stack's.
    assert!(dir.path().join("store.db").exists());
    first.shutdown().await;
    // Released at shutdown: a restart on the same directory starts.
    let again = LocalStack::start(config(dir.path())).await.unwrap();
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_leaves_nothing_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let parent = tempfile::tempdir().unwrap();
    // A directory the start would create: removed again.
    let new_dir = parent.path().join("new");
    let e = LocalStack::start(LocalConfig {
        listen: taken.local_addr().unwrap(),
        ..config(&new_dir)
    })
    .await
    .err()
    .expect("the port is in use");
    assert!(matches!(e, LocalError::Listen { .. }), "{e}");
    assert!(!new_dir.exists(), "{:?}", entries(&new_dir));
    // An existing directory: what the start created in it is removed, what was there stays.
    let existing = parent.path().join("existing");
    std::fs::create_dir_all(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), "mine").unwrap();
    let rules = tideline_testkit::local::rules(json!([{
        "name": "bad", "event_pattern": {"source": ["tideline"]},
        "target": {"type": "lambda", "command": ["target/debug/no-such-consumer"]}
    }]));
    let e = LocalStack::start(LocalConfig {
        rules,
        ..config(&existing)
    })
    .await
    .err()
    .expect("the target cannot be set up");
    assert!(
        e.to_string().contains("cargo build --bin no-such-consumer"),
        "{e}"
    );
    assert_eq!(entries(&existing), ["notes.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_directory_is_one_error_naming_the_flag() {
    let parent = tempfile::tempdir().unwrap();
    let file = parent.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let e = LocalStack::start(config(&file)).await.err().unwrap();
    assert!(
        matches!(e, LocalError::DataDirUnusable { .. }) && e.to_string().contains("is a file"),
        "{e}"
    );
    let lake_is_a_file = parent.path().join("d");
    std::fs::create_dir_all(&lake_is_a_file).unwrap();
    std::fs::write(lake_is_a_file.join("lake"), "x").unwrap();
    let e = LocalStack::start(config(&lake_is_a_file))
        .await
        .err()
        .unwrap();
    let message = e.to_string();
    assert!(
        message.starts_with("--data-dir ") && message.contains("the lake must be a directory"),
        "{message}"
    );
    assert_eq!(entries(&lake_is_a_file), ["lake"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_records_are_counted_and_listed() {
    let stack = LocalHarness::start().await;
    stack
        .put_records(&[
            json!({"entity_id": "a", "type": "Placed", "data": {}}),
            json!({"entity_id": "a", "data": {}}),
        ])
        .await;
    let metrics: serde_json::Value = reqwest::get(format!("{}/_tideline/metrics", stack.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metrics["refused_at_ingest"], 1, "{metrics}");
    let dead: serde_json::Value = reqwest::get(format!("{}/_tideline/dead-letters", stack.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused = dead["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{dead}");
    assert_eq!(refused[0]["errorCode"], "MissingField", "{dead}");
    assert!(refused[0].get("rawData").is_none(), "{dead}");
}
