//! Counters and latency percentiles shared by `send` and `verify`.

use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// p50, p99 and max of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of microsecond samples (sorts them).
    pub fn of_micros(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1] as f64 / 1000.0
        };
        Self {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Live counters of a `send` run, updated by every worker.
#[derive(Debug, Default)]
pub struct SendStats {
    /// Records generated (valid and invalid, not re-sends).
    pub generated: AtomicU64,
    /// Records accepted by the API (not re-sends).
    pub sent: AtomicU64,
    /// Re-sends (`--duplicates`) accepted.
    pub duplicates: AtomicU64,
    /// Invalid-on-purpose records accepted by the API.
    pub invalid: AtomicU64,
    /// Records never accepted.
    pub failed: AtomicU64,
    /// Record re-attempts after a partial or whole-call failure.
    pub retried: AtomicU64,
    /// API calls made.
    pub calls: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    manifest_error: Mutex<Option<String>>,
    failure_reasons: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// The readable part of an SDK error's text: the SDK appends its `Debug`
/// form in parentheses (` (ServiceError(ServiceError { …`), a dump no user
/// can act on; the chain of messages before it says what happened.
fn short_reason(message: &str) -> &str {
    let bytes = message.as_bytes();
    for (i, w) in bytes.windows(3).enumerate() {
        if w[0] == b' ' && w[1] == b'(' && w[2].is_ascii_uppercase() {
            let rest = &message[i + 2..];
            let ident_end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            if rest[ident_end..].starts_with('(') && message.ends_with(')') {
                return message[..i].trim_end();
            }
        }
    }
    message
}

/// Distinct failure reasons kept: enough to tell a wrong stream from a dead
/// port, bounded so a run of a million distinct messages stays small.
const MAX_FAILURE_REASONS: usize = 8;

/// Why records were not accepted, and how many: the API's or the
/// connection's own message ("ResourceNotFoundException", "Connection refused").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureReason {
    /// The last error a record failed with.
    pub reason: String,
    /// Records that failed with it.
    pub records: u64,
}

impl SendStats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records one API call's latency.
    pub fn call_latency(&self, d: Duration) {
        Self::add(&self.calls, 1);
        if let Ok(mut l) = self.latencies_us.lock() {
            l.push(d.as_micros() as u64);
        }
    }

    /// Notes a manifest write failure (the first one is kept).
    pub fn manifest_failed(&self, e: &std::io::Error) {
        if let Ok(mut slot) = self.manifest_error.lock()
            && slot.is_none()
        {
            *slot = Some(e.to_string());
        }
    }

    /// Counts a record that was never accepted, with why.
    pub fn record_failed(&self, reason: &str) {
        let reason = short_reason(reason);
        if let Ok(mut reasons) = self.failure_reasons.lock() {
            if let Some(n) = reasons.get_mut(reason) {
                *n += 1;
            } else if reasons.len() < MAX_FAILURE_REASONS {
                reasons.insert(reason.to_string(), 1);
            }
        }
    }

    /// Why records failed, most frequent first.
    pub fn failure_reasons(&self) -> Vec<FailureReason> {
        let mut out: Vec<FailureReason> = self
            .failure_reasons
            .lock()
            .map(|r| {
                r.iter()
                    .map(|(reason, &records)| FailureReason {
                        reason: reason.clone(),
                        records,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|r| std::cmp::Reverse(r.records));
        out
    }

    /// The first manifest write failure, if any.
    pub fn manifest_error(&self) -> Option<String> {
        self.manifest_error.lock().ok().and_then(|s| s.clone())
    }

    /// API latency percentiles so far.
    pub fn latency(&self) -> Percentiles {
        match self.latencies_us.lock() {
            Ok(mut l) => Percentiles::of_micros(&mut l),
            Err(_) => Percentiles::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_are_counted_without_the_sdk_dump() {
        let stats = SendStats::default();
        let refused = "dispatch failure: io error: tcp connect error: Connection refused (os error 111) (DispatchFailure(DispatchFailure { source: x }))";
        stats.record_failed(refused);
        stats.record_failed(refused);
        stats.record_failed("service error: ResourceNotFoundException: Firehose nope not found. (ServiceError(ServiceError { }))");
        let reasons = stats.failure_reasons();
        assert_eq!(
            reasons[0],
            FailureReason {
                reason: "dispatch failure: io error: tcp connect error: Connection refused (os error 111)".into(),
                records: 2
            }
        );
        assert_eq!(
            reasons[1].reason,
            "service error: ResourceNotFoundException: Firehose nope not found."
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut s: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let p = Percentiles::of_micros(&mut s);
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(Percentiles::of_micros(&mut []), Percentiles::default());
        assert_eq!(Percentiles::of_micros(&mut [7000]).p99_ms, 7.0);
    }
}
