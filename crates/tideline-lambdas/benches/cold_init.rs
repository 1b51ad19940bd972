//! Cold init of each Lambda binary, measured locally: from process spawn to
//! its first `GET /2018-06-01/runtime/invocation/next` on a fake Runtime API,
//! with the SDK clients built. A trivial process (`/bin/true`, spawn to exit)
//! is the baseline of process-spawn cost.
//!
//! Build the binaries first (release, as deployed):
//! `cargo build --release -p tideline-lambdas --bins` or `scripts/build-lambdas.sh`, then
//! `TIDELINE_LAMBDA_BIN_DIR=target/release cargo bench -p tideline-lambdas --bench cold_init`.
//! It looks in `target/lambda/<name>/bootstrap` (cargo-lambda's output) when
//! `TIDELINE_LAMBDA_BIN_DIR` is unset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 15;

fn binary(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or(root.join("target"));
    match std::env::var("TIDELINE_LAMBDA_BIN_DIR") {
        Ok(dir) => PathBuf::from(dir).join(name),
        Err(_) => target.join("lambda").join(name).join("bootstrap"),
    }
}

/// Spawns the binary against a fresh fake Runtime API; returns the time to its first poll.
fn cold_init(bin: &PathBuf) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A closed port: clients are built, never used.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let start = Instant::now();
    let mut child = Command::new(bin)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "s")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "g")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", format!("http://{closed}"))
        .env(
            "TIDELINE_QUEUE_URL",
            format!("http://{closed}/123456789012/q.fifo"),
        )
        .env("TIDELINE_TABLE_NAME", "t")
        .env("TIDELINE_EVENT_BUS_NAME", "b")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let elapsed = start.elapsed();
    assert!(String::from_utf8_lossy(&got).starts_with("GET /2018-06-01/runtime/invocation/next"));
    let _ = conn.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut baseline = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        Command::new("/bin/true").status().unwrap();
        baseline.push(start.elapsed());
    }
    println!("{:<16} {:>10}", "binary", "median ms");
    println!(
        "{:<16} {:>10.2}",
        "/bin/true",
        median(baseline).as_secs_f64() * 1e3
    );
    for name in ["transformer", "event-storer", "event-emitter", "query-api"] {
        let bin = binary(name);
        if !bin.exists() {
            println!("{name:<16} not built ({})", bin.display());
            continue;
        }
        let runs: Vec<Duration> = (0..RUNS).map(|_| cold_init(&bin)).collect();
        let min = runs.iter().min().copied().unwrap_or_default();
        println!(
            "{name:<16} {:>10.2}   (min {:.2}, {RUNS} runs)",
            median(runs).as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3
        );
    }
}
