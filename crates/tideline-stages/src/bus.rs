//! The bus port: where the emit stage puts integration events (EventBridge on
//! AWS, the local router locally).

use crate::error::PortError;
use crate::queue::EntryFailure;
use std::future::Future;
use tideline_core::envelope::BusEntry;

/// The event bus (EventBridge, or the embedded bus).
pub trait Bus: Send + Sync {
    /// Total request size one PutEvents call may carry.
    fn max_request_bytes(&self) -> usize;
    /// Entries one call may carry (EventBridge: 10).
    fn max_entries(&self) -> usize {
        tideline_core::envelope::MAX_PUT_EVENTS_ENTRIES
    }
    /// Publishes up to [`Bus::max_entries`] entries; one result per entry, in order. Failed
    /// entries are reported per entry, as PutEvents does with HTTP 200.
    fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> impl Future<Output = Result<Vec<Result<(), EntryFailure>>, PortError>> + Send;
}
