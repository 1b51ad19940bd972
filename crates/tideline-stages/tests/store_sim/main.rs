//! The store's append protocol (decision record 0009) under a controlled
//! scheduler: awslabs' `shuttle` runs the real [`SlotStore`] code against a
//! simulated DynamoDB table that yields at every call, so schedules interleave
//! writers at call granularity, as DynamoDB does (each call atomic, every read
//! consistent). Faults, drawn at every call:
//! - 2–4 concurrent appenders per entity, with redeliveries of the same ids,
//!   single and multi-event appends racing;
//! - a crash before a call (the invocation dies: the call never happens);
//! - a lost response (the write applied, the caller sees a retryable error);
//! - the SDK's retry of a write that applied (the second try's answer wins);
//! - an invocation killed at its timeout (Lambda's);
//! - TTL removing any expired item (event, marker) in any order, at any
//!   moment, days late, while writers append;
//! - clock skew between writers;
//! - a writer of the previous, transactional design (before 0009);
//! - a writer appending several messages in one invocation, each after the
//!   first from the tail its previous append left (the storer's batch).
//!
//! After every schedule the checker holds the table's history to the
//! invariants (INVARIANTS.md #2, #3, #4): no `seq` used twice, ever; the
//! stored `seq`s gapless; an id stored again only after its earlier copy
//! expired; a single writer's order kept; every acknowledged append stored;
//! and, once faults stop, every append completes (no entity stuck).
//!
//! `TIDELINE_SIM_SCHEDULES` sets how many schedules each scheduler runs (CI's
//! default budget is below); a failing schedule panics with the schedule
//! shuttle can replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod commands;
mod holes;
mod legacy;

use shuttle::rand::{RngCore, thread_rng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_core::item::{AttrValue, Item, decode_event, lookup};
use tideline_core::{AppendOutcome, Classify, EntityId, ExpectedSeq, NewEvent};
use tideline_stages::store::slot::{
    Clock, CondPut, ConditionFailed, ItemPage, ItemTable, SlotStore, key_of,
};
use tideline_stages::{EventStore, PortError};

const SECOND_US: i64 = 1_000_000;
/// The retention in the simulation: short, so schedules cross it.
const TTL_SECONDS: i64 = 600;
/// The store trusts a latest event further than this from its expiry: below
/// the retention, so schedules take the trusted path (one read) with a
/// retention too, and above the skew and the timeout, as in production.
const EXPIRY_MARGIN_SECONDS: i64 = 60;
/// Lambda kills an invocation at its timeout: no call starts after it.
const TIMEOUT_US: i64 = 5 * SECOND_US;
/// Writers' clocks differ from the table's by up to this.
const MAX_SKEW_US: i64 = SECOND_US;
const ENTITY: &str = "e-1";
const START_US: i64 = 1_796_000_000 * SECOND_US;

/// An event item written or removed, in the order the table applied it.
#[derive(Debug, Clone)]
enum Change {
    Insert {
        seq: u64,
        id: String,
        expires_at: Option<i64>,
        at_us: i64,
    },
    Remove {
        #[allow(dead_code)] // read in the failure report
        seq: u64,
    },
}

#[derive(Debug, Default)]
struct World {
    items: BTreeMap<(String, String), Item>,
    now_us: i64,
    history: Vec<Change>,
    faults: bool,
    /// Invocations under way: the clock jumps by days only between them.
    active: usize,
}

fn num(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttrValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttrValue::S(s)) => Some(s),
        _ => None,
    }
}

fn is_event(item: &Item) -> bool {
    text(item, "kind") == Some("event")
}

impl World {
    fn put(&mut self, put: &CondPut) -> Result<(), ConditionFailed> {
        let key = key_of(&put.item);
        let existing = self.items.get(&key);
        if !put.condition.holds(existing) {
            return Err(ConditionFailed(existing.cloned()));
        }
        if is_event(&put.item) && existing.is_none() {
            self.history.push(Change::Insert {
                seq: num(&put.item, "seq").unwrap_or(-1) as u64,
                id: text(&put.item, "event_id").unwrap_or("?").to_string(),
                expires_at: num(&put.item, "expires_at"),
                at_us: self.now_us,
            });
        }
        self.items.insert(key, put.item.clone());
        Ok(())
    }

    fn transact(&mut self, puts: &[CondPut]) -> Result<(), Vec<usize>> {
        let failed: Vec<usize> = puts
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.condition.holds(self.items.get(&key_of(&p.item))))
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return Err(failed);
        }
        for p in puts {
            let _ = self.put(p);
        }
        Ok(())
    }

    /// Time passes with no invocation under way: to just past one item's
    /// expiry (where the boundaries between items' expiries are), or past
    /// all of them. Then TTL, days late, has removed a random part of what
    /// expired, in no order.
    fn idle(&mut self, choice: u64) {
        let expiries: Vec<i64> = self
            .items
            .values()
            .filter_map(|i| num(i, "expires_at"))
            .collect();
        let jump_to = if choice.is_multiple_of(2) && !expiries.is_empty() {
            let t = expiries[(choice / 2) as usize % expiries.len()];
            (t + 1 + draw(3) as i64) * SECOND_US
        } else {
            self.now_us + (TTL_SECONDS + 1 + draw(TTL_SECONDS as u64) as i64) * SECOND_US
        };
        self.now_us = self.now_us.max(jump_to);
        for key in self.expired() {
            if draw(2) == 0 {
                self.remove(&key);
            }
        }
    }

    fn remove(&mut self, key: &(String, String)) {
        if let Some(item) = self.items.remove(key)
            && is_event(&item)
        {
            self.history.push(Change::Remove {
                seq: num(&item, "seq").unwrap_or(-1) as u64,
            });
        }
    }

    /// The keys of the items TTL may remove now (their expiry has passed).
    fn expired(&self) -> Vec<(String, String)> {
        let now_s = self.now_us / SECOND_US;
        self.items
            .iter()
            .filter(|(_, i)| num(i, "expires_at").is_some_and(|t| t < now_s))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// TTL: removes one expired item, drawn at random among them.
    fn expire_one(&mut self, draw: u64) {
        let expired = self.expired();
        if expired.is_empty() {
            return;
        }
        let key = expired[(draw as usize) % expired.len()].clone();
        self.remove(&key);
    }
}

fn draw(n: u64) -> u64 {
    thread_rng().next_u64() % n.max(1)
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    CrashBefore,
    LostResponse,
    SdkRetry,
}

/// One writer's view of the simulated table.
#[derive(Clone)]
struct SimTable {
    world: Arc<Mutex<World>>,
    invocation_start: Arc<AtomicI64>,
}

impl SimTable {
    fn fault(&self, write: bool) -> Result<Fault, PortError> {
        let w = self.world.lock().unwrap();
        if w.now_us - self.invocation_start.load(Ordering::SeqCst) > TIMEOUT_US {
            return Err(PortError::retryable("sim", "invocation timed out"));
        }
        if !w.faults {
            return Ok(Fault::None);
        }
        drop(w);
        Ok(match draw(100) {
            0..3 => Fault::CrashBefore,
            3..6 if write => Fault::LostResponse,
            6..9 if write => Fault::SdkRetry,
            _ => Fault::None,
        })
    }

    async fn call<R>(&self, write: bool, op: impl Fn(&mut World) -> R) -> Result<R, PortError> {
        shuttle::future::yield_now().await;
        let fault = self.fault(write)?;
        if fault == Fault::CrashBefore {
            return Err(PortError::retryable("sim", "crashed before the call"));
        }
        let first = op(&mut self.world.lock().unwrap());
        match fault {
            Fault::LostResponse => Err(PortError::retryable("sim", "response lost")),
            Fault::SdkRetry => {
                shuttle::future::yield_now().await;
                Ok(op(&mut self.world.lock().unwrap()))
            }
            _ => Ok(first),
        }
    }
}

fn in_range(sk: &str) -> bool {
    let (lo, hi) = tideline_core::item::EVENT_SK_RANGE;
    lo < sk && sk < hi
}

impl ItemTable for SimTable {
    async fn latest_event(&self, pk: &str) -> Result<Option<Item>, PortError> {
        self.call(false, |w| {
            w.items
                .iter()
                .rfind(|((p, sk), _)| p == pk && in_range(sk))
                .map(|(_, v)| v.clone())
        })
        .await
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, PortError> {
        self.call(false, |w| {
            w.items.get(&(pk.to_string(), sk.to_string())).cloned()
        })
        .await
    }

    async fn put(&self, put: CondPut) -> Result<Result<(), ConditionFailed>, PortError> {
        self.call(true, |w| w.put(&put)).await
    }

    async fn transact(&self, puts: Vec<CondPut>) -> Result<Result<(), Vec<usize>>, PortError> {
        self.call(true, |w| w.transact(&puts)).await
    }

    async fn events_after(
        &self,
        pk: &str,
        after_sk: Option<&str>,
        limit: usize,
    ) -> Result<ItemPage, PortError> {
        self.call(false, |w| {
            let mut page = ItemPage::default();
            for ((p, sk), v) in &w.items {
                if p != pk || !in_range(sk) || after_sk.is_some_and(|a| sk.as_str() <= a) {
                    continue;
                }
                if page.items.len() == limit.max(1) {
                    page.next = page
                        .items
                        .last()
                        .and_then(|i| text(i, "sk").map(String::from));
                    break;
                }
                page.items.push(v.clone());
            }
            page
        })
        .await
    }
}

fn pool() -> &'static BTreeMap<String, NewEvent> {
    static POOL: OnceLock<BTreeMap<String, NewEvent>> = OnceLock::new();
    POOL.get_or_init(|| {
        ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .map(|id| {
                let rec = format!(
                    r#"{{"entity_id":"{ENTITY}","type":"T","data":{{"n":"{id}"}},"id":"{id}"}}"#
                );
                let e =
                    normalize_record(&IngestConfig::default(), rec.as_bytes(), chrono::Utc::now())
                        .unwrap();
                (id.to_string(), e)
            })
            .collect()
    })
}

/// What a writer was asked to append, and what came back.
#[derive(Debug, Clone)]
struct Acked {
    ids: Vec<String>,
    outcomes: Vec<AppendOutcome>,
}

#[derive(Clone)]
struct Sim {
    world: Arc<Mutex<World>>,
    ttl: Option<chrono::Duration>,
    acked: Arc<Mutex<Vec<Acked>>>,
    violations: Arc<Mutex<Vec<String>>>,
    pending: Arc<AtomicUsize>,
}

impl Sim {
    fn store(&self, skew_us: i64) -> (SlotStore<SimTable>, Arc<AtomicI64>) {
        let start = Arc::new(AtomicI64::new(0));
        let table = SimTable {
            world: self.world.clone(),
            invocation_start: start.clone(),
        };
        let world = self.world.clone();
        let clock = Clock::new(move || {
            let us = world.lock().unwrap().now_us + skew_us;
            chrono::DateTime::from_timestamp_micros(us).unwrap()
        });
        (
            SlotStore::new(table, "sim")
                .with_ttl(self.ttl)
                .with_clock(clock)
                .with_expiry_margin(chrono::Duration::seconds(EXPIRY_MARGIN_SECONDS)),
            start,
        )
    }

    fn now(&self) -> i64 {
        self.world.lock().unwrap().now_us
    }

    /// One message: appended, and redelivered (a new invocation) after each
    /// failure, up to `tries`; returns whether it was acknowledged.
    async fn deliver(
        &self,
        store: &SlotStore<SimTable>,
        start: &AtomicI64,
        ids: &[String],
        tries: usize,
    ) -> bool {
        let entity = EntityId::new(ENTITY).unwrap();
        for _ in 0..tries {
            let events: Vec<NewEvent> = ids.iter().map(|id| pool()[id].clone()).collect();
            start.store(self.now(), Ordering::SeqCst);
            self.world.lock().unwrap().active += 1;
            let result = store.append(&entity, events, ExpectedSeq::Any).await;
            self.world.lock().unwrap().active -= 1;
            match result {
                Ok(outcomes) => {
                    self.acked.lock().unwrap().push(Acked {
                        ids: ids.to_vec(),
                        outcomes,
                    });
                    return true;
                }
                Err(e) if e.class() == tideline_core::ErrorClass::Permanent => {
                    self.violations
                        .lock()
                        .unwrap()
                        .push(format!("append of {ids:?} failed permanently: {e}"));
                    return true;
                }
                Err(_) => {
                    // The message becomes visible again; time passes, less than the retention.
                    self.world.lock().unwrap().now_us += draw(3) as i64 * SECOND_US;
                }
            }
        }
        false
    }
}

impl Sim {
    /// Single-event messages in one invocation, as the storer appends a
    /// batch's messages of one entity (`append_each`): each append after
    /// this writer's own starts from the tail it knows. Returns how many
    /// were handled; the rest are redelivered one by one by the caller.
    async fn deliver_each(
        &self,
        store: &SlotStore<SimTable>,
        start: &AtomicI64,
        messages: &[Vec<String>],
    ) -> usize {
        let events: Vec<NewEvent> = messages.iter().map(|m| pool()[&m[0]].clone()).collect();
        start.store(self.now(), Ordering::SeqCst);
        self.world.lock().unwrap().active += 1;
        let (done, error) = store.append_each(events).await;
        self.world.lock().unwrap().active -= 1;
        for (m, outcomes) in messages.iter().zip(&done) {
            self.acked.lock().unwrap().push(Acked {
                ids: m.clone(),
                outcomes: outcomes.clone(),
            });
        }
        match error {
            None => done.len(),
            Some(e) if e.class() == tideline_core::ErrorClass::Permanent => {
                self.violations.lock().unwrap().push(format!(
                    "append of {:?} failed permanently: {e}",
                    messages[done.len()]
                ));
                done.len() + 1
            }
            Some(_) => {
                self.world.lock().unwrap().now_us += draw(3) as i64 * SECOND_US;
                done.len()
            }
        }
    }
}

/// Seeds the entity as the transactional design left it.
fn seed_legacy(world: &mut World) {
    for item in legacy::legacy_items(ENTITY) {
        if is_event(&item) {
            world.history.push(Change::Insert {
                seq: num(&item, "seq").unwrap_or(-1) as u64,
                id: text(&item, "event_id").unwrap_or("?").to_string(),
                expires_at: None,
                at_us: 0,
            });
        }
        world.items.insert(legacy::key(&item), item);
    }
}

/// The old writer's append, as one simulated invocation.
async fn legacy_append(sim: &Sim, id: &str) {
    let table = SimTable {
        world: sim.world.clone(),
        invocation_start: Arc::new(AtomicI64::new(sim.now())),
    };
    sim.world.lock().unwrap().active += 1;
    let now = chrono::DateTime::from_timestamp_micros(sim.now()).unwrap();
    if let legacy::LegacyOutcome::Stored(seq) = legacy::legacy_append(&table, ENTITY, id, now).await
    {
        sim.acked.lock().unwrap().push(Acked {
            ids: vec![id.to_string()],
            outcomes: vec![AppendOutcome::Stored {
                event_id: tideline_core::EventId::new(id).unwrap(),
                seq,
            }],
        });
    }
    sim.world.lock().unwrap().active -= 1;
}

/// The scenario of one schedule, drawn from the scheduler's random source
/// (so a schedule replays with its scenario).
#[derive(Debug)]
struct Scenario {
    retention: bool,
    legacy_table: bool,
    legacy_writer: bool,
    single_writer: bool,
    rounds: usize,
    /// Per round, per writer: the messages (one or several ids each).
    writers: Vec<Vec<Vec<Vec<String>>>>,
    skews: Vec<i64>,
    /// Faults at every call (off: interleavings only).
    faults: bool,
    /// TTL removes expired items while writers append.
    reaper: bool,
    /// Writers deliver consecutive single-event messages in one invocation
    /// (`append_each`, the storer's batch), so an append after the writer's
    /// own starts from the tail it knows instead of reading it.
    batched: bool,
}

fn scenario() -> Scenario {
    let ids = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let retention = draw(3) != 0 && fault_enabled("ttl");
    let single_writer = draw(5) == 0;
    let batched = draw(2) == 0 && fault_enabled("carry");
    let rounds = 1 + draw(3) as usize;
    let n_writers = if single_writer {
        1
    } else {
        2 + draw(3) as usize
    };
    let mut writers = Vec::new();
    let mut fresh = 0;
    for _ in 0..rounds {
        let mut round = Vec::new();
        for _ in 0..n_writers {
            let mut messages = Vec::new();
            for _ in 0..1 + draw(if batched { 3 } else { 2 }) {
                // A single writer sends fresh ids only (its order is checked).
                if single_writer && fresh == ids.len() {
                    break;
                }
                let id = if single_writer {
                    fresh += 1;
                    ids[(fresh - 1) % ids.len()]
                } else {
                    ids[draw(5) as usize]
                };
                let mut message = vec![id.to_string()];
                if !single_writer && draw(6) == 0 && fault_enabled("multi") {
                    message.push(ids[draw(ids.len() as u64) as usize].to_string());
                }
                messages.push(message);
            }
            round.push(messages);
        }
        writers.push(round);
    }
    let legacy_table = draw(6) == 0;
    Scenario {
        retention,
        legacy_table,
        legacy_writer: !single_writer && draw(6) == 0 && fault_enabled("legacy"),
        single_writer,
        rounds,
        writers,
        skews: (0..n_writers)
            .map(|_| draw(2 * MAX_SKEW_US as u64) as i64 - MAX_SKEW_US)
            .collect(),
        faults: true,
        reaper: true,
        batched,
    }
}

fn one_schedule() {
    run_scenario(scenario());
}

fn run_scenario(scenario: Scenario) {
    let sim = Sim {
        world: Arc::new(Mutex::new(World {
            now_us: START_US,
            ..World::default()
        })),
        ttl: scenario
            .retention
            .then(|| chrono::Duration::seconds(TTL_SECONDS)),
        acked: Arc::default(),
        violations: Arc::default(),
        pending: Arc::default(),
    };
    if scenario.legacy_table {
        seed_legacy(&mut sim.world.lock().unwrap());
    }
    shuttle::future::block_on(async {
        let mut leftovers: Vec<(usize, Vec<String>)> = Vec::new();
        for round in 0..scenario.rounds {
            if round > 0 {
                // Idle longer than the retention: everything written so far
                // expires, and TTL removes it in any order, days late,
                // while the next round appends.
                let mut w = sim.world.lock().unwrap();
                w.idle(draw(u64::MAX));
            }
            sim.world.lock().unwrap().faults = scenario.faults;
            let mut tasks = Vec::new();
            for (i, messages) in scenario.writers[round].iter().enumerate() {
                let sim = sim.clone();
                let messages = messages.clone();
                let skew = scenario.skews[i];
                let batched = scenario.batched;
                tasks.push(shuttle::future::spawn(async move {
                    let (store, start) = sim.store(skew);
                    let mut left = Vec::new();
                    let mut k = 0;
                    while k < messages.len() {
                        if left.is_empty() && batched {
                            let run = messages[k..].iter().take_while(|m| m.len() == 1).count();
                            if run >= 2 {
                                let done = sim
                                    .deliver_each(&store, &start, &messages[k..k + run])
                                    .await;
                                if done > 0 {
                                    k += done;
                                    continue;
                                }
                            }
                        }
                        let m = messages[k].clone();
                        k += 1;
                        // FIFO: a group's next message waits for this one.
                        if !left.is_empty() || !sim.deliver(&store, &start, &m, 3).await {
                            sim.pending.fetch_add(1, Ordering::SeqCst);
                            left.push((i, m));
                        }
                    }
                    left
                }));
            }
            if scenario.legacy_writer {
                let sim = sim.clone();
                tasks.push(shuttle::future::spawn(async move {
                    legacy_append(&sim, "h").await;
                    Vec::new()
                }));
            }
            let reaper = scenario.reaper.then(|| {
                let sim = sim.clone();
                shuttle::future::spawn(async move {
                    for _ in 0..6 {
                        shuttle::future::yield_now().await;
                        let mut w = sim.world.lock().unwrap();
                        w.now_us += draw(SECOND_US as u64) as i64;
                        if draw(2) == 0 {
                            w.expire_one(thread_rng().next_u64());
                        }
                    }
                })
            });
            for t in tasks {
                leftovers.extend(t.await.unwrap());
            }
            if let Some(reaper) = reaper {
                reaper.await.unwrap();
            }
            // Faults stop: every interrupted message is redelivered and must complete.
            sim.world.lock().unwrap().faults = false;
            for (i, m) in leftovers.drain(..) {
                let (store, start) = sim.store(scenario.skews[i]);
                if !sim.deliver(&store, &start, &m, 1).await {
                    sim.violations
                        .lock()
                        .unwrap()
                        .push(format!("stuck: {m:?} does not complete once faults stop"));
                }
                sim.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    });
    if let Err(problems) = check(&sim, &scenario) {
        let w = sim.world.lock().unwrap();
        panic!(
            "violations: {problems:#?}\nscenario: {scenario:#?}\nhistory: {:#?}\nitems: {:#?}",
            w.history, w.items
        );
    }
}

/// The invariants, on the table's history and its final items.
fn check(sim: &Sim, scenario: &Scenario) -> Result<(), Vec<String>> {
    let mut problems = sim.violations.lock().unwrap().clone();
    let w = sim.world.lock().unwrap();
    let inserts: Vec<(u64, &str, Option<i64>, i64)> = w
        .history
        .iter()
        .filter_map(|c| match c {
            Change::Insert {
                seq,
                id,
                expires_at,
                at_us,
            } => Some((*seq, id.as_str(), *expires_at, *at_us)),
            Change::Remove { .. } => None,
        })
        .collect();
    // No seq is ever used twice, including after expiry (#3).
    let mut by_seq: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (seq, id, _, _) in &inserts {
        by_seq.entry(*seq).or_default().push(id);
    }
    for (seq, ids) in &by_seq {
        if ids.len() > 1 {
            problems.push(format!("seq {seq} used {} times: {ids:?}", ids.len()));
        }
    }
    // Gapless over the whole history: 1..=max.
    if let Some((&max, _)) = by_seq.iter().next_back()
        && by_seq.len() as u64 != max
    {
        let missing: Vec<u64> = (1..=max).filter(|s| !by_seq.contains_key(s)).collect();
        problems.push(format!("seq gap: {missing:?} never stored"));
    }
    // An id is stored again only once its earlier copy expired (#2: the
    // de-duplication window is the event's retention).
    let mut last_copy: BTreeMap<&str, (Option<i64>, u64)> = BTreeMap::new();
    for (seq, id, expires_at, at_us) in &inserts {
        if let Some((expiry, first_seq)) = last_copy.get(id) {
            let expired = expiry.is_some_and(|t| t * SECOND_US < *at_us);
            if !expired {
                problems.push(format!(
                    "{id} stored twice while retained: seq {first_seq} and seq {seq}"
                ));
            }
        }
        last_copy.insert(id, (*expires_at, *seq));
    }
    // Every acknowledged append is stored; a reported seq holds that id.
    for acked in sim.acked.lock().unwrap().iter() {
        for id in &acked.ids {
            if !inserts.iter().any(|(_, i, _, _)| i == id) {
                problems.push(format!("{id} acknowledged but never stored"));
            }
        }
        for o in &acked.outcomes {
            if let AppendOutcome::Stored { event_id, seq } = o
                && by_seq
                    .get(seq)
                    .is_none_or(|ids| !ids.contains(&event_id.as_str()))
            {
                problems.push(format!(
                    "{event_id} reported at seq {seq}, not stored there"
                ));
            }
        }
    }
    // The live events, in key order (never sorted here): seq follows sk, gapless.
    let live: Vec<u64> = w
        .items
        .values()
        .filter(|i| is_event(i))
        .map(|i| decode_event(lookup(i)).map(|e| e.seq).unwrap_or(0))
        .collect();
    // TTL removes expired events in any order, so a gap among the live ones
    // is a removal; without one, they are the whole history.
    let removed = w.history.iter().any(|c| matches!(c, Change::Remove { .. }));
    let in_order = live.windows(2).all(|p| p[1] > p[0]);
    let gapless = live.windows(2).all(|p| p[1] == p[0] + 1);
    if !in_order || (!removed && !gapless) {
        problems.push(format!("live events in sk order: {live:?}"));
    }
    // One writer: its input order is the seq order.
    if scenario.single_writer && !scenario.legacy_table {
        let order: Vec<&str> = scenario
            .writers
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .map(String::as_str)
            .collect();
        let stored: Vec<&str> = inserts.iter().map(|(_, id, _, _)| *id).collect();
        if stored != order {
            problems.push(format!("single writer: sent {order:?}, stored {stored:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `TIDELINE_SIM_WITHOUT=legacy,ttl,multi,carry` leaves kinds of fault out, to
/// look for one hole at a time.
fn fault_enabled(kind: &str) -> bool {
    static WITHOUT: OnceLock<String> = OnceLock::new();
    !WITHOUT
        .get_or_init(|| std::env::var("TIDELINE_SIM_WITHOUT").unwrap_or_default())
        .split(',')
        .any(|k| k.trim() == kind)
}

fn schedules(default: usize) -> usize {
    std::env::var("TIDELINE_SIM_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Each simulated task runs on a stack of its own; the store's nested
/// futures (debug build) need more than shuttle's 32 KiB default.
fn config() -> shuttle::Config {
    let mut config = shuttle::Config::new();
    config.stack_size = 1 << 20;
    config
}

fn run(scheduler: impl shuttle::scheduler::Scheduler + 'static) -> usize {
    run_with(scheduler, one_schedule)
}

fn run_with(
    scheduler: impl shuttle::scheduler::Scheduler + 'static,
    schedule: impl Fn() + Send + Sync + 'static,
) -> usize {
    let started = std::time::Instant::now();
    let n = shuttle::Runner::new(scheduler, config()).run(schedule);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{n} schedules in {secs:.1} s: {:.0} schedules/s",
        n as f64 / secs
    );
    n
}

#[test]
fn the_append_protocol_holds_under_random_schedules() {
    run(shuttle::scheduler::RandomScheduler::new(schedules(10_000)));
}

#[test]
fn the_append_protocol_holds_under_pct_schedules() {
    run(shuttle::scheduler::PctScheduler::new(3, schedules(10_000)));
}

/// Writers appending these messages concurrently, in one round, no faults:
/// the exhaustive (DFS) scheduler tries every interleaving of their calls.
fn fixed(writers: &[&[&[&str]]], retention: bool) -> Scenario {
    Scenario {
        retention,
        legacy_table: false,
        legacy_writer: false,
        single_writer: writers.len() == 1,
        rounds: 1,
        writers: vec![
            writers
                .iter()
                .map(|w| {
                    w.iter()
                        .map(|m| m.iter().map(|id| id.to_string()).collect())
                        .collect()
                })
                .collect(),
        ],
        skews: vec![0; writers.len()],
        faults: false,
        reaper: false,
        batched: false,
    }
}

/// Every interleaving, at small bounds: two writers of one id (a redelivery
/// overlapping the first delivery), two ids, and a multi-event append
/// racing a single append of one of its ids.
#[test]
fn the_append_protocol_holds_under_every_interleaving_of_two_writers() {
    let cases: [(&[&[&[&str]]], bool); 4] = [
        (&[&[&["a"]], &[&["a"]]], false),
        (&[&[&["a"]], &[&["b"]]], true),
        (&[&[&["a"]], &[&["a", "b"]]], false),
        (&[&[&["a"], &["b"]], &[&["b"]]], false),
    ];
    for (writers, retention) in cases {
        let explored = run_with(
            shuttle::scheduler::DfsScheduler::new(Some(schedules(10_000)), false),
            move || run_scenario(fixed(writers, retention)),
        );
        assert!(explored > 1, "{writers:?}: {explored} schedules");
    }
}

/// Every interleaving of a writer appending two messages in one invocation
/// (the second from the tail its first left) with a writer of another id
/// and one redelivering the second: the carried tail goes stale in some
/// interleavings, and the conditional puts must catch every one.
#[test]
fn a_known_tail_is_safe_under_every_interleaving() {
    let cases: [(&[&[&[&str]]], bool); 3] = [
        (&[&[&["a"], &["b"]], &[&["c"]]], false),
        (&[&[&["a"], &["b"]], &[&["b"]]], false),
        (&[&[&["a"], &["b"]], &[&["c"]]], true),
    ];
    for (writers, retention) in cases {
        let explored = run_with(
            shuttle::scheduler::DfsScheduler::new(Some(schedules(10_000)), false),
            move || {
                let mut scenario = fixed(writers, retention);
                scenario.batched = true;
                run_scenario(scenario)
            },
        );
        assert!(explored > 1, "{writers:?}: {explored} schedules");
    }
}
