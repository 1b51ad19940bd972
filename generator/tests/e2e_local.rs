//! End to end against `tideline up`, in-process: `send` through the Firehose
//! API with duplicates and invalid records mixed in, then `verify` through the
//! query API. The whole pipeline (transform, FIFO queue, storer, change feed)
//! runs; only the adapters are local (INVARIANTS.md #7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use std::path::Path;
use std::time::Duration;
use tideline_generator::cli::{Cli, Command, run_send, run_verify};
use tideline_generator::manifest::{Manifest, ManifestEntry, ManifestWriter};
use tideline_testkit::local::LocalHarness;

fn send_args(url: &str, manifest: &Path, extra: &[&str]) -> tideline_generator::cli::SendArgs {
    let mut argv = vec![
        "tideline-generator",
        "send",
        "--target",
        "firehose",
        "--endpoint-url",
        url,
        "--manifest",
        manifest.to_str().unwrap(),
        "--progress",
        "none",
    ];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Send(a) => a,
        Command::Verify(_) => unreachable!(),
    }
}

/// Runs the real binary's `verify`, returning its exit code and last stdout line.
async fn verify_binary(manifest: &Path, url: &str) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tideline-generator"))
        .args([
            "verify",
            "--manifest",
            manifest.to_str().unwrap(),
            "--query-url",
            url,
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    (out.status.code().unwrap(), last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_then_verify_with_duplicates_and_invalid_records() {
    let stack = LocalHarness::start().await;
    let url = stack.url();
    let manifest = stack.dir().join("run.manifest");
    let args = send_args(
        &url,
        &manifest,
        &[
            "--count",
            "2000",
            "--entities",
            "50",
            "--duplicates",
            "5",
            "--invalid",
            "2",
            "--seed",
            "20261123",
            "--concurrency",
            "4",
            "--profile",
            "orders",
            // Smaller calls than the 500 maximum, so entities interleave across many calls.
            "--max-batch-records",
            "64",
        ],
    );
    let report = run_send(&args).await.unwrap();
    let s = &report.summary;
    assert_eq!(s.exit_code(), 0, "{}", s.line());
    assert_eq!(
        (s.generated, s.sent, s.failed),
        (2000, 2000, 0),
        "{}",
        s.line()
    );
    assert!(s.duplicates > 50 && s.duplicates < 160, "{}", s.line());
    assert!(s.invalid > 15 && s.invalid < 80, "{}", s.line());
    assert!(s.calls >= 2000 / 64, "{}", s.line());

    stack.wait_idle(Duration::from_secs(120)).await;

    let verify_args = match Cli::try_parse_from([
        "tideline-generator",
        "verify",
        "--manifest",
        manifest.to_str().unwrap(),
        "--query-url",
        &url,
    ])
    .unwrap()
    .command
    {
        Command::Verify(a) => a,
        Command::Send(_) => unreachable!(),
    };
    let v = run_verify(&verify_args).await.unwrap();
    assert_eq!(v.entities, 50);
    assert_eq!(v.sent, s.sent - s.invalid, "valid records sent");
    assert_eq!(v.stored, v.sent, "{}", v.line());
    assert_eq!(v.missing, 0, "{}", v.line());
    assert_eq!(v.duplicated, 0, "{}", v.line());
    assert_eq!(v.out_of_order, 0, "{}", v.line());
    assert_eq!(v.sequence_gaps, 0, "{}", v.line());
    assert_eq!(v.invalid_stored, 0, "{}", v.line());
    assert_eq!(v.invalid_sent, s.invalid);
    assert_eq!(v.resent, s.duplicates);
    assert!(v.latency.max_ms > 0.0 && v.latency.p50_ms <= v.latency.p99_ms);
    assert_eq!(v.exit_code(), 0);

    // The binary agrees, and its last line is the summary.
    let (code, last) = verify_binary(&manifest, &url).await;
    assert_eq!(code, 0, "{last}");
    assert!(last.starts_with("verify OK: "), "{last}");
    assert!(
        last.contains(&format!(
            "stored={} missing=0 duplicated=0 out_of_order=0",
            v.sent
        )),
        "{last}"
    );

    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_never_sent_is_reported_missing() {
    let stack = LocalHarness::start().await;
    let url = stack.url();
    let manifest = stack.dir().join("run.manifest");
    let args = send_args(
        &url,
        &manifest,
        &["--count", "40", "--entities", "5", "--seed", "7"],
    );
    let report = run_send(&args).await.unwrap();
    assert_eq!(report.summary.exit_code(), 0);
    stack.wait_idle(Duration::from_secs(60)).await;

    // The same manifest, plus one record that was never sent.
    let m = Manifest::read_file(&manifest).unwrap();
    let forged = stack.dir().join("forged.manifest");
    let mut w = ManifestWriter::create(&forged, m.seed, m.start_unix_us, &m.id_prefix).unwrap();
    for e in &m.entries {
        w.append(e, &m.entities[&e.entity]).unwrap();
    }
    let ghost = ManifestEntry {
        n: 1_000_000,
        gen_seq: 1_000,
        ..m.entries[0]
    };
    w.append(&ghost, &m.entities[&ghost.entity]).unwrap();
    w.finish().unwrap();

    let (code, last) = verify_binary(&forged, &url).await;
    assert_eq!(code, 1, "{last}");
    assert!(
        last.starts_with("verify FAILED: sent=41 stored=40 missing=1 duplicated=0 out_of_order=0"),
        "{last}"
    );
    // The untouched manifest still verifies.
    assert_eq!(verify_binary(&manifest, &url).await.0, 0);

    stack.shutdown().await;
}

/// The `command` profile against `tideline up`: writers contend on a few
/// entities at expected versions, conflicts are retried, and `verify` finds
/// every acknowledged append stored once at the versions it was answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_profile_contends_and_verifies() {
    let stack = LocalHarness::start().await;
    let manifest = stack.dir().join("command.manifest");
    let config = tideline_generator::command::CommandConfig {
        endpoint: stack.url(),
        writers: 6,
        entities: 3,
        appends: 120,
        seed: 7,
        max_attempts: 8,
    };
    let sent = tideline_generator::command::send(&config, Some(&manifest))
        .await
        .unwrap();
    assert_eq!((sent.appends, sent.failed), (120, 0), "{}", sent.line());
    assert!(
        sent.conflicts > 0,
        "writers on 3 entities must contend: {}",
        sent.line()
    );
    let report = tideline_generator::command::verify(&manifest, &stack.url())
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{}", report.line());
    assert_eq!(report.appends, 120);
    assert_eq!(report.events, sent.events);
    stack.shutdown().await;
}
