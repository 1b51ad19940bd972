//! The ordered bus: EventBridge's enhanced custom event bus (`AWS::EventsV2`,
//! `aws-sdk-eventbridgev2`), the emitter's optional ordered mode
//! (`TIDELINE_BUS_MODE=ordered`, decision 0013).
//!
//! The enhanced bus delivers to FIFO subscribers in publish order within
//! `SystemMetadata.EventGroupId`, and drops a repeat of a
//! `SystemMetadata.DeduplicationId` seen within 5 minutes
//! (AWS-CONTRACTS.md, Enhanced custom event bus). So each entry carries:
//!
//! - `EventGroupId` = the entity id: one entity's events are one ordered group;
//! - `DeduplicationId` = [`tideline_core::ids::bus_dedup_id`] of (entity id,
//!   event id, replay flag): a stream batch the emitter publishes again after
//!   a rewind is suppressed by the bus instead of reaching subscribers twice.
//!
//! **Order under partial failure.** PutEvents answers per entry; if an entity's
//! entry 3 failed and its entry 4 in the same call succeeded, resending 3 would
//! put it behind 4 in the group. So, as the transform stage does for SQS FIFO,
//! one API call carries at most one entry per entity, calls go one after the
//! other, and once an entity's entry fails its later entries are not sent: they
//! are reported failed (retryable, [`HELD_BEHIND_FAILED_ENTRY`]) so the emit
//! stage resends them, in order, with the failed one. A hot entity therefore
//! costs one call per event; that is the price of the guarantee.
//!
//! Nothing here was run against the live service (moto has no EventsV2): the
//! tests drive the SDK with a mocked HTTP layer (`tests/ordered_bus.rs`). See
//! `docs/ordered-bus.md` for what was and was not verified.

use crate::error::{classify, put_events_entry_result};
use aws_sdk_eventbridgev2::types::{PutEventsRequestEntry, PutEventsSystemMetadata};
use serde::Deserialize;
use tideline_core::ErrorClass;
use tideline_core::envelope::{BusEntry, DEFAULT_MAX_PUT_EVENTS_BYTES, MAX_PUT_EVENTS_ENTRIES};
use tideline_core::ids::bus_dedup_id;
use tideline_stages::{Bus, EntryFailure, PortError};
use tracing::debug;

/// `SystemMetadata.EventGroupId` takes 1–128 characters (AWS-CONTRACTS.md).
/// Entity ids are refused at ingest past 128 characters, so this only guards
/// against an entry that did not come through ingest.
pub const MAX_EVENT_GROUP_ID_CHARS: usize = 128;

/// `SystemMetadata.DeduplicationId` takes 1–128 characters (AWS-CONTRACTS.md);
/// [`bus_dedup_id`] always makes 64.
pub const MAX_DEDUPLICATION_ID_CHARS: usize = 128;

/// The error code of an entry not sent because an earlier entry of its entity
/// failed in this call; retryable, so the stage resends it behind that one.
pub const HELD_BEHIND_FAILED_ENTRY: &str = "HeldBehindFailedEntry";

/// The enhanced custom event bus adapter.
#[derive(Debug, Clone)]
pub struct OrderedEventBus {
    client: aws_sdk_eventbridgev2::Client,
    // The EventsV2 PutEvents names its bus by ARN (`EventBusArn`, required).
    bus_arn: String,
    max_request_bytes: usize,
}

/// The two fields of a detail the de-duplication id is derived from. The
/// adapter reads them back from the serialised detail rather than widening
/// [`BusEntry`]; `data` is skipped without being built.
#[derive(Deserialize)]
struct DetailIdentity {
    #[serde(default)]
    metadata: Option<MetadataIdentity>,
}

#[derive(Deserialize)]
struct MetadataIdentity {
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    replay: bool,
}

/// The `DeduplicationId` of an entry: derived from its event id; a detail
/// without one (not an integration event; a future bundle) falls back to its
/// own bytes, which are as stable across a re-publish as the id.
pub fn deduplication_id(entry: &BusEntry) -> String {
    let identity = serde_json::from_str::<DetailIdentity>(&entry.detail)
        .ok()
        .and_then(|d| d.metadata)
        .and_then(|m| m.event_id.map(|id| (id, m.replay)));
    match identity {
        Some((event_id, replay)) => bus_dedup_id(&entry.entity_id, &event_id, replay),
        None => bus_dedup_id(&entry.entity_id, &entry.detail, false),
    }
}

impl OrderedEventBus {
    /// An adapter over a client built once per process. The request size
    /// limit defaults to the classic PutEvents' 1 MiB (not published for
    /// EventsV2 when this was written; see docs/ordered-bus.md).
    pub fn new(client: aws_sdk_eventbridgev2::Client, bus_arn: impl Into<String>) -> Self {
        Self {
            client,
            bus_arn: bus_arn.into(),
            max_request_bytes: DEFAULT_MAX_PUT_EVENTS_BYTES,
        }
    }

    /// Overrides the request size limit.
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// The bus ARN entries are published to.
    pub fn bus_arn(&self) -> &str {
        &self.bus_arn
    }

    fn request_entry(entry: &BusEntry) -> Result<PutEventsRequestEntry, EntryFailure> {
        let group_chars = entry.entity_id.chars().count();
        if group_chars == 0 || group_chars > MAX_EVENT_GROUP_ID_CHARS {
            return Err(EntryFailure {
                code: "InvalidEventGroupId".into(),
                message: format!(
                    "entity id {:?} is {group_chars} characters; EventGroupId takes 1–{MAX_EVENT_GROUP_ID_CHARS}",
                    entry.entity_id
                ),
                class: ErrorClass::Permanent,
            });
        }
        let metadata = PutEventsSystemMetadata::builder()
            .event_group_id(&entry.entity_id)
            .deduplication_id(deduplication_id(entry))
            .build();
        PutEventsRequestEntry::builder()
            .source(&entry.source)
            .detail_type(&entry.detail_type)
            .detail(&entry.detail)
            .system_metadata(metadata)
            .build()
            .map_err(|e| EntryFailure {
                code: "InvalidEntry".into(),
                message: e.to_string(),
                class: ErrorClass::Permanent,
            })
    }

    /// One PutEvents call; one result per entry, in order.
    async fn send(
        &self,
        entries: Vec<PutEventsRequestEntry>,
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        let count = entries.len();
        let output = self
            .client
            .put_events()
            .event_bus_arn(&self.bus_arn)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("eventbridgev2", "PutEvents", e))?;
        let results = output.entries();
        Ok((0..count)
            .map(|i| {
                put_events_entry_result(results.get(i).map(|r| (r.error_code(), r.error_message())))
            })
            .collect())
    }
}

fn held_behind(entity_id: &str) -> EntryFailure {
    EntryFailure {
        code: HELD_BEHIND_FAILED_ENTRY.into(),
        message: format!(
            "not sent: an earlier entry of entity {entity_id:?} failed, and the bus keeps publish order per EventGroupId"
        ),
        class: ErrorClass::Retryable,
    }
}

impl Bus for OrderedEventBus {
    fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        if entries.len() > MAX_PUT_EVENTS_ENTRIES {
            return Err(PortError::permanent(
                "eventbridgev2",
                format!(
                    "{} entries in one PutEvents; the limit is {MAX_PUT_EVENTS_ENTRIES}",
                    entries.len()
                ),
            ));
        }
        let mut results: Vec<Option<Result<(), EntryFailure>>> = vec![None; entries.len()];
        // Entities whose entry failed: their later entries stay unsent.
        let mut stalled: Vec<&str> = Vec::new();
        let mut calls = 0_usize;
        loop {
            // One call: the earliest unsent entry of each entity, in order.
            // At most 10 entries: a linear search beats hashing.
            let mut groups: Vec<&str> = Vec::with_capacity(entries.len());
            let mut call: Vec<usize> = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                let group = entry.entity_id.as_str();
                if stalled.contains(&group) {
                    results[i] = Some(Err(held_behind(group)));
                    continue;
                }
                if groups.contains(&group) {
                    continue;
                }
                groups.push(group);
                call.push(i);
            }
            if call.is_empty() {
                break;
            }
            let mut request = Vec::with_capacity(call.len());
            let mut sent = Vec::with_capacity(call.len());
            for &i in &call {
                match Self::request_entry(&entries[i]) {
                    Ok(r) => {
                        request.push(r);
                        sent.push(i);
                    }
                    Err(failure) => {
                        stalled.push(entries[i].entity_id.as_str());
                        results[i] = Some(Err(failure));
                    }
                }
            }
            if request.is_empty() {
                continue;
            }
            calls += 1;
            match self.send(request).await {
                Ok(answers) => {
                    for (i, answer) in sent.into_iter().zip(answers) {
                        if answer.is_err() {
                            stalled.push(entries[i].entity_id.as_str());
                        }
                        results[i] = Some(answer);
                    }
                }
                // Nothing published yet: the whole call failed, as for the classic bus.
                Err(e) if calls == 1 => return Err(e),
                Err(e) => {
                    // Earlier calls were published; report this call's and
                    // every unsent entry as failed, with the call's class.
                    for slot in results.iter_mut().filter(|r| r.is_none()) {
                        *slot = Some(Err(EntryFailure {
                            code: "CallFailed".into(),
                            message: e.to_string(),
                            class: e.class,
                        }));
                    }
                    break;
                }
            }
        }
        debug!(
            bus = "eventbridgev2",
            entries = entries.len(),
            calls,
            stalled_entities = stalled.len(),
            "PutEvents done"
        );
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(EntryFailure {
                        code: "MissingResult".into(),
                        message: "entry was not sent".into(),
                        class: ErrorClass::Retryable,
                    })
                })
            })
            .collect())
    }
}
