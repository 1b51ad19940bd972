//! `/_tideline/realtime` end to end, with real WebSocket clients against a
//! `tideline up` stack: events go in through the Firehose API, through the
//! store, the emit stage and the bus, and out to subscribers.
//!
//! Each test starts its own stack (its own temporary directory and port) and
//! names its own entities.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tideline_local::RealtimeConfig;
use tideline_realtime::auth::{Claims, TokenVerifier, hs256_token, insecure_dev_token, now_secs};
use tideline_realtime::client::{ClientError, Connection, Incoming, connect};
use tideline_realtime::protocol::ClientMessage;
use tideline_testkit::local::LocalHarness;

const SECRET: &[u8] = b"realtime-test-secret";

fn claims(topics: &[&str], entities: &[&str]) -> Claims {
    Claims {
        sub: "user-1".into(),
        exp: now_secs() + 3600,
        iss: None,
        topics: topics.iter().map(|s| s.to_string()).collect(),
        entities: entities.iter().map(|s| s.to_string()).collect(),
    }
}

fn token(c: &Claims) -> String {
    hs256_token(c, SECRET).unwrap()
}

async fn stack_with(adjust: impl FnOnce(&mut RealtimeConfig)) -> LocalHarness {
    LocalHarness::start_with(|c, _| {
        c.realtime.verifier = Some(TokenVerifier::hs256(SECRET, None).unwrap());
        adjust(&mut c.realtime);
    })
    .await
}

fn endpoint(stack: &LocalHarness) -> String {
    format!("ws://{}/_tideline/realtime", stack.local_addr())
}

fn subscribe(topic: &str, entities: &[&str], since: &[(&str, u64)]) -> ClientMessage {
    ClientMessage::Subscribe {
        topic: topic.into(),
        entities: entities.iter().map(|s| s.to_string()).collect(),
        since: since
            .iter()
            .map(|(e, s)| (e.to_string(), *s))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The next text message as JSON, within `wait`.
async fn next_json(conn: &mut Connection, wait: Duration) -> Value {
    match tokio::time::timeout(wait, conn.next()).await {
        Ok(Incoming::Text(t)) => serde_json::from_str(&t).unwrap(),
        Ok(Incoming::Closed { code, reason }) => panic!("closed {code}: {reason}"),
        Err(_) => panic!("no message within {wait:?}"),
    }
}

/// Connects and subscribes; returns once `subscribed` arrived.
async fn subscribed(stack: &LocalHarness, token: &str, message: ClientMessage) -> Connection {
    let mut conn = connect(&endpoint(stack), token).await.unwrap();
    conn.send(&message).await.unwrap();
    let reply = next_json(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    conn
}

fn record(entity: &str, kind: &str, n: u64) -> Value {
    json!({"entity_id": entity, "type": kind, "data": {"n": n}})
}

/// A unique entity name per test run (tests never share names).
fn unique(name: &str) -> String {
    format!("{name}-{}", rand_suffix())
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:x}{:x}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_receives_exactly_its_topic_and_entities_with_entity_and_sequence() {
    let stack = stack_with(|_| {}).await;
    let (mine, other) = (unique("order"), unique("other"));
    let t = token(&claims(&["OrderPlaced"], &[&mine]));
    let mut conn = subscribed(&stack, &t, subscribe("OrderPlaced", &[&mine], &[])).await;
    stack
        .ingest(&[
            record(&mine, "OrderPlaced", 1),
            record(&other, "OrderPlaced", 2),
            record(&mine, "OrderShipped", 3),
            record(&mine, "OrderPlaced", 4),
        ])
        .await;
    let first = next_json(&mut conn, Duration::from_secs(20)).await;
    assert_eq!(first["type"], "event", "{first}");
    assert_eq!(first["topic"], "OrderPlaced");
    assert_eq!(first["entity_id"], mine.as_str());
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["detail"]["data"]["n"], 1);
    assert_eq!(first["detail"]["metadata"]["sequence"], 1);
    let second = next_json(&mut conn, Duration::from_secs(20)).await;
    // Sequence 2 was the OrderShipped event: not this topic.
    assert_eq!(
        (
            second["sequence"].as_u64(),
            second["detail"]["data"]["n"].as_u64()
        ),
        (Some(3), Some(4)),
        "{second}"
    );
    // Nothing else came: the next message is the answer to a ping.
    conn.send(&ClientMessage::Ping).await.unwrap();
    let pong = next_json(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    let metrics: Value = reqwest::get(format!("{}/_tideline/metrics", stack.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metrics["realtime"]["connections"], 1, "{metrics}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_events_reach_subscribers_one_by_one_in_order() {
    let stack = LocalHarness::start_with(|c, _| {
        c.realtime.verifier = Some(TokenVerifier::hs256(SECRET, None).unwrap());
        c.bundle = tideline_core::bundle::BundleConfig::from_max_events(10);
    })
    .await;
    let e = unique("bundled");
    let t = token(&claims(&["Tick"], &[&e]));
    let mut conn = subscribed(&stack, &t, subscribe("Tick", &[&e], &[])).await;
    let records: Vec<Value> = (1..=25).map(|n| record(&e, "Tick", n)).collect();
    stack.ingest(&records).await;
    for expected in 1..=25u64 {
        let m = next_json(&mut conn, Duration::from_secs(20)).await;
        assert_eq!(m["sequence"], expected, "{m}");
    }
    stack.shutdown().await;
}

/// A connection attempt's refusal: the HTTP status and the server's reason.
async fn refused(stack: &LocalHarness, token: &str) -> (u16, String) {
    match connect(&endpoint(stack), token).await {
        Err(ClientError::Refused { status, body }) => (status, body),
        Ok(_) => panic!("connection accepted with token {token}"),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refused_when_expired_forged_unsigned_or_not_covering_the_entity() {
    let stack = stack_with(|_| {}).await;
    let (allowed, forbidden) = (unique("mine"), unique("theirs"));
    let mut expired = claims(&["OrderPlaced"], &[&allowed]);
    expired.exp = now_secs() - 3600;
    let (status, body) = refused(&stack, &token(&expired)).await;
    assert_eq!(status, 401);
    assert!(body.contains("expired"), "{body}");

    let forged = hs256_token(&claims(&["OrderPlaced"], &["*"]), b"not-the-secret").unwrap();
    let (status, body) = refused(&stack, &forged).await;
    assert_eq!(status, 401);
    assert!(body.contains("signature"), "{body}");

    let unsigned = insecure_dev_token(&claims(&["*"], &["*"]));
    let (status, body) = refused(&stack, &unsigned).await;
    assert_eq!(status, 401, "{body}");

    let (status, body) = refused(&stack, "").await;
    assert_eq!(status, 401);
    assert!(body.contains("Bearer"), "{body}");

    // A valid token whose claim does not cover the entity: the subscribe is
    // refused with the entity named, and none of its events arrive.
    let t = token(&claims(&["OrderPlaced"], &[&allowed]));
    let mut conn = connect(&endpoint(&stack), &t).await.unwrap();
    conn.send(&subscribe("OrderPlaced", &[&forbidden], &[]))
        .await
        .unwrap();
    let reply = next_json(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(reply["type"], "refused", "{reply}");
    assert_eq!(reply["code"], "EntityNotAllowed");
    assert_eq!(reply["entity_id"], forbidden.as_str());
    // A whole topic needs "*"; another topic is not in the claim.
    conn.send(&subscribe("OrderPlaced", &[], &[]))
        .await
        .unwrap();
    let reply = next_json(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(reply["code"], "EntityNotAllowed", "{reply}");
    conn.send(&subscribe("Refunded", &[&allowed], &[]))
        .await
        .unwrap();
    let reply = next_json(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(reply["code"], "TopicNotAllowed", "{reply}");
    // Not a protocol message: refused with the reason, the connection stays.
    conn.send_raw("{\"action\":\"subscribe\"}").await.unwrap();
    let reply = next_json(&mut conn, Duration::from_secs(10)).await;
    assert_eq!(reply["code"], "BadMessage", "{reply}");

    conn.send(&subscribe("OrderPlaced", &[&allowed], &[]))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut conn, Duration::from_secs(10)).await["type"],
        "subscribed"
    );
    stack
        .ingest(&[
            record(&forbidden, "OrderPlaced", 1),
            record(&allowed, "OrderPlaced", 2),
        ])
        .await;
    let m = next_json(&mut conn, Duration::from_secs(20)).await;
    assert_eq!(m["entity_id"], allowed.as_str(), "{m}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_from_a_jwks_file_are_accepted_and_others_refused() {
    let fixtures =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tideline-realtime/tests/fixtures");
    let jwks = fixtures.join("test-jwks.json");
    let stack = LocalHarness::start_with(|c, _| {
        c.realtime.verifier =
            Some(TokenVerifier::jwks_file(&jwks, Some("https://auth.example".into())).unwrap());
    })
    .await;
    let mut c = claims(&["OrderPlaced"], &["*"]);
    c.iss = Some("https://auth.example".into());
    let der = std::fs::read(fixtures.join("test-rsa.der")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    let signed =
        jsonwebtoken::encode(&header, &c, &jsonwebtoken::EncodingKey::from_rsa_der(&der)).unwrap();
    let mut conn = subscribed(&stack, &signed, subscribe("OrderPlaced", &[], &[])).await;
    conn.send(&ClientMessage::Ping).await.unwrap();
    assert_eq!(
        next_json(&mut conn, Duration::from_secs(10)).await["type"],
        "pong"
    );
    let (status, body) = refused(&stack, &token(&c)).await;
    assert_eq!(status, 401, "an HS256 token against a JWKS: {body}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reconnects_with_since_gets_every_event_once_in_order() {
    let stack = stack_with(|_| {}).await;
    let e = unique("resume");
    let t = token(&claims(&["Moved"], &[&e]));
    let mut conn = subscribed(&stack, &t, subscribe("Moved", &[&e], &[])).await;
    // Events keep coming in while the client reads, drops, and reconnects.
    let producer = {
        let url = stack.url();
        let e = e.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for batch in 0..30u64 {
                let records: Vec<Value> = (1..=5)
                    .map(|i| record(&e, "Moved", batch * 5 + i))
                    .collect();
                let body = tideline_testkit::fixtures::put_record_batch_body(&records);
                let resp = client
                    .post(format!("{url}/"))
                    .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Read up to 17, checking each as it arrives.
    let mut last = 0u64;
    while last < 17 {
        let m = next_json(&mut conn, Duration::from_secs(20)).await;
        let seq = m["sequence"].as_u64().unwrap();
        assert_eq!(seq, last + 1, "gap or duplicate before the drop: {m}");
        last = seq;
    }
    drop(conn); // an abrupt disconnect, no close frame
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = subscribed(&stack, &t, subscribe("Moved", &[&e], &[(&e, last)])).await;
    while last < 150 {
        let m = next_json(&mut conn, Duration::from_secs(30)).await;
        let seq = m["sequence"].as_u64().unwrap();
        assert_eq!(seq, last + 1, "gap or duplicate after the resume: {m}");
        assert_eq!(m["detail"]["data"]["n"], seq, "{m}");
        last = seq;
    }
    producer.await.unwrap();
    // Nothing after 150 but what is sent next: no late duplicate.
    stack.ingest(&[record(&e, "Moved", 151)]).await;
    let m = next_json(&mut conn, Duration::from_secs(20)).await;
    assert_eq!(m["sequence"], 151, "{m}");
    stack.shutdown().await;
}

/// A raw WebSocket client whose socket receive buffer is small, so that not
/// reading fills the server's side quickly.
async fn stalled_client(
    stack: &LocalHarness,
    token: &str,
    message: &ClientMessage,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(stack.local_addr()).await.unwrap();
    let mut request = endpoint(stack).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        serde_json::to_string(message).unwrap().into(),
    ))
    .await
    .unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_closed_with_a_reason_and_does_not_hold_back_the_others() {
    // A buffer above one ingest batch (20 events): a reading client keeps up with bursts.
    let stack = stack_with(|r| r.client_buffer = 32).await;
    let e = unique("busy");
    let t = token(&claims(&["Big"], &[&e]));
    let message = subscribe("Big", &[&e], &[]);
    let mut slow = stalled_client(&stack, &t, &message).await;
    let total = 400u64;
    let mut fast = Vec::new();
    for _ in 0..3 {
        let mut conn = subscribed(&stack, &t, message.clone()).await;
        fast.push(tokio::spawn(async move {
            for expected in 1..=total {
                let m = next_json(&mut conn, Duration::from_secs(30)).await;
                assert_eq!(m["sequence"], expected, "a fast client got {m}");
            }
            conn
        }));
    }
    // Let the stalled client's subscription take effect before the events.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let padding = "x".repeat(16 * 1024);
    let started = Instant::now();
    for batch in 0..(total / 20) {
        let records: Vec<Value> = (1..=20)
            .map(|i| json!({"entity_id": e, "type": "Big", "data": {"n": batch * 20 + i, "pad": padding}}))
            .collect();
        stack.ingest(&records).await;
    }
    // The hub closes the stalled client once its buffer is full (stage
    // `realtime` counts it as failed); until then it has read nothing.
    let evicted = async {
        loop {
            let metrics: Value = reqwest::get(format!("{}/_tideline/metrics", stack.url()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if metrics["realtime"]["counts"]["failed"].as_u64() >= Some(1) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), evicted)
        .await
        .expect("the stalled client is evicted");
    let evicted_after = started.elapsed();
    // Only now does the slow client read: what fitted its buffers, then the
    // close frame (the server tries to deliver it for a few seconds).
    let mut received = 0u64;
    let close = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match slow.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                    let m: Value = serde_json::from_str(&t).unwrap();
                    if m["type"] == "event" {
                        received += 1;
                        assert_eq!(m["sequence"], received, "in order up to the close");
                    }
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => return f,
                Some(Ok(_)) => {}
                other => panic!("the slow client ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("the slow client is closed");
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 4002, "{close:?}");
    assert!(close.reason.contains("slow client"), "{close:?}");
    assert!(
        received < total,
        "the slow client was cut off ({received} of {total})"
    );
    // The others got every event, in order, although the slow one read nothing for a while.
    for reader in fast {
        tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("fast clients finish")
            .unwrap();
    }
    println!(
        "the stalled client was closed after {evicted_after:?} with {received} events read; fast clients had all {total} after {:?}",
        started.elapsed()
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_subscribers_each_receive_every_event_in_order() {
    let stack = stack_with(|_| {}).await;
    let e = unique("crowd");
    let t = token(&claims(&["Crowd"], &[&e]));
    let subscribers = 1000;
    let events = 20u64;
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(subscribers);
    for _ in 0..subscribers {
        let (endpoint, t, e, ready) = (endpoint(&stack), t.clone(), e.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&endpoint, &t).await.unwrap();
            conn.send(&subscribe("Crowd", &[&e], &[])).await.unwrap();
            let reply = next_json(&mut conn, Duration::from_secs(60)).await;
            assert_eq!(reply["type"], "subscribed");
            ready.send(()).await.unwrap();
            for expected in 1..=events {
                let m = next_json(&mut conn, Duration::from_secs(60)).await;
                assert_eq!(m["sequence"], expected, "{m}");
            }
            conn.close().await;
        }));
    }
    for _ in 0..subscribers {
        tokio::time::timeout(Duration::from_secs(120), ready_rx.recv())
            .await
            .expect("every subscriber connects")
            .unwrap();
    }
    let started = Instant::now();
    let records: Vec<Value> = (1..=events).map(|n| record(&e, "Crowd", n)).collect();
    stack.ingest(&records).await;
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "{subscribers} subscribers × {events} events delivered in {:?}",
        started.elapsed()
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_too_large_for_a_frame_is_a_reference_the_query_api_resolves() {
    let stack = stack_with(|r| r.max_message_bytes = 4096).await;
    let e = unique("big/one");
    let t = token(&claims(&["Blob"], &[&e]));
    let mut conn = subscribed(&stack, &t, subscribe("Blob", &[&e], &[])).await;
    stack
        .ingest(&[
            json!({"entity_id": e, "type": "Blob", "data": {"pad": "y".repeat(10_000)}}),
            record(&e, "Blob", 2),
        ])
        .await;
    let reference = next_json(&mut conn, Duration::from_secs(20)).await;
    assert_eq!(reference["type"], "reference", "{reference}");
    assert_eq!(reference["sequence"], 1);
    assert!(reference["size"].as_u64().unwrap() > 10_000);
    let fetched: Value = reqwest::get(format!(
        "{}{}",
        stack.url(),
        reference["href"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let item = &fetched["items"][0];
    assert_eq!(item["metadata"]["sequence"], 1, "{fetched}");
    assert_eq!(item["metadata"]["event_id"], reference["event_id"]);
    assert_eq!(item["data"]["pad"].as_str().unwrap().len(), 10_000);
    let small = next_json(&mut conn, Duration::from_secs(20)).await;
    assert_eq!(
        (small["type"].as_str(), small["sequence"].as_u64()),
        (Some("event"), Some(2))
    );
    stack.shutdown().await;
}

async fn closed_within(conn: &mut Connection, wait: Duration) -> (u16, String) {
    loop {
        match tokio::time::timeout(wait, conn.next()).await {
            Ok(Incoming::Closed { code, reason }) => return (code, reason),
            Ok(Incoming::Text(_)) => continue,
            Err(_) => panic!("not closed within {wait:?}"),
        }
    }
}

/// Pings every 150 ms until the server closes the connection.
async fn pinging(conn: &mut Connection) -> (u16, String) {
    loop {
        if conn.send(&ClientMessage::Ping).await.is_err() {
            return closed_within(conn, Duration::from_secs(1)).await;
        }
        match tokio::time::timeout(Duration::from_millis(150), conn.next()).await {
            Ok(Incoming::Closed { code, reason }) => return (code, reason),
            Ok(Incoming::Text(_)) | Err(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_long_ones_are_closed_with_their_reason() {
    let stack = stack_with(|r| {
        r.idle_timeout = Duration::from_millis(400);
        r.max_connection = Duration::from_millis(1500);
    })
    .await;
    let t = token(&claims(&["T"], &["*"]));
    let mut idle = connect(&endpoint(&stack), &t).await.unwrap();
    let started = Instant::now();
    let (code, reason) = closed_within(&mut idle, Duration::from_secs(5)).await;
    assert_eq!(code, 4000, "{reason}");
    assert!(reason.contains("ping"), "{reason}");
    assert!(started.elapsed() >= Duration::from_millis(350));
    // Pinging keeps a connection open past the idle timeout, up to the maximum duration.
    let mut busy = connect(&endpoint(&stack), &t).await.unwrap();
    let started = Instant::now();
    let (code, reason) = tokio::time::timeout(Duration::from_secs(5), pinging(&mut busy))
        .await
        .unwrap();
    assert_eq!(code, 4001, "{reason}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    // A token that expires (before the maximum duration) ends the connection then.
    let mut short = claims(&["T"], &["*"]);
    short.exp = now_secs() + 1;
    let mut conn = connect(&endpoint(&stack), &token(&short)).await.unwrap();
    let (code, reason) = tokio::time::timeout(Duration::from_secs(5), pinging(&mut conn))
        .await
        .unwrap();
    assert_eq!(code, 4003, "{reason}");
    stack.shutdown().await;
}

#[tokio::test]
async fn without_a_verifier_the_endpoint_says_how_to_turn_it_on() {
    let stack = LocalHarness::start().await;
    let (status, body) = refused(&stack, &insecure_dev_token(&claims(&["T"], &["*"]))).await;
    assert_eq!(status, 404);
    assert!(body.contains("--realtime-insecure-dev-tokens"), "{body}");
    stack.shutdown().await;
}

#[tokio::test]
async fn insecure_dev_tokens_are_accepted_only_when_asked_for() {
    let stack =
        LocalHarness::start_with(|c, _| c.realtime.verifier = Some(TokenVerifier::InsecureDev))
            .await;
    let dev = insecure_dev_token(&claims(&["T"], &["*"]));
    let mut conn = subscribed(&stack, &dev, subscribe("T", &[], &[])).await;
    conn.send(&ClientMessage::Ping).await.unwrap();
    assert_eq!(
        next_json(&mut conn, Duration::from_secs(10)).await["type"],
        "pong"
    );
    stack.shutdown().await;
}
