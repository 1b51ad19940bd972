//! Where appends and reads go: over HTTP ([`Http`]) or straight to a store
//! with the command stage ([`Direct`]). Both answer the same way; the
//! backends only translate.

use crate::{Error, Expected, ProposedEvent, RecordedEvent, StoredSnapshot};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use std::future::Future;
use tideline_core::envelope::EventDetail;
use tideline_core::ingest::IngestConfig;
use tideline_core::item::Snapshot;
use tideline_core::{Classify, EntityId, StoredEvent};
use tideline_stages::EventStore as StorePort;
use tideline_stages::command::{
    CommandError, EventLookup, SnapshotError, SnapshotStore, admit_command, append_command,
    write_snapshot,
};
use tideline_stages::query::encode_cursor;

/// Appends and reads of one event store.
pub trait Backend: Send + Sync {
    /// Appends at `expected`, all or none; the new last sequence.
    fn append(
        &self,
        entity: &EntityId,
        expected: Expected,
        events: Vec<ProposedEvent>,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Up to `limit` events with `sequence > after`, in order, and whether
    /// more may follow.
    fn read_page(
        &self,
        entity: &EntityId,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<RecordedEvent>, bool), Error>> + Send;

    /// The snapshot `name` of the entity at `aggregate_version`, if stored.
    fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> impl Future<Output = Result<Option<StoredSnapshot>, Error>> + Send;

    /// Stores a snapshot, unless one of as many or more events is stored.
    fn write_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        snapshot: &StoredSnapshot,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The command stage run here, over a store (`DynamoStore` on AWS; any
/// store of `tideline-stages` in tests).
#[derive(Debug, Clone)]
pub struct Direct<S> {
    store: S,
    ingest: IngestConfig,
}

impl<S> Direct<S> {
    /// Over `store`, admitting events with ingest's default limits and no
    /// schema registry.
    pub fn new(store: S) -> Self {
        Self {
            store,
            ingest: IngestConfig::default(),
        }
    }

    /// Admits events with these ingest settings: the deployment's limits and
    /// schema registry, so that what ingest would refuse is refused here.
    /// Its field map is not used: events are in Tideline's record format.
    pub fn with_ingest(mut self, ingest: IngestConfig) -> Self {
        self.ingest = tideline_stages::command::command_ingest_config(&ingest);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl Direct<tideline_aws::DynamoStore> {
    /// The retention the storer writes (`TIDELINE_EVENT_TTL_DAYS`): events
    /// appended here must expire as the storer's do.
    pub fn with_ttl(mut self, ttl: Option<chrono::Duration>) -> Self {
        self.store = self.store.with_ttl(ttl);
        self
    }
}

fn from_command(e: CommandError) -> Error {
    match e {
        CommandError::Conflict(c) => Error::Conflict {
            entity_id: c.entity_id.as_str().to_string(),
            expected: c.expected,
            actual: c.actual,
        },
        CommandError::Refused { index, reason } => Error::Refused {
            code: reason.code().to_string(),
            message: format!("events[{index}]: {reason}"),
        },
        CommandError::BadRequest(message) => Error::Refused {
            code: "BadRequest".into(),
            message,
        },
        CommandError::Store(s) => Error::Unavailable {
            retryable: s.is_retryable(),
            message: s.to_string(),
        },
    }
}

fn from_snapshot_error(e: SnapshotError) -> Error {
    match e {
        SnapshotError::Refused(r) => Error::Refused {
            code: "BadSnapshot".into(),
            message: r.to_string(),
        },
        SnapshotError::Store(s) => from_command(s.into()),
    }
}

fn recorded(e: StoredEvent) -> RecordedEvent {
    RecordedEvent {
        entity_id: e.entity_id.as_str().to_string(),
        sequence: e.seq,
        event_id: e.event_id.as_str().to_string(),
        event_type: e.event_type,
        data: e.data,
        occurred_at: e.occurred_at,
        stored_at: e.stored_at,
        correlation_id: e.correlation_id,
    }
}

impl<S: StorePort + EventLookup + SnapshotStore> Backend for Direct<S> {
    async fn append(
        &self,
        entity: &EntityId,
        expected: Expected,
        events: Vec<ProposedEvent>,
    ) -> Result<u64, Error> {
        let values = events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        let admitted = admit_command(&self.ingest, entity, values, chrono::Utc::now())
            .map_err(from_command)?;
        append_command(&self.store, entity, expected.to_store(), &admitted)
            .await
            .map(|a| a.last_sequence)
            .map_err(from_command)
    }

    async fn read_page(
        &self,
        entity: &EntityId,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<RecordedEvent>, bool), Error> {
        let mut events = self
            .store
            .read_events(entity, after, limit + 1)
            .await
            .map_err(|e| from_command(e.into()))?;
        let more = events.len() > limit;
        events.truncate(limit);
        Ok((events.into_iter().map(recorded).collect(), more))
    }

    async fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> Result<Option<StoredSnapshot>, Error> {
        let Some(s) = self
            .store
            .read_snapshot(entity, name, aggregate_version)
            .await
            .map_err(from_snapshot_error)?
        else {
            return Ok(None);
        };
        let state = serde_json::from_str(&s.state).map_err(|e| Error::Unavailable {
            message: format!("snapshot {name} of {entity} is not JSON: {e}"),
            retryable: false,
        })?;
        Ok(Some(StoredSnapshot {
            aggregate_version: s.aggregate_version,
            sequence: s.sequence,
            state,
        }))
    }

    async fn write_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        snapshot: &StoredSnapshot,
    ) -> Result<(), Error> {
        let snapshot = Snapshot {
            name: name.to_string(),
            aggregate_version: snapshot.aggregate_version,
            sequence: snapshot.sequence,
            state: snapshot.state.to_string(),
            stored_at: tideline_core::keys::format_timestamp(chrono::Utc::now()),
        };
        write_snapshot(&self.store, entity, &snapshot)
            .await
            .map(drop)
            .map_err(from_snapshot_error)
    }
}

/// Over HTTP: `tideline up`, or the deployed query and command APIs.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    /// Against `base_url` (`http://127.0.0.1:4566`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_client(reqwest::Client::new(), base_url)
    }

    /// With a client of the caller's (timeouts, a signing middleware's
    /// headers).
    pub fn with_client(client: reqwest::Client, base_url: impl Into<String>) -> Self {
        Self {
            client,
            base: base_url.into().trim_end_matches('/').to_string(),
        }
    }

    fn snapshot_url(&self, entity: &EntityId, name: &str) -> String {
        format!(
            "{}/entities/{}/snapshots/{}",
            self.base,
            utf8_percent_encode(entity.as_str(), NON_ALPHANUMERIC),
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        )
    }

    fn events_url(&self, entity: &EntityId) -> String {
        format!(
            "{}/entities/{}/events",
            self.base,
            utf8_percent_encode(entity.as_str(), NON_ALPHANUMERIC)
        )
    }
}

fn transport(e: reqwest::Error) -> Error {
    Error::Unavailable {
        message: e.to_string(),
        // Connection refused, reset, timed out: the append is idempotent,
        // so sending it again is safe.
        retryable: true,
    }
}

fn text_of(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_string()
}

impl Backend for Http {
    async fn append(
        &self,
        entity: &EntityId,
        expected: Expected,
        events: Vec<ProposedEvent>,
    ) -> Result<u64, Error> {
        let resp = self
            .client
            .post(self.events_url(entity))
            .json(&json!({"expected_sequence": expected.to_wire(), "events": events}))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            201 => body["last_sequence"]
                .as_u64()
                .ok_or_else(|| Error::Unavailable {
                    message: format!("201 without a last_sequence: {body}"),
                    retryable: false,
                }),
            409 => Err(Error::Conflict {
                entity_id: entity.as_str().to_string(),
                expected: body["expected_sequence"].as_u64().unwrap_or_default(),
                actual: body["actual_sequence"].as_u64().unwrap_or_default(),
            }),
            400 | 413 | 415 => Err(Error::Refused {
                code: text_of(&body, "error"),
                message: text_of(&body, "message"),
            }),
            s => Err(Error::Unavailable {
                message: format!("HTTP {s}: {body}"),
                retryable: s >= 500 || s == 429 || s == 408,
            }),
        }
    }

    async fn read_page(
        &self,
        entity: &EntityId,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<RecordedEvent>, bool), Error> {
        let mut query = vec![("limit", limit.to_string())];
        if after > 0 {
            query.push(("cursor", encode_cursor(entity.as_str(), after)));
        }
        let resp = self
            .client
            .get(self.events_url(entity))
            .query(&query)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.map_err(transport)?;
        if status != 200 {
            return Err(Error::Unavailable {
                message: format!("HTTP {status}: {body}"),
                retryable: status >= 500,
            });
        }
        let items = body["items"].as_array().cloned().unwrap_or_default();
        let mut events = Vec::with_capacity(items.len());
        for item in items {
            let detail: EventDetail =
                serde_json::from_value(item).map_err(|e| Error::Unavailable {
                    message: format!("an item of the query API is not an event detail: {e}"),
                    retryable: false,
                })?;
            let m = detail.metadata;
            events.push(RecordedEvent {
                entity_id: m.entity_id,
                sequence: m.sequence,
                event_id: m.event_id,
                event_type: m.event_type,
                data: detail.data,
                occurred_at: m.occurred_at,
                stored_at: m.stored_at,
                correlation_id: m.correlation_id,
            });
        }
        Ok((events, body["next_cursor"].is_string()))
    }

    async fn read_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        aggregate_version: u32,
    ) -> Result<Option<StoredSnapshot>, Error> {
        let resp = self
            .client
            .get(self.snapshot_url(entity, name))
            .query(&[("aggregate_version", aggregate_version.to_string())])
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            200 => serde_json::from_value(body.clone())
                .map(Some)
                .map_err(|e| Error::Unavailable {
                    message: format!("a snapshot answer without its fields ({e}): {body}"),
                    retryable: false,
                }),
            404 => Ok(None),
            s => Err(Error::Unavailable {
                message: format!("HTTP {s}: {body}"),
                retryable: s >= 500 || s == 429,
            }),
        }
    }

    async fn write_snapshot(
        &self,
        entity: &EntityId,
        name: &str,
        snapshot: &StoredSnapshot,
    ) -> Result<(), Error> {
        let resp = self
            .client
            .put(self.snapshot_url(entity, name))
            .json(snapshot)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            200 | 201 => Ok(()),
            400 => Err(Error::Refused {
                code: text_of(&body, "error"),
                message: text_of(&body, "message"),
            }),
            s => Err(Error::Unavailable {
                message: format!("HTTP {s}: {body}"),
                retryable: s >= 500 || s == 429,
            }),
        }
    }
}
