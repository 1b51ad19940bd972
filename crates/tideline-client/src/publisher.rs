//! `publish` and `publish_batch`: records checked against the ingest limits,
//! then sent in calls within the batch limits, retrying only what failed.
//!
//! Each record is admitted with [`tideline_core::ingest::admit`], the very
//! function the transformer runs, so a record the pipeline would refuse (bad
//! field, over a later hop's limit) is refused here, before any call, with the
//! same reason. Admission also yields the event id ingest will use: the
//! producer's `id`, or the one derived from the record's bytes. The bytes are
//! then sent unchanged on every attempt, so a retry never changes the id and
//! the store de-duplicates a record sent twice (INVARIANTS.md #2).

use crate::deliver::{BatchLimits, Clock, TokioClock, Transport, deliver};
use crate::firehose::FirehoseTransport;
use serde::Serialize;
use serde_json::Value;
use tideline_core::ingest::{IngestConfig, RejectReason, admit};
use tideline_core::retry::RetryPolicy;
use tideline_core::{Classify, EntityId, ErrorClass, EventId};

/// Why a record was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Ingest would refuse it (contract or a hop's limit); nothing was sent.
    /// Permanent: fix the record.
    #[error("refused before sending: {0}")]
    Refused(#[from] RejectReason),
    /// The service refused the call for good (unknown stream, access denied).
    /// Permanent: fix the configuration.
    #[error("rejected by the ingest API after {attempts} call(s): {message}")]
    Rejected {
        /// The service's error.
        message: String,
        /// Calls that carried the record.
        attempts: u32,
    },
    /// Still failing after the last retry (throttling, unavailable).
    /// Retryable: publish it again later; its event id will not change.
    #[error("not accepted after {attempts} call(s): {message}")]
    Unavailable {
        /// The last error.
        message: String,
        /// Calls that carried the record.
        attempts: u32,
    },
}

impl Classify for PublishError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Refused(_) | Self::Rejected { .. } => ErrorClass::Permanent,
            Self::Unavailable { .. } => ErrorClass::Retryable,
        }
    }
}

impl PublishError {
    /// A short code: the ingest reject code, `Rejected` or `Unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(r) => r.code(),
            Self::Rejected { .. } => "Rejected",
            Self::Unavailable { .. } => "Unavailable",
        }
    }
}

/// A record in the producer contract (README, "The record a producer sends"),
/// for callers that do not have their own bytes. Serialised with serde_json,
/// which writes non-ASCII text as UTF-8, unescaped and unchanged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Partition and ordering key.
    pub entity_id: String,
    /// Event type, e.g. `OrderPlaced`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload.
    pub data: Value,
    /// The event id; when absent, ingest derives it from the bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// RFC 3339; ingest uses the arrival time when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// Correlation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// A test event.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl Event {
    /// An event of `event_type` for `entity_id` carrying `data`.
    pub fn new(entity_id: impl Into<String>, event_type: impl Into<String>, data: Value) -> Self {
        Self {
            entity_id: entity_id.into(),
            event_type: event_type.into(),
            data,
            id: None,
            occurred_at: None,
            correlation_id: None,
            test: false,
        }
    }

    /// Sets the event id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets when it happened (RFC 3339).
    pub fn occurred_at(mut self, at: impl Into<String>) -> Self {
        self.occurred_at = Some(at.into());
        self
    }

    /// Sets the correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// The record's bytes, as sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings and a Value (whose map keys are strings) always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl From<Event> for Vec<u8> {
    fn from(e: Event) -> Self {
        e.to_bytes()
    }
}

impl From<&Event> for Vec<u8> {
    fn from(e: &Event) -> Self {
        e.to_bytes()
    }
}

/// A record admitted for sending: its bytes, unchanged, and the ids ingest will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The event id ingest will assign: the producer's, or derived from the bytes.
    pub event_id: EventId,
    /// The entity.
    pub entity_id: EntityId,
    /// The record's bytes.
    pub bytes: Vec<u8>,
}

impl AsRef<[u8]> for Prepared {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Publishes records to Tideline's ingest API.
#[derive(Debug, Clone)]
pub struct Publisher<Tr = FirehoseTransport, C = TokioClock> {
    transport: Tr,
    clock: C,
    retry: RetryPolicy,
    ingest: IngestConfig,
}

impl Publisher<FirehoseTransport, TokioClock> {
    /// A publisher to Firehose delivery stream `stream`, with the default
    /// limits and retry policy.
    pub fn firehose(client: aws_sdk_firehose::Client, stream: impl Into<String>) -> Self {
        Self::new(
            FirehoseTransport::new(client, stream),
            TokioClock::default(),
        )
    }
}

impl<Tr: Transport<Prepared>, C: Clock> Publisher<Tr, C> {
    /// A publisher over any transport and clock.
    pub fn new(transport: Tr, clock: C) -> Self {
        Self {
            transport,
            clock,
            retry: RetryPolicy::default(),
            ingest: IngestConfig::default(),
        }
    }

    /// How often to retry failed records.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The pipeline's ingest settings: its field map and hop limits (for
    /// example a queue's lowered `MaximumMessageSize`). Must match the
    /// deployment's, or the client's check is weaker or stricter than ingest's.
    pub fn with_ingest_config(mut self, ingest: IngestConfig) -> Self {
        self.ingest = ingest;
        self
    }

    /// How much one call carries.
    pub fn limits(&self) -> BatchLimits {
        self.transport.limits()
    }

    /// The ingest settings records are checked against.
    pub fn ingest_config(&self) -> &IngestConfig {
        &self.ingest
    }

    /// Checks a record as ingest will, and returns it with its event id.
    pub fn prepare(&self, record: impl Into<Vec<u8>>) -> Result<Prepared, RejectReason> {
        let bytes = record.into();
        let admitted = admit(&self.ingest, &bytes, chrono::Utc::now())?;
        Ok(Prepared {
            event_id: admitted.record.id,
            entity_id: admitted.record.entity_id,
            bytes,
        })
    }

    /// Publishes one record; returns the event id it will be stored under.
    pub async fn publish(&self, record: impl Into<Vec<u8>>) -> Result<EventId, PublishError> {
        let mut results = self.publish_batch(vec![record.into()]).await;
        results.pop().unwrap_or_else(|| {
            Err(PublishError::Unavailable {
                message: "no result for the record".into(),
                attempts: 0,
            })
        })
    }

    /// Publishes records in order, in as few calls as the batch limits allow,
    /// one call at a time. Returns one result per record, in input order.
    ///
    /// A record refused by the check is never sent and does not hold back its
    /// neighbours. Within one call Firehose may take a record and fail the one
    /// before it; the failed one is re-sent after (Firehose promises no order;
    /// per-entity order is fixed when a record enters the FIFO queue).
    pub async fn publish_batch<R: Into<Vec<u8>>>(
        &self,
        records: Vec<R>,
    ) -> Vec<Result<EventId, PublishError>> {
        let mut results: Vec<Option<Result<EventId, PublishError>>> =
            (0..records.len()).map(|_| None).collect();
        let mut admitted: Vec<(usize, Prepared)> = Vec::with_capacity(records.len());
        for (i, r) in records.into_iter().enumerate() {
            match self.prepare(r) {
                Ok(p) => admitted.push((i, p)),
                Err(reason) => {
                    tracing::info!(record = i, code = reason.code(), %reason, "record refused before sending");
                    results[i] = Some(Err(PublishError::Refused(reason)));
                }
            }
        }
        for call in split_calls(admitted, self.transport.limits()) {
            let (positions, items): (Vec<usize>, Vec<Prepared>) = call.into_iter().unzip();
            let tagged: Vec<Tagged> = positions
                .iter()
                .copied()
                .zip(items)
                .map(|(index, prepared)| Tagged { index, prepared })
                .collect();
            let delivered = deliver(
                &TaggedTransport(&self.transport),
                &self.clock,
                &self.retry,
                tagged,
            )
            .await;
            for (t, _) in delivered.accepted {
                results[t.index] = Some(Ok(t.prepared.event_id));
            }
            for (t, f) in delivered.failed {
                tracing::warn!(event_id = %t.prepared.event_id, attempts = f.attempts, retryable = f.retryable, error = %f.message, "record not published");
                let e = if f.retryable {
                    PublishError::Unavailable {
                        message: f.message,
                        attempts: f.attempts,
                    }
                } else {
                    PublishError::Rejected {
                        message: f.message,
                        attempts: f.attempts,
                    }
                };
                results[t.index] = Some(Err(e));
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(PublishError::Unavailable {
                        message: "record was not sent".into(),
                        attempts: 0,
                    })
                })
            })
            .collect()
    }
}

/// A prepared record with its place in the caller's batch.
struct Tagged {
    index: usize,
    prepared: Prepared,
}

/// Lets a `Transport<Prepared>` carry [`Tagged`] items.
struct TaggedTransport<'a, Tr>(&'a Tr);

impl<Tr: Transport<Prepared>> Transport<Tagged> for TaggedTransport<'_, Tr> {
    fn limits(&self) -> BatchLimits {
        self.0.limits()
    }
    fn put(
        &self,
        batch: &[&Tagged],
    ) -> impl std::future::Future<Output = crate::deliver::CallResult> + Send {
        let inner: Vec<&Prepared> = batch.iter().map(|t| &t.prepared).collect();
        async move { self.0.put(&inner).await }
    }
}

/// Splits records, in order, into calls within `limits`.
pub(crate) fn split_calls<T: AsRef<[u8]>>(
    items: Vec<(usize, T)>,
    limits: BatchLimits,
) -> Vec<Vec<(usize, T)>> {
    let mut calls = Vec::new();
    let mut call: Vec<(usize, T)> = Vec::new();
    let mut bytes = 0usize;
    for (i, item) in items {
        let len = item.as_ref().len();
        if !limits.fits(call.len(), bytes, len) {
            calls.push(std::mem::take(&mut call));
            bytes = 0;
        }
        bytes += len;
        call.push((i, item));
    }
    if !call.is_empty() {
        calls.push(call);
    }
    calls
}
