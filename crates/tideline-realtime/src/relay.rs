//! The relay: an integration event from the bus, posted to every connection
//! subscribed to its topic and entity (the AWS side of the fan-out; the
//! relay Lambda is this function over the DynamoDB and API Gateway
//! Management API adapters).
//!
//! - A bundle is unpacked with the bundle reader; its events are relayed in
//!   order, one after the other, so a connection receives an entity's events
//!   in `sequence` order.
//! - One event's posts run concurrently, at most `concurrency` at a time
//!   (API Gateway's Management API throttles per account; an unbounded
//!   fan-out to thousands of connections would only earn 429s).
//! - A connection that answers `GoneException` has disconnected without
//!   `$disconnect` reaching us: its items are deleted, and it is not an error.
//! - A post that fails retryably is retried, with backoff and jitter, for the
//!   failed connections only; connections already served are not posted
//!   again. What still fails after the last attempt fails the invocation
//!   (EventBridge retries the event; subscribers drop the duplicates by
//!   `sequence`).

use crate::outgoing::{Outgoing, Unreadable, from_integration_event};
use futures::StreamExt;
use std::future::Future;
use tideline_core::retry::RetryPolicy;
use tideline_core::{Classify, ErrorClass};
use tideline_stages::PortError;
use tracing::{info, warn};

/// Where the subscribers of a (topic, entity) are kept: the connections table.
pub trait Subscribers: Send + Sync {
    /// The connections subscribed to `topic` for `entity`, or to every
    /// entity of `topic`, every page read.
    fn connections_for(
        &self,
        topic: &str,
        entity: &str,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;

    /// Deletes a connection and its subscriptions (it is gone).
    fn forget(&self, connection_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Why a post failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PostError {
    /// The connection no longer exists (API Gateway's `GoneException`, 410).
    #[error("connection gone")]
    Gone,
    /// Anything else, classed.
    #[error(transparent)]
    Failed(#[from] PortError),
}

/// Posts a message to one connection: API Gateway's `PostToConnection`.
pub trait ConnectionPoster: Send + Sync {
    /// Sends `data` to `connection_id`.
    fn post(
        &self,
        connection_id: &str,
        data: &str,
    ) -> impl Future<Output = Result<(), PostError>> + Send;
}

/// The relay's settings.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// Posts in flight at once, per event.
    pub concurrency: usize,
    /// Retries of failed posts (failed connections only).
    pub retry: RetryPolicy,
    /// Largest `event` message; larger events go as a `reference`.
    pub max_message_bytes: usize,
}

/// What one relay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Events relayed (a bundle counts its events).
    pub events: usize,
    /// Posts that succeeded.
    pub posted: usize,
    /// Connections found gone and deleted.
    pub gone: usize,
    /// Posts that succeeded on a retry.
    pub retried: usize,
}

/// Why a relay failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The event cannot be read: retrying gives the same answer.
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    /// The connections table could not be read or cleaned.
    #[error("connections table: {0}")]
    Subscribers(PortError),
    /// Posts still failing after the last attempt.
    #[error(
        "{failed} of the posts of event {entity_id}#{sequence} failed after {attempts} attempts; first: {first}"
    )]
    Posts {
        /// The event's entity.
        entity_id: String,
        /// The event's sequence.
        sequence: u64,
        /// How many connections were not served.
        failed: usize,
        /// Attempts made.
        attempts: u32,
        /// The first failure.
        first: PortError,
        /// Whether every failure was retryable.
        retryable: bool,
    },
}

impl Classify for RelayError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unreadable(_) => ErrorClass::Permanent,
            Self::Subscribers(e) => e.class,
            Self::Posts { retryable, .. } => ErrorClass::retryable_if(*retryable),
        }
    }
}

/// Relays one integration event (JSON text as the bus delivers it).
pub async fn relay<S: Subscribers, P: ConnectionPoster>(
    subscribers: &S,
    poster: &P,
    config: &RelayConfig,
    event_json: &str,
) -> Result<RelayReport, RelayError> {
    let events = from_integration_event(event_json, config.max_message_bytes)?;
    let mut report = RelayReport::default();
    // In order: a bundle's events for one entity reach each connection in sequence order.
    for event in &events {
        relay_one(subscribers, poster, config, event, &mut report).await?;
        report.events += 1;
    }
    Ok(report)
}

async fn relay_one<S: Subscribers, P: ConnectionPoster>(
    subscribers: &S,
    poster: &P,
    config: &RelayConfig,
    event: &Outgoing,
    report: &mut RelayReport,
) -> Result<(), RelayError> {
    let mut pending = subscribers
        .connections_for(&event.topic, &event.entity_id)
        .await
        .map_err(RelayError::Subscribers)?;
    pending.sort();
    pending.dedup();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let results: Vec<(String, Result<(), PostError>)> =
            futures::stream::iter(pending.drain(..))
                .map(|id| async move {
                    let r = poster.post(&id, &event.text).await;
                    (id, r)
                })
                .buffer_unordered(config.concurrency.max(1))
                .collect()
                .await;
        let mut failures: Vec<(String, PortError)> = Vec::new();
        for (id, result) in results {
            match result {
                Ok(()) => {
                    report.posted += 1;
                    if attempt > 1 {
                        report.retried += 1;
                    }
                }
                Err(PostError::Gone) => {
                    report.gone += 1;
                    info!(connection_id = %id, "realtime relay: connection gone; deleting it");
                    subscribers
                        .forget(&id)
                        .await
                        .map_err(RelayError::Subscribers)?;
                }
                Err(PostError::Failed(e)) => failures.push((id, e)),
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        let retryable = failures.iter().all(|(_, e)| e.is_retryable());
        if !retryable || attempt >= config.retry.max_attempts.max(1) {
            let failed = failures.len();
            let first = failures.swap_remove(0).1;
            return Err(RelayError::Posts {
                entity_id: event.entity_id.clone(),
                sequence: event.sequence,
                failed,
                attempts: attempt,
                first,
                retryable,
            });
        }
        warn!(entity_id = %event.entity_id, sequence = event.sequence, failed = failures.len(), attempt, "realtime relay: retrying the failed posts only");
        tokio::time::sleep(config.retry.jittered_delay(attempt)).await;
        pending = failures.into_iter().map(|(id, _)| id).collect();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[derive(Default)]
    struct Table {
        subs: Mutex<HashMap<(String, String), Vec<String>>>,
        forgotten: Mutex<Vec<String>>,
    }

    impl Subscribers for Table {
        async fn connections_for(
            &self,
            topic: &str,
            entity: &str,
        ) -> Result<Vec<String>, PortError> {
            let subs = self.subs.lock().unwrap();
            let mut out = subs
                .get(&(topic.to_string(), entity.to_string()))
                .cloned()
                .unwrap_or_default();
            out.extend(
                subs.get(&(topic.to_string(), "*".to_string()))
                    .cloned()
                    .unwrap_or_default(),
            );
            Ok(out)
        }
        async fn forget(&self, connection_id: &str) -> Result<(), PortError> {
            self.forgotten
                .lock()
                .unwrap()
                .push(connection_id.to_string());
            Ok(())
        }
    }

    /// Posts: `gone` answer Gone; `flaky` fail retryably `flaky_times` times.
    #[derive(Default)]
    struct Gateway {
        gone: Vec<String>,
        flaky: HashMap<String, usize>,
        posts: Mutex<Vec<(String, u64)>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    impl ConnectionPoster for Gateway {
        async fn post(&self, id: &str, data: &str) -> Result<(), PostError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let seq = serde_json::from_str::<serde_json::Value>(data).unwrap()["sequence"]
                .as_u64()
                .unwrap();
            let mut posts = self.posts.lock().unwrap();
            let tries = posts.iter().filter(|(c, _)| c == id).count();
            posts.push((id.to_string(), seq));
            if self.gone.iter().any(|g| g == id) {
                return Err(PostError::Gone);
            }
            if self.flaky.get(id).is_some_and(|&n| tries < n) {
                return Err(PostError::Failed(PortError::retryable(
                    "apigw",
                    "429 LimitExceededException",
                )));
            }
            Ok(())
        }
    }

    fn event(entity: &str, seq: u64) -> String {
        serde_json::json!({"detail-type":"OrderPlaced","source":"tideline",
            "detail":{"metadata":{"event_id":format!("{entity}-{seq}"),"event_type":"OrderPlaced","schema_version":1,
            "entity_id":entity,"sequence":seq,"occurred_at":"t","stored_at":"t","correlation_id":null,"test":false},"data":{}}})
        .to_string()
    }

    fn config(attempts: u32) -> RelayConfig {
        RelayConfig {
            concurrency: 4,
            retry: RetryPolicy::fast(attempts),
            max_message_bytes: 32 * 1024,
        }
    }

    fn table(entries: &[(&str, &[&str])]) -> Table {
        let t = Table::default();
        for (entity, conns) in entries {
            t.subs.lock().unwrap().insert(
                ("OrderPlaced".into(), entity.to_string()),
                conns.iter().map(|c| c.to_string()).collect(),
            );
        }
        t
    }

    #[tokio::test]
    async fn fans_out_to_entity_and_topic_subscribers_within_the_bound() {
        let conns: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
        let refs: Vec<&str> = conns.iter().map(String::as_str).collect();
        let t = table(&[
            ("o-1", &refs[..30]),
            ("*", &refs[30..]),
            ("o-2", &["other"]),
        ]);
        let g = Gateway::default();
        let report = relay(&t, &g, &config(3), &event("o-1", 5)).await.unwrap();
        assert_eq!(report.posted, 40);
        assert!(g.max_in_flight.load(Ordering::SeqCst) <= 4);
        assert!(g.max_in_flight.load(Ordering::SeqCst) > 1, "concurrent");
        assert!(!g.posts.lock().unwrap().iter().any(|(c, _)| c == "other"));
    }

    #[tokio::test]
    async fn gone_connections_are_deleted_and_failed_ones_alone_are_retried() {
        let t = table(&[("o-1", &["ok", "gone", "flaky"])]);
        let g = Gateway {
            gone: vec!["gone".into()],
            flaky: HashMap::from([("flaky".into(), 2)]),
            ..Gateway::default()
        };
        let report = relay(&t, &g, &config(3), &event("o-1", 1)).await.unwrap();
        assert_eq!(
            report,
            RelayReport {
                events: 1,
                posted: 2,
                gone: 1,
                retried: 1
            }
        );
        assert_eq!(*t.forgotten.lock().unwrap(), ["gone"]);
        let posts = g.posts.lock().unwrap();
        let count = |c: &str| posts.iter().filter(|(p, _)| p == c).count();
        assert_eq!((count("ok"), count("gone"), count("flaky")), (1, 1, 3));
    }

    #[tokio::test]
    async fn posts_failing_past_the_last_attempt_fail_the_relay_retryably() {
        let t = table(&[("o-1", &["ok", "flaky"])]);
        let g = Gateway {
            flaky: HashMap::from([("flaky".into(), 10)]),
            ..Gateway::default()
        };
        let err = relay(&t, &g, &config(2), &event("o-1", 1))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("1 of the posts"), "{err}");
    }

    #[tokio::test]
    async fn a_bundle_is_relayed_event_by_event_in_order() {
        let t = table(&[("*", &["c"])]);
        let g = Gateway::default();
        let details: Vec<serde_json::Value> = (1..=3)
            .map(|s| {
                serde_json::from_str::<serde_json::Value>(&event("o-1", s)).unwrap()["detail"]
                    .clone()
            })
            .collect();
        let bundle = serde_json::json!({"detail-type": tideline_core::bundle::BUNDLE_DETAIL_TYPE, "source": "tideline",
            "detail": {"events": details, "test_events": false}});
        let report = relay(&t, &g, &config(1), &bundle.to_string())
            .await
            .unwrap();
        assert_eq!(report.events, 3);
        let seqs: Vec<u64> = g.posts.lock().unwrap().iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }
}
