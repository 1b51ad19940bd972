//! Tideline's domain core.
//!
//! Everything here is pure: no I/O, no clocks read behind the caller's back, no
//! AWS or SQLite types. The Lambdas and local mode call the same functions, so a
//! rule written here holds on both (INVARIANTS.md #7, "one code path").
//!
//! The modules stand in layers. A module uses only modules of its own layer
//! or a lower one, never a higher one, so there is no module cycle (the test
//! `crates/tideline-testkit/tests/module_cycles.rs` fails on one). Tests may
//! reach up a layer to build their fixtures.
//!
//! 0. **Vocabulary**, no other module of this crate (except `error`, which
//!    `retry` and the error types use):
//!    - [`error`]: the retryable/permanent classification every error carries;
//!    - [`ids`]: entity and event ids, with the SQS character rules they must satisfy;
//!    - [`keys`]: the store's key scheme (`pk`, sortable unique `sk`, gapless `seq`);
//!    - [`limits`]: every hop's limits as numbers, sizes and checks on borrowed
//!      fields, and the bus's reserved names (`BUNDLE_DETAIL_TYPE`); ingest
//!      checks records against it, and it knows no record or event type;
//!    - [`trace`]: the W3C / X-Ray trace context that follows a record through every hop;
//!    - [`data_validator`], [`lake_layout`], [`route`], [`batch`], [`metrics`],
//!      [`capacity`], [`retry`]: the data-check port, the lake's paths, rule
//!      routing, partial-failure responses (FIFO "stop and report the rest",
//!      stream rewind), stage counters, table capacity, and exponential
//!      backoff with jitter that stops (with the one loop that resends only a
//!      batch's failed entries).
//! 1. **Record model**: [`record`]: the record ingest admits (`NormalizedRecord`),
//!    which the queue, the lake and the store carry.
//! 2. **Stages' rules**, each on the record model:
//!    - [`ingest`]: what a producer sends, validated and normalised into a record
//!      (the transform stage);
//!    - [`event`]: the stored event and the append plan that assigns `seq`.
//! 3. **Stored and carried forms** of an event:
//!    - [`item`]: the DynamoDB item layout, the slot rule that makes `seq`
//!      unique without a transaction, and what each item costs;
//!    - [`envelope`]: the integration event the bus carries, PutEvents batching,
//!      and what PutEvents refuses.
//! 4. **Built on those**:
//!    - [`bundle`]: bundled emission, several consecutive events in one bus entry (off by default);
//!    - [`replay`]: what a replay selects, and how a store or the lake finds it without a table scan;
//!    - [`schema_draft4`]: the integration event schema rendered for the
//!      EventBridge schema registry (Draft 4);
//!    - [`cost`]: the monthly AWS bill per service and per million events, from
//!      the items and calls the code makes, next to the reference design.
//!
//! Where a name moved down a layer to break a cycle, the module that used to
//! hold it re-exports it (`ingest::NormalizedRecord`, `ingest::SCHEMA_VERSION`,
//! `bundle::BUNDLE_DETAIL_TYPE`), so callers' paths did not change.

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
pub mod record;
pub mod replay;
pub mod retry;
pub mod route;
pub mod schema_draft4;
pub mod trace;

pub use envelope::{BusEntry, DetailMetadata, EventDetail, IntegrationEvent};
pub use error::{Classify, DisplayChain, ErrorClass};
pub use event::{AppendOutcome, AppendPlan, ExpectedSeq, NewEvent, StoredEvent};
pub use ids::{EntityId, EventId};
pub use ingest::{FieldMap, IngestConfig, RejectReason};
pub use record::NormalizedRecord;
