//! Rate limiting: a token bucket over a [`Clock`].
//!
//! The bucket is pure arithmetic on the times it is given, and the only
//! waiting happens through the clock, so a test can drive it with a
//! [`FakeClock`] and check the held rate exactly, without timing the machine.
//!
//! Callers *reserve* tokens: the bucket may go into debt, and the caller
//! sleeps until the debt is paid. That keeps the long-run rate exact even
//! when records are taken in chunks, and bounds any burst by the capacity.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The client's clock trait: one definition, so the generator's clocks
/// drive the client's retry loop too.
pub use tideline_client::Clock;

/// The real clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// A clock that only moves when told to, or when someone sleeps on it.
#[derive(Debug, Default)]
pub struct FakeClock {
    now: Mutex<Duration>,
}

impl FakeClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }
    /// Moves time forward, as work or idleness would.
    pub fn advance(&self, d: Duration) {
        if let Ok(mut now) = self.now.lock() {
            *now += d;
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        self.now.lock().map(|n| *n).unwrap_or_default()
    }
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        self.advance(d);
        std::future::ready(())
    }
}

/// A token bucket: `rate` tokens per second, at most `capacity` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// An empty bucket at time `now`: it starts at the rate, not with a burst.
    pub fn new(rate: f64, capacity: f64, now: Duration) -> Self {
        Self {
            rate,
            capacity: capacity.max(1.0),
            tokens: 0.0,
            last: now,
        }
    }

    /// Takes `n` tokens at `now`, and says how long to wait before using them.
    pub fn reserve(&mut self, n: u64, now: Duration) -> Duration {
        if now > self.last {
            let earned = (now - self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + earned).min(self.capacity);
            self.last = now;
        }
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// A shared limiter: a token bucket behind a lock, or nothing for "as fast as possible".
#[derive(Debug)]
pub struct RateLimiter<C> {
    clock: C,
    bucket: Option<Mutex<TokenBucket>>,
    chunk: u64,
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter at `rate` records per second; `0` means unlimited.
    ///
    /// Records are taken in chunks of about 50 ms worth (at most `max_chunk`)
    /// so a fast rate does not pay a lock and a sleep per record, and the
    /// bucket saves up at most one chunk so bursts stay small.
    pub fn new(clock: C, rate: f64, max_chunk: u64) -> Self {
        if rate <= 0.0 || !rate.is_finite() {
            return Self {
                clock,
                bucket: None,
                chunk: max_chunk.max(1),
            };
        }
        let chunk = ((rate / 20.0) as u64).clamp(1, max_chunk.max(1));
        let bucket = TokenBucket::new(rate, chunk as f64, clock.now());
        Self {
            clock,
            bucket: Some(Mutex::new(bucket)),
            chunk,
        }
    }

    /// How many records to take at a time.
    pub fn chunk(&self) -> u64 {
        self.chunk
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Waits until `n` records may be sent.
    pub async fn acquire(&self, n: u64) {
        let Some(bucket) = &self.bucket else { return };
        let wait = match bucket.lock() {
            Ok(mut b) => b.reserve(n, self.clock.now()),
            Err(_) => Duration::ZERO,
        };
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Takes records as fast as the limiter allows for `secs` simulated seconds.
    /// `busy` is the fraction of each chunk's time slot spent working (I/O, generation).
    fn achieved(rate: f64, max_chunk: u64, secs: f64, busy: f64) -> f64 {
        block_on(async {
            let limiter = RateLimiter::new(FakeClock::new(), rate, max_chunk);
            let (mut taken, mut released_at) = (0u64, 0.0);
            while limiter.clock().now().as_secs_f64() < secs {
                let n = limiter.chunk();
                limiter.acquire(n).await;
                taken += n;
                released_at = limiter.clock().now().as_secs_f64();
                limiter
                    .clock()
                    .advance(Duration::from_secs_f64(busy * n as f64 / rate));
            }
            // Records released per second, up to the last release.
            taken as f64 / released_at
        })
    }

    #[test]
    fn holds_the_asked_rate_within_ten_percent() {
        for rate in [1.0, 7.0, 100.0, 1_000.0, 12_345.0, 250_000.0] {
            for max_chunk in [1, 10, 500] {
                for busy in [0.0, 0.5, 0.95] {
                    let got = achieved(rate, max_chunk, 5.0, busy);
                    let err = (got - rate).abs() / rate;
                    assert!(
                        err < 0.10,
                        "rate {rate} chunk {max_chunk} busy {busy}: got {got:.1}/s ({:.1}% off)",
                        err * 100.0
                    );
                }
            }
        }
    }

    #[test]
    fn bursts_after_idleness_are_bounded_by_the_capacity() {
        // A producer that goes idle for a while and then takes all it can:
        // in every window, taken <= rate * window + capacity.
        block_on(async {
            let rate = 1_000.0;
            let limiter = RateLimiter::new(FakeClock::new(), rate, 500);
            let capacity = limiter.chunk() as f64;
            let mut log: Vec<(f64, u64)> = Vec::new();
            let mut rng = crate::rng::Rng::new(9);
            let mut taken = 0u64;
            while limiter.clock().now().as_secs_f64() < 6.0 {
                if rng.below(10) == 0 {
                    limiter
                        .clock()
                        .advance(Duration::from_millis(rng.below(1500)));
                }
                let n = 1 + rng.below(limiter.chunk() * 2);
                limiter.acquire(n).await;
                taken += n;
                log.push((limiter.clock().now().as_secs_f64(), taken));
            }
            for (i, &(t0, _)) in log.iter().enumerate() {
                let before = if i == 0 { 0 } else { log[i - 1].1 };
                for &(t1, c1) in &log[i..] {
                    let in_window = (c1 - before) as f64;
                    assert!(
                        in_window <= rate * (t1 - t0) + capacity + 2.0 * limiter.chunk() as f64,
                        "{in_window} records in {:.3}s",
                        t1 - t0
                    );
                }
            }
            // Idleness is not made up for: the long-run rate stays at or under the target.
            let overall = taken as f64 / limiter.clock().now().as_secs_f64();
            assert!(overall <= rate * 1.10, "{overall}");
        });
    }

    #[test]
    fn zero_rate_never_waits() {
        block_on(async {
            let limiter = RateLimiter::new(FakeClock::new(), 0.0, 500);
            for _ in 0..1000 {
                limiter.acquire(500).await;
            }
            assert_eq!(limiter.clock().now(), Duration::ZERO);
        });
    }

    #[test]
    fn reserve_is_exact_arithmetic() {
        let mut b = TokenBucket::new(10.0, 5.0, Duration::ZERO);
        assert_eq!(b.reserve(1, Duration::ZERO), Duration::from_millis(100));
        // 1.1 s later 11 tokens were earned: one pays the debt, five are kept.
        assert_eq!(b.reserve(5, Duration::from_millis(1100)), Duration::ZERO);
        assert_eq!(
            b.reserve(1, Duration::from_millis(1100)),
            Duration::from_millis(100)
        );
    }
}
