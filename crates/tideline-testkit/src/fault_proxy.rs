//! A fault-injecting HTTP proxy in front of moto.
//!
//! moto is lenient: it never throttles, never fails a call half-way, and never
//! loses a response. Real AWS does all three, so a test that only talks to
//! moto cannot show that Tideline survives them. [`FaultProxy`] listens on
//! `127.0.0.1:<random port>`, forwards every request to moto, and injects
//! faults by a programmable plan of [`Rule`]s:
//!
//! - a rule matches an AWS operation: the `X-Amz-Target` header of the JSON
//!   protocols (`DynamoDB_20120810.TransactWriteItems`,
//!   `AmazonSQS.SendMessageBatch`, `AWSEvents.PutEvents`,
//!   `Firehose_20150804.PutRecordBatch`), or the `Action=` of a query-protocol
//!   body; by its name alone (`PutEvents`) or with the target prefix;
//! - it fires by a [`Trigger`]: a probability drawn from one seeded generator
//!   (so a sequential test sees the same faults on every run), every n-th
//!   matching request, or chosen request numbers; optionally at most `limit`
//!   times;
//! - the [`Fault`] decides what happens: [`Fault::FailBefore`] and
//!   [`Fault::Throttle`] answer without forwarding (nothing happened);
//!   [`Fault::FailAfter`] and [`Fault::DropAfter`] forward first (the call took
//!   effect) and then lose the answer; [`Fault::PartialFailure`] removes some
//!   entries of a batch call before forwarding and splices per-entry failures
//!   into moto's answer at their positions, so the failed entries truly did not
//!   happen.
//!
//! Error answers are shaped as the service would send them, so the SDK parses
//! and classifies them as it would in production: `__type` (and SQS's
//! `x-amzn-query-error`) for the JSON protocols, an `ErrorResponse` document
//! for the query protocol.
//!
//! Besides the rules, [`FaultProxy::set_delays`] pauses every forwarded call
//! for a random time before it reaches moto and again before its answer goes
//! back (the call has then taken effect), so concurrent clients' calls
//! interleave in many orders and a client keeps acting on a stale view while
//! another one's writes land, as two Lambda invocations of one group do.
//!
//! The test reads per-rule counts ([`FaultProxy::injected`]) to prove the
//! faults really happened, and per-operation counts of calls moto answered
//! ([`FaultProxy::forwarded`], [`FaultProxy::wait_forwarded`]) to kill a
//! handler after some of its calls took effect.
//!
//! Test-only code: a rule that cannot apply (a partial failure of a call that
//! is not a batch) is a broken test, so it panics.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What a rule does to a request it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request never reaches moto; the answer is a retryable server error
    /// (HTTP 500, `InternalServerError` for DynamoDB, `InternalFailure` else).
    FailBefore,
    /// The request never reaches moto; the answer is the service's throttling
    /// error (HTTP 400: `ProvisionedThroughputExceededException` for DynamoDB,
    /// `RequestThrottled` for SQS, `ThrottlingException` else).
    Throttle,
    /// The request reaches moto and takes effect; its answer is replaced by an
    /// HTTP 500, as when a response is lost on the way back.
    FailAfter,
    /// The request reaches moto and takes effect; the connection is then closed
    /// without an answer.
    DropAfter,
    /// A batch call (`SendMessageBatch`, `PutEvents`, `PutRecordBatch`): a
    /// random non-empty subset of entries is removed before forwarding, and
    /// each comes back as a retryable per-entry failure at its position.
    PartialFailure,
}

/// When a rule fires, among the requests it matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Every matching request.
    Always,
    /// Each matching request with this probability, from the proxy's seeded generator.
    Probability(f64),
    /// Every n-th matching request (n, 2n, ...).
    Every(u64),
    /// The matching requests with these 1-based numbers.
    Nth(Vec<u64>),
}

/// One entry of the fault plan.
#[derive(Debug, Clone)]
pub struct Rule {
    operation: String,
    fault: Fault,
    trigger: Trigger,
    limit: Option<u64>,
}

impl Rule {
    /// A rule for `operation` (`PutEvents`, or `AWSEvents.PutEvents`) that
    /// injects `fault` on every matching request until a trigger is set.
    pub fn new(operation: &str, fault: Fault) -> Self {
        if fault == Fault::PartialFailure {
            let name = operation.rsplit('.').next().unwrap_or(operation);
            assert!(
                BATCH_OPERATIONS.contains(&name),
                "a partial failure needs a batch operation ({BATCH_OPERATIONS:?}), not {operation}"
            );
        }
        Self {
            operation: operation.to_string(),
            fault,
            trigger: Trigger::Always,
            limit: None,
        }
    }

    /// Fires with probability `p` on each matching request.
    pub fn probability(mut self, p: f64) -> Self {
        assert!((0.0..=1.0).contains(&p), "probability {p} out of 0..=1");
        self.trigger = Trigger::Probability(p);
        self
    }

    /// Fires on every n-th matching request.
    pub fn every(mut self, n: u64) -> Self {
        assert!(n > 0, "every(0) never fires");
        self.trigger = Trigger::Every(n);
        self
    }

    /// Fires on these matching requests (1-based).
    pub fn nth(mut self, numbers: &[u64]) -> Self {
        self.trigger = Trigger::Nth(numbers.to_vec());
        self
    }

    /// Fires at most `n` times.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    fn matches(&self, op: &Operation) -> bool {
        self.operation == op.name || Some(self.operation.as_str()) == op.target.as_deref()
    }

    fn label(&self) -> String {
        format!("{} {:?}", self.operation, self.fault)
    }
}

/// The batch operations [`Fault::PartialFailure`] knows how to split.
pub const BATCH_OPERATIONS: &[&str] = &["SendMessageBatch", "PutEvents", "PutRecordBatch"];

/// A rule's handle, for reading its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleId(usize);

/// A rule's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    /// `operation fault`.
    pub label: String,
    /// Requests the rule matched (whether or not an earlier rule fired first).
    pub matched: u64,
    /// Faults it injected.
    pub injected: u64,
}

struct RuleState {
    rule: Rule,
    matched: u64,
    injected: u64,
}

struct Plan {
    rules: Vec<RuleState>,
    rng: StdRng,
}

struct Shared {
    upstream: String,
    plan: Mutex<Plan>,
    enabled: AtomicBool,
    /// Calls moto answered, by operation name (whatever the client got back).
    forwarded: Mutex<BTreeMap<String, u64>>,
    /// Calls sent to moto and not yet answered.
    in_flight: AtomicU64,
    /// Signalled whenever `forwarded` or `in_flight` changes.
    forwarded_changed: Notify,
    /// Random pauses around each forwarded call ([`FaultProxy::set_delays`]).
    delays: Mutex<Delays>,
    /// Forward one call at a time ([`FaultProxy::set_serial`]).
    serial: AtomicBool,
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// The longest pause before a call is forwarded and before its answer is relayed.
#[derive(Debug, Clone, Copy, Default)]
struct Delays {
    before: std::time::Duration,
    after: std::time::Duration,
    /// Added to every call in full, before it is forwarded ([`FaultProxy::set_latency`]).
    latency: std::time::Duration,
}

impl Shared {
    /// A pause drawn uniformly from `0..=max` with the plan's generator.
    fn pause(&self, max: std::time::Duration) -> std::time::Duration {
        if max.is_zero() {
            return max;
        }
        let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        let drawn = self.plan.lock().unwrap().rng.random_range(0..=micros);
        std::time::Duration::from_micros(drawn)
    }
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:<port>`, e.g.
    /// [`crate::moto::endpoint`]) with no rules; `seed` fixes the random draws.
    /// Needs a Tokio runtime.
    pub async fn start(upstream: &str, seed: u64) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy forwards plain HTTP only, not {upstream}"))
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(Plan {
                rules: Vec::new(),
                rng: StdRng::seed_from_u64(seed),
            }),
            enabled: AtomicBool::new(true),
            forwarded: Mutex::new(BTreeMap::new()),
            in_flight: AtomicU64::new(0),
            forwarded_changed: Notify::new(),
            delays: Mutex::new(Delays::default()),
            serial: AtomicBool::new(false),
            one_at_a_time: tokio::sync::Mutex::new(()),
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        Self {
            endpoint,
            shared,
            server,
        }
    }

    /// The proxy's endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK config pointed at the proxy. The SDK's own retries are off (one
    /// attempt), so every injected fault reaches Tideline's adapters and
    /// stages instead of being absorbed by the SDK's retry layer, which is
    /// AWS's code, not ours.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        crate::moto::sdk_config_at(&self.endpoint)
            .await
            .into_builder()
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .build()
    }

    /// Adds a rule after the existing ones; the first rule that fires on a
    /// request decides its fault.
    pub fn add(&self, rule: Rule) -> RuleId {
        let mut plan = self.shared.plan.lock().unwrap();
        plan.rules.push(RuleState {
            rule,
            matched: 0,
            injected: 0,
        });
        RuleId(plan.rules.len() - 1)
    }

    /// Pauses every forwarded call (whether or not a rule fires on it) for a
    /// random time up to `before` before it reaches moto, and up to `after`
    /// once moto has answered, before the answer goes back. Zero for both
    /// (the default) is no pause. Independent of [`Self::set_enabled`].
    pub fn set_delays(&self, before: std::time::Duration, after: std::time::Duration) {
        let mut delays = self.shared.delays.lock().unwrap();
        delays.before = before;
        delays.after = after;
    }

    /// Adds `latency` to every forwarded call, in full: the round trip a
    /// call takes in-region (about 5 ms for DynamoDB, SQS and EventBridge),
    /// so a benchmark measures the calls a handler waits for, not moto's
    /// own speed. Calls in flight together wait at the same time.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.shared.delays.lock().unwrap().latency = latency;
    }

    /// Forwards one call at a time. moto serves concurrent requests in
    /// threads without DynamoDB's isolation: two `TransactWriteItems` can
    /// both pass their conditions before either writes, which DynamoDB never
    /// allows. One call at a time gives every call the atomicity DynamoDB
    /// gives it, so a test of concurrent writers checks the code, not moto.
    pub fn set_serial(&self, on: bool) {
        self.shared.serial.store(on, Ordering::SeqCst);
    }

    /// Turns fault injection on or off (requests are forwarded either way).
    pub fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::SeqCst);
    }

    /// How many faults a rule injected.
    pub fn injected(&self, id: RuleId) -> u64 {
        self.shared.plan.lock().unwrap().rules[id.0].injected
    }

    /// Every rule's counts, in the order added.
    pub fn counts(&self) -> Vec<RuleCount> {
        self.shared
            .plan
            .lock()
            .unwrap()
            .rules
            .iter()
            .map(|r| RuleCount {
                label: r.rule.label(),
                matched: r.matched,
                injected: r.injected,
            })
            .collect()
    }

    /// How many calls of `operation` (its name, e.g. `TransactWriteItems`)
    /// moto has answered so far, including those whose answer was then lost.
    pub fn forwarded(&self, operation: &str) -> u64 {
        self.shared
            .forwarded
            .lock()
            .unwrap()
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until moto has answered every call forwarded so far. A call
    /// reaches moto in full or not at all and then runs to its end there,
    /// even if its client went away (as on AWS), so after a killed
    /// invocation this is the instant from which its effects are final.
    pub async fn wait_idle(&self) {
        loop {
            let changed = self.shared.forwarded_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.shared.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            changed.await;
        }
    }

    /// Waits until moto has answered at least `n` calls of `operation`.
    pub async fn wait_forwarded(&self, operation: &str, n: u64) {
        loop {
            let changed = self.shared.forwarded_changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so no increment is missed.
            changed.as_mut().enable();
            if self.forwarded(operation) >= n {
                return;
            }
            changed.await;
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Small request and answer writes would otherwise wait out Nagle's
        // algorithm against delayed ACKs (about 40 ms per call).
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            // A dropped connection (ours, by `DropAfter`, or the client's) ends here.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault proxy: connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

type Answer = Result<Response<Full<Bytes>>, DropConnection>;

/// The AWS operation of a request.
#[derive(Debug, Clone)]
struct Operation {
    /// `X-Amz-Target` (`AmazonSQS.SendMessageBatch`), for JSON protocols.
    target: Option<String>,
    /// The operation name (`SendMessageBatch`); empty if unknown.
    name: String,
    /// The JSON protocol's content type, or `None` for the query protocol.
    json_content_type: Option<String>,
}

impl Operation {
    fn of(headers: &HeaderMap, body: &[u8]) -> Self {
        if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
            let name = target.rsplit('.').next().unwrap_or(target).to_string();
            let content_type = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/x-amz-json-1.0")
                .to_string();
            return Self {
                target: Some(target.to_string()),
                name,
                json_content_type: Some(content_type),
            };
        }
        // Query protocol: `Action=Name&...` in a form body (names are plain ASCII).
        let name = std::str::from_utf8(body)
            .ok()
            .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("Action=")))
            .unwrap_or_default()
            .to_string();
        Self {
            target: None,
            name,
            json_content_type: None,
        }
    }

    fn service(&self) -> &str {
        self.target
            .as_deref()
            .and_then(|t| t.split('.').next())
            .unwrap_or_default()
    }

    fn is_dynamodb(&self) -> bool {
        self.service().starts_with("DynamoDB")
    }

    fn is_sqs(&self) -> bool {
        self.service() == "AmazonSQS"
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    // A client that went away mid-body: nothing to forward.
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return Err(DropConnection);
    };
    let op = Operation::of(&parts.headers, &body);
    let fault = decide(&shared, &op);

    match fault {
        None => pass(&shared, &op, &parts, body).await,
        Some(Fault::FailBefore) => Ok(server_error(&op)),
        Some(Fault::Throttle) => Ok(throttling_error(&op)),
        Some(Fault::FailAfter) => {
            let _ = forward(&shared, &op, &parts, body).await?;
            Ok(server_error(&op))
        }
        Some(Fault::DropAfter) => {
            let _ = forward(&shared, &op, &parts, body).await?;
            Err(DropConnection)
        }
        Some(Fault::PartialFailure) => partial(&shared, &op, &parts, body).await,
    }
}

/// The fault of the first rule that fires, counting every rule that matches.
fn decide(shared: &Shared, op: &Operation) -> Option<Fault> {
    if !shared.enabled.load(Ordering::SeqCst) || op.name.is_empty() {
        return None;
    }
    let mut guard = shared.plan.lock().unwrap();
    let Plan { rules, rng } = &mut *guard;
    let mut chosen = None;
    for state in rules.iter_mut().filter(|s| s.rule.matches(op)) {
        state.matched += 1;
        if chosen.is_some() {
            continue;
        }
        if state.rule.limit.is_some_and(|l| state.injected >= l) {
            continue;
        }
        let fires = match &state.rule.trigger {
            Trigger::Always => true,
            Trigger::Probability(p) => rng.random_bool(*p),
            Trigger::Every(n) => state.matched % n == 0,
            Trigger::Nth(list) => list.contains(&state.matched),
        };
        if fires {
            state.injected += 1;
            chosen = Some(state.rule.fault);
        }
    }
    chosen
}

/// Forwards unchanged and relays moto's answer.
async fn pass(
    shared: &Arc<Shared>,
    op: &Operation,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Answer {
    let (status, headers, body) = forward(shared, op, parts, body).await?;
    Ok(respond(status, &headers, body))
}

/// Sends the request to moto on a fresh connection; returns its answer.
async fn forward(
    shared: &Arc<Shared>,
    op: &Operation,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), DropConnection> {
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone());
    for (name, value) in &parts.headers {
        if name != CONTENT_LENGTH && name != "transfer-encoding" {
            request = request.header(name, value);
        }
    }
    let request = request
        .header(CONTENT_LENGTH, body.len())
        .body(Full::new(body))
        .unwrap();
    let delays = *shared.delays.lock().unwrap();
    let before = shared.pause(delays.before) + delays.latency;
    if !before.is_zero() {
        tokio::time::sleep(before).await;
    }
    // The exchange runs in its own task: once sent, a call completes at moto
    // even if the client (a killed invocation) drops its connection.
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let task = {
        let shared = shared.clone();
        let name = op.name.clone();
        tokio::spawn(async move {
            let _turn = if shared.serial.load(Ordering::SeqCst) {
                Some(shared.one_at_a_time.lock().await)
            } else {
                None
            };
            let answer = exchange(&shared.upstream, request).await;
            if answer.is_ok() {
                *shared.forwarded.lock().unwrap().entry(name).or_default() += 1;
            }
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            shared.forwarded_changed.notify_waiters();
            answer
        })
    };
    let answer = task.await.unwrap_or(Err(DropConnection));
    // The call took effect at moto; its answer is late.
    let after = shared.pause(delays.after);
    if !after.is_zero() {
        tokio::time::sleep(after).await;
    }
    answer
}

async fn exchange(
    upstream: &str,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, HeaderMap, Bytes), DropConnection> {
    let stream = TcpStream::connect(upstream)
        .await
        .unwrap_or_else(|e| panic!("fault proxy: moto at {upstream} is down: {e}"));
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("fault proxy: handshake with moto failed: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // moto failing mid-answer is not a fault we planned: the client sees a
    // dropped connection, which it treats as any other lost answer.
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| DropConnection)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|_| DropConnection)?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

fn respond(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        // Framing is hyper's to set for the new body; a checksum of the old
        // body would no longer match a rewritten one.
        let skip = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "x-amz-crc32",
        ];
        if !skip.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    response.body(Full::new(body)).unwrap()
}

fn server_error(op: &Operation) -> Response<Full<Bytes>> {
    let code = if op.is_dynamodb() {
        "InternalServerError"
    } else {
        "InternalFailure"
    };
    error_response(op, StatusCode::INTERNAL_SERVER_ERROR, code, false)
}

fn throttling_error(op: &Operation) -> Response<Full<Bytes>> {
    let code = if op.is_dynamodb() {
        "ProvisionedThroughputExceededException"
    } else if op.is_sqs() {
        "RequestThrottled"
    } else {
        "ThrottlingException"
    };
    error_response(op, StatusCode::BAD_REQUEST, code, true)
}

fn error_response(
    op: &Operation,
    status: StatusCode,
    code: &str,
    sender_fault: bool,
) -> Response<Full<Bytes>> {
    let message = format!("injected by the fault proxy ({})", op.name);
    let mut headers = HeaderMap::new();
    let body = match &op.json_content_type {
        Some(content_type) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
            if op.is_sqs() {
                // SQS speaks JSON but is "query compatible": the SDK takes the
                // code from this header, as the query protocol named it.
                let fault = if sender_fault { "Sender" } else { "Receiver" };
                headers.insert(
                    "x-amzn-query-error",
                    HeaderValue::from_str(&format!("{code};{fault}")).unwrap(),
                );
            }
            let ty = if op.is_dynamodb() {
                format!("com.amazonaws.dynamodb.v20120810#{code}")
            } else {
                code.to_string()
            };
            json!({ "__type": ty, "message": message }).to_string()
        }
        None => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
            let fault = if sender_fault { "Sender" } else { "Receiver" };
            format!(
                "<ErrorResponse><Error><Type>{fault}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
            )
        }
    };
    respond(status, &headers, Bytes::from(body))
}

/// A per-entry failure, as the operation's answer carries it.
fn entry_failure(op: &Operation, id: Option<&Value>) -> Value {
    let message = "injected by the fault proxy";
    match op.name.as_str() {
        "SendMessageBatch" => json!({
            "Id": id.cloned().unwrap_or(Value::Null),
            "SenderFault": false,
            "Code": "InternalError",
            "Message": message,
        }),
        "PutRecordBatch" => {
            json!({ "ErrorCode": "ServiceUnavailableException", "ErrorMessage": message })
        }
        _ => json!({ "ErrorCode": "InternalFailure", "ErrorMessage": message }),
    }
}

/// [`Fault::PartialFailure`]: drops a random non-empty subset of the batch
/// before forwarding, then reports those entries failed in the answer.
async fn partial(
    shared: &Arc<Shared>,
    op: &Operation,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Answer {
    let entries_key = if op.name == "PutRecordBatch" {
        "Records"
    } else {
        "Entries"
    };
    let mut request: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("fault proxy: {} body is not JSON: {e}", op.name));
    let entries = request[entries_key]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("fault proxy: {} has no {entries_key}", op.name));
    let dropped: HashSet<usize> = {
        let mut plan = shared.plan.lock().unwrap();
        let mut chosen: HashSet<usize> = (0..entries.len())
            .filter(|_| plan.rng.random_bool(0.5))
            .collect();
        if chosen.is_empty() && !entries.is_empty() {
            chosen.insert(plan.rng.random_range(0..entries.len()));
        }
        chosen
    };
    let kept: Vec<Value> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, e)| e.clone())
        .collect();

    let mut answer = if kept.is_empty() {
        // Nothing left to send: answer as moto would have for an empty success.
        match op.name.as_str() {
            "SendMessageBatch" => json!({ "Successful": [], "Failed": [] }),
            "PutRecordBatch" => json!({ "FailedPutCount": 0, "RequestResponses": [] }),
            _ => json!({ "FailedEntryCount": 0, "Entries": [] }),
        }
    } else {
        request[entries_key] = Value::Array(kept);
        let (status, headers, rbody) =
            forward(shared, op, parts, Bytes::from(request.to_string())).await?;
        if !status.is_success() {
            // moto refused the whole call: relay that, there is nothing to split.
            return Ok(respond(status, &headers, rbody));
        }
        serde_json::from_slice(&rbody)
            .unwrap_or_else(|e| panic!("fault proxy: {} answer is not JSON: {e}", op.name))
    };

    match op.name.as_str() {
        "SendMessageBatch" => {
            // Entries are named by `Id`; order does not matter.
            let failed = answer["Failed"].as_array_mut();
            let mut list = failed.map(std::mem::take).unwrap_or_default();
            for &i in &dropped {
                list.push(entry_failure(op, entries[i].get("Id")));
            }
            answer["Failed"] = Value::Array(list);
        }
        name => {
            // Positional answers: splice each failure in at its entry's place.
            let (results_key, count_key) = if name == "PutRecordBatch" {
                ("RequestResponses", "FailedPutCount")
            } else {
                ("Entries", "FailedEntryCount")
            };
            let moto_results = answer[results_key].as_array().cloned().unwrap_or_default();
            let mut moto_results = moto_results.into_iter();
            let mut results = Vec::with_capacity(entries.len());
            for i in 0..entries.len() {
                if dropped.contains(&i) {
                    results.push(entry_failure(op, None));
                } else if let Some(r) = moto_results.next() {
                    results.push(r);
                }
            }
            let failed = results
                .iter()
                .filter(|r| r.get("ErrorCode").is_some_and(|c| !c.is_null()))
                .count();
            answer[results_key] = Value::Array(results);
            answer[count_key] = json!(failed);
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(
            op.json_content_type
                .as_deref()
                .unwrap_or("application/x-amz-json-1.1"),
        )
        .unwrap(),
    );
    Ok(respond(
        StatusCode::OK,
        &headers,
        Bytes::from(answer.to_string()),
    ))
}
