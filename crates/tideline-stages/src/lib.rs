//! Tideline's stages and the ports they run over, one module per step of
//! the flow (`docs/decisions/0016-layout-by-flow.md`):
//!
//! ```text
//! transform ─► queue ─► store ─► feed ─► emit ─► bus ─► route ─► consume
//!     └─► lake                                   query, replay read the store
//! ```
//!
//! - [`transform`]: the Firehose transformation; its ports are the [`queue`]
//!   (SQS FIFO) and the [`lake`] (S3 through Firehose);
//! - [`store`]: the append of queued records, with its ports (`EventStore`,
//!   `RejectSink`) and the DynamoDB append protocol ([`store::slot`]);
//! - [`feed`]: the change feed the emit stage reads;
//! - [`emit`]: integration events onto the [`bus`];
//! - [`route`]: each event parsed once and matched against every rule;
//! - [`query`]: an entity's history over HTTP;
//! - [`command`]: appends at an expected version over HTTP (the command side);
//! - [`replay`]: stored events re-emitted to the bus, by entity or by time
//!   window, without reading the whole store;
//! - [`memory`]: in-memory fakes of every port, for tests.
//!
//! Each port has two adapters, AWS (`tideline-aws`) and embedded
//! (`tideline-embedded`), and the adapters hold no business rules
//! (INVARIANTS.md #7). The stages own the batch contracts: per-record
//! Firehose results, the FIFO "stop and report the rest" rule, the stream
//! rewind, and PutEvents retries of only the failed entries.

#![deny(missing_docs)]

pub mod bus;
pub mod command;
pub mod emit;
pub mod error;
pub mod feed;
pub mod lake;
pub mod memory;
pub mod query;
pub mod queue;
pub mod replay;
pub mod route;
pub mod store;
mod sync;
pub mod transform;

pub use bus::Bus;
pub use error::{ErrorSource, PortError, StoreError};
pub use feed::{Change, ChangeFeed, ChangeKind};
pub use lake::{FailedRecord, Lake, LakeObject, LakeReader};
pub use queue::{EntryFailure, OutgoingMessage, Queue};
pub use store::port::{EventStore, RejectSink, RejectedRecord};
