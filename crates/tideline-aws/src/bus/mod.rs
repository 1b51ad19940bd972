//! The emitter's bus, chosen at start-up from `TIDELINE_BUS_MODE`: the
//! classic EventBridge bus or the enhanced (ordered) bus. One type, so the
//! emitter's handler and state stay generic over a single [`Bus`].

pub mod classic;
pub mod ordered;

use crate::config::{BusMode, EmitterConfig};
use crate::{EventBridgeBus, OrderedEventBus};
use tideline_core::envelope::BusEntry;
use tideline_stages::{Bus, EntryFailure, PortError};

/// The bus the emitter publishes to.
#[derive(Debug, Clone)]
pub enum EmitterBus {
    /// EventBridge `PutEvents` to a custom bus by name.
    Classic(EventBridgeBus),
    /// EventsV2 `PutEvents` to an enhanced custom event bus by ARN.
    Ordered(OrderedEventBus),
}

impl EmitterBus {
    /// Builds the configured adapter; only that service's client is built.
    pub fn from_config(sdk: &aws_config::SdkConfig, config: &EmitterConfig) -> Self {
        match &config.bus_mode {
            BusMode::Classic => Self::Classic(EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(sdk),
                &config.event_bus_name,
            )),
            BusMode::Ordered { bus_arn } => Self::Ordered(OrderedEventBus::new(
                aws_sdk_eventbridgev2::Client::new(sdk),
                bus_arn,
            )),
        }
    }
}

impl Bus for EmitterBus {
    fn max_request_bytes(&self) -> usize {
        match self {
            Self::Classic(bus) => bus.max_request_bytes(),
            Self::Ordered(bus) => bus.max_request_bytes(),
        }
    }

    fn max_entries(&self) -> usize {
        match self {
            Self::Classic(bus) => bus.max_entries(),
            Self::Ordered(bus) => bus.max_entries(),
        }
    }

    async fn put_events(
        &self,
        entries: &[BusEntry],
    ) -> Result<Vec<Result<(), EntryFailure>>, PortError> {
        match self {
            Self::Classic(bus) => bus.put_events(entries).await,
            Self::Ordered(bus) => bus.put_events(entries).await,
        }
    }
}
