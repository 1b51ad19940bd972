//! `tideline replay --aws`: the replay stage ([`tideline_stages::replay`])
//! over the DynamoDB store, the EventBridge bus, and the S3 data lake as the
//! index of a window's entities. No `Scan`: an entity's events are read by
//! a `Query` on its key (a `seq` range) or on its `sk` range (a window), and
//! the entities of a window come from the lake (decision record 0017).

use crate::lake::S3Lake;
use crate::{DynamoStore, EventBridgeBus};
use tideline_core::replay::Selection;
use tideline_stages::replay::{LakeIndex, ReplayConfig, ReplayError, ReplayReport, replay};

/// The replay's adapters on AWS.
#[derive(Debug, Clone)]
pub struct AwsReplay {
    store: DynamoStore,
    bus: EventBridgeBus,
    /// The window's entities; `None` when no lake was given (a by-entity
    /// replay needs none).
    index: Option<LakeIndex<S3Lake>>,
}

impl AwsReplay {
    /// A replay over these adapters.
    pub fn new(store: DynamoStore, bus: EventBridgeBus, lake: Option<S3Lake>) -> Self {
        Self {
            store,
            bus,
            index: lake.map(LakeIndex::new),
        }
    }

    /// Adapters for `table`, bus `bus` and, for windows, the lake at
    /// `s3://bucket/prefix`, with clients from the environment.
    pub async fn connect(table: &str, bus: &str, lake: Option<(&str, &str)>) -> Self {
        let sdk = crate::load_sdk_config().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus);
        let lake = match lake {
            Some((bucket, prefix)) => Some(S3Lake::connect(bucket, prefix).await),
            None => None,
        };
        Self::new(store, bus, lake)
    }

    /// Whether a window can be replayed: the lake is its index.
    pub fn has_index(&self) -> bool {
        self.index.is_some()
    }

    /// Runs the replay.
    pub async fn run(
        &self,
        config: &ReplayConfig,
        selection: &Selection,
    ) -> Result<ReplayReport, ReplayError> {
        replay(&self.store, &self.index, &self.bus, config, selection).await
    }
}
