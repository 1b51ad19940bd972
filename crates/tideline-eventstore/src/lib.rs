//! The command side of Tideline's event store, for applications.
//!
//! Tideline's ingest is fire and forget. An application that keeps its state
//! as events needs the other call an event store is built around: load an
//! entity's events, decide, and append new ones only if nobody appended in
//! between, with a conflict to retry on otherwise (`docs/command-side.md`).
//!
//! - [`EventStore::append`] appends events to one entity at an [`Expected`]
//!   version, all or none, and returns the entity's new last sequence, or
//!   [`Error::Conflict`] with the actual one. Appending the same event ids
//!   again is idempotent: the same answer, nothing stored twice.
//! - [`EventStore::read`] streams an entity's events in sequence order, page
//!   by page.
//! - [`EventStore::load`] folds them into an [`Aggregate`];
//!   [`EventStore::load_snapshotted`] starts from the aggregate's latest
//!   snapshot when there is one of its [`Snapshotted::VERSION`], folds the
//!   events after it, and stores a new snapshot every
//!   [`EventStore::with_snapshot_every`] events. Snapshots are stored beside
//!   the events and are never needed for correctness: without one (or when
//!   it cannot be read) every event is folded.
//!
//! Two backends, one behaviour: [`Http`] talks to `tideline up` (or the
//! deployed command API) with `POST /entities/{entity_id}/events` and the
//! query API; [`Direct`] runs the command stage itself
//! ([`tideline_stages::command`]) over a store, on AWS the DynamoDB table
//! through the storer's own append protocol ([`EventStore::dynamodb`]).
//! Either way an event is admitted with ingest's limits and schema
//! registry, and flows out like an ingested one (stream, emitter, bus).
//!
//! This is a crate of its own, not part of `tideline-client`: the producer
//! client needs only Firehose, and should not compile the DynamoDB SDK.

#![deny(missing_docs)]

mod backend;

pub use backend::{Backend, Direct, Http};

use futures::{Stream, StreamExt, TryStreamExt, stream};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tideline_core::{Classify, EntityId, ErrorClass, ExpectedSeq};

/// What the caller expects the entity's last sequence to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Append whatever the entity holds (no concurrency check).
    Any,
    /// The entity must have no events yet.
    NoStream,
    /// The entity's last sequence must be exactly this: the version the
    /// caller loaded and decided on.
    Exactly(u64),
}

impl Expected {
    /// The store's expectation.
    pub fn to_store(self) -> ExpectedSeq {
        match self {
            Self::Any => ExpectedSeq::Any,
            Self::NoStream => ExpectedSeq::NoStream,
            Self::Exactly(n) => ExpectedSeq::Exactly(n),
        }
    }

    /// `expected_sequence` of the HTTP body: `null` for `Any`.
    pub fn to_wire(self) -> Option<u64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(0),
            Self::Exactly(n) => Some(n),
        }
    }
}

/// An event to append: the ingest record's fields, without `entity_id`
/// (the append names the entity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedEvent {
    /// Its id. Give one derived from the command (a command id and an
    /// index): a retried command then carries the same ids and is stored
    /// once. Without one, ingest derives it from the record's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Event type, e.g. `OrderPlaced`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload.
    pub data: Value,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// When it happened, RFC 3339; defaults to when it is appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
}

impl ProposedEvent {
    /// An event of `event_type` carrying `data`.
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Self {
            id: None,
            event_type: event_type.into(),
            data,
            correlation_id: None,
            occurred_at: None,
        }
    }

    /// With this event id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// With this correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }
}

/// A stored event, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// The entity.
    pub entity_id: String,
    /// Its place in the entity's gapless sequence, from 1.
    pub sequence: u64,
    /// Its id.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// The payload.
    pub data: Value,
    /// When it happened.
    pub occurred_at: String,
    /// When it was stored.
    pub stored_at: String,
    /// Correlation id.
    pub correlation_id: Option<String>,
}

/// Why a call failed. Each variant says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Somebody appended since the caller loaded: load again (the entity is
    /// at `actual`), decide again, append at `actual`.
    #[error("append to {entity_id}: expected last sequence {expected}, but it is {actual}")]
    Conflict {
        /// The entity.
        entity_id: String,
        /// What the caller expected.
        expected: u64,
        /// What the entity holds.
        actual: u64,
    },
    /// The request or one of its events was refused (a limit, the schema
    /// registry, a malformed entity id): `code` names the rule, as ingest
    /// does. Nothing was appended. Fix the events; retrying cannot help.
    #[error("refused ({code}): {message}")]
    Refused {
        /// `OverLimit`, `SchemaViolation`, `MissingField`, `BadRequest`, …
        code: String,
        /// What is wrong, and where.
        message: String,
    },
    /// The store or the server could not be reached, or failed. When
    /// `retryable`, retry the same call: the append is idempotent by event id.
    #[error("event store unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// Whether a retry can succeed.
        retryable: bool,
    },
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable {
                retryable: true, ..
            } => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        }
    }
}

fn entity(name: &str) -> Result<EntityId, Error> {
    EntityId::new(name).map_err(|e| Error::Refused {
        code: "BadEntityId".into(),
        message: format!("entity id {e}"),
    })
}

/// State folded from an entity's events.
///
/// `apply` is called once per event, in sequence order, and must not fail:
/// the events happened. Decide (and refuse) in commands, before appending.
pub trait Aggregate: Default {
    /// Folds one event into the state.
    fn apply(&mut self, event: &RecordedEvent);
}

/// An aggregate whose state can be snapshotted: serialised after folding,
/// and loaded from that point on.
pub trait Snapshotted: Aggregate + Serialize + DeserializeOwned {
    /// The snapshot's name, e.g. `Order` (letters, digits, `-`, `_`, `.`).
    const NAME: &'static str;
    /// The version of [`Aggregate::apply`] and of the state's shape. Change
    /// it whenever either changes: snapshots of another version are ignored
    /// (and the events folded from the first), never misread.
    const VERSION: u32;
}

/// A stored snapshot, as the client reads and writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSnapshot {
    /// [`Snapshotted::VERSION`] of the code that folded it.
    pub aggregate_version: u32,
    /// The last sequence folded into `state`.
    pub sequence: u64,
    /// The state.
    pub state: Value,
}

/// An aggregate and the version it was folded to: the expectation of the
/// next append ([`Loaded::expected`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The folded state.
    pub state: A,
    /// The last sequence applied (0: the entity has no events).
    pub version: u64,
}

impl<A> Loaded<A> {
    /// The expectation of an append decided on this state.
    pub fn expected(&self) -> Expected {
        match self.version {
            0 => Expected::NoStream,
            n => Expected::Exactly(n),
        }
    }
}

/// Events read per page.
pub const DEFAULT_PAGE: usize = 500;

/// Events folded past the last snapshot before a load stores a new one.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100;

/// The event store client over a [`Backend`].
#[derive(Debug, Clone)]
pub struct EventStore<B> {
    backend: B,
    page: usize,
    snapshot_every: u64,
}

impl EventStore<Http> {
    /// Over HTTP: `tideline up` (`http://127.0.0.1:4566`) or a deployed API.
    pub fn http(base_url: impl Into<String>) -> Self {
        Self::new(Http::new(base_url))
    }
}

impl EventStore<Direct<tideline_aws::DynamoStore>> {
    /// Directly on the events table, with the storer's own append protocol.
    /// Set the deployment's retention with [`Direct::with_ttl`] through
    /// [`EventStore::backend_mut`] when it has one (`TIDELINE_EVENT_TTL_DAYS`).
    pub fn dynamodb(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self::new(Direct::new(tideline_aws::DynamoStore::new(client, table)))
    }
}

impl<B: Backend> EventStore<B> {
    /// A client over `backend`.
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            page: DEFAULT_PAGE,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
        }
    }

    /// [`Self::load_snapshotted`] stores a snapshot once it folded `n` or
    /// more events past the one it started from (at least 1).
    pub fn with_snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = n.max(1);
        self
    }

    /// Reads `page` events per call (at most the query API's 1,000).
    pub fn with_page_size(mut self, page: usize) -> Self {
        self.page = page.clamp(1, 1000);
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, to change its settings.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Appends `events` to `entity` if its last sequence meets `expected`,
    /// all or none; returns the entity's new last sequence. The same event
    /// ids appended again answer the first append's last sequence and store
    /// nothing, whatever the entity holds by then.
    pub async fn append(
        &self,
        entity_id: &str,
        expected: Expected,
        events: Vec<ProposedEvent>,
    ) -> Result<u64, Error> {
        let entity = entity(entity_id)?;
        let result = self.backend.append(&entity, expected, events).await;
        match &result {
            Ok(last) => {
                tracing::debug!(entity = %entity, last_sequence = last, "appended")
            }
            Err(Error::Conflict { actual, .. }) => {
                tracing::debug!(entity = %entity, actual, "append conflicted")
            }
            Err(e) => tracing::warn!(entity = %entity, error = %e, "append failed"),
        }
        result
    }

    /// The entity's events with `sequence >= from_seq`, in sequence order,
    /// read a page at a time as the stream is polled.
    pub fn read<'a>(
        &'a self,
        entity_id: &'a str,
        from_seq: u64,
    ) -> impl Stream<Item = Result<RecordedEvent, Error>> + Send + 'a {
        let pages = stream::try_unfold(Some(from_seq.saturating_sub(1)), move |after| async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let entity = entity(entity_id)?;
            let (events, more) = self.backend.read_page(&entity, after, self.page).await?;
            let next = match (more, events.last()) {
                (true, Some(last)) => Some(last.sequence),
                _ => None,
            };
            Ok(Some((events, next)))
        });
        pages
            .map_ok(|events| stream::iter(events.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Folds the entity's events into `A`, starting from its snapshot of
    /// [`Snapshotted::VERSION`] when one is stored; stores a new snapshot
    /// when it folded [`Self::with_snapshot_every`] events or more past it.
    /// A snapshot that cannot be read or decoded is passed over with a
    /// warning (every event is folded), and one that cannot be written
    /// leaves the load's answer as it is: snapshots only save reads.
    pub async fn load_snapshotted<A: Snapshotted>(
        &self,
        entity_id: &str,
    ) -> Result<Loaded<A>, Error> {
        let entity = entity(entity_id)?;
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
        };
        match self
            .backend
            .read_snapshot(&entity, A::NAME, A::VERSION)
            .await
        {
            Ok(Some(snapshot)) => match serde_json::from_value::<A>(snapshot.state) {
                Ok(state) => {
                    loaded = Loaded {
                        state,
                        version: snapshot.sequence,
                    }
                }
                Err(e) => {
                    tracing::warn!(entity = %entity, snapshot = A::NAME, error = %e, "snapshot does not decode as the aggregate; folding every event")
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(entity = %entity, snapshot = A::NAME, error = %e, "snapshot unreadable; folding every event")
            }
        }
        let from = loaded.version;
        let mut events = std::pin::pin!(self.read(entity_id, from + 1));
        while let Some(event) = events.next().await {
            let event = event?;
            loaded.state.apply(&event);
            loaded.version = event.sequence;
        }
        if loaded.version - from >= self.snapshot_every
            && let Err(e) = self.save_snapshot(entity_id, &loaded).await
        {
            tracing::warn!(entity = %entity, snapshot = A::NAME, error = %e, "snapshot not stored; the next load folds these events again");
        }
        Ok(loaded)
    }

    /// Stores `loaded` as the entity's snapshot of `A`, unless one of as
    /// many or more events is stored.
    pub async fn save_snapshot<A: Snapshotted>(
        &self,
        entity_id: &str,
        loaded: &Loaded<A>,
    ) -> Result<(), Error> {
        let entity = entity(entity_id)?;
        let state = serde_json::to_value(&loaded.state).map_err(|e| Error::Refused {
            code: "BadSnapshot".into(),
            message: format!("the aggregate does not serialise: {e}"),
        })?;
        let snapshot = StoredSnapshot {
            aggregate_version: A::VERSION,
            sequence: loaded.version,
            state,
        };
        self.backend
            .write_snapshot(&entity, A::NAME, &snapshot)
            .await
    }

    /// Folds the entity's events into `A`.
    pub async fn load<A: Aggregate>(&self, entity_id: &str) -> Result<Loaded<A>, Error> {
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
        };
        let mut events = std::pin::pin!(self.read(entity_id, 1));
        while let Some(event) = events.next().await {
            let event = event?;
            loaded.state.apply(&event);
            loaded.version = event.sequence;
        }
        Ok(loaded)
    }
}
