//! The `command` profile: concurrent writers contend on a few entities
//! through the command API (`POST /entities/{entity_id}/events`), each
//! appending one to three events at the version it read and retrying on a
//! conflict, as an application's command handlers would. Every acknowledged
//! append goes into a JSON Lines manifest; `verify` reads each entity back and
//! checks that every acknowledged event is stored exactly once, that each
//! append holds the consecutive versions it was answered, and so that no two
//! writers ever held the same version (INVARIANTS.md #2, #3).

use crate::rng::Rng;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tideline_eventstore::{Backend, Error, EventStore, Expected, Http, ProposedEvent};

/// What a command run does.
#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// Base URL of the command and query APIs.
    pub endpoint: String,
    /// Concurrent writers.
    pub writers: usize,
    /// Entities they contend on.
    pub entities: u32,
    /// Appends acknowledged in all (the run stops there).
    pub appends: u64,
    /// Seed of entity choice, batch sizes and ids.
    pub seed: u64,
    /// Calls per append after a retryable failure, the first included.
    pub max_attempts: u32,
}

/// The manifest's first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandHeader {
    /// Always `command`.
    pub profile: String,
    /// The run's seed.
    pub seed: u64,
}

/// One acknowledged append, as a manifest line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AckedAppend {
    /// The entity.
    pub entity: String,
    /// The version the writer read and appended at.
    pub expected: u64,
    /// The last sequence the API answered.
    pub last_sequence: u64,
    /// The events' ids, in order.
    pub ids: Vec<String>,
}

/// What a command run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommandSummary {
    /// Appends acknowledged.
    pub appends: u64,
    /// Events in them.
    pub events: u64,
    /// Conflicts answered (each retried after reading again).
    pub conflicts: u64,
    /// Retryable failures retried.
    pub retries: u64,
    /// Appends given up on.
    pub failed: u64,
    /// Why, for the first few.
    pub reasons: Vec<String>,
}

impl CommandSummary {
    /// One line for humans.
    pub fn line(&self) -> String {
        let status = if self.failed == 0 { "OK" } else { "FAILED" };
        let mut line = format!(
            "send {status}: profile=command appends={} events={} conflicts={} retries={} failed={}",
            self.appends, self.events, self.conflicts, self.retries, self.failed
        );
        for r in &self.reasons {
            line.push_str(&format!("\n  {r}"));
        }
        line
    }
}

/// The entity names of a run.
pub fn entity_name(seed: u64, k: u32) -> String {
    format!("cmd-{seed}-{k}")
}

/// Runs the writers; each acknowledged append is written to `manifest`.
pub async fn send(
    config: &CommandConfig,
    manifest: Option<&Path>,
) -> Result<CommandSummary, String> {
    let mut out: Option<Box<dyn Write + Send>> = match manifest {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| format!("--manifest {}: {e}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let header = CommandHeader {
                profile: "command".into(),
                seed: config.seed,
            };
            writeln!(w, "{}", json!(header)).map_err(|e| format!("--manifest: {e}"))?;
            Some(Box::new(w))
        }
        None => None,
    };
    let store = Arc::new(EventStore::http(&config.endpoint));
    let taken = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..config.writers {
        let (store, taken, config) = (store.clone(), taken.clone(), config.clone());
        tasks.push(tokio::spawn(async move {
            writer(&store, &config, w, &taken).await
        }));
    }
    let mut summary = CommandSummary::default();
    for t in tasks {
        let (acked, s) = t.await.map_err(|e| format!("a writer panicked: {e}"))?;
        summary.appends += s.appends;
        summary.events += s.events;
        summary.conflicts += s.conflicts;
        summary.retries += s.retries;
        summary.failed += s.failed;
        summary.reasons.extend(s.reasons);
        if let Some(out) = out.as_mut() {
            for a in acked {
                writeln!(out, "{}", json!(a)).map_err(|e| format!("--manifest: {e}"))?;
            }
        }
    }
    if let Some(mut out) = out {
        out.flush().map_err(|e| format!("--manifest: {e}"))?;
    }
    summary.reasons.truncate(5);
    Ok(summary)
}

/// One writer: takes appends from the shared budget until it is spent.
async fn writer<B: Backend>(
    store: &EventStore<B>,
    config: &CommandConfig,
    w: usize,
    taken: &AtomicU64,
) -> (Vec<AckedAppend>, CommandSummary) {
    let mut rng = Rng::new(config.seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut known: HashMap<String, u64> = HashMap::new();
    let mut acked = Vec::new();
    let mut s = CommandSummary::default();
    loop {
        let n = taken.fetch_add(1, Ordering::SeqCst);
        if n >= config.appends {
            break;
        }
        let entity = entity_name(config.seed, rng.below(u64::from(config.entities)) as u32);
        let size = 1 + rng.below(3) as usize;
        let ids: Vec<String> = (0..size)
            .map(|j| format!("c{}-w{w}-{n}-{j}", config.seed))
            .collect();
        let events: Vec<ProposedEvent> = ids
            .iter()
            .map(|id| {
                ProposedEvent::new("CommandApplied", json!({"writer": w, "append": n}))
                    .with_id(id.clone())
            })
            .collect();
        let mut attempts = 0;
        loop {
            // Load: catch up from the last version this writer saw.
            let from = known.get(&entity).copied().unwrap_or(0);
            let version = match store
                .read(&entity, from + 1)
                .try_fold(from, |_, e| async move { Ok(e.sequence) })
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    attempts += 1;
                    if e.is_retryable_error() && attempts < config.max_attempts {
                        s.retries += 1;
                        continue;
                    }
                    s.failed += 1;
                    s.reasons.push(format!("{entity}: read: {e}"));
                    break;
                }
            };
            known.insert(entity.clone(), version);
            match store
                .append(&entity, Expected::Exactly(version), events.clone())
                .await
            {
                Ok(last_sequence) => {
                    known.insert(entity.clone(), last_sequence);
                    s.appends += 1;
                    s.events += size as u64;
                    acked.push(AckedAppend {
                        entity: entity.clone(),
                        expected: version,
                        last_sequence,
                        ids: ids.clone(),
                    });
                    break;
                }
                Err(Error::Conflict { actual, .. }) => {
                    s.conflicts += 1;
                    // Our cache is behind the entity: read forward from what we had.
                    if actual < version {
                        known.remove(&entity);
                    }
                }
                Err(e) => {
                    attempts += 1;
                    if e.is_retryable_error() && attempts < config.max_attempts {
                        s.retries += 1;
                        continue;
                    }
                    s.failed += 1;
                    s.reasons.push(format!("{entity}: append: {e}"));
                    break;
                }
            }
        }
    }
    (acked, s)
}

trait RetryableError {
    fn is_retryable_error(&self) -> bool;
}

impl RetryableError for Error {
    fn is_retryable_error(&self) -> bool {
        tideline_core::Classify::is_retryable(self)
    }
}

/// Whether `path` is a command manifest (its first line is the header).
pub fn is_command_manifest(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .is_some_and(|b| b.starts_with(br#"{"profile":"command""#))
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommandVerify {
    /// Entities read.
    pub entities: u64,
    /// Acknowledged appends checked.
    pub appends: u64,
    /// Acknowledged events checked.
    pub events: u64,
    /// What is wrong (empty: all good).
    pub problems: Vec<String>,
}

impl CommandVerify {
    /// One line for humans, and the first problems.
    pub fn line(&self) -> String {
        let status = if self.problems.is_empty() {
            "OK"
        } else {
            "FAILED"
        };
        let mut line = format!(
            "verify {status}: profile=command entities={} appends={} events={} problems={}",
            self.entities,
            self.appends,
            self.events,
            self.problems.len()
        );
        for p in self.problems.iter().take(10) {
            line.push_str(&format!("\n  {p}"));
        }
        line
    }
}

/// Reads the manifest and every entity it names back through `endpoint`.
pub async fn verify(manifest: &Path, endpoint: &str) -> Result<CommandVerify, String> {
    let file = std::fs::File::open(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let mut by_entity: BTreeMap<String, Vec<AckedAppend>> = BTreeMap::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate().skip(1) {
        let line = line.map_err(|e| format!("{}: {e}", manifest.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let a: AckedAppend = serde_json::from_str(&line)
            .map_err(|e| format!("{} line {}: {e}", manifest.display(), n + 1))?;
        by_entity.entry(a.entity.clone()).or_default().push(a);
    }
    let store = EventStore::new(Http::new(endpoint));
    let mut out = CommandVerify::default();
    for (entity, appends) in &by_entity {
        out.entities += 1;
        let history: Vec<_> = store
            .read(entity, 1)
            .try_collect()
            .await
            .map_err(|e| format!("{entity}: {e}"))?;
        out.problems.extend(check_entity(entity, &history, appends));
        out.appends += appends.len() as u64;
        out.events += appends.iter().map(|a| a.ids.len() as u64).sum::<u64>();
    }
    Ok(out)
}

/// The checks of one entity: its history (in the order read, never sorted)
/// against the appends acknowledged on it.
pub fn check_entity(
    entity: &str,
    history: &[tideline_eventstore::RecordedEvent],
    appends: &[AckedAppend],
) -> Vec<String> {
    let mut problems = Vec::new();
    let seqs: Vec<u64> = history.iter().map(|e| e.sequence).collect();
    if seqs != (1..=history.len() as u64).collect::<Vec<_>>() {
        problems.push(format!("{entity}: sequence not gapless in order: {seqs:?}"));
    }
    let mut copies: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in history {
        copies
            .entry(e.event_id.as_str())
            .or_default()
            .push(e.sequence);
    }
    let mut holder: BTreeMap<u64, usize> = BTreeMap::new();
    for (k, a) in appends.iter().enumerate() {
        for (j, id) in a.ids.iter().enumerate() {
            let want = (a.last_sequence + 1 + j as u64).checked_sub(a.ids.len() as u64);
            match copies.get(id.as_str()).map(Vec::as_slice) {
                None | Some([]) => {
                    problems.push(format!("{entity}: {id} acknowledged, not stored"))
                }
                Some([seq]) if Some(*seq) == want => {
                    if let Some(other) = holder.insert(*seq, k) {
                        problems.push(format!(
                            "{entity}: version {seq} held by two appends ({:?} and {:?})",
                            appends[other].ids, a.ids
                        ));
                    }
                }
                Some([seq]) => problems.push(format!(
                    "{entity}: {id} at version {seq}, but its append was answered last sequence {} (versions {:?}..)",
                    a.last_sequence, want
                )),
                Some(many) => problems.push(format!("{entity}: {id} stored {} times: {many:?}", many.len())),
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tideline_eventstore::RecordedEvent;

    fn event(seq: u64, id: &str) -> RecordedEvent {
        RecordedEvent {
            entity_id: "e".into(),
            sequence: seq,
            event_id: id.into(),
            event_type: "T".into(),
            data: json!({}),
            occurred_at: String::new(),
            stored_at: String::new(),
            correlation_id: None,
        }
    }

    fn acked(expected: u64, last: u64, ids: &[&str]) -> AckedAppend {
        AckedAppend {
            entity: "e".into(),
            expected,
            last_sequence: last,
            ids: ids.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_clean_history_passes_and_each_problem_is_named() {
        let history = [event(1, "a"), event(2, "b"), event(3, "c")];
        let appends = [acked(0, 2, &["a", "b"]), acked(2, 3, &["c"])];
        assert!(check_entity("e", &history, &appends).is_empty());
        // Two writers claiming version 3.
        let twice = [
            acked(0, 2, &["a", "b"]),
            acked(2, 3, &["c"]),
            acked(2, 3, &["x"]),
        ];
        let p = check_entity("e", &history, &twice);
        assert!(
            p.iter().any(|p| p.contains("x acknowledged, not stored")),
            "{p:?}"
        );
        // A duplicate and a gap.
        let history = [event(1, "a"), event(2, "a"), event(4, "c")];
        let p = check_entity("e", &history, &[acked(0, 1, &["a"])]);
        assert!(p.iter().any(|p| p.contains("not gapless")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("stored 2 times")), "{p:?}");
        // Stored elsewhere than answered.
        let history = [event(1, "b"), event(2, "a")];
        let p = check_entity("e", &history, &[acked(0, 1, &["a"])]);
        assert!(p.iter().any(|p| p.contains("a at version 2")), "{p:?}");
    }
}
