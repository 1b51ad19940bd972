//! Each Lambda's configuration, read from environment variables.
//!
//! The variables are the contract in `crates/tideline-lambdas/env-contract.json`
//! (Terraform sets exactly those; a test checks the loaders below read exactly
//! those). A missing or malformed variable fails at start-up with an error that
//! names it (INVARIANTS.md #8). Loaders take a lookup function, so tests never
//! mutate the process environment.

use tideline_core::envelope::DEFAULT_SOURCE;
use tideline_core::ingest::{FieldMap, IngestConfig};

/// The queue URL (transformer).
pub const QUEUE_URL: &str = "TIDELINE_QUEUE_URL";
/// The table name (event-storer, query-api).
pub const TABLE_NAME: &str = "TIDELINE_TABLE_NAME";
/// The bus name (event-emitter).
pub const EVENT_BUS_NAME: &str = "TIDELINE_EVENT_BUS_NAME";
/// Which bus the emitter publishes to: `classic` (default, EventBridge
/// PutEvents to [`EVENT_BUS_NAME`]) or `ordered` (the enhanced custom event
/// bus at [`ORDERED_BUS_ARN`], ordered per entity; decision 0013).
pub const BUS_MODE: &str = "TIDELINE_BUS_MODE";
/// ARN of the enhanced custom event bus; required when [`BUS_MODE`] is `ordered`.
pub const ORDERED_BUS_ARN: &str = "TIDELINE_ORDERED_BUS_ARN";
/// Most events the emitter packs into one bus entry (bundled emission,
/// decision 0014); optional, unset or `1` = off.
pub const BUNDLE_MAX_EVENTS: &str = "TIDELINE_BUNDLE_MAX_EVENTS";
/// `source` of integration events; optional, default `tideline`.
pub const EVENT_SOURCE: &str = "TIDELINE_EVENT_SOURCE";
/// Largest accepted record in bytes (transformer); optional.
pub const MAX_RECORD_BYTES: &str = "TIDELINE_MAX_RECORD_BYTES";
/// Retention of rejected records in days (default: the events' retention).
pub const REJECTED_TTL_DAYS: &str = "TIDELINE_REJECTED_TTL_DAYS";
/// The queue's `MaximumMessageSize` (Terraform `max_message_size`), so ingest
/// refuses what the queue would.
pub const MAX_MESSAGE_BYTES: &str = "TIDELINE_MAX_MESSAGE_BYTES";
/// Field map JSON (transformer); optional.
pub const FIELD_MAP: &str = "TIDELINE_FIELD_MAP";
/// Path of a schema registry file (`schemas/registry.json` layout) checked at
/// ingest (transformer); optional: unset, `data` is not checked.
pub const SCHEMA_REGISTRY: &str = "TIDELINE_SCHEMA_REGISTRY";
/// The data lake bucket (command-api): the events a command appends are
/// written there, as Firehose writes ingested ones (decision 0020).
pub const LAKE_BUCKET: &str = "TIDELINE_LAKE_BUCKET";
/// Retention of event items in days, written as the TTL attribute (event-storer); optional.
pub const EVENT_TTL_DAYS: &str = "TIDELINE_EVENT_TTL_DAYS";
/// Most `SendMessageBatch` calls the transformer has in flight at once
/// (transformer); optional, default [`DEFAULT_MAX_CONCURRENT_SENDS`]. Calls in
/// flight together never carry the same entity (decision 0022).
pub const MAX_CONCURRENT_SENDS: &str = "TIDELINE_MAX_CONCURRENT_SENDS";
/// Most entities of a queue batch the storer appends at once (event-storer);
/// optional, default [`DEFAULT_MAX_CONCURRENT_ENTITIES`]. Each entity's
/// messages stay one after another (decision 0022).
pub const MAX_CONCURRENT_ENTITIES: &str = "TIDELINE_MAX_CONCURRENT_ENTITIES";
/// A FIFO queue's Lambda batch holds at most 10 messages, so 10 appends every
/// entity of a batch at once.
pub const DEFAULT_MAX_CONCURRENT_ENTITIES: usize = 10;
/// The transform stage's default, also local mode's.
pub use tideline_stages::transform::DEFAULT_MAX_CONCURRENT_SENDS;
/// Log filter, read by [`crate::logging::init`]; optional everywhere.
pub const RUST_LOG: &str = "RUST_LOG";

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("environment variable {variable} is required but not set")]
    Missing {
        /// Its name.
        variable: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("environment variable {variable} is invalid: {reason}")]
    Invalid {
        /// Its name.
        variable: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Where variables come from: the process environment, or a map in tests.
pub trait Env {
    /// The variable's value; `None` when unset or empty.
    fn get(&self, name: &'static str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &'static str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<F: Fn(&'static str) -> Option<String>> Env for F {
    fn get(&self, name: &'static str) -> Option<String> {
        self(name).filter(|v| !v.is_empty())
    }
}

fn required(env: &impl Env, variable: &'static str) -> Result<String, ConfigError> {
    env.get(variable).ok_or(ConfigError::Missing { variable })
}

fn parse<T: std::str::FromStr>(
    env: &impl Env,
    variable: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    env.get(variable)
        .map(|v| {
            v.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                variable,
                reason: format!("{v:?}: {e}"),
            })
        })
        .transpose()
}

/// A count that must be at least 1, when set.
fn at_least_one(env: &impl Env, variable: &'static str) -> Result<Option<usize>, ConfigError> {
    match parse::<usize>(env, variable)? {
        Some(0) => Err(ConfigError::Invalid {
            variable,
            reason: "must be at least 1".into(),
        }),
        n => Ok(n),
    }
}

/// `transformer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformerConfig {
    /// FIFO queue URL.
    pub queue_url: String,
    /// The ingest contract settings, same as local mode's.
    pub ingest: IngestConfig,
    /// `TIDELINE_SCHEMA_REGISTRY`: the registry file whose schemas `data`
    /// must match (loaded by the binary, which sets `ingest.data_validator`).
    pub schema_registry: Option<std::path::PathBuf>,
    /// `TIDELINE_MAX_CONCURRENT_SENDS`.
    pub max_concurrent_sends: usize,
}

impl TransformerConfig {
    /// Reads the configuration.
    pub fn load(env: &impl Env) -> Result<Self, ConfigError> {
        let queue_url = required(env, QUEUE_URL)?;
        let mut ingest = IngestConfig::default();
        if let Some(n) = parse::<usize>(env, MAX_RECORD_BYTES)? {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    variable: MAX_RECORD_BYTES,
                    reason: "must be at least 1".into(),
                });
            }
            ingest.limits.record_bytes = n;
        }
        if let Some(n) = parse::<usize>(env, MAX_MESSAGE_BYTES)? {
            ingest.limits.sqs_message_bytes = n;
        }
        ingest
            .limits
            .validate()
            .map_err(|reason| ConfigError::Invalid {
                variable: if ingest.limits.record_bytes
                    > tideline_core::limits::FIREHOSE_RECORD_BYTES
                {
                    MAX_RECORD_BYTES
                } else {
                    MAX_MESSAGE_BYTES
                },
                reason,
            })?;
        if let Some(text) = env.get(FIELD_MAP) {
            ingest.fields = FieldMap::from_json(&text).map_err(|reason| ConfigError::Invalid {
                variable: FIELD_MAP,
                reason,
            })?;
        }
        let schema_registry = env
            .get(SCHEMA_REGISTRY)
            .filter(|p| !p.trim().is_empty())
            .map(std::path::PathBuf::from);
        Ok(Self {
            queue_url,
            ingest,
            schema_registry,
            max_concurrent_sends: at_least_one(env, MAX_CONCURRENT_SENDS)?
                .unwrap_or(DEFAULT_MAX_CONCURRENT_SENDS),
        })
    }
}

/// `event-storer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorerConfig {
    /// Table name.
    pub table_name: String,
    /// Retention: `expires_at` = stored_at + this many days; none when unset.
    pub ttl_days: Option<u32>,
    /// Retention of rejected records; the events' when unset.
    pub rejected_ttl_days: Option<u32>,
    /// `TIDELINE_MAX_CONCURRENT_ENTITIES`.
    pub max_concurrent_entities: usize,
}

impl StorerConfig {
    /// Reads the configuration.
    pub fn load(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(env, TABLE_NAME)?,
            ttl_days: parse::<u32>(env, EVENT_TTL_DAYS)?.filter(|d| *d > 0),
            rejected_ttl_days: parse::<u32>(env, REJECTED_TTL_DAYS)?.filter(|d| *d > 0),
            max_concurrent_entities: at_least_one(env, MAX_CONCURRENT_ENTITIES)?
                .unwrap_or(DEFAULT_MAX_CONCURRENT_ENTITIES),
        })
    }

    /// The retention of rejected records as a duration.
    pub fn rejected_ttl(&self) -> Option<chrono::Duration> {
        self.rejected_ttl_days
            .map(|d| chrono::Duration::days(i64::from(d)))
    }

    /// The retention as a duration.
    pub fn ttl(&self) -> Option<chrono::Duration> {
        self.ttl_days.map(|d| chrono::Duration::days(i64::from(d)))
    }
}

/// Where the emitter publishes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BusMode {
    /// EventBridge PutEvents to the custom bus named by [`EVENT_BUS_NAME`];
    /// consumers restore order from `sequence`.
    #[default]
    Classic,
    /// The enhanced custom event bus (EventsV2): `EventGroupId` = entity id,
    /// delivered in publish order to FIFO subscribers.
    Ordered {
        /// Its ARN (EventsV2 PutEvents names the bus by ARN).
        bus_arn: String,
    },
}

/// `event-emitter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitterConfig {
    /// Bus name.
    pub event_bus_name: String,
    /// `source` of integration events.
    pub source: String,
    /// Classic or ordered bus.
    pub bus_mode: BusMode,
    /// Most events per bus entry; 1 = no bundling (the default).
    pub bundle_max_events: usize,
}

fn bus_mode(env: &impl Env) -> Result<BusMode, ConfigError> {
    // Read both always, so a stray ARN with the classic mode is still checked.
    let arn = env.get(ORDERED_BUS_ARN);
    if let Some(arn) = arn.as_ref().filter(|a| !a.starts_with("arn:")) {
        return Err(ConfigError::Invalid {
            variable: ORDERED_BUS_ARN,
            reason: format!("{arn:?} is not an ARN (EventsV2 PutEvents takes the bus ARN)"),
        });
    }
    match env.get(BUS_MODE).as_deref().map(str::trim) {
        None | Some("classic") => Ok(BusMode::Classic),
        Some("ordered") => {
            arn.map(|bus_arn| BusMode::Ordered { bus_arn })
                .ok_or(ConfigError::Invalid {
                    variable: ORDERED_BUS_ARN,
                    reason: format!("is required when {BUS_MODE}=ordered"),
                })
        }
        Some(other) => Err(ConfigError::Invalid {
            variable: BUS_MODE,
            reason: format!("{other:?}: expected \"classic\" or \"ordered\""),
        }),
    }
}

impl EmitterConfig {
    /// Reads the configuration.
    pub fn load(env: &impl Env) -> Result<Self, ConfigError> {
        let source = env
            .get(EVENT_SOURCE)
            .unwrap_or_else(|| DEFAULT_SOURCE.into());
        // PutEvents takes a Source of 1–256 characters: a longer one would
        // fail every publish, so refuse it at start-up, naming the variable.
        let chars = source.chars().count();
        if chars == 0 || chars > tideline_core::limits::SOURCE_CHARS {
            return Err(ConfigError::Invalid {
                variable: EVENT_SOURCE,
                reason: format!(
                    "is {chars} characters; PutEvents Source takes 1–{}",
                    tideline_core::limits::SOURCE_CHARS
                ),
            });
        }
        let bundle_max_events = parse::<usize>(env, BUNDLE_MAX_EVENTS)?.unwrap_or(1);
        if bundle_max_events == 0 {
            return Err(ConfigError::Invalid {
                variable: BUNDLE_MAX_EVENTS,
                reason: "must be at least 1 (1 turns bundling off)".into(),
            });
        }
        Ok(Self {
            event_bus_name: required(env, EVENT_BUS_NAME)?,
            source,
            bus_mode: bus_mode(env)?,
            bundle_max_events,
        })
    }

    /// The emit stage's bundling, `None` when off. On the ordered bus a
    /// bundle holds one entity, because its `EventGroupId` is one entity.
    pub fn bundle(&self) -> Option<tideline_core::bundle::BundleConfig> {
        tideline_core::bundle::BundleConfig::from_max_events(self.bundle_max_events).map(|b| {
            tideline_core::bundle::BundleConfig {
                one_entity_per_bundle: matches!(self.bus_mode, BusMode::Ordered { .. }),
                ..b
            }
        })
    }
}

/// `command-api`: the command side's appends (`POST /entities/{entity_id}/events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandApiConfig {
    /// Table name.
    pub table_name: String,
    /// `TIDELINE_LAKE_BUCKET`: the data lake the appended events are written
    /// to (its root: Firehose writes under `events/` at the bucket's root).
    pub lake_bucket: String,
    /// The storer's retention: appended events expire as stored ones do.
    pub ttl_days: Option<u32>,
    /// Ingest's limits (the queue's message size among them), so a command's
    /// events are admitted as ingested records are.
    pub ingest: IngestConfig,
    /// `TIDELINE_SCHEMA_REGISTRY`: ingest's schema registry (loaded by the binary).
    pub schema_registry: Option<std::path::PathBuf>,
}

impl CommandApiConfig {
    /// Reads the configuration.
    pub fn load(env: &impl Env) -> Result<Self, ConfigError> {
        let mut ingest = IngestConfig::default();
        if let Some(n) = parse::<usize>(env, MAX_MESSAGE_BYTES)? {
            ingest.limits.sqs_message_bytes = n;
        }
        ingest
            .limits
            .validate()
            .map_err(|reason| ConfigError::Invalid {
                variable: MAX_MESSAGE_BYTES,
                reason,
            })?;
        Ok(Self {
            table_name: required(env, TABLE_NAME)?,
            lake_bucket: required(env, LAKE_BUCKET)?,
            ttl_days: parse::<u32>(env, EVENT_TTL_DAYS)?.filter(|d| *d > 0),
            ingest,
            schema_registry: env
                .get(SCHEMA_REGISTRY)
                .filter(|p| !p.trim().is_empty())
                .map(std::path::PathBuf::from),
        })
    }

    /// The retention as a duration.
    pub fn ttl(&self) -> Option<chrono::Duration> {
        self.ttl_days.map(|d| chrono::Duration::days(i64::from(d)))
    }
}

/// `query-api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryConfig {
    /// Table name.
    pub table_name: String,
    /// `source` the emitter stamps; accepted (the contract lists it) and
    /// logged, so an operator can tie the API to its bus. Responses carry
    /// `detail` objects only, which have no source.
    pub source: String,
}

impl QueryConfig {
    /// Reads the configuration.
    pub fn load(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(env, TABLE_NAME)?,
            source: env
                .get(EVENT_SOURCE)
                .unwrap_or_else(|| DEFAULT_SOURCE.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&'static str, &str)]) -> impl Fn(&'static str) -> Option<String> {
        let map: HashMap<&'static str, String> =
            pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn missing_variable_is_named() {
        let err = TransformerConfig::load(&env(&[])).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                variable: QUEUE_URL
            }
        );
        assert!(err.to_string().contains("TIDELINE_QUEUE_URL"));
        let err = StorerConfig::load(&env(&[(TABLE_NAME, "")])).unwrap_err();
        assert!(err.to_string().contains("TIDELINE_TABLE_NAME"));
        let err = EmitterConfig::load(&env(&[])).unwrap_err();
        assert!(err.to_string().contains("TIDELINE_EVENT_BUS_NAME"));
    }

    #[test]
    fn invalid_values_are_named() {
        let err = TransformerConfig::load(&env(&[(QUEUE_URL, "q"), (MAX_RECORD_BYTES, "lots")]))
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                variable: MAX_RECORD_BYTES,
                ..
            }
        ));
        let err = TransformerConfig::load(&env(&[(QUEUE_URL, "q"), (FIELD_MAP, "{\"id\":\"x\"}")]))
            .unwrap_err();
        assert!(err.to_string().contains("TIDELINE_FIELD_MAP"), "{err}");
        let err =
            StorerConfig::load(&env(&[(TABLE_NAME, "t"), (EVENT_TTL_DAYS, "-1")])).unwrap_err();
        assert!(err.to_string().contains("TIDELINE_EVENT_TTL_DAYS"));
    }

    #[test]
    fn defaults() {
        let c = EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b")])).unwrap();
        assert_eq!(c.source, "tideline");
        let c = StorerConfig::load(&env(&[(TABLE_NAME, "t"), (EVENT_TTL_DAYS, "30")])).unwrap();
        assert_eq!(c.ttl(), Some(chrono::Duration::days(30)));
    }

    #[test]
    fn bundling_is_off_unless_asked_and_per_entity_on_the_ordered_bus() {
        let c = EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b")])).unwrap();
        assert_eq!(c.bundle(), None);
        let c =
            EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b"), (BUNDLE_MAX_EVENTS, "1")])).unwrap();
        assert_eq!(c.bundle(), None);
        let c =
            EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b"), (BUNDLE_MAX_EVENTS, "20")])).unwrap();
        let bundle = c.bundle().unwrap();
        assert_eq!(
            (bundle.max_events, bundle.one_entity_per_bundle),
            (20, false)
        );
        let arn = "arn:aws:events:eu-west-1:123456789012:event-busv2/b/abcdefghij0123456789abcde";
        let c = EmitterConfig::load(&env(&[
            (EVENT_BUS_NAME, "b"),
            (BUNDLE_MAX_EVENTS, "20"),
            (BUS_MODE, "ordered"),
            (ORDERED_BUS_ARN, arn),
        ]))
        .unwrap();
        assert!(c.bundle().unwrap().one_entity_per_bundle);
        let err = EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b"), (BUNDLE_MAX_EVENTS, "0")]))
            .unwrap_err();
        assert!(err.to_string().contains(BUNDLE_MAX_EVENTS), "{err}");
    }

    #[test]
    fn bus_mode_ordered_needs_the_bus_arn() {
        let arn = "arn:aws:events:eu-west-1:123456789012:event-busv2/tideline-ordered/abcdefghij0123456789abcde";
        let c = EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b")])).unwrap();
        assert_eq!(c.bus_mode, BusMode::Classic);
        let c = EmitterConfig::load(&env(&[
            (EVENT_BUS_NAME, "b"),
            (BUS_MODE, "ordered"),
            (ORDERED_BUS_ARN, arn),
        ]))
        .unwrap();
        assert_eq!(
            c.bus_mode,
            BusMode::Ordered {
                bus_arn: arn.into()
            }
        );
        let err =
            EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b"), (BUS_MODE, "ordered")])).unwrap_err();
        assert!(err.to_string().contains(ORDERED_BUS_ARN), "{err}");
        let err =
            EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b"), (BUS_MODE, "fifo")])).unwrap_err();
        assert!(err.to_string().contains(BUS_MODE), "{err}");
        let err = EmitterConfig::load(&env(&[
            (EVENT_BUS_NAME, "b"),
            (BUS_MODE, "ordered"),
            (ORDERED_BUS_ARN, "tideline-ordered"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains(ORDERED_BUS_ARN), "{err}");
    }

    #[test]
    fn event_source_over_put_events_limit_is_refused() {
        let long = "s".repeat(257);
        let err =
            EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b"), (EVENT_SOURCE, &long)])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                variable: EVENT_SOURCE,
                ..
            }
        ));
        let ok = "s".repeat(256);
        assert!(EmitterConfig::load(&env(&[(EVENT_BUS_NAME, "b"), (EVENT_SOURCE, &ok)])).is_ok());
    }
}
