//! Local Lambda targets: a rule's Lambda binary runs as a child process and
//! pulls its events from the Lambda Runtime API, served here on 127.0.0.1.
//!
//! A consumer built with `lambda_runtime` therefore runs unchanged under
//! `tideline up` and on AWS. Each event is delivered as the EventBridge event
//! itself (the archived integration event JSON), one at a time: Lambda
//! concurrency 1 keeps a rule's order. A response is a success; an `/error`,
//! an `/init/error`, a timeout or a process that exits is a failure, retried
//! with the rule's backoff (restarting the process when needed) and then
//! dead-lettered with the last error as the reason.
//!
//! Every process instance gets its own Runtime API server on a fresh port. A
//! killed process may leave a `/next` long poll behind on the server side
//! (HTTP/1 servers do not notice a vanished client while a handler waits);
//! with one server per instance, such a stale poll can never take an event
//! meant for the next instance.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tideline_core::retry::RetryPolicy;
use tideline_embedded::deliveries::DeliveryLog;
use tideline_stages::PortError;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How long one invocation may run before it counts as failed (the Lambda default is 3 s; consumers here may be slower).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` given to the process.
const MEMORY_MB: &str = "128";
/// Largest response or error body accepted (Lambda's synchronous payload limit).
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

/// An invocation waiting for `/next`.
struct Pending {
    id: String,
    event: Arc<str>,
    deadline_ms: i64,
}

enum Outcome {
    Success,
    Error(String),
}

/// The Runtime API state of one process instance.
struct ApiState {
    slot: Mutex<Option<Pending>>,
    ready: Notify,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
    closed: AtomicBool,
    function_arn: String,
}

impl ApiState {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.ready.notify_waiters();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short locks cannot leave the data half-written.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn api_router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": "OK"})),
    )
        .into_response()
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    loop {
        let woken = state.ready.notified();
        if state.closed.load(Ordering::SeqCst) {
            return api_error(
                StatusCode::GONE,
                "Runtime.Closed",
                "this instance is stopped",
            );
        }
        let pending = lock(&state.slot).take();
        if let Some(p) = pending {
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: &str| {
                if let Ok(v) = HeaderValue::from_str(value) {
                    headers.insert(name, v);
                }
            };
            set("lambda-runtime-aws-request-id", &p.id);
            set("lambda-runtime-deadline-ms", &p.deadline_ms.to_string());
            set("lambda-runtime-invoked-function-arn", &state.function_arn);
            set(
                "lambda-runtime-trace-id",
                &format!(
                    "Root=1-{:08x}-{}",
                    chrono::Utc::now().timestamp(),
                    &p.id[..8]
                ),
            );
            set("content-type", "application/json");
            return (StatusCode::OK, headers, p.event.to_string()).into_response();
        }
        woken.await;
    }
}

async fn response(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    _body: Bytes,
) -> Response {
    match lock(&state.in_flight).remove(&id) {
        Some(tx) => {
            let _ = tx.send(Outcome::Success);
            accepted()
        }
        None => api_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("no invocation {id} is in flight"),
        ),
    }
}

/// `errorType: errorMessage` from a Lambda error body, or the body itself.
fn error_text(headers: &HeaderMap, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error_type = parsed
        .as_ref()
        .and_then(|v| v["errorType"].as_str().map(str::to_string))
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Unhandled".into());
    let message = parsed
        .as_ref()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    format!("{error_type}: {message}")
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match lock(&state.in_flight).remove(&id) {
        Some(tx) => {
            let _ = tx.send(Outcome::Error(error_text(&headers, &body)));
            accepted()
        }
        None => api_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("no invocation {id} is in flight"),
        ),
    }
}

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = error_text(&headers, &body);
    warn!(function = %state.function_arn, error = %text, "lambda init error");
    *lock(&state.init_error) = Some(text);
    accepted()
}

/// One running process and its Runtime API.
struct Instance {
    child: Child,
    state: Arc<ApiState>,
    server: JoinHandle<()>,
    /// The process's last stderr lines (it is also copied to ours).
    stderr: StderrTail,
}

/// How many of a target's last stderr lines a failure reason carries: enough
/// for a configuration error and its context, short enough for a dead letter.
const STDERR_TAIL_LINES: usize = 5;

/// The last lines a target process wrote to stderr. A process that exits
/// before answering says why only there (a missing variable, a panic), so
/// the dead-letter reason carries them.
#[derive(Clone, Default)]
struct StderrTail {
    lines: Arc<Mutex<std::collections::VecDeque<String>>>,
    reader: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl StderrTail {
    /// Copies the child's stderr to ours line by line, keeping the last lines.
    fn follow(&self, rule: String, stderr: tokio::process::ChildStderr) {
        use tokio::io::AsyncBufReadExt;
        let lines = self.lines.clone();
        let task = tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                eprintln!("[{rule}] {line}");
                let mut kept = lock(&lines);
                if kept.len() == STDERR_TAIL_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        *lock(&self.reader) = Some(task);
    }

    /// The kept lines, once the exited process's stderr is read to its end
    /// (bounded: a grandchild may hold the pipe open).
    async fn after_exit(&self) -> String {
        let task = lock(&self.reader).take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
        }
        lock(&self.lines)
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl Instance {
    async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // The child is spawned with kill_on_drop.
        self.state.close();
        self.server.abort();
    }
}

/// Why one invocation did not succeed.
enum Failure {
    /// The function failed; retry.
    Failed(String),
    /// The stack is shutting down; the event will be delivered after restart.
    Shutdown,
}

/// The command that builds a missing Lambda binary: `target/<profile>/<bin>`
/// is built by `cargo build [--release] --bin <bin>`.
fn build_hint(program: &str) -> String {
    let parts: Vec<&str> = program.split('/').collect();
    match parts.as_slice() {
        [.., "target", profile, bin] => {
            let release = if *profile == "release" {
                " --release"
            } else {
                ""
            };
            format!("cargo build{release} --bin {bin}")
        }
        _ => "cargo build --bin <its binary>".into(),
    }
}

/// A rule's Lambda target.
pub struct LambdaTarget {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    timeout: Duration,
    instance: Option<Instance>,
    shutdown: Option<watch::Receiver<bool>>,
}

impl std::fmt::Debug for LambdaTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaTarget")
            .field("name", &self.name)
            .field("program", &self.program)
            .field("running", &self.instance.is_some())
            .finish()
    }
}

impl LambdaTarget {
    /// Checks the command; the process starts at the first event (as a cold start).
    ///
    /// A program given as a path (it contains `/`) resolves against the
    /// current directory and must exist; a bare name is looked up on `PATH`.
    pub fn new(
        rule: &str,
        command: &[String],
        env: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let Some((program, args)) = command.split_first() else {
            return Err(format!(
                "rule {rule:?}: lambda target: command is empty; give the program and its arguments, e.g. [\"target/debug/my-consumer\"]"
            ));
        };
        let mut path = PathBuf::from(program);
        if program.contains('/') {
            if path.is_relative() {
                let cwd = std::env::current_dir()
                    .map_err(|e| format!("rule {rule:?}: current directory: {e}"))?;
                path = cwd.join(path);
            }
            if !path.is_file() {
                return Err(format!(
                    "rule {rule:?}: lambda target: command {program:?} ({}) is not a file; build it first: {}",
                    path.display(),
                    build_hint(program)
                ));
            }
        }
        Ok(Self {
            name: rule.to_string(),
            program: path,
            args: args.to_vec(),
            env: env.clone(),
            timeout: DEFAULT_TIMEOUT,
            instance: None,
            shutdown: None,
        })
    }

    /// Makes in-flight invocations give up when the stack shuts down.
    pub fn set_shutdown(&mut self, shutdown: watch::Receiver<bool>) {
        self.shutdown = Some(shutdown);
    }

    /// Kills the process, if any.
    pub async fn stop(&mut self) {
        if let Some(mut i) = self.instance.take() {
            i.stop().await;
        }
    }

    async fn start_instance(&self) -> Result<Instance, String> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| format!("runtime API: cannot listen: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("runtime API: {e}"))?;
        let state = Arc::new(ApiState {
            slot: Mutex::new(None),
            ready: Notify::new(),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            closed: AtomicBool::new(false),
            function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.name),
        });
        let app = api_router(state.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                warn!(error = %e, "runtime API server stopped");
            }
        });
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("_HANDLER", "bootstrap")
            .envs(&self.env)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(format!("cannot start {}: {e}", self.program.display()));
            }
        };
        let stderr = StderrTail::default();
        if let Some(pipe) = child.stderr.take() {
            stderr.follow(self.name.clone(), pipe);
        }
        info!(rule = %self.name, pid = child.id(), runtime_api = %addr, "lambda target started");
        Ok(Instance {
            child,
            state,
            server,
            stderr,
        })
    }

    /// The running instance, (re)started if it is not running.
    async fn instance(&mut self) -> Result<&mut Instance, String> {
        if let Some(i) = &mut self.instance {
            match i.child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    warn!(rule = %self.name, %status, "lambda process exited; restarting");
                    self.instance = None;
                }
                Err(e) => {
                    warn!(rule = %self.name, error = %e, "lambda process state unknown; restarting");
                    self.stop().await;
                }
            }
        }
        if self.instance.is_none() {
            self.instance = Some(self.start_instance().await?);
        }
        self.instance
            .as_mut()
            .ok_or_else(|| "lambda instance missing".to_string())
    }

    async fn invoke(&mut self, event: &Arc<str>) -> Result<(), Failure> {
        enum Ended {
            Outcome(Result<Outcome, oneshot::error::RecvError>),
            Exited(std::io::Result<std::process::ExitStatus>),
            TimedOut,
            Shutdown,
        }
        let timeout = self.timeout;
        let mut shutdown = self.shutdown.clone();
        let instance = self.instance().await.map_err(Failure::Failed)?;
        let id = crate::bus::random_uuid();
        let (tx, rx) = oneshot::channel();
        lock(&instance.state.in_flight).insert(id.clone(), tx);
        let deadline_ms = chrono::Utc::now().timestamp_millis()
            + i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 2);
        *lock(&instance.state.slot) = Some(Pending {
            id: id.clone(),
            event: event.clone(),
            deadline_ms,
        });
        instance.state.ready.notify_one();
        let stopping = async {
            match &mut shutdown {
                Some(s) => {
                    let _ = s.wait_for(|stop| *stop).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let ended = tokio::select! {
            biased;
            r = rx => Ended::Outcome(r),
            s = instance.child.wait() => Ended::Exited(s),
            _ = tokio::time::sleep(timeout) => Ended::TimedOut,
            _ = stopping => Ended::Shutdown,
        };
        *lock(&instance.state.slot) = None;
        lock(&instance.state.in_flight).remove(&id);
        let init_error = lock(&instance.state.init_error).take();
        match ended {
            Ended::Outcome(Ok(Outcome::Success)) => Ok(()),
            Ended::Outcome(Ok(Outcome::Error(m))) => Err(Failure::Failed(m)),
            Ended::Outcome(Err(_)) => Err(Failure::Failed(
                "the runtime API dropped the invocation".into(),
            )),
            Ended::Exited(status) => {
                let tail = instance.stderr.after_exit().await;
                self.instance = None;
                let status = match status {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                };
                let mut reason = match init_error {
                    Some(e) => format!("process exited ({status}) after init error: {e}"),
                    None => format!("process exited ({status}) during the invocation"),
                };
                if !tail.is_empty() {
                    reason.push_str("; last stderr lines: ");
                    reason.push_str(&tail);
                }
                Err(Failure::Failed(reason))
            }
            Ended::TimedOut => {
                self.stop().await;
                Err(Failure::Failed(format!("timed out after {timeout:?}")))
            }
            Ended::Shutdown => Err(Failure::Shutdown),
        }
    }

    /// Delivers one event: invokes, retries with backoff, and dead-letters
    /// the event when the attempts run out. `Ok` means the event is accounted
    /// for (delivered or dead-lettered), so the checkpoint may move past it.
    pub async fn deliver(
        &mut self,
        event: &Arc<str>,
        retry: &RetryPolicy,
        log: &DeliveryLog,
    ) -> Result<(), PortError> {
        let attempts = retry.max_attempts.max(1);
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(retry.jittered_delay(attempt - 1)).await;
            }
            match self.invoke(event).await {
                Ok(()) => return Ok(()),
                Err(Failure::Shutdown) => {
                    return Err(PortError::retryable(
                        "lambda-target",
                        "shutting down; the event will be delivered again",
                    ));
                }
                Err(Failure::Failed(m)) => {
                    debug!(rule = %self.name, attempt, error = %m, "lambda invocation failed");
                    last_error = m;
                }
            }
        }
        warn!(rule = %self.name, error = %last_error, "lambda retries exhausted; event moved to the dead-letter table");
        log.dead_letter(
            &self.name,
            event,
            &format!("lambda {}: {last_error}", self.name),
            attempts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_read_as_type_and_message() {
        let h = HeaderMap::new();
        assert_eq!(
            error_text(&h, br#"{"errorType":"X","errorMessage":"boom"}"#),
            "X: boom"
        );
        assert_eq!(error_text(&h, b"plain"), "Unhandled: plain");
    }

    #[test]
    fn commands_are_checked() {
        let env = BTreeMap::new();
        assert!(
            LambdaTarget::new("r", &[], &env)
                .unwrap_err()
                .contains("empty")
        );
        let e = LambdaTarget::new("r", &["./no/such/bootstrap".into()], &env).unwrap_err();
        assert!(e.contains("is not a file"), "{e}");
        let t = LambdaTarget::new("r", &["sh".into(), "-c".into()], &env).unwrap();
        assert_eq!(t.program, PathBuf::from("sh"));
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = crate::bus::random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
