//! Each hole issue 19 found in the append protocol, as a scripted
//! interleaving: writers run the real [`SlotStore`] code against a table
//! whose every call waits for the script, which lets a writer make its next
//! call, crash before it, or lose its response. Each script failed on the
//! protocol before the fix (the closing note of issue 19 gives the
//! failures); the assertions are the checker's invariants.

use super::legacy::{LegacyOutcome, legacy_append, legacy_items};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tideline_core::ingest::{IngestConfig, normalize_record};
use tideline_core::item::{AttrValue, Item, decode_event, lookup};
use tideline_core::{AppendOutcome, EntityId, ExpectedSeq, NewEvent, StoredEvent};
use tideline_stages::store::slot::{
    Clock, CondPut, ConditionFailed, ItemPage, ItemTable, MemoryItemTable, SlotStore,
};
use tideline_stages::{EventStore, PortError, StoreError};
use tokio::sync::{mpsc, oneshot};

/// A call a writer is about to make.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Latest,
    Get(String),
    Put { sk: String, kind: String },
    Transact,
}

impl Op {
    fn is_put(&self, of_kind: &str) -> bool {
        matches!(self, Op::Put { kind, .. } if kind == of_kind)
    }
}

/// What the script lets the pending call do.
#[derive(Debug, Clone, Copy)]
enum Command {
    Go,
    /// The invocation dies before the call.
    Crash,
    /// The write applies; the caller sees a retryable error.
    LoseResponse,
}

type Pending = (Op, oneshot::Sender<Command>);

/// One writer's handle on the shared table: every call asks the script.
#[derive(Clone)]
struct Gated {
    table: Arc<MemoryItemTable>,
    calls: mpsc::UnboundedSender<Pending>,
}

impl Gated {
    async fn ask(&self, op: Op) -> Result<Command, PortError> {
        let (tx, rx) = oneshot::channel();
        self.calls
            .send((op, tx))
            .map_err(|_| PortError::retryable("gated", "script gone"))?;
        rx.await
            .map_err(|_| PortError::retryable("gated", "script gone"))
    }

    async fn gate<R>(&self, op: Op, run: impl AsyncFnOnce() -> R) -> Result<R, PortError> {
        match self.ask(op).await? {
            Command::Crash => Err(PortError::retryable("gated", "crashed before the call")),
            Command::Go => Ok(run().await),
            Command::LoseResponse => {
                run().await;
                Err(PortError::retryable("gated", "response lost"))
            }
        }
    }
}

fn kind(item: &Item) -> String {
    match item.get("kind") {
        Some(AttrValue::S(k)) => k.clone(),
        _ => "?".into(),
    }
}

fn sk(item: &Item) -> String {
    match item.get("sk") {
        Some(AttrValue::S(k)) => k.clone(),
        _ => "?".into(),
    }
}

impl ItemTable for Gated {
    async fn latest_event(&self, pk: &str) -> Result<Option<Item>, PortError> {
        self.gate(Op::Latest, async || self.table.latest_event(pk).await)
            .await?
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, PortError> {
        self.gate(Op::Get(sk.into()), async || self.table.get(pk, sk).await)
            .await?
    }

    async fn put(&self, put: CondPut) -> Result<Result<(), ConditionFailed>, PortError> {
        let op = Op::Put {
            sk: sk(&put.item),
            kind: kind(&put.item),
        };
        self.gate(op, async || self.table.put(put).await).await?
    }

    async fn transact(&self, puts: Vec<CondPut>) -> Result<Result<(), Vec<usize>>, PortError> {
        self.gate(Op::Transact, async || self.table.transact(puts).await)
            .await?
    }

    async fn events_after(
        &self,
        pk: &str,
        after_sk: Option<&str>,
        limit: usize,
    ) -> Result<ItemPage, PortError> {
        self.table.events_after(pk, after_sk, limit).await
    }
}

type Outcome = Result<Vec<AppendOutcome>, StoreError>;

/// A writer under the script: its pending call, and its result once done.
struct Writer {
    calls: mpsc::UnboundedReceiver<Pending>,
    pending: Option<Pending>,
    task: Option<tokio::task::JoinHandle<Outcome>>,
    result: Option<Outcome>,
}

const ENTITY: &str = "e-1";

fn ev(id: &str) -> NewEvent {
    let rec = format!(r#"{{"entity_id":"{ENTITY}","type":"T","data":{{"n":"{id}"}},"id":"{id}"}}"#);
    normalize_record(&IngestConfig::default(), rec.as_bytes(), chrono::Utc::now()).unwrap()
}

/// The shared table, a clock the script moves, and its writers.
struct Script {
    table: Arc<MemoryItemTable>,
    now_us: Arc<AtomicI64>,
    ttl: Option<chrono::Duration>,
    writers: HashMap<&'static str, Writer>,
}

impl Script {
    fn new(ttl: Option<chrono::Duration>) -> Self {
        Self {
            table: Arc::default(),
            now_us: Arc::new(AtomicI64::new(1_796_000_000_000_000)),
            ttl,
            writers: HashMap::new(),
        }
    }

    fn clock(&self) -> Clock {
        let now = self.now_us.clone();
        Clock::new(move || {
            chrono::DateTime::from_timestamp_micros(now.load(Ordering::SeqCst)).unwrap()
        })
    }

    fn pass(&self, d: chrono::Duration) {
        self.now_us
            .fetch_add(d.num_microseconds().unwrap(), Ordering::SeqCst);
    }

    fn store<T: ItemTable>(&self, table: T) -> SlotStore<T> {
        SlotStore::new(table, "script")
            .with_ttl(self.ttl)
            .with_clock(self.clock())
    }

    /// An append that runs without pauses.
    async fn append_now(&self, ids: &[&str]) -> Outcome {
        self.store(self.table.clone())
            .append(
                &EntityId::new(ENTITY).unwrap(),
                ids.iter().map(|id| ev(id)).collect(),
                ExpectedSeq::Any,
            )
            .await
    }

    /// Starts writer `name` appending `ids`, paused before its first call.
    async fn start(&mut self, name: &'static str, ids: &[&str]) {
        let (tx, rx) = mpsc::unbounded_channel();
        let store = self.store(Gated {
            table: self.table.clone(),
            calls: tx,
        });
        let events: Vec<NewEvent> = ids.iter().map(|id| ev(id)).collect();
        let task = tokio::spawn(async move {
            store
                .append(&EntityId::new(ENTITY).unwrap(), events, ExpectedSeq::Any)
                .await
        });
        self.writers.insert(
            name,
            Writer {
                calls: rx,
                pending: None,
                task: Some(task),
                result: None,
            },
        );
        self.next(name).await;
    }

    /// The writer's next call, once it asks (`None`: it finished).
    async fn next(&mut self, name: &str) -> Option<Op> {
        let w = self.writers.get_mut(name).unwrap();
        if w.pending.is_none() && w.result.is_none() {
            match w.calls.recv().await {
                Some(p) => w.pending = Some(p),
                None => {
                    let task = w.task.take().unwrap();
                    w.result = Some(task.await.unwrap());
                }
            }
        }
        w.pending.as_ref().map(|(op, _)| op.clone())
    }

    /// Resolves the writer's pending call, and waits for its next one.
    async fn resolve(&mut self, name: &str, command: Command) -> Op {
        let w = self.writers.get_mut(name).unwrap();
        let (op, reply) = w.pending.take().expect("a pending call");
        let _ = reply.send(command);
        self.next(name).await;
        op
    }

    /// Lets the writer run until its next call matches (left pending).
    async fn until(&mut self, name: &str, stop: impl Fn(&Op) -> bool) -> Op {
        loop {
            match self.next(name).await {
                Some(op) if stop(&op) => return op,
                Some(_) => {
                    self.resolve(name, Command::Go).await;
                }
                None => panic!("{name} finished before the call the script waits for"),
            }
        }
    }

    /// Lets the writer run to its end; its result.
    async fn finish(&mut self, name: &str) -> Outcome {
        while self.next(name).await.is_some() {
            self.resolve(name, Command::Go).await;
        }
        self.writers.get_mut(name).unwrap().result.clone().unwrap()
    }

    fn events(&self) -> Vec<StoredEvent> {
        // Key order, never sorted here: the order checked is the table's.
        self.table
            .items()
            .iter()
            .filter(|i| kind(i) == "event")
            .map(|i| decode_event(lookup(i)).unwrap())
            .collect()
    }

    fn remove_event(&self, id: &str) {
        let e = self
            .events()
            .into_iter()
            .find(|e| e.event_id.as_str() == id)
            .unwrap();
        self.table.remove(ENTITY, &e.sk);
    }

    /// Every id once, and `seq` 1..=n in `sk` order.
    fn assert_stored_once_gapless(&self, ids: &[&str]) {
        let events = self.events();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "seq in sk order: {events:#?}"
        );
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &events {
            *count.entry(e.event_id.as_str()).or_default() += 1;
        }
        for id in ids {
            assert_eq!(count.get(id), Some(&1), "{id} stored once: {events:#?}");
        }
    }
}

fn is_event_put(op: &Op) -> bool {
    op.is_put("event")
}

fn is_marker_put(op: &Op) -> bool {
    op.is_put("dedup")
}

/// Hole 1: two writers of one id plus one other append. A writer with a stale
/// tail moved the marker back, and the id was stored at seq 3 and seq 4.
#[tokio::test]
async fn hole_1_a_stale_writer_never_moves_a_marker_back() {
    let mut s = Script::new(None);
    s.append_now(&["first"]).await.unwrap();
    s.start("A", &["x"]).await;
    s.start("A2", &["x"]).await;
    s.start("B", &["y"]).await;
    // A reads the tail (slot 2) and writes marker x→2.
    s.until("A", is_marker_put).await;
    s.resolve("A", Command::Go).await;
    // A2 reads the tail (slot 2).
    s.until("A2", is_marker_put).await;
    // B puts y at slot 2.
    s.finish("B").await.unwrap();
    // A's put at 2 fails; it re-reads (3) and moves the marker to 3.
    s.until("A", is_event_put).await;
    s.resolve("A", Command::Go).await;
    s.until("A", is_event_put).await;
    // A2's marker put fails and returns x→3; it must not move it back to 2.
    s.until("A2", is_event_put).await;
    // A puts x at 3; A2 goes on.
    s.finish("A").await.unwrap();
    s.finish("A2").await.unwrap();
    s.assert_stored_once_gapless(&["first", "y", "x"]);
}

/// Hole 2: a multi-event append racing a single append of one of its ids.
/// The multi-event append read the markers before the tail, so it took x's
/// intent for unfinished while x was being stored, and stored it again.
#[tokio::test]
async fn hole_2_a_multi_event_append_reads_its_markers_after_the_tail() {
    let mut s = Script::new(None);
    s.append_now(&["first"]).await.unwrap();
    s.start("A", &["x"]).await;
    s.start("C", &["x", "z"]).await;
    // A writes marker x→2 and stops before its event.
    s.until("A", is_event_put).await;
    // C reads x's marker (an intent) and stops before reading the tail.
    s.until("C", |op| *op == Op::Latest).await;
    // A stores x at 2; then C reads the tail (3) and commits.
    s.finish("A").await.unwrap();
    s.finish("C").await.unwrap();
    s.assert_stored_once_gapless(&["first", "x", "z"]);
}

/// Hole 3: TTL removed the latest event before an earlier one, and the next
/// append was stored at the removed event's `seq`.
#[tokio::test]
async fn hole_3_ttl_removing_the_latest_event_first_never_reuses_its_seq() {
    let s = Script::new(Some(chrono::Duration::days(1)));
    s.append_now(&["a"]).await.unwrap();
    s.append_now(&["b"]).await.unwrap();
    s.pass(chrono::Duration::days(2));
    s.remove_event("b"); // TTL removes in no promised order
    let out = s.append_now(&["c"]).await.unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Stored { seq: 3, .. }),
        "{out:?}"
    );
}

/// Hole 4: the head write after an event failed; the redelivery found the
/// marker and returned a duplicate without repairing the head; after every
/// event expired, `seq` restarted from the stale head.
#[tokio::test]
async fn hole_4_a_redelivery_repairs_a_head_left_behind() {
    let mut s = Script::new(Some(chrono::Duration::days(1)));
    s.append_now(&["a"]).await.unwrap();
    s.start("B", &["b"]).await;
    s.until("B", |op| op.is_put("head")).await;
    s.resolve("B", Command::Crash).await;
    assert!(s.finish("B").await.is_err());
    // The redelivery: b is a duplicate now.
    let out = s.append_now(&["b"]).await.unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Duplicate { .. }),
        "{out:?}"
    );
    s.pass(chrono::Duration::days(2));
    s.remove_event("b");
    s.remove_event("a");
    let out = s.append_now(&["c"]).await.unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Stored { seq: 3, .. }),
        "{out:?}"
    );
}

/// Hole 5: an intent completed at its own slot kept the crashed attempt's
/// expiry, earlier than its event's; once the marker expired, a re-send was
/// stored again while the event was retained.
#[tokio::test]
async fn hole_5_a_marker_never_expires_before_its_event() {
    let mut s = Script::new(Some(chrono::Duration::days(1)));
    s.append_now(&["first"]).await.unwrap();
    s.start("A", &["x"]).await;
    s.until("A", is_event_put).await;
    s.resolve("A", Command::Crash).await;
    assert!(s.finish("A").await.is_err());
    // Redelivered half a day later: completes the intent at the same slot.
    s.pass(chrono::Duration::hours(12));
    s.append_now(&["x"]).await.unwrap();
    // Just past the first attempt's expiry: x's event is retained, so the
    // marker must be too; TTL may remove only what has expired.
    s.pass(chrono::Duration::hours(12) + chrono::Duration::minutes(1));
    let now = s.now_us.load(Ordering::SeqCst) / 1_000_000;
    for item in s.table.items() {
        let expired = matches!(item.get("expires_at"), Some(AttrValue::N(t)) if t.parse::<i64>().unwrap() < now);
        if expired {
            s.table.remove(ENTITY, &sk(&item));
        }
    }
    let out = s.append_now(&["x"]).await.unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Duplicate { .. }),
        "{out:?}"
    );
    // `first` expired and was removed; x is stored once, at seq 2.
    let seqs: Vec<(String, u64)> = s
        .events()
        .iter()
        .map(|e| (e.event_id.to_string(), e.seq))
        .collect();
    assert_eq!(seqs, vec![("x".to_string(), 2)]);
}

/// Hole 6: a writer of the previous design (a rollback, an old invocation
/// during a deploy) took `seq` from a head this design no longer advanced,
/// and repeated a `seq`. The head is fenced: the old writer refuses.
#[tokio::test]
async fn hole_6_a_writer_of_the_previous_design_refuses_instead_of_repeating_a_seq() {
    let now = chrono::DateTime::from_timestamp_micros(1_796_000_000_000_000).unwrap();
    // A table the previous design wrote: this version fences its head on the
    // first append, and the old writer refuses from then on (before the
    // fence it read `last_seq` 2 and stored "old-3" at seq 3 again).
    let s = Script::new(None);
    for item in legacy_items(ENTITY) {
        s.table.seed(item);
    }
    let out = s.append_now(&["new"]).await.unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Stored { seq: 3, .. }),
        "{out:?}"
    );
    let old = legacy_append(s.table.as_ref(), ENTITY, "old-3", now).await;
    assert_eq!(old, LegacyOutcome::Refused);
    s.assert_stored_once_gapless(&["old-1", "old-2", "new"]);

    // An entity this version created: its head is fenced from the start.
    let s = Script::new(None);
    s.append_now(&["a"]).await.unwrap();
    s.append_now(&["b"]).await.unwrap();
    let old = legacy_append(s.table.as_ref(), ENTITY, "old", now).await;
    assert_eq!(old, LegacyOutcome::Refused);
    s.assert_stored_once_gapless(&["a", "b"]);
}

/// A lost response after the event applied: the SDK's retry finds the event
/// and the append reports it stored, once.
#[tokio::test]
async fn a_lost_response_after_the_event_applied_is_stored_once() {
    let mut s = Script::new(Some(chrono::Duration::days(1)));
    s.append_now(&["first"]).await.unwrap();
    s.start("A", &["x"]).await;
    s.until("A", is_event_put).await;
    s.resolve("A", Command::LoseResponse).await;
    assert!(s.finish("A").await.is_err());
    let out = s.append_now(&["x"]).await.unwrap();
    assert!(
        matches!(&out[0], AppendOutcome::Duplicate { .. }),
        "{out:?}"
    );
    s.assert_stored_once_gapless(&["first", "x"]);
}
