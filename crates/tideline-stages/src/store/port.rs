//! The store stage's ports: the event store, and where poison records go.

use crate::error::{PortError, StoreError};
use std::future::Future;
use tideline_core::event::EntityHead;
use tideline_core::replay::StoredWindow;
use tideline_core::{AppendOutcome, EntityId, ExpectedSeq, NewEvent, StoredEvent};

/// The event store (DynamoDB table, or SQLite).
pub trait EventStore: Send + Sync {
    /// Appends events to one entity atomically: all or none, de-duplicated by
    /// event id, with gapless `seq`, conditional on `expected`.
    fn append(
        &self,
        entity: &EntityId,
        events: Vec<NewEvent>,
        expected: ExpectedSeq,
    ) -> impl Future<Output = Result<Vec<AppendOutcome>, StoreError>> + Send;

    /// Appends records one by one, in order, each as its own atomic append,
    /// stopping at the first error. Returns the outcomes of the records
    /// handled and the error that stopped it, if any. Stores that can commit
    /// several appends at once (SQLite) override this for throughput.
    fn append_each(
        &self,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = (Vec<Vec<AppendOutcome>>, Option<StoreError>)> + Send {
        async move {
            let mut done = Vec::with_capacity(events.len());
            for event in events {
                let entity = event.entity_id.clone();
                match self.append(&entity, vec![event], ExpectedSeq::Any).await {
                    Ok(outcomes) => done.push(outcomes),
                    Err(e) => return (done, Some(e)),
                }
            }
            (done, None)
        }
    }

    /// Up to `limit` events with `seq > after_seq`, in `seq` order. Follows the
    /// store's own paging (DynamoDB's 1 MB pages) until `limit` or the end.
    fn read_events(
        &self,
        entity: &EntityId,
        after_seq: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Up to `limit` of the entity's events with `seq > after_seq` that were
    /// stored in `window`, in `seq` order (a replay by time window).
    ///
    /// This default reads the entity's history from `after_seq` and filters
    /// it; a store whose keys sort by time overrides it to read only the
    /// window's key range (DynamoDB: `Query` on `sk`, never a `Scan`).
    fn read_window(
        &self,
        entity: &EntityId,
        window: &StoredWindow,
        after_seq: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        async move {
            let mut out = Vec::new();
            let mut after = after_seq;
            while out.len() < limit {
                let page = self.read_events(entity, after, limit.max(100)).await?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    break;
                };
                let room = limit - out.len();
                out.extend(
                    page.into_iter()
                        .filter(|e| window.contains(&e.stored_at))
                        .take(room),
                );
                after = last;
            }
            Ok(out)
        }
    }

    /// The entity's head, or `None` if it has no events.
    fn head(
        &self,
        entity: &EntityId,
    ) -> impl Future<Output = Result<Option<EntityHead>, StoreError>> + Send;
}

/// A record that can never be processed, moved aside with its reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RejectedRecord {
    /// The stage that refused it (`transform`, `store`, `emit`, ...).
    pub stage: String,
    /// Its id at that stage (message id, record id).
    pub source_id: String,
    /// Why.
    pub reason: String,
    /// The record as received (lossy UTF-8 only if it was not UTF-8).
    pub body: String,
    /// When.
    pub rejected_at: String,
}

/// Where poison records go: a rejected-records item or table.
pub trait RejectSink: Send + Sync {
    /// Stores the rejected record durably.
    fn reject(&self, record: RejectedRecord) -> impl Future<Output = Result<(), PortError>> + Send;
}
