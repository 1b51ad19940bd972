//! Tideline's domain core.
//!
//! Everything here is pure: no I/O, no clocks read behind the caller's back, no
//! AWS or SQLite types. The Lambdas and local mode call the same functions, so a
//! rule written here holds on both (INVARIANTS.md #7, "one code path").
//!
//! The flow the modules follow:
//! - [`ingest`]: the record a producer sends, validated and normalised (the transform stage);
//! - [`ids`]: entity and event ids, with the SQS character rules they must satisfy;
//! - [`limits`]: every hop's limits, in one model that ingest checks records against;
//! - [`keys`]: the store's key scheme (`pk`, sortable unique `sk`, gapless `seq`);
//! - [`lake_layout`]: the data lake's paths and partition values, on S3 and on disk;
//! - [`event`]: the stored event and the append plan that assigns `seq`;
//! - [`item`]: the DynamoDB item layout, the slot rule that makes `seq` unique without a transaction, and what each item costs;
//! - [`envelope`]: the integration event the bus carries, and PutEvents batching;
//! - [`bundle`]: bundled emission, several consecutive events in one bus entry (off by default);
//! - [`batch`]: partial-failure responses (FIFO "stop and report the rest", stream rewind);
//! - [`replay`]: what a replay selects, and how a store or the lake finds it without a table scan;
//! - [`cost`]: the monthly AWS bill per service and per million events, from the items and calls the code makes, next to the reference design;
//! - [`trace`]: the W3C / X-Ray trace context that follows a record through every hop;
//! - [`retry`]: exponential backoff with jitter that stops, and the one loop that resends only a batch's failed entries;
//! - [`error`]: the retryable/permanent classification every error carries;
//! - [`metrics`]: the received/sent/discarded/failed counters every stage keeps;
//! - [`schema_draft4`]: the integration event schema rendered for the EventBridge schema registry (Draft 4).

#![deny(missing_docs)]

pub mod batch;
pub mod bundle;
pub mod capacity;
pub mod cost;
pub mod data_validator;
pub mod envelope;
pub mod error;
pub mod event;
#[cfg(test)]
mod given;
pub mod ids;
pub mod ingest;
pub mod item;
pub mod keys;
pub mod lake_layout;
pub mod limits;
pub mod metrics;
pub mod replay;
pub mod retry;
pub mod route;
pub mod schema_draft4;
pub mod trace;

pub use envelope::{BusEntry, DetailMetadata, EventDetail, IntegrationEvent};
pub use error::{Classify, DisplayChain, ErrorClass};
pub use event::{AppendOutcome, AppendPlan, ExpectedSeq, NewEvent, StoredEvent};
pub use ids::{EntityId, EventId};
pub use ingest::{FieldMap, IngestConfig, NormalizedRecord, RejectReason};
