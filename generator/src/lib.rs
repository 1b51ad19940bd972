//! Tideline's load generator and end-to-end verifier.
//!
//! `send` pushes synthetic records through the real ingest API (Firehose
//! `PutRecordBatch`, or straight onto the FIFO queue) at a rate held by a
//! token bucket, and writes a compact manifest of what was accepted. `verify`
//! reads every entity's history back through the query API and checks the
//! pipeline's promises against that manifest: nothing missing, nothing stored
//! twice, every entity in the order it was sent (INVARIANTS.md #1–#4).
//!
//! The `command` profile sends through the command API instead
//! (`POST /entities/{entity_id}/events`): concurrent writers at expected
//! versions, retrying on conflict, and `verify` checks that no two writers
//! held the same version ([`command`]).
//!
//! Everything that decides *what* is sent is a pure function of `--seed`, so a
//! run can be repeated byte for byte; only the timing differs.

pub mod cli;
pub mod command;
pub mod manifest;
pub mod profiles;
pub mod rate;
pub mod rng;
pub mod send;
pub mod stats;
pub mod targets;
pub mod verify;

pub use manifest::{Manifest, ManifestEntry, ManifestWriter};
pub use profiles::{Distribution, GenConfig, Generator, Profile, Record};
pub use rate::{Clock, FakeClock, RateLimiter, SystemClock, TokenBucket};
