//! The local-stack harness: `tideline up` in-process on a fresh temporary
//! directory, with what the tests do to it (post `PutRecordBatch`, wait until
//! idle, read the query API, a log target's lines and `processing-failed`).
//!
//! [`LocalHarness::start_with`] takes a closure that adjusts the
//! [`LocalConfig`], given the temporary directory (for files a rule's target
//! writes there); everything it does not set is `LocalConfig::default()`
//! except the data directory (`<temporary dir>/data`) and the listen address
//! (any free port on 127.0.0.1). The harness dereferences to the
//! [`LocalStack`], so `h.shared()` and `h.local_addr()` read as before.

use crate::fixtures::{RecordBytes, put_record_batch_body};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tideline_core::route::{Rule, parse_rules};
use tideline_local::{LocalConfig, LocalError, LocalStack};

/// Rules from their JSON form (what `--rules` reads), for [`LocalConfig::rules`].
pub fn rules(json: Value) -> Vec<Rule> {
    parse_rules(&json.to_string()).unwrap()
}

/// The rules of one log target: every `tideline` event appended to `path`
/// as JSON Lines, under the rule name `name`.
pub fn log_rule(name: &str, path: &Path) -> Vec<Rule> {
    rules(serde_json::json!([{
        "name": name,
        "event_pattern": {"source": ["tideline"]},
        "target": {"type": "log", "path": path},
    }]))
}

/// A local stack on its own temporary directory; see the module docs.
pub struct LocalHarness {
    stack: LocalStack,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    http: reqwest::Client,
    firehose: tokio::sync::OnceCell<aws_sdk_firehose::Client>,
}

impl std::ops::Deref for LocalHarness {
    type Target = LocalStack;

    fn deref(&self) -> &LocalStack {
        &self.stack
    }
}

fn config(dir: &Path, adjust: impl FnOnce(&mut LocalConfig, &Path)) -> LocalConfig {
    let mut config = LocalConfig {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..LocalConfig::default()
    };
    adjust(&mut config, dir);
    config
}

impl LocalHarness {
    /// A stack with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// A stack whose configuration `adjust` changes; it is given the
    /// temporary directory too (the same as [`Self::dir`] later).
    pub async fn start_with(adjust: impl FnOnce(&mut LocalConfig, &Path)) -> Self {
        Self::try_start_with(adjust)
            .await
            .expect("the local stack starts")
    }

    /// As [`Self::start_with`], for a test of a refused configuration.
    pub async fn try_start_with(
        adjust: impl FnOnce(&mut LocalConfig, &Path),
    ) -> Result<Self, LocalError> {
        Self::launch(tempfile::tempdir().unwrap(), adjust).await
    }

    /// Shuts the stack down and starts it again on the same directory, with
    /// a configuration `adjust` changes (from the defaults, as at start).
    pub async fn restart_with(self, adjust: impl FnOnce(&mut LocalConfig, &Path)) -> Self {
        let dir = self.shutdown().await;
        Self::launch(dir, adjust)
            .await
            .expect("the local stack restarts")
    }

    async fn launch(
        dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut LocalConfig, &Path),
    ) -> Result<Self, LocalError> {
        let config = config(dir.path(), adjust);
        let data_dir = config.data_dir.clone();
        let stack = LocalStack::start(config).await?;
        Ok(Self {
            stack,
            dir,
            data_dir,
            http: reqwest::Client::new(),
            firehose: tokio::sync::OnceCell::new(),
        })
    }

    /// Stops the stack; returns its directory, which lives as long as the
    /// caller keeps it (files a test reads after shutdown).
    pub async fn shutdown(self) -> tempfile::TempDir {
        self.stack.shutdown().await;
        self.dir
    }

    /// The temporary directory: a test's own files (a log target, a
    /// consumer's database) go here, beside `data/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The stack's data directory: the databases and `lake/`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The lake: `events/…` and `processing-failed/…`.
    pub fn lake_dir(&self) -> PathBuf {
        self.data_dir().join("lake")
    }

    /// The base URL of the HTTP APIs, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.stack.local_addr())
    }

    /// `PutRecordBatch` through the Firehose API as raw HTTP, as an AWS SDK
    /// sends it; asserts an HTTP success and returns the response body.
    pub async fn put_records<R: RecordBytes>(&self, records: &[R]) -> Value {
        let resp = self
            .http
            .post(format!("{}/", self.url()))
            .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
            .header("content-type", "application/x-amz-json-1.1")
            .body(put_record_batch_body(records).to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "PutRecordBatch: {status}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// [`Self::put_records`], asserting that no record failed.
    pub async fn ingest<R: RecordBytes>(&self, records: &[R]) {
        let out = self.put_records(records).await;
        assert_eq!(out["FailedPutCount"], 0, "{out}");
    }

    /// An `aws-sdk-firehose` client for the stack's Firehose API.
    pub async fn firehose(&self) -> &aws_sdk_firehose::Client {
        self.firehose
            .get_or_init(|| async {
                let sdk = crate::moto::sdk_config_at(&self.url()).await;
                aws_sdk_firehose::Client::new(&sdk)
            })
            .await
    }

    /// `PutRecordBatch` of these records through `aws-sdk-firehose`.
    pub async fn put_record_batch_sdk<R: RecordBytes>(
        &self,
        records: &[R],
    ) -> aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput {
        self.firehose()
            .await
            .put_record_batch()
            .delivery_stream_name(crate::fixtures::STREAM_NAME)
            .set_records(Some(records.iter().map(sdk_record).collect()))
            .send()
            .await
            .unwrap()
    }

    /// Waits until every stage is idle, at most `timeout`.
    pub async fn wait_idle(&self, timeout: Duration) {
        self.stack
            .wait_idle(timeout)
            .await
            .unwrap_or_else(|e| panic!("not idle within {timeout:?}: {e}"));
    }

    /// Every stored event of `entity` through the query API, all pages.
    /// `entity` goes into the path as given (percent-encode it if needed).
    pub async fn events(&self, entity: &str) -> Vec<Value> {
        history(&self.http, &self.url(), entity, None).await.0
    }

    /// As [`Self::events`], `limit` per page; also the number of pages read.
    pub async fn history(&self, entity: &str, limit: usize) -> (Vec<Value>, usize) {
        history(&self.http, &self.url(), entity, Some(limit)).await
    }

    /// Every line the stack refused into `processing-failed/`, parsed.
    pub fn processing_failed(&self) -> Vec<Value> {
        self.processing_failed_text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The text of every file under `processing-failed/`, concatenated.
    pub fn processing_failed_text(&self) -> String {
        files_under(&self.lake_dir().join("processing-failed"))
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

/// An SDK record of these bytes.
pub fn sdk_record<R: RecordBytes + ?Sized>(bytes: &R) -> aws_sdk_firehose::types::Record {
    aws_sdk_firehose::types::Record::builder()
        .data(aws_sdk_firehose::primitives::Blob::new(
            bytes.record_bytes(),
        ))
        .build()
        .unwrap()
}

/// An entity's events from the query API at `base` (`http://host:port`),
/// following `next_cursor` to the end; `limit` per page, or the API's
/// default. Returns the events and the number of pages read.
pub async fn history(
    client: &reqwest::Client,
    base: &str,
    entity: &str,
    limit: Option<usize>,
) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let body: Value = client
            .get(format!("{base}/entities/{entity}/events"))
            .query(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        items.extend(body["items"].as_array().into_iter().flatten().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    (items, pages)
}

/// The lines of a log target's file, parsed; none while the file does not exist.
pub fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Reads a log target's lines until `done` says they are complete, 100 times
/// at most, 100 ms apart; returns the last lines read.
pub async fn log_lines_until(path: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = log_lines(path);
        if done(&lines) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lines
}

/// Every file below `dir`, recursively; none if it does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A free TCP port on 127.0.0.1, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// A server process a test started: killed when the test ends, passing or
/// failing, so no process outlives it.
pub struct ServerProcess(pub std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until a `tideline up` at `base` answers `/health`, for up to 30 s.
pub async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("tideline up at {base} did not become healthy within 30 s");
}
