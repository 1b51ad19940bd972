//! Retrying that stops (INVARIANTS.md #5), in one place:
//!
//! - [`RetryPolicy`]: exponential backoff with full jitter, bounded;
//! - [`resend_failed`]: the one loop that sends a batch's entries in calls and
//!   resends **only** the entries that failed, with that backoff, until each
//!   is taken or given up. Every partial-failure API Tideline calls goes
//!   through it: SQS `SendMessageBatch` (the transform stage), EventBridge
//!   `PutEvents` (the emit stage, replay), Firehose `PutRecordBatch` (the
//!   producer client, `tideline reingest`, the generator). Resending a whole
//!   batch after a partial failure would duplicate what was taken, and
//!   dropping a failed entry would lose it.
//!
//! Nothing here does I/O or reads a clock: the caller passes the call and the
//! sleep, so the loop runs the same under tokio, in a Lambda, and in a test
//! with a fake clock.

use crate::error::{Classify, ErrorClass};
use std::future::Future;
use std::time::Duration;

/// How often, and how patiently, to retry a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay cap for the first retry.
    pub base_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// A policy that never waits long; for tests.
    pub fn fast(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    /// The delay before retry number `retry` (1-based), drawn uniformly from
    /// `[0, min(max_delay, base_delay * 2^(retry-1))]` ("full jitter").
    pub fn delay(&self, retry: u32, unit_random: f64) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        ceiling.mul_f64(unit_random.clamp(0.0, 1.0))
    }

    /// [`Self::delay`] with a thread-local random draw.
    pub fn jittered_delay(&self, retry: u32) -> Duration {
        self.delay(retry, rand::random::<f64>())
    }
}

/// What one call answered: a result per entry sent, in the order sent, or
/// the failure of the whole call. The shape of every batch port
/// (`Queue::send_batch`, `Bus::put_events`) and of the producer's transport.
pub type CallAnswer<EE, CE> = Result<Vec<Result<(), EE>>, CE>;

/// What a permanent failure does to the entries still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPermanent {
    /// Only the refused entry is given up; the others go on. For entries
    /// that stand alone: a producer's records, the transform's queue sends.
    FailEntry,
    /// Every entry still pending is given up with it. For an ordered batch
    /// whose caller rewinds to its first failure (the emit stage): resending
    /// what comes after the failure would only publish it before the rewind
    /// publishes it again.
    EndBatch,
}

/// How pending entries are put into calls.
#[derive(Debug, Clone, Copy)]
pub struct CallPlan<'a> {
    /// Entries one call carries at most.
    pub max_entries: usize,
    /// The most bytes one call carries, with each entry's size; a call always
    /// takes its first entry, so an oversized one is sent alone and refused
    /// by the service, never stuck.
    pub max_bytes: Option<(usize, &'a [usize])>,
    /// Each entry's ordering group (the entity). With groups, a call carries
    /// at most one entry per group, the group's earliest pending one, so a
    /// resend never lands behind a later entry of its group (SQS FIFO: the
    /// entries of one `SendMessageBatch` succeed or fail independently); and
    /// an entry given up unjudged holds back every later entry of its group.
    pub groups: Option<&'a [&'a str]>,
    /// What a permanent failure does to the rest.
    pub on_permanent: OnPermanent,
    /// Calls one round may have in flight at once (at least 1). With
    /// groups, a round carries at most one entry per group, the group's
    /// earliest pending one, so no two calls in flight carry the same group
    /// and each group's order holds whatever order the calls complete in.
    /// Without groups, more than one only suits entries that stand alone.
    pub max_concurrent_calls: usize,
}

impl CallPlan<'_> {
    /// Every pending entry in each call: the caller has already cut the
    /// batch to fit one call.
    pub const fn whole(on_permanent: OnPermanent) -> Self {
        Self {
            max_entries: usize::MAX,
            max_bytes: None,
            groups: None,
            on_permanent,
            max_concurrent_calls: 1,
        }
    }

    /// The calls of the next round, to be made concurrently: up to
    /// [`Self::max_concurrent_calls`] calls, each as [`Self::next_call`]
    /// plans it, over the pending entries that may be in flight together
    /// (with groups, each group's earliest pending entry).
    fn next_round(&self, pending: &[usize]) -> Vec<Vec<usize>> {
        let max_calls = self.max_concurrent_calls.max(1);
        if max_calls == 1 {
            return vec![self.next_call(pending)];
        }
        let mut rest: Vec<usize> = pending.to_vec();
        if let Some(groups) = self.groups {
            let mut seen = std::collections::HashSet::new();
            rest.retain(|&i| seen.insert(groups.get(i)));
        }
        let mut calls = Vec::new();
        while calls.len() < max_calls && !rest.is_empty() {
            let call = self.next_call(&rest);
            rest.retain(|i| !call.contains(i));
            calls.push(call);
        }
        calls
    }

    /// The next call: pending entries in order, at most one per group, within
    /// the count and byte limits. Never empty while something is pending.
    fn next_call(&self, pending: &[usize]) -> Vec<usize> {
        let max_entries = self.max_entries.max(1);
        let mut call: Vec<usize> = Vec::with_capacity(pending.len().min(max_entries));
        let mut bytes = 0usize;
        for &i in pending {
            if call.len() == max_entries {
                break;
            }
            // At most ten entries a call: a linear search beats hashing.
            if let Some(groups) = self.groups
                && call.iter().any(|&c| groups.get(c) == groups.get(i))
            {
                continue;
            }
            if let Some((max, sizes)) = self.max_bytes {
                let size = sizes.get(i).copied().unwrap_or(0);
                if !call.is_empty() && bytes.saturating_add(size) > max {
                    break;
                }
                bytes = bytes.saturating_add(size);
            }
            call.push(i);
        }
        call
    }

    fn same_group(&self, a: usize, b: usize) -> bool {
        self.groups
            .is_some_and(|groups| groups.get(a).is_some() && groups.get(a) == groups.get(b))
    }
}

/// Why an entry was last not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why<EE, CE> {
    /// The entry's own failure, as the service reported it.
    Entry(EE),
    /// The whole call failed.
    Call(CE),
    /// The answer had a different number of results than the call had
    /// entries, so it cannot say what was taken; resending is safe because
    /// every hop de-duplicates by event id (INVARIANTS.md #2).
    ShortAnswer {
        /// Results in the answer.
        results: usize,
        /// Entries in the call.
        sent: usize,
    },
    /// It never failed itself: it was given up with an entry before it (its
    /// group's, or the batch's with [`OnPermanent::EndBatch`]).
    Behind,
}

impl<EE: std::fmt::Display, CE: std::fmt::Display> std::fmt::Display for Why<EE, CE> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Entry(e) => write!(f, "{e}"),
            Self::Call(e) => write!(f, "{e}"),
            Self::ShortAnswer { results, sent } => {
                write!(f, "the answer had {results} results for {sent} entries")
            }
            Self::Behind => write!(f, "held back behind an earlier entry that was not taken"),
        }
    }
}

/// An entry that was given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp<EE, CE> {
    /// The last reason it was not taken.
    pub why: Why<EE, CE>,
    /// Calls that carried it.
    pub attempts: u32,
    /// False when the service refused it, or the call, for good: sending it
    /// again cannot help. True when the retries ran out or it was held back:
    /// it may be taken later.
    pub retryable: bool,
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resent<EE, CE> {
    /// Entries taken, each with the number (1-based) of the call that took
    /// it, in the order they were taken.
    pub accepted: Vec<(usize, u32)>,
    /// Entries given up, with why, in the order they were given up.
    pub failed: Vec<(usize, GaveUp<EE, CE>)>,
    /// Calls made.
    pub calls: u32,
    /// Entries sent again after a failure.
    pub resent: u64,
}

impl<EE, CE> Default for Resent<EE, CE> {
    fn default() -> Self {
        Self {
            accepted: Vec::new(),
            failed: Vec::new(),
            calls: 0,
            resent: 0,
        }
    }
}

/// Per-entry state of the loop.
struct State<EE, CE> {
    /// Entries not yet taken or given up, in batch order (rebuilt each round).
    pending: Vec<usize>,
    /// Taken or given up.
    done: Vec<bool>,
    attempts: Vec<u32>,
    last: Vec<Option<Why<EE, CE>>>,
    out: Resent<EE, CE>,
}

impl<EE, CE> State<EE, CE> {
    fn accept(&mut self, i: usize, call: u32) {
        self.done[i] = true;
        self.out.accepted.push((i, call));
    }

    /// Gives up `i`; when the service did not judge it (retries ran out, the
    /// call failed), every later entry of its group is held back with it:
    /// `i` may still be sent later, and they must not overtake it.
    fn give_up(&mut self, plan: &CallPlan<'_>, i: usize, why: Why<EE, CE>, retryable: bool) {
        let judged = !retryable && matches!(why, Why::Entry(_));
        self.done[i] = true;
        self.last[i] = None;
        let attempts = self.attempts[i];
        self.out.failed.push((
            i,
            GaveUp {
                why,
                attempts,
                retryable,
            },
        ));
        if !judged && plan.groups.is_some() {
            let behind: Vec<usize> = self
                .pending
                .iter()
                .copied()
                .filter(|&p| p > i && !self.done[p] && plan.same_group(i, p))
                .collect();
            for p in behind {
                self.hold_back(p);
            }
        }
    }

    /// Gives up `i` because an entry before it was given up, with its own
    /// last failure if it had one. It may be sent again later.
    fn hold_back(&mut self, i: usize) {
        self.done[i] = true;
        let why = self.last[i].take().unwrap_or(Why::Behind);
        let attempts = self.attempts[i];
        self.out.failed.push((
            i,
            GaveUp {
                why,
                attempts,
                retryable: true,
            },
        ));
    }

    /// Notes a retryable failure of `i`; gives it up once the calls that
    /// carried it reach `max_attempts`.
    fn failed_for_now(
        &mut self,
        plan: &CallPlan<'_>,
        max_attempts: u32,
        i: usize,
        why: Why<EE, CE>,
    ) {
        if self.attempts[i] >= max_attempts {
            self.give_up(plan, i, why, true);
        } else {
            self.last[i] = Some(why);
        }
    }
}

/// Sends the `entries` entries of a batch in calls planned by `plan`,
/// resending only the entries that failed retryably, with `policy`'s
/// jittered backoff between failing rounds, until every entry is taken or
/// given up.
///
/// - `call` makes one call with the given entry indexes (ascending) and
///   answers per entry. The indexes are the caller's: it builds the request
///   from its own items, which this loop never owns or copies.
/// - `sleep` waits (tokio's timer, or a test's fake clock).
///
/// An entry is given up when the service refuses it permanently, when a
/// call carrying it fails permanently, when `policy.max_attempts` calls (at
/// least one) have carried it, or when it is held back ([`CallPlan::groups`],
/// [`OnPermanent::EndBatch`]). Every entry ends in exactly one of
/// [`Resent::accepted`] and [`Resent::failed`]: an entry taken is never sent
/// again, and one that failed is never dropped.
pub async fn resend_failed<EE, CE, Call, CallFut, Sleep, SleepFut>(
    policy: &RetryPolicy,
    plan: &CallPlan<'_>,
    entries: usize,
    mut call: Call,
    sleep: Sleep,
) -> Resent<EE, CE>
where
    EE: Classify,
    CE: Classify + Clone,
    Call: FnMut(&[usize]) -> CallFut,
    CallFut: Future<Output = CallAnswer<EE, CE>>,
    Sleep: Fn(Duration) -> SleepFut,
    SleepFut: Future<Output = ()>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut s = State {
        pending: (0..entries).collect(),
        done: vec![false; entries],
        attempts: vec![0; entries],
        last: (0..entries).map(|_| None).collect(),
        out: Resent::default(),
    };
    // Rounds in a row that had a retryable failure: the backoff's exponent.
    let mut failing_rounds = 0;
    while !s.pending.is_empty() {
        let round = plan.next_round(&s.pending);
        let mut numbers = Vec::with_capacity(round.len());
        for sent in &round {
            s.out.calls += 1;
            numbers.push(s.out.calls);
            for &i in sent {
                if s.attempts[i] > 0 {
                    s.out.resent += 1;
                }
                s.attempts[i] += 1;
            }
        }
        // The round's calls are in flight together; their answers are
        // handled in call order, so what the loop decides does not depend
        // on which call returned first.
        let answers = futures::future::join_all(round.iter().map(|sent| call(sent))).await;
        let mut retry_later = false;
        let mut permanent = false;
        for ((sent, number), answer) in round.iter().zip(numbers).zip(answers) {
            match answer {
                Ok(results) if results.len() == sent.len() => {
                    for (&i, result) in sent.iter().zip(results) {
                        match result {
                            Ok(()) => s.accept(i, number),
                            Err(e) if e.class() == ErrorClass::Permanent => {
                                permanent = true;
                                s.give_up(plan, i, Why::Entry(e), false);
                            }
                            Err(e) => {
                                retry_later = true;
                                s.failed_for_now(plan, max_attempts, i, Why::Entry(e));
                            }
                        }
                    }
                }
                Ok(results) => {
                    retry_later = true;
                    let (results, carried) = (results.len(), sent.len());
                    for &i in sent {
                        let why = Why::ShortAnswer {
                            results,
                            sent: carried,
                        };
                        s.failed_for_now(plan, max_attempts, i, why);
                    }
                }
                Err(e) => {
                    let class = e.class();
                    permanent |= class == ErrorClass::Permanent;
                    retry_later |= class != ErrorClass::Permanent;
                    for &i in sent {
                        // A round carries one entry per group, so none of
                        // these was held back by another; the check keeps it so.
                        if s.done[i] {
                            continue;
                        }
                        if class == ErrorClass::Permanent {
                            s.give_up(plan, i, Why::Call(e.clone()), false);
                        } else {
                            s.failed_for_now(plan, max_attempts, i, Why::Call(e.clone()));
                        }
                    }
                }
            }
        }
        if permanent && plan.on_permanent == OnPermanent::EndBatch {
            let rest: Vec<usize> = s.pending.iter().copied().filter(|&p| !s.done[p]).collect();
            for i in rest {
                s.hold_back(i);
            }
        }
        let done = &s.done;
        s.pending.retain(|&p| !done[p]);
        if retry_later && !s.pending.is_empty() {
            failing_rounds += 1;
            sleep(policy.jittered_delay(failing_rounds)).await;
        } else {
            failing_rounds = 0;
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::RefCell;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(p.delay(10, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(3, 0.0), Duration::ZERO);
        assert_eq!(p.delay(3, 0.5), Duration::from_millis(200));
    }

    /// A test error: its class, and which entry or call it was.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct E(ErrorClass);
    impl Classify for E {
        fn class(&self) -> ErrorClass {
            self.0
        }
    }

    /// What the fake service answers for one entry on one call.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Verdict {
        Take,
        Retry,
        Refuse,
    }

    /// Runs futures that never wait (the fake service and sleep are ready at once).
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// Scripted service: entry `i`'s `n`th send gets `script[i][n]` (Take
    /// once the script runs out); call `c` fails whole with `calls[c]`.
    struct Service {
        script: Vec<Vec<Verdict>>,
        whole: Vec<Option<ErrorClass>>,
        sends: RefCell<Vec<Vec<usize>>>,
        taken: RefCell<Vec<bool>>,
        /// The calls made and not yet answered.
        in_flight: RefCell<Vec<Vec<usize>>>,
        /// At each call, the entries of every call then in flight.
        flights: RefCell<Vec<Vec<usize>>>,
    }

    impl Service {
        fn new(script: Vec<Vec<Verdict>>, whole: Vec<Option<ErrorClass>>) -> Self {
            let n = script.len();
            Self {
                script,
                whole,
                sends: RefCell::default(),
                taken: RefCell::new(vec![false; n]),
                in_flight: RefCell::default(),
                flights: RefCell::default(),
            }
        }

        fn answer(&self, entries: &[usize]) -> CallAnswer<E, E> {
            let mut sends = self.sends.borrow_mut();
            let call = sends.len();
            sends.push(entries.to_vec());
            if let Some(Some(class)) = self.whole.get(call) {
                return Err(E(*class));
            }
            Ok(entries
                .iter()
                .map(|&i| {
                    let nth = sends.iter().filter(|c| c.contains(&i)).count() - 1;
                    match self.script[i].get(nth).copied().unwrap_or(Verdict::Take) {
                        Verdict::Take => {
                            self.taken.borrow_mut()[i] = true;
                            Ok(())
                        }
                        Verdict::Retry => Err(E(ErrorClass::Retryable)),
                        Verdict::Refuse => Err(E(ErrorClass::Permanent)),
                    }
                })
                .collect())
        }

        fn run(&self, policy: &RetryPolicy, plan: &CallPlan<'_>) -> Resent<E, E> {
            block_on(resend_failed(
                policy,
                plan,
                self.script.len(),
                |entries: &[usize]| {
                    let entries = entries.to_vec();
                    let mut in_flight = self.in_flight.borrow_mut();
                    in_flight.push(entries.clone());
                    self.flights
                        .borrow_mut()
                        .push(in_flight.iter().flatten().copied().collect());
                    drop(in_flight);
                    let answer = self.answer(&entries);
                    // Answered when polled: every call of a round is made
                    // before the first is polled, so they overlap.
                    async move {
                        self.in_flight.borrow_mut().retain(|c| *c != entries);
                        answer
                    }
                },
                |_| std::future::ready(()),
            ))
        }
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![
            6 => Just(Verdict::Take),
            3 => Just(Verdict::Retry),
            1 => Just(Verdict::Refuse),
        ]
    }

    fn class() -> impl Strategy<Value = Option<ErrorClass>> {
        prop_oneof![
            8 => Just(None),
            2 => Just(Some(ErrorClass::Retryable)),
            1 => Just(Some(ErrorClass::Permanent)),
        ]
    }

    /// The invariants every plan keeps: each entry ends taken or given up,
    /// exactly once; nothing taken is sent again; nothing is sent more than
    /// the policy allows; what the service took is what the loop reports
    /// taken, and what failed retryably was resent until its attempts ran
    /// out, unless something ended or held it back.
    fn check(service: &Service, out: &Resent<E, E>, policy: &RetryPolicy, plan: &CallPlan<'_>) {
        let n = service.script.len();
        let sends = service.sends.borrow();
        let mut seen = vec![0u32; n];
        for (i, _) in &out.accepted {
            seen[*i] += 1;
        }
        for (i, _) in &out.failed {
            seen[*i] += 1;
        }
        assert!(
            seen.iter().all(|&c| c == 1),
            "every entry once: {seen:?} {out:?}"
        );
        let taken = service.taken.borrow();
        for i in 0..n {
            let accepted = out.accepted.iter().any(|(a, _)| *a == i);
            assert_eq!(
                accepted, taken[i],
                "entry {i}: reported taken iff the service took it"
            );
            let carried: Vec<usize> = (0..sends.len())
                .filter(|&c| sends[c].contains(&i))
                .collect();
            assert!(
                carried.len() as u32 <= policy.max_attempts.max(1),
                "entry {i} sent too often"
            );
            if let Some((_, call)) = out.accepted.iter().find(|(a, _)| *a == i) {
                assert_eq!(
                    carried.last().map(|c| c + 1),
                    Some(*call as usize),
                    "entry {i} resent after it was taken"
                );
            }
            if let Some((_, gave_up)) = out.failed.iter().find(|(f, _)| *f == i) {
                assert_eq!(gave_up.attempts as usize, carried.len());
                if gave_up.retryable && gave_up.why != Why::Behind {
                    // Given up retryably: either its attempts ran out, or it was held back.
                    let ran_out = gave_up.attempts >= policy.max_attempts.max(1);
                    let ended = plan.on_permanent == OnPermanent::EndBatch || plan.groups.is_some();
                    assert!(
                        ran_out || ended,
                        "entry {i} dropped with attempts left: {gave_up:?}"
                    );
                }
            }
        }
        if let Some(groups) = plan.groups {
            for call in sends.iter() {
                for (k, &a) in call.iter().enumerate() {
                    assert!(
                        call[k + 1..].iter().all(|&b| groups[a] != groups[b]),
                        "two entries of a group in one call"
                    );
                }
            }
        }
        assert_eq!(out.calls as usize, sends.len());
    }

    proptest! {
        #[test]
        fn a_taken_entry_is_never_resent_and_a_failed_one_never_dropped(
            script in prop::collection::vec(prop::collection::vec(verdict(), 0..5), 0..24),
            whole in prop::collection::vec(class(), 0..8),
            attempts in 1u32..5,
            end_batch in any::<bool>(),
        ) {
            let service = Service::new(script, whole);
            let policy = RetryPolicy::fast(attempts);
            let on_permanent = if end_batch { OnPermanent::EndBatch } else { OnPermanent::FailEntry };
            let plan = CallPlan::whole(on_permanent);
            let out = service.run(&policy, &plan);
            check(&service, &out, &policy, &plan);
        }

        #[test]
        fn grouped_calls_keep_each_group_in_order(
            script in prop::collection::vec((0usize..3, prop::collection::vec(verdict(), 0..5)), 0..24),
            whole in prop::collection::vec(class(), 0..8),
            attempts in 1u32..5,
            max_entries in 1usize..5,
            max_concurrent_calls in 1usize..4,
        ) {
            let names = ["a", "b", "c"];
            let groups: Vec<&str> = script.iter().map(|(g, _)| names[*g]).collect();
            let service = Service::new(script.into_iter().map(|(_, v)| v).collect(), whole);
            let policy = RetryPolicy::fast(attempts);
            let plan = CallPlan { max_entries, max_bytes: None, groups: Some(&groups), on_permanent: OnPermanent::FailEntry, max_concurrent_calls };
            let out = service.run(&policy, &plan);
            check(&service, &out, &policy, &plan);
            // No two calls in flight together carry the same group.
            for flight in service.flights.borrow().iter() {
                let mut seen = std::collections::HashSet::new();
                prop_assert!(flight.iter().all(|&i| seen.insert(groups[i])), "one group twice in flight: {flight:?}");
            }
            if max_concurrent_calls > 1 && groups.len() > max_entries {
                // Only counts that can fill more than one call show overlap.
                let overlapped = service.flights.borrow().iter().any(|f| f.len() > max_entries);
                let distinct: std::collections::HashSet<&str> = groups.iter().copied().collect();
                prop_assert!(overlapped || distinct.len() <= max_entries, "calls never overlapped");
            }
            // Within a group, entries are taken in batch order, and none is
            // taken after an earlier one was given up unjudged.
            let sends = service.sends.borrow();
            for g in names {
                let members: Vec<usize> = (0..groups.len()).filter(|&i| groups[i] == g).collect();
                let first_sends: Vec<usize> = members.iter().filter_map(|&i| sends.iter().position(|c| c.contains(&i))).collect();
                prop_assert!(first_sends.windows(2).all(|w| w[0] < w[1]), "group {g} sent out of order");
                let stalled = members.iter().copied().find(|&i| out.failed.iter().any(|(f, u)| *f == i && u.retryable));
                if let Some(s) = stalled {
                    prop_assert!(members.iter().filter(|&&i| i > s).all(|&i| !service.taken.borrow()[i]), "group {g} overtook a stalled entry");
                }
            }
        }
    }

    #[test]
    fn only_the_failed_entries_are_resent() {
        use Verdict::*;
        let service = Service::new(
            vec![
                vec![],
                vec![Retry],
                vec![],
                vec![Retry, Retry],
                vec![Refuse],
            ],
            vec![],
        );
        let out = service.run(
            &RetryPolicy::fast(6),
            &CallPlan::whole(OnPermanent::FailEntry),
        );
        assert_eq!(
            *service.sends.borrow(),
            vec![vec![0, 1, 2, 3, 4], vec![1, 3], vec![3]]
        );
        assert_eq!(out.resent, 3);
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.failed[0].0, 4);
        assert!(!out.failed[0].1.retryable);
    }

    #[test]
    fn a_permanent_failure_ends_an_ordered_batch() {
        use Verdict::*;
        let service = Service::new(vec![vec![Retry], vec![Refuse], vec![]], vec![]);
        let out = service.run(
            &RetryPolicy::fast(6),
            &CallPlan::whole(OnPermanent::EndBatch),
        );
        assert_eq!(
            service.sends.borrow().len(),
            1,
            "nothing resent after a refusal"
        );
        assert_eq!(out.accepted, vec![(2, 1)]);
        let failed: Vec<usize> = out.failed.iter().map(|(i, _)| *i).collect();
        assert_eq!(failed, vec![1, 0]);
    }

    #[test]
    fn a_short_answer_resends_the_whole_call() {
        let sends = RefCell::new(0);
        let out: Resent<E, E> = block_on(resend_failed(
            &RetryPolicy::fast(3),
            &CallPlan::whole(OnPermanent::FailEntry),
            3,
            |entries: &[usize]| {
                *sends.borrow_mut() += 1;
                let answer = if *sends.borrow() == 1 {
                    vec![Ok(())]
                } else {
                    entries.iter().map(|_| Ok(())).collect()
                };
                std::future::ready(Ok(answer))
            },
            |_| std::future::ready(()),
        ));
        assert_eq!(out.accepted.len(), 3);
        assert_eq!(out.resent, 3);
    }

    #[test]
    fn calls_respect_the_byte_limit_and_take_an_oversized_entry_alone() {
        let sizes = [5, 5, 20, 1];
        let plan = CallPlan {
            max_entries: 10,
            max_bytes: Some((10, &sizes)),
            groups: None,
            on_permanent: OnPermanent::FailEntry,
            max_concurrent_calls: 1,
        };
        assert_eq!(plan.next_call(&[0, 1, 2, 3]), vec![0, 1]);
        assert_eq!(plan.next_call(&[2, 3]), vec![2]);
        assert_eq!(plan.next_call(&[3]), vec![3]);
    }
}
