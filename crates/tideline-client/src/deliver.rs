//! The retry rule every producer call shares.
//!
//! A [`Transport`] makes one batch call and reports, per record, whether it
//! was accepted. [`deliver`] owns the retry policy so that Firehose's partial
//! failures (`FailedPutCount` with a per-record `ErrorCode`) are handled by one
//! tested rule: re-send only what failed, with exponential backoff and jitter
//! (`tideline_core::retry::RetryPolicy`), a bounded number of times
//! (INVARIANTS.md #5). Re-sending the whole batch would create duplicates.
//!
//! The items are re-sent unchanged, so a record keeps its bytes and therefore
//! its event id on every attempt (INVARIANTS.md #2).

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tideline_core::limits::{FIREHOSE_BATCH_BYTES, FIREHOSE_BATCH_RECORDS};
use tideline_core::retry::{CallPlan, OnPermanent, RetryPolicy, resend_failed};
use tideline_core::{Classify, ErrorClass};

/// How much one call may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Records per call.
    pub max_records: usize,
    /// Bytes per call (the sum of the records' sizes before base64).
    pub max_bytes: usize,
}

impl BatchLimits {
    /// `PutRecordBatch`: 500 records and 4 MiB per call (AWS-CONTRACTS.md, Firehose).
    pub const FIREHOSE: Self = Self {
        max_records: FIREHOSE_BATCH_RECORDS,
        max_bytes: FIREHOSE_BATCH_BYTES,
    };

    /// Whether a record of `next_len` bytes may join a call that already holds
    /// `records` records of `bytes` bytes. An empty call takes any record, so
    /// an oversized one is sent alone and refused by the service, never stuck.
    pub fn fits(&self, records: usize, bytes: usize, next_len: usize) -> bool {
        records == 0
            || (records < self.max_records && bytes.saturating_add(next_len) <= self.max_bytes)
    }

    /// Checks the limits against Firehose's own: more would be refused by every call.
    pub fn validate_for_firehose(&self) -> Result<(), String> {
        if self.max_records == 0 || self.max_records > FIREHOSE_BATCH_RECORDS {
            return Err(format!(
                "records per call must be 1–{FIREHOSE_BATCH_RECORDS} (Firehose PutRecordBatch), got {}",
                self.max_records
            ));
        }
        if self.max_bytes == 0 || self.max_bytes > FIREHOSE_BATCH_BYTES {
            return Err(format!(
                "bytes per call must be 1–{FIREHOSE_BATCH_BYTES} (Firehose PutRecordBatch), got {}",
                self.max_bytes
            ));
        }
        Ok(())
    }
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

/// Per-record results of one call, in request order: `None` for accepted.
pub type CallResult = Result<Vec<Option<RecordError>>, CallError>;

/// One batch ingest API carrying items of type `T`.
pub trait Transport<T>: Send + Sync {
    /// How much one call may carry.
    fn limits(&self) -> BatchLimits;
    /// Makes one call with `batch`.
    fn put(&self, batch: &[&T]) -> impl Future<Output = CallResult> + Send;
}

impl<T, Tr: Transport<T> + ?Sized> Transport<T> for std::sync::Arc<Tr> {
    fn limits(&self) -> BatchLimits {
        (**self).limits()
    }
    fn put(&self, batch: &[&T]) -> impl Future<Output = CallResult> + Send {
        (**self).put(batch)
    }
}

/// Time, for measuring calls and sleeping between retries; a fake in tests.
pub trait Clock: Send + Sync {
    /// Time since the clock's own origin.
    fn now(&self) -> Duration;
    /// Waits for `d`.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        (**self).sleep(d)
    }
}

/// The machine's monotonic clock and tokio's timer.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// Why a record was finally not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The last error.
    pub message: String,
    /// False when the service refused it for good; true when retries ran out.
    pub retryable: bool,
    /// Calls that carried it.
    pub attempts: u32,
}

/// What became of a batch.
#[derive(Debug)]
pub struct Delivered<T> {
    /// Accepted items, each with the Unix time (µs) of the call that took it.
    pub accepted: Vec<(T, i64)>,
    /// Items never accepted, with why.
    pub failed: Vec<(T, Failure)>,
    /// Record re-attempts made.
    pub retried: u64,
    /// How long each call took, in call order.
    pub call_latencies: Vec<Duration>,
}

impl<T> Default for Delivered<T> {
    fn default() -> Self {
        Self {
            accepted: Vec::new(),
            failed: Vec::new(),
            retried: 0,
            call_latencies: Vec::new(),
        }
    }
}

impl Classify for RecordError {
    fn class(&self) -> ErrorClass {
        ErrorClass::retryable_if(self.retryable)
    }
}

impl Classify for CallError {
    fn class(&self) -> ErrorClass {
        ErrorClass::retryable_if(self.retryable)
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code)
    }
}

/// Sends a batch, re-sending only the records that failed, until all are
/// accepted, a failure is permanent, or `policy.max_attempts` calls were made.
///
/// The loop is the one every batch call in Tideline shares
/// ([`tideline_core::retry::resend_failed`]); this function adds the
/// producer's bookkeeping (when each call was made, how long it took).
/// The batch must fit one call ([`BatchLimits::fits`]); callers split first.
pub async fn deliver<T, Tr, C>(
    transport: &Tr,
    clock: &C,
    policy: &RetryPolicy,
    batch: Vec<T>,
) -> Delivered<T>
where
    Tr: Transport<T> + ?Sized,
    C: Clock + ?Sized,
{
    // Unix time (µs) of each call, and how long each took.
    let mut sent_at: Vec<i64> = Vec::new();
    let latencies: Mutex<Vec<Duration>> = Mutex::default();
    let outcome = resend_failed(
        policy,
        &CallPlan::whole(OnPermanent::FailEntry),
        batch.len(),
        |sent: &[usize]| {
            sent_at.push(chrono::Utc::now().timestamp_micros());
            let refs: Vec<&T> = sent.iter().map(|&i| &batch[i]).collect();
            let latencies = &latencies;
            async move {
                let started = clock.now();
                let answer = transport.put(&refs).await;
                lock(latencies).push(clock.now().saturating_sub(started));
                // The transport's per-record `None` is "accepted".
                answer.map(|results| {
                    results
                        .into_iter()
                        .map(|r| r.map_or(Ok(()), Err))
                        .collect::<Vec<_>>()
                })
            }
        },
        |d| {
            tracing::debug!(
                delay_ms = d.as_millis() as u64,
                "re-sending only the failed records"
            );
            clock.sleep(d)
        },
    )
    .await;
    let mut items: Vec<Option<T>> = batch.into_iter().map(Some).collect();
    let mut out = Delivered {
        retried: outcome.resent,
        call_latencies: std::mem::take(&mut *lock(&latencies)),
        ..Delivered::default()
    };
    for (i, call) in outcome.accepted {
        let at = sent_at.get(call as usize - 1).copied().unwrap_or_default();
        if let Some(item) = items.get_mut(i).and_then(Option::take) {
            out.accepted.push((item, at));
        }
    }
    let exhausted = outcome.failed.iter().filter(|(_, g)| g.retryable).count();
    if exhausted > 0 {
        tracing::warn!(
            records = exhausted,
            attempts = policy.max_attempts,
            "giving up on records after the last retry"
        );
    }
    for (i, gave_up) in outcome.failed {
        if let Some(item) = items.get_mut(i).and_then(Option::take) {
            out.failed.push((
                item,
                Failure {
                    message: gave_up.why.to_string(),
                    retryable: gave_up.retryable,
                    attempts: gave_up.attempts,
                },
            ));
        }
    }
    out
}

/// The lock of a mutex only this module's calls take; a panic while it is
/// held cannot leave the latency list half-written, so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Time only moves when someone sleeps.
    #[derive(Default)]
    struct FakeClock(AtomicU64);
    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            Duration::from_micros(self.0.load(Ordering::SeqCst))
        }
        fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
            self.0.fetch_add(d.as_micros() as u64, Ordering::SeqCst);
            std::future::ready(())
        }
    }

    /// Fails chosen records on chosen attempts, and logs every call.
    struct Flaky {
        /// (attempt, record) pairs that fail retryably.
        fail: Vec<(u32, u64)>,
        calls: Mutex<Vec<Vec<u64>>>,
        whole_call_failures: u32,
    }

    impl Transport<u64> for Flaky {
        fn limits(&self) -> BatchLimits {
            BatchLimits::FIREHOSE
        }
        fn put(&self, batch: &[&u64]) -> impl Future<Output = CallResult> + Send {
            let mut calls = self.calls.lock().unwrap();
            calls.push(batch.iter().map(|n| **n).collect());
            let attempt = calls.len() as u32;
            let r = if attempt <= self.whole_call_failures {
                Err(CallError {
                    message: "ServiceUnavailableException".into(),
                    retryable: true,
                })
            } else {
                Ok(batch
                    .iter()
                    .map(|n| {
                        self.fail.contains(&(attempt, **n)).then(|| RecordError {
                            code: "ServiceUnavailableException: slow down".into(),
                            retryable: true,
                        })
                    })
                    .collect())
            };
            std::future::ready(r)
        }
    }

    fn flaky(fail: Vec<(u32, u64)>, whole_call_failures: u32) -> Flaky {
        Flaky {
            fail,
            calls: Mutex::default(),
            whole_call_failures,
        }
    }

    fn run<Tr: Transport<u64>>(
        t: &Tr,
        policy: RetryPolicy,
        records: Vec<u64>,
    ) -> (Delivered<u64>, Duration) {
        let clock = FakeClock::default();
        let d = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(deliver(t, &clock, &policy, records));
        (d, clock.now())
    }

    #[test]
    fn partial_failure_resends_only_the_failed_records() {
        let t = flaky(vec![(1, 3), (1, 7), (1, 8), (2, 7)], 0);
        let policy = RetryPolicy::default();
        let (d, waited) = run(&t, policy, (0..10).collect());
        let calls = t.calls.lock().unwrap().clone();
        assert_eq!(calls, vec![(0..10).collect(), vec![3, 7, 8], vec![7]]);
        assert_eq!(d.accepted.len(), 10);
        assert!(d.failed.is_empty());
        assert_eq!(d.retried, 4);
        assert_eq!(d.call_latencies.len(), 3);
        // Two full-jitter backoffs: at most 50 ms, then at most 100 ms.
        assert!(waited <= policy.delay(1, 1.0) + policy.delay(2, 1.0));
    }

    #[test]
    fn retries_stop_after_max_attempts() {
        let t = flaky((1..=3).map(|a| (a, 4)).collect(), 0);
        let (d, _) = run(&t, RetryPolicy::fast(3), (0..6).collect());
        assert_eq!(t.calls.lock().unwrap().len(), 3);
        assert_eq!(d.accepted.len(), 5);
        assert_eq!(d.failed.len(), 1);
        let (n, why) = &d.failed[0];
        assert_eq!(*n, 4);
        assert!(why.message.contains("ServiceUnavailable"));
        assert!(why.retryable);
        assert_eq!(why.attempts, 3);
        assert_eq!(d.retried, 2);
    }

    #[test]
    fn whole_call_failures_resend_the_batch_and_permanent_ones_do_not() {
        let t = flaky(vec![], 2);
        let (d, _) = run(&t, RetryPolicy::fast(6), (0..5).collect());
        assert_eq!(t.calls.lock().unwrap().len(), 3);
        assert_eq!((d.accepted.len(), d.retried), (5, 10));

        struct Refuses(AtomicU64);
        impl Transport<u64> for Refuses {
            fn limits(&self) -> BatchLimits {
                BatchLimits::FIREHOSE
            }
            fn put(&self, _: &[&u64]) -> impl Future<Output = CallResult> + Send {
                self.0.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Err(CallError {
                    message: "ResourceNotFoundException".into(),
                    retryable: false,
                }))
            }
        }
        let refuses = Refuses(AtomicU64::new(0));
        let (d, _) = run(&refuses, RetryPolicy::fast(6), (0..3).collect());
        assert_eq!((d.accepted.len(), d.failed.len(), d.retried), (0, 3, 0));
        assert_eq!(refuses.0.load(Ordering::SeqCst), 1);
        assert!(d.failed.iter().all(|(_, f)| !f.retryable));
    }

    #[test]
    fn an_empty_call_takes_any_record_and_limits_are_checked() {
        let l = BatchLimits {
            max_records: 2,
            max_bytes: 10,
        };
        assert!(l.fits(0, 0, 100));
        assert!(l.fits(1, 4, 6));
        assert!(!l.fits(1, 4, 7));
        assert!(!l.fits(2, 0, 1));
        assert!(BatchLimits::FIREHOSE.validate_for_firehose().is_ok());
        let too_many = BatchLimits {
            max_records: 501,
            ..BatchLimits::FIREHOSE
        };
        assert!(
            too_many
                .validate_for_firehose()
                .unwrap_err()
                .contains("500")
        );
    }
}
