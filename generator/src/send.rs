//! The `send` runner: one producer, `C` senders.
//!
//! A single producer generates records in seed order and routes each to the
//! sender that owns its entity (`entity % C`). Each sender makes one call at
//! a time and finishes its retries before the next call, so two records of
//! one entity are never in flight at once: any disorder `verify` finds is the
//! pipeline's, not ours. (One exception cannot be avoided by a producer: a
//! record that fails inside a partly failed batch is re-sent after its
//! accepted successors. `verify` reports it.)
//!
//! `--duplicates` copies are re-sent by the same sender after the original
//! was accepted, with the same bytes, as a producer retry after a lost
//! acknowledgement would.

use crate::manifest::{
    FLAG_FAILED, FLAG_INVALID, FLAG_RESEND, FLAG_TEST, ManifestEntry, ManifestWriter,
};
use crate::profiles::{GenConfig, Generator};
use crate::rate::{Clock, RateLimiter};
use crate::stats::{Percentiles, SendStats};
use crate::targets::{Delivered, Outgoing, RetryPolicy, Sink, deliver};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// When to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many records (valid and invalid, not counting re-sends).
    Count(u64),
    /// After this long.
    Duration(Duration),
}

/// A `send` run.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// What to generate.
    pub gen_config: GenConfig,
    /// When to stop.
    pub stop: Stop,
    /// Records per second; 0 is as fast as possible.
    pub rate: f64,
    /// Concurrent senders.
    pub concurrency: usize,
    /// Retry policy for failed records.
    pub retry: RetryPolicy,
}

/// The manifest of a run, shared by the senders.
pub type SharedManifest = Arc<Mutex<ManifestWriter<Box<dyn Write + Send>>>>;

/// The outcome of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SendSummary {
    /// Target name.
    pub target: String,
    /// Records generated (valid and invalid).
    pub generated: u64,
    /// Records accepted by the API, re-sends not counted.
    pub sent: u64,
    /// Records the API never accepted.
    pub failed: u64,
    /// Re-attempts after partial or whole-call failures.
    pub retried: u64,
    /// Duplicate re-sends accepted.
    pub duplicates: u64,
    /// Invalid-on-purpose records accepted by the API (the pipeline must reject them).
    pub invalid: u64,
    /// API calls.
    pub calls: u64,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// `sent / elapsed_s`.
    pub achieved_rate: f64,
    /// Latency of API calls.
    pub api_latency: Percentiles,
    /// Manifest size in bytes, if one was written.
    pub manifest_bytes: Option<u64>,
    /// The first manifest write error: the manifest is then incomplete.
    pub manifest_error: Option<String>,
    /// Why records failed (stream not found, connection refused, …).
    pub failure_reasons: Vec<crate::stats::FailureReason>,
}

impl SendSummary {
    /// 0 when every record was accepted and the manifest is whole, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed > 0 || self.manifest_error.is_some())
    }

    /// One line for humans, then one line per failure reason.
    pub fn line(&self) -> String {
        let mut line = self.counts_line();
        for r in &self.failure_reasons {
            line.push_str(&format!("\n  {} records failed: {}", r.records, r.reason));
        }
        line
    }

    fn counts_line(&self) -> String {
        format!(
            "send {}: sent={} failed={} retried={} duplicates={} invalid={} rate={:.1}/s elapsed={:.2}s calls={} api_p50={:.2}ms api_p99={:.2}ms",
            if self.exit_code() == 0 {
                "OK"
            } else {
                "FAILED"
            },
            self.sent,
            self.failed,
            self.retried,
            self.duplicates,
            self.invalid,
            self.achieved_rate,
            self.elapsed_s,
            self.calls,
            self.api_latency.p50_ms,
            self.api_latency.p99_ms,
        )
    }
}

/// Runs the producer and the senders to completion.
pub async fn run<S, C>(
    config: SendConfig,
    sink: Arc<S>,
    clock: Arc<C>,
    stats: Arc<SendStats>,
    manifest: Option<SharedManifest>,
) -> SendSummary
where
    S: Sink + 'static,
    C: Clock + 'static,
{
    let started = std::time::Instant::now();
    let concurrency = config.concurrency.max(1);
    let limits = sink.limits();
    let generator = Generator::new(config.gen_config.clone());
    let names: Arc<Vec<String>> = Arc::new(generator.entity_names().to_vec());
    let test_flag = if config.gen_config.test_events {
        FLAG_TEST
    } else {
        0
    };

    let mut senders = Vec::with_capacity(concurrency);
    let mut handles = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (tx, rx) = mpsc::channel::<Outgoing>(limits.max_records.max(1) * 2);
        senders.push(tx);
        let ctx = Worker {
            sink: sink.clone(),
            clock: clock.clone(),
            stats: stats.clone(),
            manifest: manifest.clone(),
            names: names.clone(),
            retry: config.retry,
            test_flag,
        };
        handles.push(tokio::spawn(ctx.run(rx)));
    }

    let limiter = RateLimiter::new(clock.clone(), config.rate, limits.max_records as u64);
    produce(generator, &limiter, config.stop, &senders, &stats).await;
    drop(senders);
    for h in handles {
        let _ = h.await;
    }

    let manifest_bytes = manifest.and_then(|m| {
        m.lock().ok().map(|mut w| {
            if let Err(e) = w.flush() {
                stats.manifest_failed(&e);
            }
            w.bytes_written()
        })
    });
    let elapsed = started.elapsed().as_secs_f64();
    let sent = SendStats::get(&stats.sent);
    SendSummary {
        target: String::new(),
        generated: SendStats::get(&stats.generated),
        sent,
        failed: SendStats::get(&stats.failed),
        retried: SendStats::get(&stats.retried),
        duplicates: SendStats::get(&stats.duplicates),
        invalid: SendStats::get(&stats.invalid),
        calls: SendStats::get(&stats.calls),
        elapsed_s: elapsed,
        achieved_rate: if elapsed > 0.0 {
            sent as f64 / elapsed
        } else {
            0.0
        },
        api_latency: stats.latency(),
        manifest_bytes,
        manifest_error: stats.manifest_error(),
        failure_reasons: stats.failure_reasons(),
    }
}

async fn produce<C: Clock>(
    mut generator: Generator,
    limiter: &RateLimiter<Arc<C>>,
    stop: Stop,
    senders: &[mpsc::Sender<Outgoing>],
    stats: &SendStats,
) {
    let mut produced = 0u64;
    let start = limiter.clock().now();
    loop {
        let mut take = limiter.chunk();
        match stop {
            Stop::Count(total) => {
                if produced >= total {
                    return;
                }
                take = take.min(total - produced);
            }
            Stop::Duration(d) => {
                if limiter.clock().now().saturating_sub(start) >= d {
                    return;
                }
            }
        }
        limiter.acquire(take).await;
        for _ in 0..take {
            let record = generator.next_record();
            let worker = record.entity as usize % senders.len();
            produced += 1;
            SendStats::add(&stats.generated, 1);
            let out = Outgoing {
                record,
                resend: false,
            };
            if senders[worker].send(out).await.is_err() {
                return;
            }
        }
    }
}

struct Worker<S, C> {
    sink: Arc<S>,
    clock: Arc<C>,
    stats: Arc<SendStats>,
    manifest: Option<SharedManifest>,
    names: Arc<Vec<String>>,
    retry: RetryPolicy,
    test_flag: u8,
}

impl<S: Sink, C: Clock> Worker<S, C> {
    async fn run(mut self, mut rx: mpsc::Receiver<Outgoing>) {
        let limits = self.sink.limits();
        // Re-sends and held records, oldest first; they go before anything newer.
        let mut resends: VecDeque<Outgoing> = VecDeque::new();
        let mut open = true;
        while open || !resends.is_empty() {
            let mut batch: Vec<Outgoing> = Vec::new();
            let mut bytes = 0usize;
            let fits = |batch: &Vec<Outgoing>, bytes: usize, o: &Outgoing| {
                batch.is_empty()
                    || (batch.len() < limits.max_records
                        && bytes + o.record.bytes.len() <= limits.max_bytes)
            };
            // Re-sends go first: they are the oldest.
            while let Some(o) = resends.front() {
                if !fits(&batch, bytes, o) {
                    break;
                }
                if let Some(o) = resends.pop_front() {
                    bytes += o.record.bytes.len();
                    batch.push(o);
                }
            }
            if open && batch.is_empty() {
                match rx.recv().await {
                    Some(o) => {
                        bytes += o.record.bytes.len();
                        batch.push(o);
                    }
                    None => open = false,
                }
            }
            // Then whatever is already queued, without waiting: at high rates the
            // queue fills during the previous call, so batches grow by themselves.
            // Nothing newer may overtake what is still waiting in `resends`.
            let mut held: Option<Outgoing> = None;
            while open && resends.is_empty() {
                match rx.try_recv() {
                    Ok(o) => {
                        if fits(&batch, bytes, &o) {
                            bytes += o.record.bytes.len();
                            batch.push(o);
                        } else {
                            held = Some(o);
                            break;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                    }
                }
            }
            if batch.is_empty() {
                continue;
            }
            let delivered =
                deliver(self.sink.as_ref(), self.clock.as_ref(), &self.retry, batch).await;
            for latency in &delivered.call_latencies {
                self.stats.call_latency(*latency);
            }
            self.account(delivered, &mut resends);
            if let Some(o) = held {
                // Kept for the next call, ahead of anything received later.
                resends.push_back(o);
            }
        }
    }

    fn account(&mut self, d: Delivered<Outgoing>, resends: &mut VecDeque<Outgoing>) {
        let stats = &self.stats;
        SendStats::add(&stats.retried, d.retried);
        let mut log: Vec<(ManifestEntry, u32)> =
            Vec::with_capacity(d.accepted.len() + d.failed.len());
        for (o, sent_at) in d.accepted {
            let r = &o.record;
            let mut flags = self.test_flag;
            if o.resend {
                flags |= FLAG_RESEND;
                SendStats::add(&stats.duplicates, 1);
            } else {
                SendStats::add(&stats.sent, 1);
            }
            if r.invalid.is_some() {
                flags |= FLAG_INVALID;
                if !o.resend {
                    SendStats::add(&stats.invalid, 1);
                }
            }
            log.push((
                ManifestEntry {
                    n: r.n,
                    entity: r.entity,
                    gen_seq: r.gen_seq,
                    sent_at_us: sent_at,
                    flags,
                },
                r.entity,
            ));
            if r.duplicate && !o.resend {
                resends.push_back(Outgoing {
                    record: o.record,
                    resend: true,
                });
            }
        }
        let now = chrono::Utc::now().timestamp_micros();
        for (o, why) in d.failed {
            let r = &o.record;
            if !o.resend {
                SendStats::add(&stats.failed, 1);
                stats.record_failed(&why.message);
            }
            let mut flags = self.test_flag | FLAG_FAILED;
            if o.resend {
                flags |= FLAG_RESEND;
            }
            if r.invalid.is_some() {
                flags |= FLAG_INVALID;
            }
            log.push((
                ManifestEntry {
                    n: r.n,
                    entity: r.entity,
                    gen_seq: r.gen_seq,
                    sent_at_us: now,
                    flags,
                },
                r.entity,
            ));
        }
        if let Some(m) = &self.manifest
            && let Ok(mut w) = m.lock()
        {
            for (e, k) in &log {
                let name = self.names.get(*k as usize).map_or("", String::as_str);
                if let Err(err) = w.append(e, name) {
                    stats.manifest_failed(&err);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::Profile;
    use crate::rate::FakeClock;
    use crate::targets::{BatchLimits, CallResult, RecordError, Transport};
    use std::future::Future;

    /// Accepts everything except every 7th record on its first try, and logs calls.
    #[derive(Default)]
    struct Recording {
        /// Per call: (entity, gen_seq, a re-send or a retry).
        calls: Mutex<Vec<Vec<(u32, u64, bool)>>>,
        tried: Mutex<std::collections::HashSet<u64>>,
    }

    impl Transport<Outgoing> for Recording {
        fn limits(&self) -> BatchLimits {
            BatchLimits {
                max_records: 16,
                max_bytes: 8 * 1024,
            }
        }
        fn put(&self, batch: &[&Outgoing]) -> impl Future<Output = CallResult> + Send {
            let mut tried = self.tried.lock().unwrap();
            let mut log = Vec::new();
            let results = batch
                .iter()
                .map(|o| {
                    let first = tried.insert(o.record.n);
                    log.push((o.record.entity, o.record.gen_seq, o.resend || !first));
                    (first && o.record.n % 7 == 3 && !o.resend).then(|| RecordError {
                        code: "ServiceUnavailableException".into(),
                        retryable: true,
                    })
                })
                .collect();
            self.calls.lock().unwrap().push(log);
            std::future::ready(Ok(results))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn senders_own_their_entities_and_resend_duplicates() {
        let concurrency = 3;
        let config = SendConfig {
            gen_config: GenConfig {
                seed: 5,
                profile: Profile::Transactions,
                entities: 20,
                duplicates_pct: 10.0,
                invalid_pct: 3.0,
                ..GenConfig::default()
            },
            stop: Stop::Count(3000),
            rate: 0.0,
            concurrency,
            retry: RetryPolicy::default(),
        };
        let sink = Arc::new(Recording::default());
        let stats = Arc::new(SendStats::default());
        let out: Box<dyn Write + Send> = Box::new(Vec::new());
        let manifest = Arc::new(Mutex::new(
            ManifestWriter::new(out, 5, 0, "gen-5-").unwrap(),
        ));
        let s = run(
            config,
            sink.clone(),
            Arc::new(FakeClock::new()),
            stats,
            Some(manifest.clone()),
        )
        .await;
        assert_eq!((s.generated, s.sent, s.failed), (3000, 3000, 0));
        assert!(s.retried > 300, "{}", s.line());
        assert!((200..400).contains(&s.duplicates), "{}", s.line());
        assert!(s.manifest_bytes.unwrap() > 3000);

        let calls = sink.calls.lock().unwrap();
        let mut highest = [0u64; 20];
        for call in calls.iter() {
            assert!(call.len() <= 16);
            // One call carries the entities of one sender only.
            let owner = call[0].0 as usize % concurrency;
            assert!(
                call.iter()
                    .all(|(e, _, _)| *e as usize % concurrency == owner)
            );
        }
        // First tries of each entity's records go out in generator order; only
        // re-sends and retries after a partial failure come later.
        for call in calls.iter() {
            for &(e, gen_seq, again) in call {
                if gen_seq == 0 || again {
                    continue;
                }
                assert!(
                    gen_seq > highest[e as usize],
                    "entity {e}: {gen_seq} after {}",
                    highest[e as usize]
                );
                highest[e as usize] = gen_seq;
            }
        }
    }
}
