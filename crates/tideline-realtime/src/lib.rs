//! Realtime fan-out: clients subscribe over a WebSocket to the events their
//! token allows, and a client that reconnects misses nothing.
//!
//! One protocol for AWS (API Gateway WebSocket API, the relay and route
//! Lambdas) and local mode (`tideline up` at `/_tideline/realtime`); the
//! adapters move frames, this crate decides (INVARIANTS.md #7):
//!
//! - [`protocol`]: the messages (JSON text frames), close codes and API
//!   Gateway's WebSocket limits;
//! - [`auth`]: bearer tokens (HS256, RS256 against a JWKS, unsigned for
//!   development) and what their claims allow;
//! - [`session`]: a connection's subscriptions, and the per (topic, entity)
//!   de-duplication by `sequence` that makes resume gapless and duplicate-free;
//! - [`outgoing`]: an integration event (or bundle) rendered once into the
//!   frames every subscriber receives, a reference when too large;
//! - [`backfill`]: the events a resuming client missed, read through the
//!   query path's store port, page by page;
//! - [`relay`]: the AWS fan-out, one event to every subscribed connection,
//!   concurrent within a bound, gone connections deleted, failed posts alone retried;
//! - `client` (feature `client`): a client of the protocol with the
//!   client's half of resume, for `tideline subscribe` and the tests.
//!
//! `docs/realtime.md` documents the protocol; decision 0023 explains the design.

#![deny(missing_docs)]

pub mod auth;
pub mod backfill;
#[cfg(feature = "client")]
pub mod client;
pub mod outgoing;
pub mod protocol;
pub mod relay;
pub mod session;

pub use auth::{Claims, TokenError, TokenVerifier};
pub use outgoing::Outgoing;
pub use protocol::{ClientMessage, RefusalCode, ServerMessage};
pub use session::{Delivered, Subscriptions};
