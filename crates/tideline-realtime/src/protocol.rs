//! The messages of the realtime protocol, as JSON text frames.
//!
//! A client sends `{"action": …}` messages: `action` is what API Gateway's
//! route selection expression (`$request.body.action`) routes on, so the
//! same text reaches the `subscribe` and `unsubscribe` routes on AWS and the
//! local server's handler. The server answers with `{"type": …}` messages.
//! `docs/realtime.md` is the reference; these types are its single source.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// API Gateway WebSocket: largest message a route or `PostToConnection` carries.
pub const API_GATEWAY_MESSAGE_BYTES: usize = 128 * 1024;
/// API Gateway WebSocket: largest frame; a larger message is split into
/// frames, which some clients reassemble poorly, so one event is one frame.
pub const API_GATEWAY_FRAME_BYTES: usize = 32 * 1024;
/// API Gateway WebSocket: a connection lasts at most 2 hours.
pub const API_GATEWAY_MAX_CONNECTION: Duration = Duration::from_secs(2 * 60 * 60);
/// API Gateway WebSocket: a connection with no traffic for 10 minutes is closed.
pub const API_GATEWAY_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Receive a topic's events: all entities the token allows (`entities`
    /// empty), or only the named ones.
    Subscribe {
        /// The topic: an event type (`detail-type`).
        topic: String,
        /// Entity ids; empty means every entity (the token must allow `*`).
        #[serde(default)]
        entities: Vec<String>,
        /// Resume: the last `sequence` seen per entity. The server first
        /// sends what came after it (read from the store), then live events.
        #[serde(default)]
        since: BTreeMap<String, u64>,
    },
    /// Stop receiving a topic (every entity when `entities` is empty).
    Unsubscribe {
        /// The topic.
        topic: String,
        /// Entity ids; empty means the whole topic.
        #[serde(default)]
        entities: Vec<String>,
    },
    /// Keeps an idle connection open (API Gateway closes one after 10 minutes).
    Ping,
}

/// Why a subscription (or a message) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalCode {
    /// The message is not JSON or not one of the protocol's messages.
    BadMessage,
    /// The token's `topics` claim does not cover the topic.
    TopicNotAllowed,
    /// The token's `entities` claim does not cover an entity (or, for a
    /// subscription without entities, does not allow every entity).
    EntityNotAllowed,
    /// A `since` names an entity the subscription does not cover.
    SinceOutsideSubscription,
    /// A topic or entity id that no event can carry.
    BadName,
    /// The connection holds as many subscriptions as it may.
    TooManySubscriptions,
    /// The store could not be read for the resume; subscribe again.
    BackfillFailed,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// A subscription took effect; missed events (if `since` was given) and
    /// then live events follow.
    Subscribed {
        /// The topic.
        topic: String,
        /// The entities; empty means every entity.
        entities: Vec<String>,
    },
    /// A subscription was removed.
    Unsubscribed {
        /// The topic.
        topic: String,
        /// The entities; empty means the whole topic.
        entities: Vec<String>,
    },
    /// A message was refused; nothing changed.
    Refused {
        /// What was refused (`subscribe`, `unsubscribe`, or `message`).
        action: String,
        /// The topic, when the message named one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// The entity the refusal is about, if one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entity_id: Option<String>,
        /// Machine-readable reason.
        code: RefusalCode,
        /// What is wrong and what to do.
        reason: String,
    },
    /// One event: the integration event's `detail`, with its entity and
    /// sequence at the top so a client can order and de-duplicate.
    Event {
        /// The topic (event type).
        topic: String,
        /// The entity.
        entity_id: String,
        /// The entity's gapless sequence.
        sequence: u64,
        /// The integration event's `detail` (`metadata` and `data`).
        detail: Value,
    },
    /// An event too large for one frame: fetch it from the query API.
    Reference {
        /// The topic (event type).
        topic: String,
        /// The entity.
        entity_id: String,
        /// The entity's sequence.
        sequence: u64,
        /// The event id.
        event_id: String,
        /// The size of the `event` message it replaces, in bytes.
        size: usize,
        /// Query API path (relative to its base URL) whose first item is the event.
        href: String,
    },
    /// Answer to `ping`.
    Pong,
}

impl ServerMessage {
    /// The message as one JSON text frame.
    pub fn to_text(&self) -> String {
        // A `ServerMessage` is strings, numbers and JSON values: it always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A refusal of `action`.
    pub fn refused(
        action: &str,
        topic: Option<&str>,
        entity_id: Option<&str>,
        code: RefusalCode,
        reason: impl Into<String>,
    ) -> Self {
        Self::Refused {
            action: action.to_string(),
            topic: topic.map(str::to_string),
            entity_id: entity_id.map(str::to_string),
            code,
            reason: reason.into(),
        }
    }
}

/// Parses a client's text frame; a refusal message (to send back) when it is
/// not one of the protocol's messages.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, Box<ServerMessage>> {
    serde_json::from_str(text).map_err(|e| {
        Box::new(ServerMessage::refused(
            "message",
            None,
            None,
            RefusalCode::BadMessage,
            format!(
                "not a protocol message ({e}); send {{\"action\":\"subscribe\",\"topic\":…,\"entities\":[…],\"since\":{{…}}}}, {{\"action\":\"unsubscribe\",…}} or {{\"action\":\"ping\"}}"
            ),
        ))
    })
}

/// WebSocket close codes the server uses (4000–4999 are the application's).
pub mod close {
    /// No message either way for the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4000;
    /// The connection reached its maximum duration; reconnect and resume.
    pub const MAX_DURATION: u16 = 4001;
    /// The client read too slowly: its bounded buffer filled up.
    pub const SLOW_CLIENT: u16 = 4002;
    /// The token expired while connected; reconnect with a fresh one.
    pub const TOKEN_EXPIRED: u16 = 4003;
    /// The server fell behind the bus and cannot promise no gap; resume.
    pub const LAGGED: u16 = 4004;
    /// The server is shutting down (RFC 6455 "going away").
    pub const GOING_AWAY: u16 = 1001;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_subscribe_reads_with_defaults_and_a_typo_is_refused_with_the_reason() {
        let m = parse_client_message(r#"{"action":"subscribe","topic":"OrderPlaced"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscribe {
                topic: "OrderPlaced".into(),
                entities: vec![],
                since: BTreeMap::new()
            }
        );
        let refused = parse_client_message(r#"{"action":"subscribe","topic":"T","entity":["a"]}"#)
            .unwrap_err();
        let text = refused.to_text();
        assert!(
            text.contains("BadMessage") && text.contains("entity"),
            "{text}"
        );
    }

    #[test]
    fn messages_carry_their_type_tag() {
        let m = ServerMessage::Event {
            topic: "T".into(),
            entity_id: "e".into(),
            sequence: 3,
            detail: serde_json::json!({"data": 1}),
        };
        let v: Value = serde_json::from_str(&m.to_text()).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["sequence"], 3);
    }
}
