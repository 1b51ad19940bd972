//! The local HTTP server guards itself: header and body read timeouts, a
//! connection cap, a Host check (DNS rebinding) and a replay endpoint that a
//! cross-site form cannot trigger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tideline_local::HttpLimits;
use tideline_testkit::local::LocalHarness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(http: HttpLimits, allowed_hosts: Vec<String>) -> LocalHarness {
    LocalHarness::start_with(|c, _| {
        c.http = http;
        c.allowed_hosts = allowed_hosts;
    })
    .await
}

fn short(header: u64, body: u64, connections: usize) -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_millis(header),
        body_timeout: Duration::from_millis(body),
        max_connections: connections,
    }
}

/// Reads until the server closes the connection (or `within` passes: then `None`).
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// One raw HTTP/1.1 request; the whole response.
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    read_to_close(&mut s, Duration::from_secs(10))
        .await
        .expect("response within 10 s")
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

#[tokio::test]
async fn a_half_open_connection_is_closed_after_the_header_timeout() {
    let stack = start(short(300, 5_000, 16), vec![]).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(stack.local_addr()).await.unwrap();
    // Half a request line, then silence.
    s.write_all(b"GET /_tideline/metrics HT").await.unwrap();
    let closed = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "the server still holds the connection after 5 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A connection that never sends a byte is closed too.
    let mut idle = TcpStream::connect(stack.local_addr()).await.unwrap();
    assert!(
        read_to_close(&mut idle, Duration::from_secs(5))
            .await
            .is_some()
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_after_the_body_timeout() {
    let stack = start(short(5_000, 300, 16), vec![]).await;
    let mut s = TcpStream::connect(stack.local_addr()).await.unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nx-amz-target: Firehose_20150804.PutRecordBatch\r\ncontent-length: 100\r\n\r\n{\"Deliv",
    )
    .await
    .unwrap();
    let response = read_to_close(&mut s, Duration::from_secs(5))
        .await
        .expect("answered and closed within 5 s");
    assert_eq!(status_of(&response), 408, "{response}");
    stack.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let stack = start(short(10_000, 10_000, 1), vec![]).await;
    let url = format!("http://{}/_tideline/metrics", stack.local_addr());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let hog = TcpStream::connect(stack.local_addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        client.get(&url).send().await.is_err(),
        "a second connection is served while the only slot is taken"
    );
    drop(hog);
    let mut served = false;
    for _ in 0..20 {
        if let Ok(r) = client.get(&url).send().await {
            served = r.status().is_success();
            break;
        }
    }
    assert!(served, "served once the slot is free");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_foreign_host_header_is_refused() {
    let stack = start(HttpLimits::default(), vec!["tideline".into()]).await;
    let addr = stack.local_addr();
    let get = |host: &str| {
        format!("GET /_tideline/metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    // DNS rebinding: a page on evil.example, resolved to 127.0.0.1.
    let refused = raw(addr, &get(&format!("evil.example:{}", addr.port()))).await;
    assert_eq!(status_of(&refused), 421, "{refused}");
    assert!(refused.contains("--allow-host"), "{refused}");
    for host in [
        format!("localhost:{}", addr.port()),
        format!("127.0.0.1:{}", addr.port()),
        "[::1]".to_string(),
        "LOCALHOST".to_string(),
        format!("tideline:{}", addr.port()),
    ] {
        let ok = raw(addr, &get(&host)).await;
        assert_eq!(status_of(&ok), 200, "Host {host}: {ok}");
    }
    let other_ip = raw(addr, &get("192.0.2.1")).await;
    assert_eq!(status_of(&other_ip), 421, "{other_ip}");
    stack.shutdown().await;
}

#[tokio::test]
async fn replay_takes_only_a_request_a_web_form_cannot_make() {
    let stack = start(HttpLimits::default(), vec![]).await;
    let url = format!("http://{}/_tideline/replay", stack.local_addr());
    let client = reqwest::Client::new();
    let body = r#"{"entity":"e1"}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let resp = client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 415, "{content_type}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("application/json"), "{text}");
    }
    let no_type = client.post(&url).body(body).send().await.unwrap();
    assert_eq!(no_type.status(), 415);

    let json = client
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 200, "{}", json.text().await.unwrap());
    let marked = client
        .post(&url)
        .header("content-type", "text/plain")
        .header("x-tideline-request", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), 200);
    stack.shutdown().await;
}
