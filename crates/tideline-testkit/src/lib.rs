//! The test kit: what Tideline's tests share instead of copying set-up.
//!
//! - [`moto`]: the moto harness (the emulator, SDK config, unique names,
//!   resources shaped as Terraform makes them, and the event source mappings
//!   moto cannot run);
//! - [`fault_proxy`]: a proxy in front of moto that injects the faults moto
//!   never produces (throttling, lost answers, partial batch failures);
//! - [`local`]: `tideline up` in-process on a temporary directory, with the
//!   Firehose API, the query API, log targets and `processing-failed/` at hand;
//! - [`fixtures`]: producer records, `PutRecordBatch` bodies and the Lambda
//!   events (Firehose transform, SQS, DynamoDB Streams);
//! - [`cli`]: a built binary run to completion (the CLI tests' scaffold).
//!
//! A dev-dependency only: test code, where a failure is a broken test or test
//! environment, so it panics with a message that says what to do.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![deny(missing_docs)]

pub mod cli;
pub mod fault_proxy;
pub mod fixtures;
pub mod local;
pub mod moto;
