//! The counters every stage keeps: received, sent, discarded, failed
//! (STYLE.md, "one naming scheme"). `sent` is handed on to the next hop,
//! `discarded` is deliberately not forwarded (duplicates, non-event changes,
//! test events a consumer skips), `failed` is rejected or retried.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals for one stage.
#[derive(Debug, Default)]
pub struct StageCounters {
    received: AtomicU64,
    sent: AtomicU64,
    discarded: AtomicU64,
    failed: AtomicU64,
}

/// A point-in-time copy of [`StageCounters`], or one batch's counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Records that entered the stage.
    pub received: u64,
    /// Records passed on.
    pub sent: u64,
    /// Records deliberately not passed on.
    pub discarded: u64,
    /// Records rejected, dead-lettered or left for retry.
    pub failed: u64,
}

impl StageCounters {
    /// Adds one batch's counts.
    pub fn add(&self, c: Counts) {
        self.received.fetch_add(c.received, Ordering::Relaxed);
        self.sent.fetch_add(c.sent, Ordering::Relaxed);
        self.discarded.fetch_add(c.discarded, Ordering::Relaxed);
        self.failed.fetch_add(c.failed, Ordering::Relaxed);
    }

    /// The totals so far.
    pub fn snapshot(&self) -> Counts {
        Counts {
            received: self.received.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}
