//! A client of the local host's operational HTTP API, for `tideline tail`
//! and `tideline replay --endpoint`: the CLI parses flags and calls these.

use futures::StreamExt;
use std::future::Future;

/// Why a call to the local host failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host could not be reached.
    #[error("cannot reach tideline up at {endpoint} (is `tideline up` running? set --endpoint)")]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// The HTTP client's error.
        source: reqwest::Error,
    },
    /// The host refused the request (HTTP 4xx): the request is wrong.
    #[error("{url}: HTTP {status}: {body}")]
    Refused {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// What the host said.
        body: String,
    },
    /// The host failed (HTTP 5xx).
    #[error("{url}: HTTP {status}: {body}")]
    Failed {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// What the host said.
        body: String,
    },
    /// The event stream broke.
    #[error("{url}: stream broke")]
    StreamBroke {
        /// The URL.
        url: String,
        /// The HTTP client's error.
        source: reqwest::Error,
    },
    /// The caller's output failed (other than its reader going away).
    #[error("writing output")]
    Output(#[source] std::io::Error),
}

/// What `tail` tells its caller besides events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailNotice {
    /// Following the host's live events.
    Following,
    /// The host ended the stream (it stopped).
    Ended,
    /// This reader fell behind and the host skipped this many events.
    Lagged(u64),
}

fn url(endpoint: &str, path: &str) -> String {
    format!("{}{path}", endpoint.trim_end_matches('/'))
}

/// Sends `request`; a host that cannot be reached is named by `endpoint`.
async fn send(
    endpoint: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ClientError> {
    request
        .send()
        .await
        .map_err(|source| ClientError::Unreachable {
            endpoint: endpoint.to_string(),
            source,
        })
}

/// Follows the live events of the host at `endpoint` (filtered there by
/// `pattern`) until `stop` resolves, the host ends the stream, or the
/// caller's reader goes away (`on_event` fails with a broken pipe).
pub async fn tail(
    endpoint: &str,
    pattern: Option<&str>,
    stop: impl Future<Output = ()>,
    mut on_event: impl FnMut(&str) -> std::io::Result<()>,
    mut on_notice: impl FnMut(TailNotice),
) -> Result<(), ClientError> {
    let url = url(endpoint, "/_tideline/tail");
    let mut request = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/event-stream");
    if let Some(p) = pattern {
        request = request.query(&[("pattern", p)]);
    }
    let response = send(endpoint, request).await?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default().trim().to_string();
        let status = status.as_u16();
        return Err(if (400..500).contains(&status) {
            ClientError::Refused { url, status, body }
        } else {
            ClientError::Failed { url, status, body }
        });
    }
    on_notice(TailNotice::Following);
    let mut body = response.bytes_stream();
    let mut parser = SseParser::default();
    tokio::pin!(stop);
    loop {
        let chunk = tokio::select! {
            _ = &mut stop => return Ok(()),
            c = body.next() => c,
        };
        let chunk = match chunk {
            None => {
                on_notice(TailNotice::Ended);
                return Ok(());
            }
            Some(Err(source)) => return Err(ClientError::StreamBroke { url, source }),
            Some(Ok(c)) => c,
        };
        for message in parser.push(&chunk) {
            match message.event.as_str() {
                "" | "message" => match on_event(&message.data) {
                    Ok(()) => {}
                    // `tail | head`: the reader went away, a normal end.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(e) => return Err(ClientError::Output(e)),
                },
                "lagged" => {
                    let skipped = serde_json::from_str::<serde_json::Value>(&message.data)
                        .ok()
                        .and_then(|v| v["skipped"].as_u64())
                        .unwrap_or(0);
                    on_notice(TailNotice::Lagged(skipped));
                }
                _ => {}
            }
        }
    }
}

/// Asks the host at `endpoint` to replay (`POST /_tideline/replay` with
/// `request` as its JSON body) and returns its JSON answer.
pub async fn replay(
    endpoint: &str,
    request: &serde_json::Value,
) -> Result<serde_json::Value, ClientError> {
    let url = url(endpoint, "/_tideline/replay");
    let resp = send(
        endpoint,
        reqwest::Client::new()
            .post(&url)
            // The host takes a replay only from a request a web form cannot
            // make: `.json` sets the JSON content type; the header says so too.
            .header("x-tideline-request", "1")
            .json(request),
    )
    .await?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::json!({"error": text}));
    if status.is_client_error() {
        return Err(ClientError::Refused {
            url,
            status: status.as_u16(),
            body: value.to_string(),
        });
    }
    Ok(value)
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
struct SseMessage {
    event: String,
    data: String,
}

/// Incremental server-sent events parser (the subset axum writes: `event:`, `data:`, `id:`, comments).
#[derive(Debug, Default)]
struct SseParser {
    buffer: Vec<u8>,
    current: SseMessage,
    has_data: bool,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data {
                    out.push(std::mem::take(&mut self.current));
                }
                self.current = SseMessage::default();
                self.has_data = false;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.current.event = value.to_string(),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_split_chunks_events_and_comments() {
        let mut p = SseParser::default();
        assert!(p.push(b": keep-alive\n\nid: 1\nda").is_empty());
        let got = p.push(b"ta: {\"a\":1}\n\nevent: lagged\ndata: {\"skipped\":3}\r\n\r\n");
        assert_eq!(
            got,
            vec![
                SseMessage {
                    event: String::new(),
                    data: "{\"a\":1}".into()
                },
                SseMessage {
                    event: "lagged".into(),
                    data: "{\"skipped\":3}".into()
                },
            ]
        );
    }
}
