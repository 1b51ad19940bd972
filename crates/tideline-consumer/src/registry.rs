//! A typed handler registry: one Lambda, many event types, each with its own
//! payload type, dispatched behind the [`Guard`].
//!
//! A handler key is an event type with an optional prefix
//! (`Trading` + `OrganisationCreated` = `TradingOrganisationCreated`), so
//! several consumers can react to the same event type from one manifest; the
//! Lambda entry point picks the prefix ([`HandlerRegistry::dispatcher`]).
//! [`RegistryBuilder::build`] refuses a duplicate key and names it.
//!
//! The guard runs once per event with a dispatching handler, so the
//! idempotency and per-entity ordering rules apply to every event, whatever
//! its type, and buffered successors of another type are dispatched to their
//! own handler when the gap fills. An event type without a handler is counted
//! and skipped (the checkpoint still advances: it holds the entity's place in
//! the sequence), or refused when the consumer asks for that
//! ([`UnhandledPolicy::Refuse`]).
//!
//! [`HandlerRegistry::event_pattern`] is the EventBridge pattern that matches
//! exactly the registry's event types; the consumer binary prints it
//! (`--print-event-pattern`) for the Terraform `consumer` module, so a rule
//! and its handlers cannot drift apart.

use crate::checkpoint::CheckpointStore;
use crate::envelope::{EventDetail, IntegrationEvent};
use crate::error::ConsumerError;
use crate::guard::{Guard, Outcome};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use tideline_core::{Classify, ErrorClass};
use tracing::{Instrument, debug, info_span};

/// EventBridge `DetailType` is 1–128 characters (AWS-CONTRACTS.md, PutEvents
/// entry); a key naming a longer type could never match an event.
pub const MAX_EVENT_TYPE_CHARS: usize = 128;

/// The command-line flag on which a registry-based consumer binary prints its
/// event pattern and exits ([`HandlerRegistry::print_event_pattern_if_asked`]).
pub const PRINT_PATTERN_FLAG: &str = "--print-event-pattern";

/// The handler's write for an event it leaves alone: nothing but the
/// checkpoint advance. Implemented for every checkpoint store's write type.
pub trait EmptyWrite: Send {
    /// A write that changes nothing.
    fn empty() -> Self;
}

impl<T: Send> EmptyWrite for Vec<T> {
    fn empty() -> Self {
        Vec::new()
    }
}

impl EmptyWrite for crate::memory::MemoryWrite {
    fn empty() -> Self {
        Box::new(|_| {})
    }
}

#[cfg(feature = "sqlite")]
impl EmptyWrite for crate::sqlite::SqliteWrite {
    fn empty() -> Self {
        Box::new(|_| Ok(()))
    }
}

/// Why a registry could not be built or used. Configuration errors: permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Two handlers registered under one key.
    #[error(
        "duplicate handler key {key:?}: registered for payload {first} and again for payload {second}"
    )]
    DuplicateKey {
        /// The key, prefix and event type joined.
        key: String,
        /// The payload type of the first registration.
        first: &'static str,
        /// The payload type of the second.
        second: &'static str,
    },
    /// An event type no EventBridge event can carry.
    #[error("handler key {key:?}: event type {event_type:?} {problem}")]
    InvalidEventType {
        /// The key.
        key: String,
        /// The event type.
        event_type: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The entry point asked for a prefix no handler is registered under.
    #[error("no handler is registered with prefix {prefix:?} (prefixes: {known:?})")]
    UnknownPrefix {
        /// The prefix asked for.
        prefix: String,
        /// The prefixes the registry has.
        known: Vec<String>,
    },
}

impl Classify for RegistryError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// What the dispatcher does with an event type that has no handler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnhandledPolicy {
    /// Count it and advance the checkpoint past it (the default).
    #[default]
    Skip,
    /// Refuse it with the permanent [`ConsumerError::BadEvent`] naming the
    /// type; the checkpoint does not move, so the entity waits for a handler.
    Refuse,
}

type HandlerFuture<W> = Pin<Box<dyn Future<Output = Result<W, ConsumerError>> + Send>>;
type ErasedHandler<W> = Box<dyn Fn(IntegrationEvent<Value>) -> HandlerFuture<W> + Send + Sync>;

struct Registered<W> {
    prefix: String,
    event_type: String,
    payload_type: &'static str,
    schema: schemars::Schema,
    handler: ErasedHandler<W>,
}

impl<W> Registered<W> {
    fn key(&self) -> String {
        format!("{}{}", self.prefix, self.event_type)
    }
}

/// Collects handlers; [`RegistryBuilder::build`] checks the keys.
pub struct RegistryBuilder<W> {
    entries: Vec<Registered<W>>,
}

impl<W> std::fmt::Debug for RegistryBuilder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self.entries.iter().map(Registered::key).collect();
        f.debug_struct("RegistryBuilder")
            .field("keys", &keys)
            .finish()
    }
}

impl<W: Send + 'static> Default for RegistryBuilder<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: Send + 'static> RegistryBuilder<W> {
    /// An empty builder; `W` is the checkpoint store's write type.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Registers `handler` for `event_type` with no prefix.
    pub fn on<T, F, Fut>(self, event_type: &str, handler: F) -> Self
    where
        T: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(IntegrationEvent<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<W, ConsumerError>> + Send + 'static,
    {
        self.on_prefixed("", event_type, handler)
    }

    /// Registers `handler` for `event_type` under `prefix`: the key is
    /// `prefix` + `event_type`. `detail.data` is deserialised into `T`; one
    /// that does not fit is a permanent [`ConsumerError::BadEvent`].
    pub fn on_prefixed<T, F, Fut>(mut self, prefix: &str, event_type: &str, handler: F) -> Self
    where
        T: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(IntegrationEvent<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<W, ConsumerError>> + Send + 'static,
    {
        let payload_type = std::any::type_name::<T>();
        let erased: ErasedHandler<W> = Box::new(
            move |event: IntegrationEvent<Value>| match typed::<T>(event, payload_type) {
                Ok(typed_event) => Box::pin(handler(typed_event)),
                Err(e) => Box::pin(std::future::ready(Err(e))),
            },
        );
        self.entries.push(Registered {
            prefix: prefix.to_string(),
            event_type: event_type.to_string(),
            payload_type,
            schema: schemars::schema_for!(T),
            handler: erased,
        });
        self
    }

    /// The registry, or the first duplicate or unusable key.
    pub fn build(self) -> Result<HandlerRegistry<W>, RegistryError> {
        let mut handlers: BTreeMap<String, Registered<W>> = BTreeMap::new();
        for entry in self.entries {
            let key = entry.key();
            let problem = if entry.event_type.is_empty() {
                Some("is empty")
            } else if entry.event_type.chars().count() > MAX_EVENT_TYPE_CHARS {
                Some("is over EventBridge's 128-character DetailType")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(RegistryError::InvalidEventType {
                    key,
                    event_type: entry.event_type,
                    problem,
                });
            }
            if let Some(first) = handlers.get(&key) {
                return Err(RegistryError::DuplicateKey {
                    key,
                    first: first.payload_type,
                    second: entry.payload_type,
                });
            }
            handlers.insert(key, entry);
        }
        Ok(HandlerRegistry { handlers })
    }
}

/// `detail.data` as the handler's payload type.
fn typed<T: DeserializeOwned>(
    event: IntegrationEvent<Value>,
    payload_type: &'static str,
) -> Result<IntegrationEvent<T>, ConsumerError> {
    let IntegrationEvent {
        version,
        id,
        detail_type,
        source,
        account,
        time,
        region,
        resources,
        detail: EventDetail { metadata, data },
    } = event;
    let data = serde_json::from_value(data).map_err(|e| {
        ConsumerError::BadEvent(format!(
            "detail.data of {detail_type} (entity {}, sequence {}) is not a {payload_type}: {e}",
            metadata.entity_id, metadata.sequence
        ))
    })?;
    Ok(IntegrationEvent {
        version,
        id,
        detail_type,
        source,
        account,
        time,
        region,
        resources,
        detail: EventDetail { metadata, data },
    })
}

/// The handlers of one consumer module, by key.
pub struct HandlerRegistry<W> {
    handlers: BTreeMap<String, Registered<W>>,
}

impl<W> std::fmt::Debug for HandlerRegistry<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerRegistry")
            .field("keys", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One registered handler, as listed by [`HandlerRegistry::handlers`].
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerInfo {
    /// `prefix` + `event_type`.
    pub key: String,
    /// The prefix ("" for none).
    pub prefix: String,
    /// The event type it handles (`detail-type`).
    pub event_type: String,
    /// The Rust payload type.
    pub payload_type: &'static str,
    /// The JSON Schema of the payload type (schemars).
    pub schema: schemars::Schema,
}

impl<W: EmptyWrite + 'static> HandlerRegistry<W> {
    /// Every handler, by key.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.handlers
            .iter()
            .map(|(key, r)| HandlerInfo {
                key: key.clone(),
                prefix: r.prefix.clone(),
                event_type: r.event_type.clone(),
                payload_type: r.payload_type,
                schema: r.schema.clone(),
            })
            .collect()
    }

    /// The prefixes in use ("" for unprefixed handlers).
    pub fn prefixes(&self) -> Vec<String> {
        let mut prefixes: Vec<String> = self.handlers.values().map(|r| r.prefix.clone()).collect();
        prefixes.dedup();
        prefixes.sort();
        prefixes.dedup();
        prefixes
    }

    /// The event types handled under `prefix`, sorted.
    pub fn event_types(&self, prefix: &str) -> Vec<String> {
        self.handlers
            .values()
            .filter(|r| r.prefix == prefix)
            .map(|r| r.event_type.clone())
            .collect()
    }

    /// The EventBridge pattern that matches exactly the event types handled
    /// under `prefix`, from `source`: `{"source": [source], "detail-type": [...]}`.
    pub fn event_pattern(&self, prefix: &str, source: &str) -> Result<Value, RegistryError> {
        let types = self.event_types(prefix);
        if types.is_empty() {
            return Err(self.unknown_prefix(prefix));
        }
        Ok(json!({"source": [source], "detail-type": types}))
    }

    /// When the process was started with [`PRINT_PATTERN_FLAG`], prints the
    /// pattern for `prefix` and `source` on stdout and returns true (the
    /// caller exits instead of starting the Lambda runtime).
    pub fn print_event_pattern_if_asked(
        &self,
        args: impl IntoIterator<Item = String>,
        prefix: &str,
        source: &str,
    ) -> Result<bool, RegistryError> {
        if !args.into_iter().any(|a| a == PRINT_PATTERN_FLAG) {
            return Ok(false);
        }
        println!("{}", self.event_pattern(prefix, source)?);
        Ok(true)
    }

    fn unknown_prefix(&self, prefix: &str) -> RegistryError {
        RegistryError::UnknownPrefix {
            prefix: prefix.to_string(),
            known: self.prefixes(),
        }
    }

    /// The dispatcher of the handlers under `prefix` (the entry point's choice).
    pub fn dispatcher(
        &self,
        prefix: &str,
        unhandled: UnhandledPolicy,
    ) -> Result<Dispatcher<'_, W>, RegistryError> {
        let by_type: BTreeMap<String, &Registered<W>> = self
            .handlers
            .values()
            .filter(|r| r.prefix == prefix)
            .map(|r| (r.event_type.clone(), r))
            .collect();
        if by_type.is_empty() {
            return Err(self.unknown_prefix(prefix));
        }
        Ok(Dispatcher {
            prefix: prefix.to_string(),
            by_type,
            unhandled,
            unhandled_count: AtomicU64::new(0),
        })
    }
}

/// Dispatches events to the handlers of one prefix, each behind the guard.
pub struct Dispatcher<'r, W> {
    prefix: String,
    by_type: BTreeMap<String, &'r Registered<W>>,
    unhandled: UnhandledPolicy,
    unhandled_count: AtomicU64,
}

impl<W> std::fmt::Debug for Dispatcher<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("prefix", &self.prefix)
            .field("event_types", &self.by_type.keys().collect::<Vec<_>>())
            .field("unhandled", &self.unhandled)
            .finish()
    }
}

impl<W: EmptyWrite + 'static> Dispatcher<'_, W> {
    /// Events skipped because no handler takes their type.
    pub fn unhandled_count(&self) -> u64 {
        self.unhandled_count.load(Ordering::Relaxed)
    }

    fn refuse(&self, event_type: &str) -> ConsumerError {
        ConsumerError::BadEvent(format!(
            "no handler for event type {event_type:?} under prefix {:?} (handled: {:?})",
            self.prefix,
            self.by_type.keys().collect::<Vec<_>>()
        ))
    }

    /// Parses one raw EventBridge event and handles it behind `guard`. A
    /// bundle is unpacked and each event is dispatched behind the guard in
    /// order ([`Outcome::Bundle`]); the first error stops the bundle.
    pub async fn handle_json<S>(
        &self,
        guard: &Guard<S>,
        raw: Value,
    ) -> Result<Outcome, ConsumerError>
    where
        S: CheckpointStore<Write = W>,
    {
        let (raws, bundled) = crate::envelope::unpack(raw)?;
        let mut outcomes = Vec::with_capacity(raws.len());
        for raw in raws {
            let event: IntegrationEvent<Value> =
                serde_json::from_value(raw).map_err(|e| ConsumerError::BadEvent(e.to_string()))?;
            outcomes.push(self.handle(guard, event).await?);
        }
        match (bundled, outcomes.pop()) {
            (false, Some(outcome)) => Ok(outcome),
            (_, last) => {
                outcomes.extend(last);
                Ok(Outcome::Bundle { outcomes })
            }
        }
    }

    /// Handles one event behind `guard`: the guard decides whether it is
    /// due, and the handler for its `detail-type` runs when it is.
    pub async fn handle<S>(
        &self,
        guard: &Guard<S>,
        event: IntegrationEvent<Value>,
    ) -> Result<Outcome, ConsumerError>
    where
        S: CheckpointStore<Write = W>,
    {
        let span = info_span!(
            "dispatch",
            consumer = %guard.consumer(),
            prefix = %self.prefix,
            event_type = %event.detail_type,
            entity = %event.entity_id(),
            sequence = event.sequence(),
        );
        // Refused before the guard, so the checkpoint does not move past it.
        if self.unhandled == UnhandledPolicy::Refuse
            && !self.by_type.contains_key(&event.detail_type)
        {
            return Err(self.refuse(&event.detail_type));
        }
        guard
            .handle(event, |e: IntegrationEvent<Value>| self.dispatch(e))
            .instrument(span)
            .await
    }

    /// Runs the handler of the event's type (also for buffered events the
    /// guard drains, which may be of another type than the one delivered).
    fn dispatch(&self, event: IntegrationEvent<Value>) -> HandlerFuture<W> {
        match self.by_type.get(&event.detail_type) {
            Some(registered) => (registered.handler)(event),
            None if self.unhandled == UnhandledPolicy::Refuse => {
                Box::pin(std::future::ready(Err(self.refuse(&event.detail_type))))
            }
            None => {
                self.unhandled_count.fetch_add(1, Ordering::Relaxed);
                debug!(event_type = %event.detail_type, entity = %event.entity_id(), sequence = event.sequence(), "no handler; skipped");
                Box::pin(std::future::ready(Ok(W::empty())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointStore;
    use crate::memory::{MemoryCheckpoints, MemoryWrite};
    use crate::{GapPolicy, Guard};
    use serde::Deserialize;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Deserialize, JsonSchema)]
    struct OrganisationCreated {
        name: String,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    struct OrderPlaced {
        total_cents: u64,
    }

    type Log = Arc<Mutex<Vec<String>>>;

    fn event(event_type: &str, entity: &str, sequence: u64, data: Value) -> Value {
        json!({
            "version": "0", "id": "x", "detail-type": event_type, "source": "tideline",
            "time": "2026-11-23T08:00:00Z",
            "detail": {"metadata": {"event_id": format!("{entity}-{sequence}"), "event_type": event_type,
                "schema_version": 1, "entity_id": entity, "sequence": sequence, "occurred_at": "t",
                "stored_at": "t", "correlation_id": null, "test": false}, "data": data}
        })
    }

    fn registry(log: &Log) -> HandlerRegistry<MemoryWrite> {
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        RegistryBuilder::new()
            .on_prefixed(
                "Trading",
                "OrganisationCreated",
                move |e: IntegrationEvent<OrganisationCreated>| {
                    let log = l1.clone();
                    async move {
                        let line = format!("trading {} {}", e.sequence(), e.detail.data.name);
                        log.lock().unwrap().push(line);
                        Ok(MemoryWrite::empty())
                    }
                },
            )
            .on_prefixed(
                "Inventory",
                "OrganisationCreated",
                move |e: IntegrationEvent<OrganisationCreated>| {
                    let log = l2.clone();
                    async move {
                        let line = format!("inventory {} {}", e.sequence(), e.detail.data.name);
                        log.lock().unwrap().push(line);
                        Ok(MemoryWrite::empty())
                    }
                },
            )
            .on_prefixed(
                "Trading",
                "OrderPlaced",
                move |e: IntegrationEvent<OrderPlaced>| {
                    let log = l3.clone();
                    async move {
                        let line = format!("order {} {}", e.sequence(), e.detail.data.total_cents);
                        log.lock().unwrap().push(line);
                        Ok(MemoryWrite::empty())
                    }
                },
            )
            .build()
            .unwrap()
    }

    #[test]
    fn duplicate_key_is_refused_and_named() {
        let noop = |_: IntegrationEvent<OrderPlaced>| async { Ok(Vec::<u8>::new()) };
        let err = RegistryBuilder::new()
            .on_prefixed("Trading", "OrderPlaced", noop)
            .on_prefixed("Inventory", "OrderPlaced", noop)
            .on_prefixed("Trading", "OrderPlaced", noop)
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, RegistryError::DuplicateKey { key, .. } if key == "TradingOrderPlaced"),
            "{err}"
        );
        assert!(err.to_string().contains("\"TradingOrderPlaced\""), "{err}");
        // Prefix and type joined: "Trading"+"OrderPlaced" is "TradingOrder"+"Placed".
        let err = RegistryBuilder::new()
            .on_prefixed("Trading", "OrderPlaced", noop)
            .on_prefixed("TradingOrder", "Placed", noop)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("TradingOrderPlaced"), "{err}");
        let err = RegistryBuilder::new().on("", noop).build().unwrap_err();
        assert!(
            matches!(err, RegistryError::InvalidEventType { .. }),
            "{err}"
        );
    }

    #[test]
    fn pattern_matches_exactly_the_prefix_types() {
        let log = Log::default();
        let registry = registry(&log);
        let pattern = registry.event_pattern("Trading", "tideline").unwrap();
        assert_eq!(
            pattern,
            json!({"source": ["tideline"], "detail-type": ["OrderPlaced", "OrganisationCreated"]})
        );
        assert_eq!(
            registry.event_pattern("Inventory", "shop").unwrap(),
            json!({"source": ["shop"], "detail-type": ["OrganisationCreated"]})
        );
        let err = registry.event_pattern("Billing", "tideline").unwrap_err();
        assert!(err.to_string().contains("\"Billing\""), "{err}");
        // The pattern engine (EventBridge semantics) agrees: it matches the
        // handled types from the source and nothing else.
        let compiled = tideline_pattern::Pattern::from_value(&pattern).unwrap();
        assert!(compiled.matches(&event("OrderPlaced", "o", 1, json!({}))));
        assert!(compiled.matches(&event("OrganisationCreated", "o", 1, json!({}))));
        assert!(!compiled.matches(&event("OrderShipped", "o", 1, json!({}))));
        let mut other_source = event("OrderPlaced", "o", 1, json!({}));
        other_source["source"] = json!("elsewhere");
        assert!(!compiled.matches(&other_source));
    }

    #[tokio::test]
    async fn dispatches_by_type_behind_the_guard_per_prefix() {
        let log = Log::default();
        let registry = registry(&log);
        let trading = registry
            .dispatcher("Trading", UnhandledPolicy::Skip)
            .unwrap();
        let inventory = registry
            .dispatcher("Inventory", UnhandledPolicy::Skip)
            .unwrap();
        let guard_t = Guard::new(MemoryCheckpoints::default(), "trading");
        let guard_i = Guard::new(MemoryCheckpoints::default(), "inventory");
        let org = event("OrganisationCreated", "org-1", 1, json!({"name": "Acme"}));
        let order = event("OrderPlaced", "org-1", 2, json!({"total_cents": 42}));
        let shipped = event("OrderShipped", "org-1", 3, json!({}));
        for raw in [&org, &order, &order, &shipped] {
            trading.handle_json(&guard_t, raw.clone()).await.unwrap();
        }
        inventory.handle_json(&guard_i, org.clone()).await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec!["trading 1 Acme", "order 2 42", "inventory 1 Acme"]
        );
        assert_eq!(guard_t.counts().duplicate, 1);
        assert_eq!(trading.unhandled_count(), 1);
        // The unhandled event held its place: sequence 4 is next, not a gap.
        let next = event("OrderPlaced", "org-1", 4, json!({"total_cents": 7}));
        assert!(matches!(
            trading.handle_json(&guard_t, next).await.unwrap(),
            Outcome::Applied { sequence: 4, .. }
        ));
    }

    #[tokio::test]
    async fn refuse_policy_and_bad_payload_are_permanent() {
        let log = Log::default();
        let registry = registry(&log);
        let strict = registry
            .dispatcher("Trading", UnhandledPolicy::Refuse)
            .unwrap();
        let guard = Guard::new(MemoryCheckpoints::default(), "strict");
        let err = strict
            .handle_json(&guard, event("OrderShipped", "o", 1, json!({})))
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("OrderShipped"), "{err}");
        assert_eq!(
            guard
                .store()
                .load("strict", "o")
                .await
                .unwrap()
                .last_sequence,
            0
        );
        let err = strict
            .handle_json(
                &guard,
                event("OrderPlaced", "o", 1, json!({"total_cents": "x"})),
            )
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("OrderPlaced"), "{err}");
        assert!(
            registry
                .dispatcher("Billing", UnhandledPolicy::Skip)
                .is_err()
        );
    }

    #[tokio::test]
    async fn buffered_successor_of_another_type_goes_to_its_own_handler() {
        let log = Log::default();
        let registry = registry(&log);
        let trading = registry
            .dispatcher("Trading", UnhandledPolicy::Skip)
            .unwrap();
        let guard =
            Guard::new(MemoryCheckpoints::default(), "trading").with_gap_policy(GapPolicy::Buffer);
        let order = event("OrderPlaced", "org-2", 2, json!({"total_cents": 5}));
        assert_eq!(
            trading.handle_json(&guard, order).await.unwrap(),
            Outcome::Buffered
        );
        let org = event("OrganisationCreated", "org-2", 1, json!({"name": "B"}));
        trading.handle_json(&guard, org).await.unwrap();
        assert_eq!(*log.lock().unwrap(), vec!["trading 1 B", "order 2 5"]);
    }
}
