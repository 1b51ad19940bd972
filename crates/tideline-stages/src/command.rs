//! The command side: an application appends events to one entity at an
//! expected version, the call an event store is built around (load, decide,
//! append unless somebody appended in between). One implementation for local
//! mode (axum) and the `command-api` Lambda, like [`crate::query`].
//!
//! Route: `POST /entities/{entity_id}/events` with
//! `{"expected_sequence": n | null, "events": [{"id", "type", "data", …}]}`
//! (each event has the ingest record's fields; `entity_id` comes from the path):
//! - 201 `{"entity_id", "last_sequence", "events": [{"event_id", "sequence", "status"}]}`;
//! - 409 `{"error": "Conflict", "expected_sequence", "actual_sequence", "message"}`;
//! - 400 naming the limit or schema rule a record broke, and its index.
//!
//! Each event is admitted exactly as ingest admits a record
//! ([`tideline_core::ingest::admit`]: every hop's limits, the schema
//! registry), so an appended event travels every later hop as an ingested one
//! does. The append is the store's own (`EventStore::append`, the storer's
//! code): all or none, gapless `seq`, de-duplicated by event id. Appending
//! the same ids again is idempotent: the answer is the first one's (the last
//! sequence of those events), and nothing is stored twice, whatever the
//! expectation says by then.

use crate::store::slot::{CondPut, Condition, ConditionFailed, ItemTable, SlotStore};
use crate::{EventStore, Lake, StoreError};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::future::Future;
use tideline_core::event::AppendConflict;
use tideline_core::ingest::{AdmittedRecord, FieldMap, IngestConfig, RejectReason, admit};
use tideline_core::item::{
    Snapshot, SnapshotRefused, check_snapshot, decode_marker, decode_snapshot, lookup,
    marker_sort_key, snapshot_item, snapshot_sort_key,
};
use tideline_core::{AppendOutcome, Classify, EntityId, ErrorClass, EventId, ExpectedSeq};
use tracing::{info, warn};

/// Most events one command appends: one DynamoDB transaction of a marker and
/// an event per event (100 actions, AWS-CONTRACTS.md).
pub const MAX_COMMAND_EVENTS: usize = crate::store::slot::MAX_EVENTS_PER_APPEND;

/// The request body of `POST /entities/{entity_id}/events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    /// The entity's last sequence the caller decided on; `null` appends
    /// whatever it is (0: the entity must be new).
    pub expected_sequence: Option<u64>,
    /// The events, each with the ingest record's fields.
    pub events: Vec<Value>,
}

/// Why a command did not append.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The request is not a command (body, path, event count). Permanent: fix
    /// the request.
    #[error("{0}")]
    BadRequest(String),
    /// An event was refused by ingest's admission (a limit, the schema
    /// registry). Nothing of the batch was appended. Permanent.
    #[error("events[{index}]: refused ({}): {reason}", reason.code())]
    Refused {
        /// Its index in `events`.
        index: usize,
        /// Why, naming the limit or the rule.
        reason: RejectReason,
    },
    /// Somebody appended since the caller read: load again, decide again.
    #[error(transparent)]
    Conflict(#[from] AppendConflict),
    /// The store failed; [`Classify`] says whether retrying can help (the
    /// append is idempotent, so a retry with the same ids is safe).
    #[error(transparent)]
    Store(StoreError),
}

impl Classify for CommandError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Store(e) => e.class(),
            Self::BadRequest(_) | Self::Refused { .. } | Self::Conflict(_) => ErrorClass::Permanent,
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(c) => Self::Conflict(c),
            other => Self::Store(other),
        }
    }
}

/// What a command appended.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The entity's last sequence once the command's events are stored: the
    /// highest `seq` among them (on an idempotent repeat, the first answer).
    pub last_sequence: u64,
    /// Per event: stored now, or a duplicate of one stored before.
    pub outcomes: Vec<AppendOutcome>,
}

/// Where an event id is stored: the store side of an idempotent repeat's
/// answer. Implemented by every [`EventStore`].
pub trait EventLookup: Send + Sync {
    /// The `seq` of the entity's event `event_id`, if it is stored.
    fn sequence_of(
        &self,
        entity: &EntityId,
        event_id: &EventId,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
}

/// One read: the de-duplication marker records its event's `seq`.
impl<T: ItemTable> EventLookup for SlotStore<T> {
    async fn sequence_of(
        &self,
        entity: &EntityId,
        event_id: &EventId,
    ) -> Result<Option<u64>, StoreError> {
        let Some(item) = self
            .table()
            .get(entity.as_str(), &marker_sort_key(event_id))
            .await?
        else {
            return Ok(None);
        };
        let marker = decode_marker(lookup(&item)).map_err(|e| {
            StoreError::Port(crate::PortError::permanent(
                "store",
                format!("marker of {event_id} on {entity}: {e}"),
            ))
        })?;
        Ok(Some(marker.event_seq))
    }
}

/// A snapshot write's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotWritten {
    /// Stored: loads start from it.
    Written,
    /// A snapshot of as many or more events is stored already; it is kept.
    KeptNewer {
        /// The stored snapshot's sequence.
        sequence: u64,
    },
}

/// Why a snapshot was not read or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnapshotError {
    /// The snapshot breaks a rule (name, sequence, size). Permanent.
    #[error("snapshot refused: {0}")]
    Refused(#[from] SnapshotRefused),
    /// The store failed; [`Classify`] says whether a retry can help.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classify for SnapshotError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Refused(_) => ErrorClass::Permanent,
            Self::Store(e) => e.class(),
        }
    }
}

/// Aggregates' snapshots, stored beside the events (on DynamoDB an item of
/// kind `snapshot` in the entity's partition; locally a table of their own).
/// A snapshot only ever moves forward, and is never needed for correctness:
/// a loader that finds none, or one of another aggregate version, folds
/// every event.
pub trait SnapshotStore: Send + Sync {
    /// The snapshot `name` of `entity` at `aggregate_version`, if stored.
    fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> impl Future<Output = Result<Option<Snapshot>, SnapshotError>> + Send;

    /// Stores `snapshot` unless one of as many or more events is stored.
    /// Callers go through [`write_snapshot`], which checks it against the
    /// entity's head first.
    fn put_snapshot(
        &self,
        entity: &EntityId,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<SnapshotWritten, SnapshotError>> + Send;
}

/// Writes a snapshot after checking its rules and that the entity has
/// reached its sequence (a snapshot of events that do not exist would be
/// folded into every later load).
pub async fn write_snapshot<S: EventStore + SnapshotStore>(
    store: &S,
    entity: &EntityId,
    snapshot: &Snapshot,
) -> Result<SnapshotWritten, SnapshotError> {
    check_snapshot(snapshot)?;
    let last = store.head(entity).await?.map_or(0, |h| h.last_seq);
    if snapshot.sequence > last {
        return Err(SnapshotRefused::PastHead {
            sequence: snapshot.sequence,
            last,
        }
        .into());
    }
    store.put_snapshot(entity, snapshot).await
}

/// One `GetItem` to read, one conditional `PutItem` to write.
impl<T: ItemTable> SnapshotStore for SlotStore<T> {
    async fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> Result<Option<Snapshot>, SnapshotError> {
        let Some(item) = self
            .table()
            .get(entity.as_str(), &snapshot_sort_key(name, aggregate_version))
            .await
            .map_err(StoreError::from)?
        else {
            return Ok(None);
        };
        decode_snapshot(lookup(&item)).map(Some).map_err(|e| {
            StoreError::Port(crate::PortError::permanent(
                "store",
                format!("snapshot {name} of {entity}: {e}"),
            ))
            .into()
        })
    }

    async fn put_snapshot(
        &self,
        entity: &EntityId,
        snapshot: &Snapshot,
    ) -> Result<SnapshotWritten, SnapshotError> {
        let expires_at = self.ttl().map(|d| (self.now() + d).timestamp());
        let item = snapshot_item(entity, snapshot, expires_at)?;
        let put = CondPut {
            item,
            condition: Condition::SnapshotBelow(snapshot.sequence),
        };
        match self.table().put(put).await.map_err(StoreError::from)? {
            Ok(()) => Ok(SnapshotWritten::Written),
            Err(ConditionFailed(existing)) => Ok(SnapshotWritten::KeptNewer {
                sequence: existing
                    .as_ref()
                    .and_then(|i| decode_snapshot(lookup(i)).ok())
                    .map_or(snapshot.sequence, |s| s.sequence),
            }),
        }
    }
}

/// The ingest settings a command's events are admitted with: ingest's limits
/// and schema registry, and the contract's field names (a command's events
/// are written in Tideline's record format, whatever field map ingest uses
/// for producers' existing payloads).
pub fn command_ingest_config(ingest: &IngestConfig) -> IngestConfig {
    IngestConfig {
        fields: FieldMap::default(),
        ..ingest.clone()
    }
}

/// Admits a command's events for `entity`, all or none: the first refusal
/// refuses the command. Each event is admitted as the record
/// `{"entity_id": <entity>, …the event's fields}` ingest would receive.
pub fn admit_command(
    config: &IngestConfig,
    entity: &EntityId,
    events: Vec<Value>,
    arrival: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<AdmittedRecord>, CommandError> {
    if events.is_empty() {
        return Err(CommandError::BadRequest(
            "`events` is empty: a command appends 1 or more events".into(),
        ));
    }
    if events.len() > MAX_COMMAND_EVENTS {
        return Err(CommandError::BadRequest(format!(
            "`events` holds {} events; one command appends at most {MAX_COMMAND_EVENTS} (a DynamoDB transaction takes 100 actions, two per event)",
            events.len()
        )));
    }
    let mut admitted = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        let Value::Object(fields) = event else {
            return Err(CommandError::BadRequest(format!(
                "events[{index}] must be a JSON object with the ingest record's fields (`type`, `data`, optional `id`, …)"
            )));
        };
        let mut record = Map::with_capacity(fields.len() + 1);
        record.insert("entity_id".into(), Value::String(entity.as_str().into()));
        for (name, value) in fields {
            if name == "entity_id" {
                if value.as_str() != Some(entity.as_str()) {
                    return Err(CommandError::BadRequest(format!(
                        "events[{index}].entity_id is {value}, but the path names {entity}: omit it or make them equal"
                    )));
                }
                continue;
            }
            record.insert(name, value);
        }
        let bytes = serde_json::to_vec(&Value::Object(record)).map_err(|e| {
            CommandError::BadRequest(format!("events[{index}] does not serialise: {e}"))
        })?;
        let one = admit(config, &bytes, arrival)
            .map_err(|reason| CommandError::Refused { index, reason })?;
        admitted.push(one);
    }
    Ok(admitted)
}

/// Appends admitted events to `entity` at `expected`, all or none, with the
/// store's own append. An append whose events are all stored already is the
/// repeat of an acknowledged one: it answers that append's last sequence.
pub async fn append_command<S: EventStore + EventLookup>(
    store: &S,
    entity: &EntityId,
    expected: ExpectedSeq,
    admitted: &[AdmittedRecord],
) -> Result<Appended, CommandError> {
    let events = admitted.iter().map(|a| a.record.clone()).collect();
    let outcomes = store.append(entity, events, expected).await?;
    let stored_max = outcomes
        .iter()
        .filter_map(|o| match o {
            AppendOutcome::Stored { seq, .. } => Some(*seq),
            AppendOutcome::Duplicate { .. } => None,
        })
        .max();
    let last_sequence = match stored_max {
        Some(seq) => seq,
        None => {
            let mut highest = None;
            for o in &outcomes {
                if let AppendOutcome::Duplicate { event_id } = o
                    && let Some(seq) = store.sequence_of(entity, event_id).await?
                {
                    highest = highest.max(Some(seq));
                }
            }
            match highest {
                Some(seq) => seq,
                // Removed (expired, erased) since: its successor's head is
                // the best answer left.
                None => store.head(entity).await?.map_or(0, |h| h.last_seq),
            }
        }
    };
    Ok(Appended {
        last_sequence,
        outcomes,
    })
}

/// An HTTP response: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl CommandResponse {
    fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": code, "message": message.into()}),
        }
    }

    fn from_error(entity: &EntityId, e: &CommandError) -> Self {
        match e {
            CommandError::BadRequest(m) => Self::error(400, "BadRequest", m.clone()),
            CommandError::Refused { index, reason } => Self {
                status: 400,
                body: json!({
                    "error": reason.code(),
                    "index": index,
                    "message": e.to_string(),
                }),
            },
            CommandError::Conflict(c) => Self {
                status: 409,
                body: json!({
                    "error": "Conflict",
                    "entity_id": entity.as_str(),
                    "expected_sequence": c.expected,
                    "actual_sequence": c.actual,
                    "message": c.to_string(),
                }),
            },
            CommandError::Store(s) => {
                let status = if s.is_retryable() { 503 } else { 500 };
                Self::error(status, "StoreUnavailable", s.to_string())
            }
        }
    }
}

/// The entity a `/entities/{entity_id}/events` path names, if it is one.
pub fn command_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/entities/")?;
    let raw = rest.strip_suffix("/events")?;
    (!raw.is_empty() && !raw.contains('/')).then_some(raw)
}

/// The entity a percent-encoded path segment names, or the 400 to answer.
fn decode_entity(raw_entity: &str) -> Result<EntityId, CommandResponse> {
    let decoded = percent_decode_str(raw_entity).decode_utf8().map_err(|_| {
        CommandResponse::error(
            400,
            "BadEntityId",
            "entity id is not valid UTF-8 once decoded",
        )
    })?;
    EntityId::new(decoded.as_ref())
        .map_err(|e| CommandResponse::error(400, "BadEntityId", format!("entity id {e}")))
}

/// The entity and snapshot name a `/entities/{entity_id}/snapshots/{name}`
/// path names (both percent-encoded), if it is one.
pub fn snapshot_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/entities/")?;
    let (raw_entity, name) = rest.split_once("/snapshots/")?;
    (!raw_entity.is_empty() && !raw_entity.contains('/') && !name.is_empty() && !name.contains('/'))
        .then_some((raw_entity, name))
}

/// The body of `PUT /entities/{entity_id}/snapshots/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotBody {
    /// The version of the aggregate's code that folded `state`.
    pub aggregate_version: u32,
    /// The last sequence folded into `state`.
    pub sequence: u64,
    /// The state.
    pub state: Value,
}

fn snapshot_error(e: &SnapshotError) -> CommandResponse {
    match e {
        SnapshotError::Refused(r) => {
            let code = match r {
                SnapshotRefused::TooLarge { .. } => "OverLimit",
                SnapshotRefused::PastHead { .. } => "PastHead",
                _ => "BadSnapshot",
            };
            CommandResponse::error(400, code, e.to_string())
        }
        SnapshotError::Store(s) => {
            let status = if s.is_retryable() { 503 } else { 500 };
            CommandResponse::error(status, "StoreUnavailable", s.to_string())
        }
    }
}

/// Serves `GET /entities/{entity_id}/snapshots/{name}?aggregate_version=N`:
/// 200 with the snapshot, or 404 when there is none for that version.
pub async fn handle_snapshot_get<S: SnapshotStore>(
    store: &S,
    raw_entity: &str,
    raw_name: &str,
    aggregate_version: Option<&str>,
) -> CommandResponse {
    let entity = match decode_entity(raw_entity) {
        Ok(e) => e,
        Err(response) => return response,
    };
    let name = percent_decode_str(raw_name).decode_utf8_lossy();
    let Some(version) = aggregate_version.and_then(|v| v.parse::<u32>().ok()) else {
        return CommandResponse::error(
            400,
            "BadRequest",
            "the query parameter aggregate_version (a whole number) is required",
        );
    };
    match store.read_snapshot(&entity, &name, version).await {
        Ok(Some(snapshot)) => {
            let state: Value = serde_json::from_str(&snapshot.state).unwrap_or(Value::Null);
            CommandResponse {
                status: 200,
                body: json!({
                    "entity_id": entity.as_str(),
                    "name": snapshot.name,
                    "aggregate_version": snapshot.aggregate_version,
                    "sequence": snapshot.sequence,
                    "state": state,
                    "stored_at": snapshot.stored_at,
                }),
            }
        }
        Ok(None) => CommandResponse::error(
            404,
            "NotFound",
            format!("no snapshot {name} at aggregate version {version} of {entity}"),
        ),
        Err(e) => {
            warn!(stage = "command", entity = %entity, error = %e, "snapshot read failed");
            snapshot_error(&e)
        }
    }
}

/// Serves `PUT /entities/{entity_id}/snapshots/{name}`: 201 when written,
/// 200 when a snapshot of as many or more events is kept instead, 400 when
/// the snapshot breaks a rule (its sequence past the entity's head, its size).
pub async fn handle_snapshot_put<S: EventStore + SnapshotStore>(
    store: &S,
    raw_entity: &str,
    raw_name: &str,
    body: &[u8],
) -> CommandResponse {
    let entity = match decode_entity(raw_entity) {
        Ok(e) => e,
        Err(response) => return response,
    };
    let body: SnapshotBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return CommandResponse::error(
                400,
                "BadRequest",
                format!(
                    "body must be {{\"aggregate_version\": n, \"sequence\": n, \"state\": …}}: {e}"
                ),
            );
        }
    };
    let snapshot = Snapshot {
        name: percent_decode_str(raw_name)
            .decode_utf8_lossy()
            .into_owned(),
        aggregate_version: body.aggregate_version,
        sequence: body.sequence,
        state: body.state.to_string(),
        stored_at: tideline_core::keys::format_timestamp(chrono::Utc::now()),
    };
    match write_snapshot(store, &entity, &snapshot).await {
        Ok(SnapshotWritten::Written) => {
            info!(stage = "command", entity = %entity, snapshot = %snapshot.name, sequence = snapshot.sequence, "snapshot written");
            CommandResponse {
                status: 201,
                body: json!({"status": "written", "sequence": snapshot.sequence}),
            }
        }
        Ok(SnapshotWritten::KeptNewer { sequence }) => CommandResponse {
            status: 200,
            body: json!({"status": "kept_newer", "sequence": sequence}),
        },
        Err(e) => {
            info!(stage = "command", entity = %entity, error = %e, "snapshot not written");
            snapshot_error(&e)
        }
    }
}

/// Serves `POST /entities/{entity_id}/events` (`raw_entity` percent-encoded,
/// as in the path): admit, append, then hand the admitted records to `lake`
/// (local mode's files, the command API's S3 bucket) so an appended event
/// reaches the lake as an ingested one does. A lake failure answers 503 after the
/// append: the retry is idempotent and writes the lake again (the lake is
/// at least once, as Firehose's is).
pub async fn handle_command<S: EventStore + EventLookup, L: Lake>(
    store: &S,
    lake: Option<&L>,
    config: &IngestConfig,
    raw_entity: &str,
    body: &[u8],
) -> CommandResponse {
    let entity = match decode_entity(raw_entity) {
        Ok(e) => e,
        Err(response) => return response,
    };
    let command: CommandBody = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            return CommandResponse::error(
                400,
                "BadRequest",
                format!("body must be {{\"expected_sequence\": n | null, \"events\": [...]}}: {e}"),
            );
        }
    };
    let expected = match command.expected_sequence {
        None => ExpectedSeq::Any,
        Some(n) => ExpectedSeq::Exactly(n),
    };
    let admitted = match admit_command(config, &entity, command.events, chrono::Utc::now()) {
        Ok(a) => a,
        Err(e) => {
            info!(stage = "command", entity = %entity, error = %e, "command refused");
            return CommandResponse::from_error(&entity, &e);
        }
    };
    let appended = match append_command(store, &entity, expected, &admitted).await {
        Ok(a) => a,
        Err(e) => {
            match &e {
                CommandError::Conflict(c) => {
                    info!(stage = "command", entity = %entity, expected = c.expected, actual = c.actual, "command conflicted")
                }
                other => {
                    warn!(stage = "command", entity = %entity, error = %other, "command append failed")
                }
            }
            return CommandResponse::from_error(&entity, &e);
        }
    };
    if let Some(lake) = lake
        && let Err(e) = lake.write_records(&admitted).await
    {
        tracing::error!(stage = "command", entity = %entity, error = %e, "lake write failed after the append: answered 503 so the caller retries (idempotent)");
        return CommandResponse::error(
            503,
            "LakeUnavailable",
            format!(
                "the events are stored (last sequence {}), but the lake could not be written: {e}; retry the same command",
                appended.last_sequence
            ),
        );
    }
    let stored = appended
        .outcomes
        .iter()
        .filter(|o| matches!(o, AppendOutcome::Stored { .. }))
        .count();
    info!(stage = "command", entity = %entity, last_sequence = appended.last_sequence, stored, duplicates = appended.outcomes.len() - stored, "command appended");
    let events: Vec<Value> = appended
        .outcomes
        .iter()
        .map(|o| match o {
            AppendOutcome::Stored { event_id, seq } => {
                json!({"event_id": event_id.as_str(), "sequence": seq, "status": "stored"})
            }
            AppendOutcome::Duplicate { event_id } => {
                json!({"event_id": event_id.as_str(), "status": "duplicate"})
            }
        })
        .collect();
    CommandResponse {
        status: 201,
        body: json!({
            "entity_id": entity.as_str(),
            "last_sequence": appended.last_sequence,
            "events": events,
        }),
    }
}
