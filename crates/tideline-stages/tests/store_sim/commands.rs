//! The command side under the controlled scheduler (issue 23): writers that
//! load the entity's version and append one to three events at exactly that
//! version through the command stage (`append_command`, the HTTP API's and
//! the client's code), racing the storer's single appends (`ExpectedSeq::Any`)
//! on the same entity, with the faults of every call (crash before, lost
//! response, the SDK's retry of an applied write, the invocation's timeout,
//! clock skew), with a retention (the head path; an entity whose events
//! all expired before the commands start, then TTL removing expired items
//! in any order while they run) and the previous design's writer. A command
//! retries on a conflict (load again) and on a retryable failure (the same
//! ids: idempotent).
//!
//! Checked after every schedule, besides the store's own invariants
//! ([`super::check`]: no `seq` twice, gapless, acknowledged means stored):
//! - each acknowledged command's events hold the versions just below the
//!   last sequence it was answered, consecutively and in its order: no two
//!   writers held the same version, and the answer of an idempotent repeat
//!   is the first one's;
//! - each command's ids are stored at most once, and exactly once when
//!   acknowledged;
//! - a conflict names a true version: `actual` differs from `expected` and
//!   was the entity's last sequence at some moment of the call.

use super::*;
use serde_json::json;
use tideline_stages::command::{CommandError, admit_command, append_command};

/// A command's answer, or a conflict it saw, with what the table held then.
#[derive(Debug, Clone)]
enum Seen {
    Acked {
        ids: Vec<String>,
        last_sequence: u64,
        /// The version it was appended at, when this call stored its
        /// events (not an idempotent repeat).
        stored_at_version: Option<u64>,
    },
    Conflict {
        expected: u64,
        actual: u64,
        /// The highest `seq` stored when the call started and when it ended.
        window: (u64, u64),
    },
}

fn highest_seq(world: &World) -> u64 {
    world
        .history
        .iter()
        .filter_map(|c| match c {
            Change::Insert { seq, .. } => Some(*seq),
            Change::Remove { .. } => None,
        })
        .max()
        .unwrap_or(0)
}

/// A command writer: `sizes[k]` events for its command `k`, each appended
/// at the version it loaded.
async fn command_writer(sim: Sim, writer: usize, sizes: Vec<usize>, skew: i64) -> Vec<Seen> {
    let (store, start) = sim.store(skew);
    let entity = EntityId::new(ENTITY).unwrap();
    let mut seen = Vec::new();
    for (k, size) in sizes.into_iter().enumerate() {
        let ids: Vec<String> = (0..size).map(|j| format!("c{writer}.{k}.{j}")).collect();
        let events = ids
            .iter()
            .map(|id| json!({"id": id, "type": "T", "data": {"n": id}}))
            .collect();
        let admitted = admit_command(
            &IngestConfig::default(),
            &entity,
            events,
            chrono::Utc::now(),
        )
        .unwrap();
        for _attempt in 0..12 {
            start.store(sim.now(), Ordering::SeqCst);
            sim.world.lock().unwrap().active += 1;
            let before = highest_seq(&sim.world.lock().unwrap());
            let mut version = 0;
            let result = match store.head(&entity).await {
                Ok(head) => {
                    version = head.map_or(0, |h| h.last_seq);
                    append_command(&store, &entity, ExpectedSeq::Exactly(version), &admitted).await
                }
                Err(e) => Err(CommandError::Store(e)),
            };
            let after = highest_seq(&sim.world.lock().unwrap());
            sim.world.lock().unwrap().active -= 1;
            match result {
                Ok(appended) => {
                    let stored = appended
                        .outcomes
                        .iter()
                        .any(|o| matches!(o, AppendOutcome::Stored { .. }));
                    seen.push(Seen::Acked {
                        ids: ids.clone(),
                        last_sequence: appended.last_sequence,
                        stored_at_version: stored.then_some(version),
                    });
                    break;
                }
                Err(CommandError::Conflict(c)) => seen.push(Seen::Conflict {
                    expected: c.expected,
                    actual: c.actual,
                    window: (before, after),
                }),
                Err(e) if e.is_retryable() => {
                    sim.world.lock().unwrap().now_us += draw(3) as i64 * SECOND_US;
                }
                Err(e) => {
                    sim.violations
                        .lock()
                        .unwrap()
                        .push(format!("command {ids:?} failed permanently: {e}"));
                    break;
                }
            }
        }
    }
    seen
}

/// The storer: single appends of `ids`, in order, redelivered on failure.
async fn storer(sim: Sim, ids: Vec<String>, skew: i64) {
    let (store, start) = sim.store(skew);
    for id in ids {
        sim.deliver(&store, &start, &[id], 6).await;
    }
}

/// A writer's clock skew; none without faults (the exhaustive scheduler
/// draws no random data).
fn skew(faults: bool) -> i64 {
    if faults {
        draw(2 * MAX_SKEW_US as u64) as i64 - MAX_SKEW_US
    } else {
        0
    }
}

/// What else runs beside the commands and the storer.
#[derive(Debug, Clone, Copy, Default)]
struct Beside {
    /// The storer writes with a retention (heads after every append).
    retention: bool,
    /// Before the commands start, the entity has an event that expired
    /// (TTL has not necessarily removed it yet).
    expired_history: bool,
    /// TTL removes expired items, in any order, while the writers run.
    reaper: bool,
    /// The previous design's writer appends once.
    legacy_writer: bool,
}

/// One schedule: `commands[w]` are writer w's command sizes, `storer_ids`
/// the storer's messages.
fn run_commands(commands: Vec<Vec<usize>>, storer_ids: Vec<String>, faults: bool, beside: Beside) {
    let sim = Sim {
        world: Arc::new(Mutex::new(World {
            now_us: START_US,
            faults,
            ..World::default()
        })),
        ttl: beside
            .retention
            .then(|| chrono::Duration::seconds(TTL_SECONDS)),
        acked: Arc::default(),
        violations: Arc::default(),
        pending: Arc::default(),
    };
    let seen: Vec<Seen> = shuttle::future::block_on(async {
        if beside.expired_history {
            // An event stored long ago, now past its retention: versions
            // continue after it although TTL may remove it at any moment.
            let faults = std::mem::replace(&mut sim.world.lock().unwrap().faults, false);
            storer(sim.clone(), vec!["g".into()], 0).await;
            let mut w = sim.world.lock().unwrap();
            w.idle(draw(u64::MAX));
            w.faults = faults;
        }
        let mut tasks = Vec::new();
        for (w, sizes) in commands.clone().into_iter().enumerate() {
            let sim = sim.clone();
            let skew = skew(faults);
            tasks.push(shuttle::future::spawn(command_writer(sim, w, sizes, skew)));
        }
        let storer_task = {
            let sim = sim.clone();
            let skew = skew(faults);
            shuttle::future::spawn(storer(sim, storer_ids.clone(), skew))
        };
        let legacy = beside.legacy_writer.then(|| {
            let sim = sim.clone();
            shuttle::future::spawn(async move { legacy_append(&sim, "h").await })
        });
        let reaper = beside.reaper.then(|| {
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
        let mut seen = Vec::new();
        for t in tasks {
            seen.extend(t.await.unwrap());
        }
        storer_task.await.unwrap();
        if let Some(legacy) = legacy {
            legacy.await.unwrap();
        }
        if let Some(reaper) = reaper {
            reaper.await.unwrap();
        }
        seen
    });
    let scenario = Scenario {
        retention: beside.retention,
        legacy_table: false,
        legacy_writer: beside.legacy_writer,
        single_writer: false,
        rounds: 1,
        writers: vec![vec![storer_ids.iter().map(|id| vec![id.clone()]).collect()]],
        skews: vec![0],
        faults,
        reaper: beside.reaper,
        batched: false,
    };
    let mut problems = check(&sim, &scenario).err().unwrap_or_default();
    problems.extend(check_commands(&sim.world.lock().unwrap(), &seen));
    let problems: Vec<String> = problems;
    if !problems.is_empty() {
        let w = sim.world.lock().unwrap();
        panic!(
            "violations: {problems:#?}\ncommands: {commands:?}, storer: {storer_ids:?}, beside: {beside:?}\nseen: {seen:#?}\nhistory: {:#?}",
            w.history
        );
    }
}

fn check_commands(world: &World, seen: &[Seen]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut at_seq: BTreeMap<u64, &str> = BTreeMap::new();
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &world.history {
        if let Change::Insert { seq, id, .. } = c {
            at_seq.insert(*seq, id);
            *copies.entry(id).or_default() += 1;
        }
    }
    // Without a retention an id is stored once; with one, `check` allows a
    // second copy only after the first expired (the de-duplication window).
    let without_retention = world.history.iter().all(|c| {
        matches!(
            c,
            Change::Insert {
                expires_at: None,
                ..
            }
        )
    });
    for (id, n) in &copies {
        if *n > 1 && without_retention {
            problems.push(format!("{id} stored {n} times"));
        }
    }
    for s in seen {
        match s {
            Seen::Acked {
                ids,
                last_sequence,
                stored_at_version,
            } => {
                if let Some(version) = stored_at_version
                    && version + ids.len() as u64 != *last_sequence
                {
                    problems.push(format!(
                        "command {ids:?} loaded version {version} but was stored up to {last_sequence}: it did not hold the versions after the one it decided on"
                    ));
                }
                let first = (last_sequence + 1).checked_sub(ids.len() as u64);
                let held: Vec<Option<&str>> = match first {
                    Some(first) if first >= 1 => (first..=*last_sequence)
                        .map(|seq| at_seq.get(&seq).copied())
                        .collect(),
                    _ => vec![None],
                };
                let wanted: Vec<Option<&str>> = ids.iter().map(|i| Some(i.as_str())).collect();
                if held != wanted {
                    problems.push(format!(
                        "command {ids:?} answered last sequence {last_sequence}, but those versions hold {held:?}"
                    ));
                }
            }
            Seen::Conflict {
                expected,
                actual,
                window: (low, high),
            } => {
                if actual == expected || actual < low || actual > high {
                    problems.push(format!(
                        "conflict at expected {expected} reported actual {actual}; the entity was at {low}..={high} during the call"
                    ));
                }
            }
        }
    }
    problems
}

/// The scenario of one random schedule: 1–3 command writers of 1–2
/// commands of 1–3 events each, and the storer's 1–3 single appends; half
/// of them with a retention (and then half on an expired history), one in
/// six with the previous design's writer.
fn random_commands() {
    let writers = 1 + draw(3) as usize;
    let commands = (0..writers)
        .map(|_| (0..1 + draw(2)).map(|_| 1 + draw(3) as usize).collect())
        .collect();
    let storer_ids = ["a", "b", "c"][..1 + draw(3) as usize]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let retention = draw(2) == 0 && fault_enabled("ttl");
    let beside = Beside {
        retention,
        expired_history: retention && draw(2) == 0,
        reaper: retention,
        legacy_writer: draw(6) == 0 && fault_enabled("legacy"),
    };
    run_commands(commands, storer_ids, true, beside);
}

#[test]
fn commands_at_expected_versions_hold_against_the_storer_under_random_schedules() {
    run_with(
        shuttle::scheduler::RandomScheduler::new(schedules(3_000)),
        random_commands,
    );
}

#[test]
fn commands_at_expected_versions_hold_against_the_storer_under_pct_schedules() {
    run_with(
        shuttle::scheduler::PctScheduler::new(3, schedules(3_000)),
        random_commands,
    );
}

/// Every interleaving, no faults: two commands of two events each, loaded
/// at the same version, racing the storer's single append.
#[test]
fn two_multi_event_commands_and_the_storer_under_every_interleaving() {
    let explored = run_with(
        shuttle::scheduler::DfsScheduler::new(Some(schedules(10_000)), false),
        || {
            run_commands(
                vec![vec![2], vec![2]],
                vec!["a".into()],
                false,
                Beside::default(),
            )
        },
    );
    assert!(explored > 1, "{explored} schedules");
}
