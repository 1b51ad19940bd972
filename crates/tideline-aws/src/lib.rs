//! Tideline's AWS adapters: the ports of `tideline-stages`, implemented with
//! the AWS SDK for Rust, and the decoding of Lambda event payloads into port
//! types.
//!
//! - [`SqsQueue`]: the FIFO queue (`SendMessageBatch`, per-entry results);
//! - [`DynamoStore`]: the event store and the rejected-records sink
//!   (`TransactWriteItems` executing the core's append plan, paged `Query`);
//! - [`EventBridgeBus`]: the bus (`PutEvents`, per-entry `ErrorCode`);
//! - [`OrderedEventBus`]: the optional ordered bus, EventBridge's enhanced
//!   custom event bus (`EventGroupId` = entity id, `DeduplicationId` from the
//!   event id); [`EmitterBus`] picks one of the two from the emitter's config;
//! - [`feed`]: DynamoDB Streams records to [`tideline_stages::Change`];
//! - [`config`]: the environment contract of each Lambda;
//! - [`error`]: SDK errors classed retryable or permanent.
//!
//! With the `realtime` feature, `realtime`: the realtime relay's connections
//! table (Query by topic and entity, never Scan) and `PostToConnection`.
//!
//! With the `ops` feature, the operator side that `tideline` runs (the
//! Lambdas need none of it):
//! - `lake`: the S3 data lake read back ([`tideline_stages::LakeReader`]);
//! - `replay`: the replay stage's adapters on AWS (no table `Scan`);
//! - `tail`: a bus tailed through a temporary queue and rule;
//! - `ops`: the clients those commands build from the environment.
//!
//! The adapters translate and classify; they hold no business rules
//! (INVARIANTS.md #7). De-duplication, `seq` assignment and the batch contracts
//! live in `tideline-core` and the stage functions.

#![deny(missing_docs)]

pub mod bus;
pub mod config;
pub mod error;
pub mod feed;
#[cfg(feature = "lake")]
pub mod lake;
pub mod logging;
#[cfg(feature = "ops")]
pub mod ops;
pub mod queue;
#[cfg(feature = "realtime")]
pub mod realtime;
#[cfg(feature = "ops")]
pub mod replay;
pub mod store;
#[cfg(feature = "ops")]
pub mod tail;

pub use bus::EmitterBus;
pub use bus::classic::EventBridgeBus;
pub use bus::ordered::OrderedEventBus;
pub use config::ConfigError;
pub use queue::SqsQueue;
pub use store::DynamoStore;

/// Loads the SDK configuration the standard way (environment, profile,
/// container/instance credentials). `AWS_ENDPOINT_URL` and the per-service
/// variants are honoured, which is how tests point every client at moto.
/// Call it once per process and build every client from the result.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
