//! `tideline subscribe` through the AWS side of the realtime fan-out: the
//! built CLI connects to an API Gateway WebSocket stand-in that runs the
//! deployed handlers (`realtime-authorizer` on `$connect`, `realtime-routes`
//! for the routes), whose replies and the relay's posts go through the AWS
//! SDK's `PostToConnection` to the stand-in's Management API. The events
//! table and the connections table are DynamoDB on moto.
//!
//! moto serves neither WebSocket connections nor a Management API that
//! reaches a client, so the stand-in plays API Gateway's part, and only that:
//! it turns a connect into the authorizer's REQUEST event and then `$connect`,
//! each frame into a route event (`$request.body.action`), a close by the
//! client into `$disconnect`, and `POST /@connections/{id}` into a frame
//! (410 `GoneException` once the connection is closed). Everything else is
//! the code Terraform deploys.
//!
//! What it shows: the client receives exactly what its token allows (one
//! entity of two), in order; after API Gateway drops the connection
//! (`1001`, without the best-effort `$disconnect`), the relay's post to it
//! answers Gone and the relay forgets it, and the client reconnects and
//! resumes with `since`, missing nothing and receiving nothing twice. Each
//! sequence is checked as it arrives, never sorted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tideline_aws::DynamoStore;
use tideline_aws::realtime::{ApiGatewayPoster, ConnectionsTable};
use tideline_core::envelope::BusEntry;
use tideline_core::{EntityId, ExpectedSeq};
use tideline_lambdas::realtime::{
    AuthorizerState, RelayState, RoutesState, authorizer, relay, routes,
};
use tideline_realtime::TokenVerifier;
use tideline_realtime::auth::{Claims, hs256_token, now_secs};
use tideline_realtime::protocol::API_GATEWAY_FRAME_BYTES;
use tideline_realtime::relay::RelayConfig;
use tideline_stages::EventStore;
use tideline_testkit::fixtures::{lambda, new_event, record};
use tideline_testkit::moto;
use tokio::sync::mpsc;

const ISSUER: &str = "https://auth.example";
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn fixture(name: &str) -> Value {
    let path = format!("{REPO}/crates/tideline-lambdas/tests/fixtures/realtime/{name}");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A token signed with the test key pair's private key (its JWKS is what
/// the authorizer checks against, as `scripts/apply-terraform.sh` deploys).
fn signed(claims: &Claims) -> String {
    let der = std::fs::read(format!(
        "{REPO}/crates/tideline-realtime/tests/fixtures/test-rsa.der"
    ))
    .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(&der),
    )
    .unwrap()
}

/// API Gateway's part: connections, and the Management API's endpoint.
struct Gateway {
    authorizer: AuthorizerState,
    routes: RoutesState<DynamoStore, ApiGatewayPoster>,
    /// Open connections: what `PostToConnection` writes to.
    open: Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>,
    /// Every connection id, in connect order.
    connected: Mutex<Vec<String>>,
    next_id: AtomicU64,
}

impl Gateway {
    /// Drops a connection as API Gateway does at its limits (1001), without
    /// the `$disconnect` AWS delivers only on a best-effort basis.
    fn drop_connection(&self, id: &str) {
        if let Some(tx) = self.open.lock().unwrap().remove(id) {
            let _ = tx.send(Message::Close(Some(CloseFrame {
                code: 1001,
                reason: "Going away".into(),
            })));
        }
    }
}

async fn on_connect(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut request = fixture("connect-request.json");
    request["headers"]["Authorization"] = json!(auth);
    request["multiValueHeaders"]["Authorization"] = json!([auth]);
    let decision = authorizer(&g.authorizer, lambda(request)).await.unwrap();
    if decision["policyDocument"]["Statement"][0]["Effect"] != "Allow" {
        return (StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    let id = format!("c{}", g.next_id.fetch_add(1, Ordering::SeqCst));
    let context = decision["context"].clone();
    let mut connect = fixture("connect-route.json");
    connect["requestContext"]["connectionId"] = json!(id);
    connect["requestContext"]["authorizer"] = context.clone();
    if routes(&g.routes, lambda(connect)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ws.on_upgrade(move |socket| serve(g, id, context, socket))
}

async fn serve(g: Arc<Gateway>, id: String, context: Value, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    g.open.lock().unwrap().insert(id.clone(), tx);
    g.connected.lock().unwrap().push(id.clone());
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
    });
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else {
            if matches!(frame, Message::Close(_)) {
                break;
            }
            continue;
        };
        // The WebSocket API's route selection: $request.body.action.
        let action = serde_json::from_str::<Value>(text.as_str())
            .ok()
            .and_then(|v| v["action"].as_str().map(str::to_string))
            .unwrap_or_default();
        let mut event = fixture("subscribe-route.json");
        event["requestContext"]["routeKey"] = json!(action);
        event["requestContext"]["connectionId"] = json!(id);
        event["requestContext"]["authorizer"] = context.clone();
        event["body"] = json!(text.as_str());
        routes(&g.routes, lambda(event)).await.unwrap();
    }
    // A close by the client: API Gateway calls $disconnect. A connection the
    // gateway dropped itself is no longer open and gets none (best effort).
    if g.open.lock().unwrap().remove(&id).is_some() {
        let mut event = fixture("disconnect-route.json");
        event["requestContext"]["connectionId"] = json!(id);
        routes(&g.routes, lambda(event)).await.unwrap();
    }
}

/// The Management API's `PostToConnection`, as the SDK calls it.
async fn post_to_connection(
    State(g): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let sent = g
        .open
        .lock()
        .unwrap()
        .get(&id)
        .map(|tx| tx.send(Message::Text(body.into())).is_ok());
    match sent {
        Some(true) => (StatusCode::OK, "{}").into_response(),
        _ => (
            StatusCode::GONE,
            [("x-amzn-errortype", "GoneException")],
            r#"{"message":"the connection is gone"}"#,
        )
            .into_response(),
    }
}

/// Lines of the CLI's stdout, as they arrive.
fn lines(child: &mut Child) -> mpsc::UnboundedReceiver<Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    loop {
        let v = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("no line from tideline subscribe within 30 s")
            .expect("tideline subscribe ended early");
        // `subscribed` replies are printed too; events carry a sequence.
        if v["type"] == "event" {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tideline_subscribe_through_the_aws_handlers_gets_what_its_token_allows_and_resumes() {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let events_table = moto::unique("tl-rt-events");
    moto::create_event_table(&ddb, &events_table, false).await;
    let connections_table = moto::unique("tl-rt-connections");
    moto::create_key_table(&ddb, &connections_table, true).await;
    let store = DynamoStore::new(ddb.clone(), &events_table);
    let run = moto::unique("rt");
    let (mine, other) = (format!("{run}-mine"), format!("{run}-other"));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // The functions' Management API client: the SDK, pointed at the stand-in.
    let management = || {
        ApiGatewayPoster::new(aws_sdk_apigatewaymanagement::Client::from_conf(
            aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
                .endpoint_url(format!("http://{address}"))
                .build(),
        ))
    };
    let jwks = std::fs::read_to_string(format!(
        "{REPO}/crates/tideline-realtime/tests/fixtures/test-jwks.json"
    ))
    .unwrap();
    let gateway = Arc::new(Gateway {
        authorizer: AuthorizerState {
            verifier: TokenVerifier::jwks_json(&jwks, Some(ISSUER.into())).unwrap(),
        },
        routes: RoutesState {
            store: DynamoStore::new(ddb.clone(), &events_table),
            connections: ConnectionsTable::new(ddb.clone(), &connections_table),
            poster: management(),
            max_message_bytes: API_GATEWAY_FRAME_BYTES,
        },
        open: Mutex::default(),
        connected: Mutex::default(),
        next_id: AtomicU64::new(1),
    });
    let app = axum::Router::new()
        .route("/live", get(on_connect))
        .route("/@connections/{id}", post(post_to_connection))
        .with_state(gateway.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let relay_state = RelayState {
        subscribers: ConnectionsTable::new(ddb.clone(), &connections_table),
        poster: management(),
        config: RelayConfig {
            concurrency: 8,
            retry: tideline_core::retry::RetryPolicy::fast(2),
            max_message_bytes: API_GATEWAY_FRAME_BYTES,
        },
    };

    // Appends one event and relays it as the bus rule would deliver it.
    let append_and_relay = async |entity: &str, n: u32| -> Value {
        let id = EntityId::new(entity).unwrap();
        let outcomes = store
            .append(
                &id,
                vec![new_event(
                    &record(entity, "OrderPlaced")
                        .id(format!("{entity}-{n}"))
                        .data(json!({"n": n})),
                )],
                ExpectedSeq::Any,
            )
            .await
            .unwrap();
        let seq = match &outcomes[0] {
            tideline_core::AppendOutcome::Stored { seq, .. } => *seq,
            other => panic!("{other:?}"),
        };
        let stored = store.read_events(&id, seq - 1, 1).await.unwrap();
        let entry = BusEntry::for_stored("tideline", &stored[0], false);
        let event: Value =
            serde_json::from_str(&entry.to_event_json(&format!("bus-{entity}-{n}"), "t")).unwrap();
        relay(&relay_state, lambda(event)).await.unwrap()
    };
    for n in 1..=3 {
        append_and_relay(&mine, n).await;
        append_and_relay(&other, n).await;
    }

    let claims = Claims {
        sub: "user-7".into(),
        exp: now_secs() + 600,
        iss: Some(ISSUER.into()),
        topics: vec!["OrderPlaced".into()],
        entities: vec![mine.clone()],
    };
    let endpoint = format!("ws://{address}/live");
    let subscribe = |entity: &str, token: &str, count: &str| {
        Command::new(env!("CARGO_BIN_EXE_tideline"))
            .args(["subscribe", "--topic", "OrderPlaced", "--entity", entity])
            .args(["--since", &format!("{entity}=0"), "--count", count])
            .args(["--endpoint", &endpoint, "--token", token])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // A forged token and an entity the claims do not cover are refused.
    let forged = subscribe(&mine, &hs256_token(&claims, b"forged").unwrap(), "1")
        .wait_with_output()
        .unwrap();
    assert!(!forged.status.success());
    assert!(
        String::from_utf8_lossy(&forged.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );

    let mut cli = subscribe(&mine, &signed(&claims), "8");
    let mut rx = lines(&mut cli);
    let mut last = 0;
    let mut expect_next = async |rx: &mut mpsc::UnboundedReceiver<Value>| {
        let v = next_event(rx).await;
        assert_eq!(
            v["entity_id"],
            json!(mine),
            "only the entity the token allows: {v}"
        );
        let seq = v["sequence"].as_u64().unwrap();
        assert_eq!(seq, last + 1, "no gap, no duplicate: {v}");
        last = seq;
    };
    // The missed events, read from the store by the routes handler.
    for _ in 1..=3 {
        expect_next(&mut rx).await;
    }
    // Live: through the relay's Query and PostToConnection.
    for n in 4..=5 {
        let report = append_and_relay(&mine, n).await;
        assert_eq!(report["posted"], 1, "{report}");
        append_and_relay(&other, n).await;
        expect_next(&mut rx).await;
    }

    // API Gateway drops the connection; its $disconnect never comes.
    let first = gateway.connected.lock().unwrap()[0].clone();
    gateway.drop_connection(&first);
    // The relay's post answers Gone: it forgets the connection.
    let report = append_and_relay(&mine, 6).await;
    assert_eq!(
        (report["posted"].clone(), report["gone"].clone()),
        (json!(0), json!(1)),
        "{report}"
    );
    use tideline_realtime::relay::Subscribers;
    let subscribed = relay_state
        .subscribers
        .connections_for("OrderPlaced", &mine)
        .await
        .unwrap();
    assert!(
        !subscribed.contains(&first),
        "the relay forgot the gone connection: {subscribed:?}"
    );
    append_and_relay(&mine, 7).await;
    // The CLI reconnects and resumes with `since`: 6 and 7 from the store.
    for _ in 6..=7 {
        expect_next(&mut rx).await;
    }
    let report = append_and_relay(&mine, 8).await;
    assert_eq!(report["posted"], 1, "{report}");
    expect_next(&mut rx).await;
    let out = tokio::task::spawn_blocking(move || cli.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last, 8);
    assert_eq!(gateway.connected.lock().unwrap().len(), 2, "one reconnect");
    // The CLI closed after its 8th event: $disconnect removed its
    // subscriptions, so nothing is left for the relay to find.
    let mut left = vec![String::new()];
    for _ in 0..50 {
        left = relay_state
            .subscribers
            .connections_for("OrderPlaced", &mine)
            .await
            .unwrap();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "{left:?}");
}
