//! The replay stage: re-emit stored events to the bus, marked
//! `metadata.replay = true`, in `seq` order per entity (decision record
//! 0017). Local mode's `POST /_tideline/replay` and `tideline replay --aws`
//! both run [`replay`]; only the adapters differ.
//!
//! - By entity: the store's [`EventStore::head`] bounds the range, and
//!   [`EventStore::read_events`] reads it page by page (DynamoDB: a `Query`
//!   on the entity's key).
//! - By time window: an [`EntityIndex`] names the entities with events stored
//!   in the window, and [`EventStore::read_window`] reads each one's events
//!   in the window (DynamoDB: a key-range `Query` on `sk`). Nothing reads the
//!   whole table: locally the index is the SQLite store itself; on AWS it is
//!   the data lake ([`LakeIndex`]), which holds every accepted record with
//!   its entity id.
//!
//! Each page goes out through [`replay_events`], the emit stage's own path
//! (chunking, one call at a time, only failed entries resent). A page that
//! cannot be published stops its entity there, so nothing of that entity is
//! published after the failure; [`OnFailure`] says whether the other
//! entities go on.

use crate::emit::{EmitConfig, replay_events};
use crate::error::{PortError, StoreError};
use crate::lake::LakeReader;
use crate::{Bus, EventStore};
use std::collections::BTreeSet;
use std::future::Future;
use tideline_core::lake_layout::{self, LakeReadError};
use tideline_core::replay::{MAX_QUEUE_WAIT, Selection, StoredWindow, written_in};
use tideline_core::{Classify, EntityId, ErrorClass};
use tracing::{info, warn};

/// Events read from the store per page (and published per
/// [`replay_events`] call).
pub const PAGE: usize = 500;

/// Names the entities that may have events stored in a window: a superset
/// is fine (their events are read and filtered), a missing entity is not.
pub trait EntityIndex: Send + Sync {
    /// The entities, each once.
    fn entities_in(
        &self,
        window: &StoredWindow,
    ) -> impl Future<Output = Result<Vec<EntityId>, PortError>> + Send;
}

/// No index: a by-entity replay needs none, and a window is refused.
impl<I: EntityIndex> EntityIndex for Option<I> {
    async fn entities_in(&self, window: &StoredWindow) -> Result<Vec<EntityId>, PortError> {
        match self {
            Some(index) => index.entities_in(window).await,
            None => Err(PortError::permanent(
                "replay",
                "a replay by time window needs an index of the entities (on AWS: the data lake)",
            )),
        }
    }
}

/// What a failure to publish does to the rest of the replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the whole replay at the first failure: one rewind point says
    /// where a rerun starts (local mode's HTTP contract).
    Stop,
    /// Stop only the failing entity; the others go on, and each failure is
    /// reported with its own rewind point (`tideline replay --aws`).
    NextEntity,
}

/// Settings of a replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// `source` and retries of the re-emitted events; replays go out one
    /// event per entry (decision record 0014), so its bundling is ignored.
    pub emit: EmitConfig,
    /// What a failure does to the rest.
    pub on_failure: OnFailure,
}

/// An entity whose replay stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityFailure {
    /// The entity.
    pub entity: EntityId,
    /// Where a rerun should start: `<entity>#<seq>`.
    pub rewind_from: String,
    /// Why.
    pub error: Option<String>,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events published.
    pub published: u64,
    /// Events read and not published.
    pub failed: u64,
    /// Entities that stopped, in the order they did.
    pub failures: Vec<EntityFailure>,
}

/// Why a replay could not run to its end (publishing failures are in the
/// [`ReplayReport`] instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Reading the store failed.
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    /// Finding the window's entities failed.
    #[error("finding the entities of the window: {0}")]
    Index(PortError),
}

impl Classify for ReplayError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Store(e) => e.class(),
            Self::Index(e) => e.class,
        }
    }
}

/// How one entity's events are read.
enum Read<'a> {
    Sequence { to_seq: u64 },
    Window(&'a StoredWindow),
}

/// Replays `selection` from `store` to `bus`.
pub async fn replay<S, I, B>(
    store: &S,
    index: &I,
    bus: &B,
    config: &ReplayConfig,
    selection: &Selection,
) -> Result<ReplayReport, ReplayError>
where
    S: EventStore,
    I: EntityIndex,
    B: Bus,
{
    let emit = EmitConfig {
        bundle: None,
        ..config.emit.clone()
    };
    let mut report = ReplayReport::default();
    match selection {
        Selection::Entity {
            entity,
            from_seq,
            to_seq,
        } => {
            // The head bounds the range, so the last page is known without
            // reading past it.
            let last = store.head(entity).await?.map_or(0, |h| h.last_seq);
            let to_seq = (*to_seq).min(last);
            if *from_seq <= to_seq {
                let read = Read::Sequence { to_seq };
                replay_entity(store, bus, &emit, entity, *from_seq, &read, &mut report).await?;
            }
        }
        Selection::Window(window) => {
            let entities = index
                .entities_in(window)
                .await
                .map_err(ReplayError::Index)?;
            for entity in &entities {
                let read = Read::Window(window);
                replay_entity(store, bus, &emit, entity, 1, &read, &mut report).await?;
                if config.on_failure == OnFailure::Stop && !report.failures.is_empty() {
                    break;
                }
            }
        }
    }
    info!(
        stage = "replay",
        published = report.published,
        failed = report.failed,
        stopped = report.failures.len(),
        "replay done"
    );
    Ok(report)
}

/// Replays one entity's events from `from_seq`, page by page, stopping at
/// the first page that cannot be published.
async fn replay_entity<S: EventStore, B: Bus>(
    store: &S,
    bus: &B,
    emit: &EmitConfig,
    entity: &EntityId,
    from_seq: u64,
    read: &Read<'_>,
    report: &mut ReplayReport,
) -> Result<(), StoreError> {
    let mut after = from_seq.saturating_sub(1);
    loop {
        let page = match read {
            Read::Sequence { to_seq } => {
                if after >= *to_seq {
                    break;
                }
                let mut page = store.read_events(entity, after, PAGE).await?;
                page.retain(|e| e.seq <= *to_seq);
                page
            }
            Read::Window(window) => store.read_window(entity, window, after, PAGE).await?,
        };
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        let out = replay_events(bus, emit, &page).await;
        report.published += out.counts.sent;
        report.failed += out.counts.failed;
        if let Some(rewind_from) = out.rewind_from {
            warn!(stage = "replay", entity = %entity, %rewind_from, "entity's replay stopped");
            report.failures.push(EntityFailure {
                entity: entity.clone(),
                rewind_from,
                error: out.error,
            });
            break;
        }
        after = last;
    }
    Ok(())
}

/// The entities of a window, from the data lake: every accepted record is
/// there with its `entity_id`, in an object written soon after the record
/// was enqueued, and the record was stored at most the queue's retention
/// after that ([`StoredWindow::lake_written_range`]). Only `events/` objects
/// written in that range are read.
#[derive(Debug, Clone)]
pub struct LakeIndex<L> {
    lake: L,
    max_queue_wait: chrono::Duration,
}

impl<L: LakeReader> LakeIndex<L> {
    /// An index over `lake`, assuming the longest queue wait SQS allows
    /// ([`MAX_QUEUE_WAIT`]).
    pub fn new(lake: L) -> Self {
        Self {
            lake,
            max_queue_wait: MAX_QUEUE_WAIT,
        }
    }

    /// A shorter bound on how long a record waited between the transform
    /// and the store (the queue's retention, when it is shorter than SQS's
    /// longest), so fewer objects are read.
    pub fn with_max_queue_wait(mut self, wait: chrono::Duration) -> Self {
        self.max_queue_wait = wait;
        self
    }
}

impl<L: LakeReader> EntityIndex for LakeIndex<L> {
    async fn entities_in(&self, window: &StoredWindow) -> Result<Vec<EntityId>, PortError> {
        let range = window.lake_written_range(self.max_queue_wait);
        let prefix = format!("{}/", lake_layout::EVENTS);
        let mut entities = BTreeSet::new();
        let (mut read, mut skipped) = (0usize, 0usize);
        for object in self.lake.list(&prefix).await? {
            if !written_in(object.written_at, range) {
                continue;
            }
            read += 1;
            let text = lake_layout::object_text(self.lake.read(&object.path).await?)
                .map_err(|e| unreadable(&object.path, e))?;
            for line in text.lines() {
                match lake_layout::entity_of_line(line) {
                    Some((entity, received_at)) if window.may_hold_arrival(&received_at) => {
                        match EntityId::new(entity) {
                            Ok(id) => {
                                entities.insert(id);
                            }
                            // Ingest never accepts such an id, so no event of it is stored.
                            Err(_) => skipped += 1,
                        }
                    }
                    Some(_) => {}
                    None if line.trim().is_empty() => {}
                    None => skipped += 1,
                }
            }
        }
        info!(
            stage = "replay",
            objects = read,
            entities = entities.len(),
            skipped_lines = skipped,
            "entities of the window found in the lake"
        );
        Ok(entities.into_iter().collect())
    }
}

fn unreadable(path: &str, e: LakeReadError) -> PortError {
    PortError::permanent("lake", format!("{path}: {e}")).with_source(e)
}
