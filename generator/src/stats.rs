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
    fn nearest_rank_percentiles() {
        let mut s: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let p = Percentiles::of_micros(&mut s);
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(Percentiles::of_micros(&mut []), Percentiles::default());
        assert_eq!(Percentiles::of_micros(&mut [7000]).p99_ms, 7.0);
    }
}
