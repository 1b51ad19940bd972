//! Consumer library for Tideline integration events.
//!
//! EventBridge delivers at least once and in no particular order. Tideline
//! puts the entity's gapless `sequence` in every event, and this crate turns
//! that into exactly-once effects in per-entity order:
//!
//! - [`IntegrationEvent<T>`]: the EventBridge event with a typed `data`;
//!   unknown fields and a missing `account`/`region`/`resources` are tolerated.
//! - [`Guard`]: for each (consumer, entity) keeps the last applied sequence in a
//!   [`CheckpointStore`] and classifies each event: a duplicate is skipped and
//!   counted; the next one runs the handler and advances the checkpoint in the
//!   same atomic write as the handler's own writes; a gap follows the
//!   [`GapPolicy`] (`retry`, `accept`, `buffer`).
//! - Stores: [`DynamoCheckpoints`] (feature `dynamodb`: conditional updates,
//!   `TransactWriteItems` with the handler's items), [`SqliteCheckpoints`]
//!   (feature `sqlite`: one transaction that the handler writes into), and
//!   [`MemoryCheckpoints`] for tests.
//!
//! - [`HandlerRegistry`]: typed handlers by event type (with an optional
//!   prefix), built by a [`RegistryBuilder`] that refuses duplicate keys; a
//!   [`Dispatcher`] runs each event's handler behind the guard, and the
//!   registry prints the EventBridge pattern of exactly its event types.
//!
//! Checkpoint layout (DynamoDB and SQLite alike, fitting the Terraform
//! `consumer` module's table of string keys `pk`, `sk`):
//! `pk` = `consumer#<name>`, `sk` = `entity#<id>`, `last_sequence`,
//! `gaps_accepted`, `updated_at`, and one `b_<seq>` attribute per buffered event.

#![deny(missing_docs)]

pub mod checkpoint;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod envelope;
pub mod error;
pub mod guard;
pub mod memory;
pub mod registry;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use checkpoint::{Checkpoint, CheckpointStore, CheckpointUpdate, checkpoint_pk, checkpoint_sk};
#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoCheckpoints;
pub use envelope::{DetailMetadata, EventDetail, IntegrationEvent};
pub use error::ConsumerError;
pub use guard::{GapPolicy, Guard, GuardCounts, Outcome};
pub use memory::MemoryCheckpoints;
pub use registry::{
    Dispatcher, EmptyWrite, HandlerInfo, HandlerRegistry, RegistryBuilder, RegistryError,
    UnhandledPolicy,
};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteCheckpoints, SqliteWrite};
