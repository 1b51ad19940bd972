//! A client of the protocol (feature `client`): what `tideline subscribe`
//! runs, against `tideline up` or API Gateway alike.
//!
//! [`Resume`] is the client's half of "a client that reconnects misses
//! nothing": it keeps the last `sequence` seen per (topic, entity), drops
//! anything at or below it (on AWS the relay and the backfill can both
//! deliver an event at the switch-over, and the bus is at least once), and
//! gives the `since` to send after a reconnect.

use crate::protocol::{ClientMessage, ServerMessage, close};
use futures::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use tideline_core::{Classify, ErrorClass};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Why the client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not a `ws://` or `wss://` URL.
    #[error("--endpoint {endpoint:?}: {message}")]
    BadEndpoint {
        /// The endpoint.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// The server refused the connection (a token refused, realtime off).
    #[error("connection refused with HTTP {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's reason.
        body: String,
    },
    /// The network or the WebSocket failed.
    #[error("WebSocket: {0}")]
    Transport(String),
}

impl Classify for ClientError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::BadEndpoint { .. } => ErrorClass::Permanent,
            // 4xx: the same token gets the same answer; 5xx (a connection
            // cap, a gateway) may pass.
            Self::Refused { status, .. } => ErrorClass::retryable_if(*status >= 500),
            Self::Transport(_) => ErrorClass::Retryable,
        }
    }
}

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A text frame (a protocol message).
    Text(String),
    /// The server closed the connection, with its code and reason.
    Closed {
        /// The close code (1006 when the connection dropped without one).
        code: u16,
        /// The reason.
        reason: String,
    },
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open connection.
pub struct Connection {
    socket: Socket,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

/// Opens a connection to `endpoint` with `token` as the bearer token
/// (sent as `Authorization: Bearer`, which the local server and the
/// module's authorizer both read).
pub async fn connect(endpoint: &str, token: &str) -> Result<Connection, ClientError> {
    let bad = |message: String| ClientError::BadEndpoint {
        endpoint: endpoint.to_string(),
        message,
    };
    if !(endpoint.starts_with("ws://") || endpoint.starts_with("wss://")) {
        return Err(bad("must start with ws:// or wss://".into()));
    }
    let mut request = endpoint
        .into_client_request()
        .map_err(|e| bad(e.to_string()))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .map_err(|_| bad("the token has characters a header cannot carry".into()))?;
    request.headers_mut().insert("authorization", bearer);
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(Connection { socket }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(ClientError::Refused { status, body })
        }
        Err(e) => Err(ClientError::Transport(e.to_string())),
    }
}

impl Connection {
    /// Sends a protocol message.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), ClientError> {
        self.send_raw(&serde_json::to_string(message).unwrap_or_default())
            .await
    }

    /// Sends a text frame as is (a client's own message, or a test's bad one).
    pub async fn send_raw(&mut self, text: &str) -> Result<(), ClientError> {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// The next message, or the close; pings are answered on the way.
    pub async fn next(&mut self) -> Incoming {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(t))) => return Incoming::Text(t.as_str().to_string()),
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) => Incoming::Closed {
                            code: f.code.into(),
                            reason: f.reason.as_str().to_string(),
                        },
                        None => Incoming::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Incoming::Closed {
                        code: 1006,
                        reason: e.to_string(),
                    };
                }
                None => {
                    return Incoming::Closed {
                        code: 1006,
                        reason: "connection dropped".into(),
                    };
                }
            }
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// Whether a close is one to reconnect after (and resume): the server's
/// limits, a slow client, a server behind the bus, a restart, a drop.
pub fn resumable(code: u16) -> bool {
    matches!(
        code,
        close::IDLE_TIMEOUT
            | close::MAX_DURATION
            | close::SLOW_CLIENT
            | close::LAGGED
            | close::GOING_AWAY
            | 1006
            // API Gateway's own closes: "going away" at 2 h, 1001/1006 on idle.
            | 1011
            | 1012
    )
}

/// The client's resume state: the subscriptions to (re)send and the last
/// `sequence` seen per (topic, entity).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    subscriptions: Vec<(String, Vec<String>)>,
    last: BTreeMap<(String, String), u64>,
}

/// What [`Resume::accept`] says about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// New: print it.
    New,
    /// An event at or below what was seen: drop it.
    Duplicate,
    /// Not an event (`subscribed`, `refused`, `pong`…): print it.
    Control,
}

impl Resume {
    /// Adds a subscription and the client's starting points.
    pub fn subscribe(&mut self, topic: &str, entities: &[String], since: &BTreeMap<String, u64>) {
        self.subscriptions
            .push((topic.to_string(), entities.to_vec()));
        for (entity, &seq) in since {
            self.last.insert((topic.to_string(), entity.clone()), seq);
        }
    }

    /// The `subscribe` messages to send on a (re)connect: each with the
    /// last sequence seen of every entity of its topic.
    pub fn messages(&self) -> Vec<ClientMessage> {
        self.subscriptions
            .iter()
            .map(|(topic, entities)| ClientMessage::Subscribe {
                topic: topic.clone(),
                entities: entities.clone(),
                since: self
                    .last
                    .iter()
                    .filter(|((t, _), _)| t == topic)
                    .map(|((_, e), s)| (e.clone(), *s))
                    .collect(),
            })
            .collect()
    }

    /// Classifies a received text and records an event's sequence.
    pub fn accept(&mut self, text: &str) -> Verdict {
        let (topic, entity, sequence) = match serde_json::from_str::<ServerMessage>(text) {
            Ok(ServerMessage::Event {
                topic,
                entity_id,
                sequence,
                detail,
            }) => {
                // An expiry notice names the removed event's sequence: not ordered.
                if detail
                    .pointer("/metadata/removed_by")
                    .is_some_and(|v| !v.is_null())
                {
                    return Verdict::New;
                }
                (topic, entity_id, sequence)
            }
            Ok(ServerMessage::Reference {
                topic,
                entity_id,
                sequence,
                ..
            }) => (topic, entity_id, sequence),
            _ => return Verdict::Control,
        };
        let last = self.last.entry((topic, entity)).or_insert(0);
        if sequence <= *last {
            Verdict::Duplicate
        } else {
            *last = sequence;
            Verdict::New
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resume_drops_what_was_seen_and_asks_from_there() {
        let mut r = Resume::default();
        r.subscribe("T", &["a".into()], &BTreeMap::from([("a".into(), 2)]));
        let ev = |s: u64| {
            ServerMessage::Event {
                topic: "T".into(),
                entity_id: "a".into(),
                sequence: s,
                detail: serde_json::json!({}),
            }
            .to_text()
        };
        assert_eq!(r.accept(&ev(2)), Verdict::Duplicate);
        assert_eq!(r.accept(&ev(3)), Verdict::New);
        assert_eq!(r.accept(&ev(3)), Verdict::Duplicate);
        assert_eq!(r.accept(&ServerMessage::Pong.to_text()), Verdict::Control);
        let ClientMessage::Subscribe { since, .. } = &r.messages()[0] else {
            panic!()
        };
        assert_eq!(since.get("a"), Some(&3));
    }
}
