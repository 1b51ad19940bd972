//! The resume's backfill: an entity's events after `since`, read through
//! the store port the query API reads ([`EventStore::read_events`]), page by
//! page, so a history longer than one page (one DynamoDB page is 1 MB) is
//! read completely.

use crate::outgoing::{Outgoing, from_stored};
use tideline_core::EntityId;
use tideline_stages::EventStore;
use tideline_stages::error::StoreError;

/// Events read per store call.
pub const BACKFILL_PAGE: usize = 100;

/// Reads `entity`'s events of `topic` after sequence `after`, one page at a
/// time: call [`Backfill::next_page`] until it returns `None`.
#[derive(Debug, Clone)]
pub struct Backfill {
    entity: EntityId,
    topic: String,
    after: u64,
    max_message_bytes: usize,
    done: bool,
}

impl Backfill {
    /// A backfill of `topic` on `entity` after `after`.
    pub fn new(entity: EntityId, topic: &str, after: u64, max_message_bytes: usize) -> Self {
        Self {
            entity,
            topic: topic.to_string(),
            after,
            max_message_bytes,
            done: false,
        }
    }

    /// The next page of the topic's events, in sequence order (possibly empty
    /// when a page held only other topics), or `None` when the store has no more.
    pub async fn next_page<S: EventStore>(
        &mut self,
        store: &S,
    ) -> Result<Option<Vec<Outgoing>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let events = store
            .read_events(&self.entity, self.after, BACKFILL_PAGE)
            .await?;
        if events.len() < BACKFILL_PAGE {
            self.done = true;
        }
        let Some(last) = events.last() else {
            return Ok(None);
        };
        self.after = last.seq;
        Ok(Some(
            events
                .iter()
                .filter(|e| e.event_type == self.topic)
                .map(|e| from_stored(e, self.max_message_bytes))
                .collect(),
        ))
    }
}
