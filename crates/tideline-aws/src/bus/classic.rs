//! The bus on EventBridge: `PutEvents`, with one result per entry.
//!
//! PutEvents answers HTTP 200 even when entries failed (AWS-CONTRACTS.md,
//! EventBridge): each failed entry carries an `ErrorCode`. Throttling and
//! internal errors are retryable; anything else (`MalformedDetail`,
//! `InvalidArgument`, ...) is permanent. The emit stage resends only failed
//! entries and never sends two calls at once.

use crate::error::{classify, put_events_entry_result};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tideline_core::envelope::{BusEntry, DEFAULT_MAX_PUT_EVENTS_BYTES, MAX_PUT_EVENTS_ENTRIES};
use tideline_stages::{Bus, EntryFailure, PortError};

/// The EventBridge adapter.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
    max_request_bytes: usize,
}

impl EventBridgeBus {
    /// An adapter over a client built once per process, with today's 1 MiB
    /// PutEvents request limit.
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            max_request_bytes: DEFAULT_MAX_PUT_EVENTS_BYTES,
        }
    }

    /// Overrides the request size limit (it was 256 KB before January 2026).
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }
}

impl Bus for EventBridgeBus {
    fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if entries.len() > MAX_PUT_EVENTS_ENTRIES {
            return Err(PortError::permanent(
                "eventbridge",
                format!(
                    "{} entries in one PutEvents; the limit is {MAX_PUT_EVENTS_ENTRIES}",
                    entries.len()
                ),
            ));
        }
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    // X-Ray links the target's trace to the producer's.
                    .set_trace_header(e.trace_header.clone())
                    .build()
            })
            .collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
            .map_err(|e| classify("eventbridge", "PutEvents", e))?;
        let results = output.entries();
        Ok((0..entries.len())
            .map(|i| {
                put_events_entry_result(results.get(i).map(|r| (r.error_code(), r.error_message())))
            })
            .collect())
    }
}
