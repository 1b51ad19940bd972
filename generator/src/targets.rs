//! Where records go, and the retry rule every target shares.
//!
//! A [`Sink`] makes one call for a batch and reports, per record, whether it
//! was accepted. [`deliver`] owns the retry policy so that Firehose's partial
//! failures (`FailedPutCount` with per-record `ErrorCode`) and SQS's
//! (`Failed` entries) are handled by one tested rule: re-send only what
//! failed, with exponential backoff and jitter, a bounded number of times
//! (INVARIANTS.md #5). Re-sending the whole batch would create duplicates.

use crate::profiles::Record;
use crate::rate::Clock;
use crate::rng::Rng;
use crate::stats::SendStats;
use aws_sdk_firehose::error::ProvideErrorMetadata;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// PutRecordBatch: at most 500 records per call (AWS-CONTRACTS.md, Firehose).
pub const FIREHOSE_MAX_RECORDS: usize = 500;
/// PutRecordBatch: at most 4 MiB per call (AWS-CONTRACTS.md, Firehose).
pub const FIREHOSE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// SendMessageBatch: at most 10 messages per call (AWS-CONTRACTS.md, SQS FIFO).
pub const SQS_MAX_RECORDS: usize = 10;
/// SendMessageBatch: 1 MiB per call since January 2026 (AWS-CONTRACTS.md, SQS FIFO).
pub const SQS_MAX_BYTES: usize = 1024 * 1024;

/// A record on its way out.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The generated record.
    pub record: Record,
    /// True for the later copy sent by `--duplicates`.
    pub resend: bool,
}

/// How much one call may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Records per call.
    pub max_records: usize,
    /// Bytes per call (sum of record sizes).
    pub max_bytes: usize,
}

/// Why one record of a call was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The API's error code and message.
    pub code: String,
    /// Whether sending it again may succeed.
    pub retryable: bool,
}

/// Why a whole call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    /// What went wrong.
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
}

/// Per-record results of one call: `None` for accepted, in request order.
pub type CallResult = Result<Vec<Option<RecordError>>, CallError>;

/// One ingest API.
pub trait Sink: Send + Sync {
    /// How much one call may carry.
    fn limits(&self) -> BatchLimits;
    /// Makes one call with `batch`.
    fn put(&self, batch: &[&Outgoing]) -> impl Future<Output = CallResult> + Send;
}

/// Retry policy: exponential backoff with jitter, bounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Calls per record, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry.
    pub base: Duration,
    /// Longest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// "Equal jitter": half the exponential step, plus up to the other half at random.
    pub fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        let half = step / 2;
        half + Duration::from_micros(rng.below(half.as_micros() as u64 + 1))
    }
}

/// What became of a batch.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Accepted records, each with the Unix time (µs) of the call that took it.
    pub accepted: Vec<(Outgoing, i64)>,
    /// Records never accepted, with the last error.
    pub failed: Vec<(Outgoing, String)>,
    /// Record re-attempts made.
    pub retried: u64,
}

/// Sends a batch, re-sending only the records that failed, until all are
/// accepted, a failure is permanent, or `policy.max_attempts` is reached.
pub async fn deliver<S: Sink, C: Clock>(
    sink: &S,
    clock: &C,
    policy: &RetryPolicy,
    rng: &mut Rng,
    stats: &SendStats,
    batch: Vec<Outgoing>,
) -> Delivered {
    let mut out = Delivered::default();
    let mut pending = batch;
    let mut attempt = 0u32;
    while !pending.is_empty() {
        attempt += 1;
        let sent_at = chrono::Utc::now().timestamp_micros();
        let started = clock.now();
        let result = {
            let refs: Vec<&Outgoing> = pending.iter().collect();
            sink.put(&refs).await
        };
        stats.call_latency(clock.now().saturating_sub(started));
        let mut again: Vec<(Outgoing, String)> = Vec::new();
        match result {
            Ok(results) if results.len() == pending.len() => {
                for (rec, r) in pending.drain(..).zip(results) {
                    match r {
                        None => out.accepted.push((rec, sent_at)),
                        Some(e) if e.retryable => again.push((rec, e.code)),
                        Some(e) => out.failed.push((rec, e.code)),
                    }
                }
            }
            Ok(results) => {
                // A response that does not match the request cannot say what was
                // taken; sending again is safe because ids de-duplicate.
                let why = format!(
                    "response had {} results for {} records",
                    results.len(),
                    pending.len()
                );
                again = pending.drain(..).map(|r| (r, why.clone())).collect();
            }
            Err(e) if e.retryable => {
                again = pending.drain(..).map(|r| (r, e.message.clone())).collect();
            }
            Err(e) => {
                out.failed
                    .extend(pending.drain(..).map(|r| (r, e.message.clone())));
            }
        }
        if again.is_empty() {
            break;
        }
        if attempt >= policy.max_attempts {
            out.failed.extend(again);
            break;
        }
        out.retried += again.len() as u64;
        clock.sleep(policy.backoff(attempt, rng)).await;
        pending = again.into_iter().map(|(r, _)| r).collect();
    }
    out
}

/// Firehose `PutRecordBatch`, against AWS or `tideline up`.
#[derive(Debug, Clone)]
pub struct FirehoseSink {
    client: aws_sdk_firehose::Client,
    stream: String,
    limits: BatchLimits,
}

impl FirehoseSink {
    /// A sink for delivery stream `stream`.
    pub fn new(client: aws_sdk_firehose::Client, stream: String, limits: BatchLimits) -> Self {
        Self {
            client,
            stream,
            limits,
        }
    }
}

/// Error codes that no retry will fix.
fn permanent_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ResourceNotFoundException"
                | "InvalidArgumentException"
                | "InvalidKMSResourceException"
                | "InvalidSourceException"
                | "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "AWS.SimpleQueueService.NonExistentQueue"
                | "QueueDoesNotExist"
                | "InvalidParameterValue"
                | "BatchRequestTooLong"
                | "TooManyEntriesInBatchRequest"
        )
    )
}

fn call_error<E, R>(e: &aws_sdk_firehose::error::SdkError<E, R>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_firehose::error::SdkError;
    let message = aws_sdk_firehose::error::DisplayErrorContext(e).to_string();
    let retryable = match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(se) => !permanent_code(se.err().code()),
        _ => true,
    };
    CallError { message, retryable }
}

impl Sink for FirehoseSink {
    fn limits(&self) -> BatchLimits {
        self.limits
    }

    fn put(&self, batch: &[&Outgoing]) -> impl Future<Output = CallResult> + Send {
        use aws_sdk_firehose::primitives::Blob;
        use aws_sdk_firehose::types::Record as FhRecord;
        let records: Result<Vec<FhRecord>, _> = batch
            .iter()
            .map(|o| {
                FhRecord::builder()
                    .data(Blob::new(o.record.bytes.clone()))
                    .build()
            })
            .collect();
        let n = batch.len();
        async move {
            let records = records.map_err(|e| CallError {
                message: e.to_string(),
                retryable: false,
            })?;
            let out = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.stream)
                .set_records(Some(records))
                .send()
                .await
                .map_err(|e| call_error(&e))?;
            if out.failed_put_count() == 0 {
                return Ok(vec![None; n]);
            }
            // Partial failure: RequestResponses[i] matches Records[i]; only entries
            // with an ErrorCode failed (AWS-CONTRACTS.md, Firehose).
            Ok(out
                .request_responses()
                .iter()
                .map(|r| {
                    r.error_code().map(|code| RecordError {
                        code: format!("{code}: {}", r.error_message().unwrap_or_default()),
                        retryable: true,
                    })
                })
                .collect())
        }
    }
}

/// Straight to the FIFO queue with `SendMessageBatch`, bypassing Firehose and
/// the transform. The transform's normalisation is applied here (it is the
/// same library function), so the storer sees exactly what the transform
/// would enqueue; invalid records go as they are and must be refused as poison.
#[derive(Debug, Clone)]
pub struct SqsSink {
    // The pipeline's own SQS adapter: one mapping of SendMessageBatch results.
    queue: Arc<tideline_aws::SqsQueue>,
    entity_names: Arc<Vec<String>>,
    id_prefix: String,
    limits: BatchLimits,
}

impl SqsSink {
    /// A sink for the FIFO queue at `queue_url`.
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: String,
        entity_names: Arc<Vec<String>>,
        id_prefix: String,
        limits: BatchLimits,
    ) -> Self {
        Self {
            queue: Arc::new(tideline_aws::SqsQueue::new(client, queue_url)),
            entity_names,
            id_prefix,
            limits,
        }
    }
}

impl Sink for SqsSink {
    fn limits(&self) -> BatchLimits {
        self.limits
    }

    fn put(&self, batch: &[&Outgoing]) -> impl Future<Output = CallResult> + Send {
        use tideline_core::ingest::{IngestConfig, admit};
        use tideline_ports::{OutgoingMessage, Queue};
        let config = IngestConfig::default();
        let messages: Vec<OutgoingMessage> = batch
            .iter()
            .map(|o| {
                let r = &o.record;
                match admit(&config, &r.bytes, chrono::Utc::now()) {
                    // What the transformer would enqueue: the same message builder.
                    Ok(admitted) => OutgoingMessage::for_record(&admitted),
                    // Invalid on purpose (negative profiles): sent as is, so the
                    // storer's poison handling is exercised.
                    Err(_) => OutgoingMessage {
                        group_id: self
                            .entity_names
                            .get(r.entity as usize)
                            .cloned()
                            .unwrap_or_default(),
                        dedup_id: format!("{}{}", self.id_prefix, r.n),
                        body: String::from_utf8_lossy(&r.bytes).into_owned(),
                    },
                }
            })
            .collect();
        let queue = self.queue.clone();
        async move {
            let results = queue.send_batch(&messages).await.map_err(|e| CallError {
                message: e.to_string(),
                retryable: e.class == tideline_core::ErrorClass::Retryable,
            })?;
            Ok(results
                .into_iter()
                .map(|r| {
                    r.err().map(|f| RecordError {
                        code: format!("{}: {}", f.code, f.message),
                        retryable: f.class == tideline_core::ErrorClass::Retryable,
                    })
                })
                .collect())
        }
    }
}

/// JSON Lines to stdout or a file: for piping into other tools, or to look at.
pub struct LinesSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for LinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinesSink")
    }
}

impl LinesSink {
    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// Flushes the output.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut o) => o.flush(),
            Err(_) => Ok(()),
        }
    }
}

impl Sink for LinesSink {
    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: FIREHOSE_MAX_RECORDS,
            max_bytes: FIREHOSE_MAX_BYTES,
        }
    }

    fn put(&self, batch: &[&Outgoing]) -> impl Future<Output = CallResult> + Send {
        let result = match self.out.lock() {
            Ok(mut out) => batch
                .iter()
                .try_for_each(|o| {
                    out.write_all(&o.record.bytes)?;
                    out.write_all(b"\n")
                })
                .map(|()| vec![None; batch.len()])
                .map_err(|e| CallError {
                    message: format!("write failed: {e}"),
                    retryable: false,
                }),
            Err(_) => Err(CallError {
                message: "output lock poisoned".into(),
                retryable: false,
            }),
        };
        std::future::ready(result)
    }
}

/// Any of the targets, so the runner is one concrete type.
#[derive(Debug)]
pub enum AnySink {
    /// Firehose.
    Firehose(FirehoseSink),
    /// SQS FIFO.
    Sqs(SqsSink),
    /// JSON Lines.
    Lines(LinesSink),
}

impl Sink for AnySink {
    fn limits(&self) -> BatchLimits {
        match self {
            AnySink::Firehose(s) => s.limits(),
            AnySink::Sqs(s) => s.limits(),
            AnySink::Lines(s) => s.limits(),
        }
    }

    async fn put(&self, batch: &[&Outgoing]) -> CallResult {
        match self {
            AnySink::Firehose(s) => s.put(batch).await,
            AnySink::Sqs(s) => s.put(batch).await,
            AnySink::Lines(s) => s.put(batch).await,
        }
    }
}

/// True when the environment names AWS credentials of any kind; without
/// them, a local endpoint gets dummy ones so the SDK can sign at all.
fn credentials_configured() -> bool {
    const VARS: [&str; 7] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ];
    if VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        return true;
    }
    std::env::var_os("HOME").is_some_and(|home| {
        let aws = std::path::Path::new(&home).join(".aws");
        aws.join("credentials").exists() || aws.join("config").exists()
    })
}

/// The SDK configuration: the default chain, or for a local endpoint
/// (`tideline up`) dummy credentials and `us-east-1` where none are configured.
pub async fn sdk_config(endpoint_url: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::{BehaviorVersion, Region};
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
        if region.is_none() {
            loader = loader.region(
                RegionProviderChain::default_provider().or_else(Region::from_static("us-east-1")),
            );
        }
        if !credentials_configured() {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                "local",
                "local",
                None,
                None,
                "tideline-generator-local",
            ));
        }
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::FakeClock;

    /// Fails chosen records on chosen attempts, and logs every call.
    struct Flaky {
        /// (attempt, record n) pairs that fail retryably.
        fail: Vec<(u32, u64)>,
        calls: Mutex<Vec<Vec<u64>>>,
        whole_call_failures: u32,
    }

    impl Sink for Flaky {
        fn limits(&self) -> BatchLimits {
            BatchLimits {
                max_records: 500,
                max_bytes: 1 << 22,
            }
        }
        fn put(&self, batch: &[&Outgoing]) -> impl Future<Output = CallResult> + Send {
            let mut calls = self.calls.lock().unwrap();
            calls.push(batch.iter().map(|o| o.record.n).collect());
            let attempt = calls.len() as u32;
            let r = if attempt <= self.whole_call_failures {
                Err(CallError {
                    message: "ServiceUnavailableException".into(),
                    retryable: true,
                })
            } else {
                Ok(batch
                    .iter()
                    .map(|o| {
                        self.fail
                            .contains(&(attempt, o.record.n))
                            .then(|| RecordError {
                                code: "ServiceUnavailableException: slow down".into(),
                                retryable: true,
                            })
                    })
                    .collect())
            };
            std::future::ready(r)
        }
    }

    fn batch(ns: std::ops::Range<u64>) -> Vec<Outgoing> {
        ns.map(|n| Outgoing {
            record: Record {
                n,
                entity: 0,
                gen_seq: n + 1,
                invalid: None,
                duplicate: false,
                bytes: format!("{{\"n\":{n}}}").into_bytes(),
            },
            resend: false,
        })
        .collect()
    }

    fn run(sink: &Flaky, policy: RetryPolicy, records: Vec<Outgoing>) -> (Delivered, Duration) {
        let clock = FakeClock::new();
        let stats = SendStats::default();
        let d = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(deliver(
                sink,
                &clock,
                &policy,
                &mut Rng::new(1),
                &stats,
                records,
            ));
        (d, clock.now())
    }

    #[test]
    fn partial_failure_resends_only_the_failed_records() {
        let sink = Flaky {
            fail: vec![(1, 3), (1, 7), (1, 8), (2, 7)],
            calls: Mutex::default(),
            whole_call_failures: 0,
        };
        let (d, waited) = run(&sink, RetryPolicy::default(), batch(0..10));
        let calls = sink.calls.lock().unwrap().clone();
        assert_eq!(calls, vec![(0..10).collect(), vec![3, 7, 8], vec![7]]);
        assert_eq!(d.accepted.len(), 10);
        assert!(d.failed.is_empty());
        assert_eq!(d.retried, 4);
        // Two backoffs: 25–50 ms, then 50–100 ms.
        assert!(waited >= Duration::from_millis(75) && waited <= Duration::from_millis(150));
    }

    #[test]
    fn retries_stop_after_max_attempts() {
        let sink = Flaky {
            fail: (1..=3).map(|a| (a, 4)).collect(),
            calls: Mutex::default(),
            whole_call_failures: 0,
        };
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let (d, _) = run(&sink, policy, batch(0..6));
        assert_eq!(sink.calls.lock().unwrap().len(), 3);
        assert_eq!(d.accepted.len(), 5);
        assert_eq!(d.failed.len(), 1);
        assert_eq!(d.failed[0].0.record.n, 4);
        assert!(d.failed[0].1.contains("ServiceUnavailable"));
        assert_eq!(d.retried, 2);
    }

    #[test]
    fn whole_call_failures_resend_the_batch_and_permanent_ones_do_not() {
        let sink = Flaky {
            fail: vec![],
            calls: Mutex::default(),
            whole_call_failures: 2,
        };
        let (d, _) = run(&sink, RetryPolicy::default(), batch(0..5));
        assert_eq!(sink.calls.lock().unwrap().len(), 3);
        assert_eq!((d.accepted.len(), d.retried), (5, 10));

        struct Refuses;
        impl Sink for Refuses {
            fn limits(&self) -> BatchLimits {
                BatchLimits {
                    max_records: 1,
                    max_bytes: 1,
                }
            }
            fn put(&self, _: &[&Outgoing]) -> impl Future<Output = CallResult> + Send {
                std::future::ready(Err(CallError {
                    message: "ResourceNotFoundException".into(),
                    retryable: false,
                }))
            }
        }
        let clock = FakeClock::new();
        let d = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(deliver(
                &Refuses,
                &clock,
                &RetryPolicy::default(),
                &mut Rng::new(1),
                &SendStats::default(),
                batch(0..3),
            ));
        assert_eq!((d.accepted.len(), d.failed.len(), d.retried), (0, 3, 0));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let mut rng = Rng::new(2);
        for attempt in 1..30 {
            let b = p.backoff(attempt, &mut rng);
            let step = (p.base * (1 << (attempt - 1).min(16))).min(p.cap);
            assert!(b >= step / 2 && b <= step, "attempt {attempt}: {b:?}");
        }
    }
}
