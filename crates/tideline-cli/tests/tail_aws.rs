//! `tideline tail --aws` against moto: the binary creates a temporary queue
//! and rule on a bus, prints events put on the bus, and on Ctrl-C (SIGINT)
//! deletes the rule, its target and the queue.
//!
//! Uses the moto harness, `tideline_testkit::moto` (`TIDELINE_MOTO_ENDPOINT`,
//! or moto started from `.venv/bin/moto_server`; install with `scripts/moto.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tideline_testkit::moto;

fn tail_command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tideline"));
    c.args(args)
        .env("AWS_ENDPOINT_URL", moto::endpoint())
        .envs(moto::aws_env())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Forwards the child's stderr lines to a channel (and to this test's stderr).
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            eprintln!("[tail] {line}");
            let _ = tx.send(line);
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_tail_prints_bus_events_and_cleans_up_on_ctrl_c() {
    let sdk = moto::sdk_config().await;
    let eb = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let bus = moto::unique("tl-tail");
    eb.create_event_bus().name(&bus).send().await.unwrap();

    let mut child = tail_command(&["tail", "--aws", "--bus", &bus])
        .spawn()
        .unwrap();
    let stderr = stderr_lines(&mut child);
    // "tideline tail: bus B → rule R → queue Q; pattern P; Ctrl-C to stop"
    let ready = loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(60))
            .expect("the tail reports its rule and queue");
        if line.contains("→ rule") {
            break line;
        }
    };
    let name = ready
        .split("→ rule ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(name.starts_with("tideline-tail-"), "{ready}");
    assert!(
        ready.contains(r#"pattern {"account":["123456789012"]}"#),
        "default pattern is the bus's account: {ready}"
    );

    let rule = eb
        .describe_rule()
        .name(&name)
        .event_bus_name(&bus)
        .send()
        .await
        .unwrap();
    assert_eq!(
        rule.event_pattern(),
        Some(r#"{"account":["123456789012"]}"#)
    );
    let targets = eb
        .list_targets_by_rule()
        .rule(&name)
        .event_bus_name(&bus)
        .send()
        .await
        .unwrap();
    assert_eq!(targets.targets().len(), 1);
    let queue_url = sqs
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let policy = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(
        policy
            .attributes()
            .unwrap()
            .get(&aws_sdk_sqs::types::QueueAttributeName::Policy)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        policy["Statement"][0]["Principal"]["Service"],
        "events.amazonaws.com"
    );
    assert_eq!(
        policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"],
        rule.arn().unwrap()
    );

    for i in 1..=3 {
        let put = eb
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&bus)
                    .source("tideline")
                    .detail_type("OrderPlaced")
                    .detail(
                        json!({"metadata": {"entity_id": "o-1", "sequence": i}, "data": {}})
                            .to_string(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(put.failed_entry_count(), 0);
    }

    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(3)
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(60), lines)
        .await
        .expect("three events printed within 60 s")
        .unwrap();
    let mut sequences: Vec<u64> = lines
        .iter()
        .map(|l| {
            let e: Value = serde_json::from_str(l).expect("a JSON object per line");
            assert_eq!(e["source"], "tideline");
            assert_eq!(e["detail-type"], "OrderPlaced");
            e["detail"]["metadata"]["sequence"].as_u64().unwrap()
        })
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, [1, 2, 3]);

    // Ctrl-C: the tail deletes what it created and exits 0.
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap());
    let status = tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .expect("the tail exits after Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status}");

    assert!(
        eb.describe_rule()
            .name(&name)
            .event_bus_name(&bus)
            .send()
            .await
            .is_err(),
        "the rule is deleted"
    );
    let rules = eb.list_rules().event_bus_name(&bus).send().await.unwrap();
    assert!(rules.rules().is_empty(), "{:?}", rules.rules());
    assert!(
        sqs.get_queue_url().queue_name(&name).send().await.is_err(),
        "the queue is deleted"
    );
}

#[test]
fn aws_tail_on_a_missing_bus_exits_2_before_creating_anything() {
    let bus = moto::unique("tl-missing");
    let out = tail_command(&["tail", "--aws", "--bus", &bus])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("--bus {bus}: no such event bus")),
        "{err}"
    );
    // The bus is checked first, so no queue or rule was created.
    assert!(!err.contains("→ rule"), "{err}");
}

#[test]
fn aws_tail_without_a_region_says_to_set_it_before_creating_anything() {
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tideline"))
        .args(["tail", "--aws", "--bus", "tideline"])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        // No config file with a region; the instance metadata service is
        // asked (and fails off EC2) without its warnings reaching the user.
        .env("HOME", home.path())
        .env_remove("AWS_CONFIG_FILE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("set AWS_REGION"), "{err}");
    assert!(!err.contains("deleted"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, no SDK warnings: {err}");
}
