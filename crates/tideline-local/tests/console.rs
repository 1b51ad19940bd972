//! The web console served by `tideline up`, over HTTP (the browser tests in
//! `tests/console` drive the same pages in Chromium): markup in event data
//! renders as text, the console's action needs a header no cross-site form
//! can send, `POST /` stays the Firehose API, history pages through the query
//! API's cursor, and the pattern tools say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::time::Duration;
use tideline_testkit::local::LocalHarness;

const MARKUP: &str = r#"<script>window.__pwned = 1</script><img src=x onerror="alert(1)">"#;

async fn get(h: &LocalHarness, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("{}{path}", h.url())).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test]
async fn an_event_whose_data_holds_markup_renders_as_text_on_every_page() {
    let h = LocalHarness::start_with(|c, dir| {
        c.rules = tideline_testkit::local::log_rule("all", &dir.join("all.jsonl"));
    })
    .await;
    // The entity id may hold markup too: `<` and `>` are MessageGroupId punctuation.
    let entity = "<b>e1</b>";
    h.ingest(&[json!({"entity_id": entity, "type": "Noted", "data": {"note": MARKUP}})])
        .await;
    // A refused record whose reason quotes the markup (its type is missing).
    let out = h
        .put_records(&[json!({"entity_id": "r", "data": {"note": MARKUP}})])
        .await;
    assert_eq!(
        out["FailedPutCount"], 0,
        "refusals are Firehose successes: {out}"
    );
    h.wait_idle(Duration::from_secs(10)).await;

    let escaped_data = "&lt;script&gt;window.__pwned = 1&lt;/script&gt;";
    let (status, body) = get(&h, "/console/entity?id=%3Cb%3Ee1%3C%2Fb%3E").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(escaped_data), "payload shown escaped: {body}");
    assert!(
        body.contains("&lt;b&gt;e1&lt;/b&gt;"),
        "entity id shown escaped"
    );
    for page in [
        "/console/entity?id=%3Cb%3Ee1%3C%2Fb%3E",
        "/console/entities?q=%3C",
        "/console/refused",
        "/console/rules",
        "/",
    ] {
        let (status, body) = get(&h, page).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert!(
            !body.contains("<script>window"),
            "{page} holds live markup: {body}"
        );
        assert!(
            !body.contains("<img src=x"),
            "{page} holds live markup: {body}"
        );
        assert!(!body.contains("<b>e1"), "{page} holds live markup: {body}");
    }
    let (_, search) = get(&h, "/console/entities?q=%3C").await;
    assert!(search.contains("&lt;b&gt;e1&lt;/b&gt;"), "{search}");
    h.shutdown().await;
}

#[tokio::test]
async fn console_pages_carry_a_policy_that_runs_only_this_origins_scripts() {
    let h = LocalHarness::start().await;
    let resp = reqwest::get(format!("{}/", h.url())).await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = resp.text().await.unwrap();
    assert!(body.contains("/console/assets/htmx.min.js"), "{body}");
    // The assets are in the binary.
    let (status, js) = get(&h, "/console/assets/htmx.min.js").await;
    assert_eq!(status, 200);
    assert!(js.starts_with("var htmx=function()"), "vendored htmx");
    h.shutdown().await;
}

#[tokio::test]
async fn the_console_keeps_the_host_check_and_post_root_stays_the_firehose_api() {
    let h = LocalHarness::start().await;
    let client = reqwest::Client::new();
    let foreign = client
        .get(format!("{}/", h.url()))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        foreign.status(),
        421,
        "DNS rebinding defence on the console"
    );
    // POST / is still PutRecordBatch.
    h.ingest(&[json!({"entity_id": "a", "type": "T", "data": 1})])
        .await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_replay_from_the_console_needs_the_request_header() {
    let h = LocalHarness::start().await;
    h.ingest(&[
        json!({"entity_id": "o-1", "type": "T", "data": 1}),
        json!({"entity_id": "o-1", "type": "T", "data": 2}),
    ])
    .await;
    h.wait_idle(Duration::from_secs(10)).await;
    let client = reqwest::Client::new();
    let url = format!("{}/console/replay", h.url());
    let form = [("entity", "o-1"), ("from_seq", "1")];
    // What a cross-site form can send: a simple urlencoded POST.
    let simple = client.post(&url).form(&form).send().await.unwrap();
    assert_eq!(simple.status(), 403);
    let body = simple.text().await.unwrap();
    assert!(body.contains("x-tideline-request"), "{body}");
    // What htmx sends (hx-headers): the custom header forces a preflight cross-site.
    let ok = client
        .post(&url)
        .header("x-tideline-request", "console")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body = ok.text().await.unwrap();
    assert!(body.contains("replayed: 2 published"), "{body}");
    // A bad request says what is wrong.
    let bad = client
        .post(&url)
        .header("x-tideline-request", "console")
        .form(&[("from_seq", "one")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("not a whole number"));
    h.shutdown().await;
}

/// The `href` of the element with id `next-page`, unescaped.
fn next_link(body: &str) -> Option<String> {
    let at = body.find(r#"id="next-page""#)?;
    let href = body[at..].split(r#"href=""#).nth(1)?.split('"').next()?;
    Some(href.replace("&amp;", "&"))
}

#[tokio::test]
async fn an_entity_history_pages_through_the_query_api_cursor() {
    let h = LocalHarness::start().await;
    let records: Vec<_> = (1..=45)
        .map(|i| json!({"entity_id": "order-7", "id": format!("e{i}"), "type": "T", "data": {"n": i}}))
        .collect();
    h.ingest(&records).await;
    h.wait_idle(Duration::from_secs(10)).await;
    let mut path = "/console/entity?id=order-7".to_string();
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (status, body) = get(&h, &path).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&format!("page {page} of about 3")), "{body}");
        let sequences: Vec<u64> = body
            .split(r#"data-sequence=""#)
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .collect();
        seen.extend(sequences);
        match next_link(&body) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(
        seen,
        (1..=45).collect::<Vec<u64>>(),
        "every event once, in order"
    );
    let (status, _) = get(&h, "/console/entity?id=nobody").await;
    assert_eq!(status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn the_pattern_tools_say_why() {
    let h = LocalHarness::start().await;
    let client = reqwest::Client::new();
    let check = |pattern: &'static str| {
        let client = client.clone();
        let url = format!("{}/console/pattern/check", h.url());
        async move {
            client
                .post(url)
                .form(&[("pattern", pattern)])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert!(
        check(r#"{"detail-type": ["A"]}"#)
            .await
            .contains("valid pattern")
    );
    let invalid = check(r#"{"detail": {"n": [{"numeric": [">"]}]}}"#).await;
    assert!(invalid.contains("invalid pattern"), "{invalid}");
    assert!(
        invalid.contains("detail.n") || invalid.contains("numeric"),
        "names where: {invalid}"
    );
    let syntax = check(r#"{"detail": "#).await;
    assert!(syntax.contains("invalid pattern"), "{syntax}");

    let verdict = client
        .post(format!("{}/console/tester", h.url()))
        .form(&[
            (
                "event",
                r#"{"source":"tideline","detail":{"data":{"total":50}}}"#,
            ),
            (
                "pattern",
                r#"{"source":["tideline"],"detail":{"data":{"total":[{"numeric":[">",100]}]}}}"#,
            ),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(verdict.contains("no match"), "{verdict}");
    assert!(
        verdict.contains(r#"<code id="decided-by">detail.data.total</code>"#),
        "{verdict}"
    );
    h.shutdown().await;
}

/// An entity with 100,000 events: every console page of its history is one
/// query API page (20 events), as fast at the end as at the start.
#[tokio::test]
async fn an_entity_of_100_000_events_pages_in_bounded_time() {
    const EVENTS: usize = 100_000;
    // The history is written by the store stage straight into the data
    // directory before the stack starts: 100,000 ingest round trips of a
    // debug build would take minutes and test nothing the console does.
    let pre = tempfile::tempdir().unwrap();
    let data_dir = pre.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    {
        use tideline_stages::store::{IncomingMessage, store_batch};
        let store =
            tideline_embedded::store::SqliteStore::open(&data_dir.join("store.db"), None).unwrap();
        let config = tideline_core::ingest::IngestConfig::default();
        for chunk in 0..EVENTS / 500 {
            let messages = (chunk * 500..(chunk + 1) * 500)
                .map(|i| {
                    let record = format!(
                        r#"{{"entity_id":"big","id":"e{i}","type":"T","data":{{"i":{i}}}}}"#
                    );
                    let admitted = tideline_core::ingest::admit(
                        &config,
                        record.as_bytes(),
                        chrono::Utc::now(),
                    )
                    .unwrap();
                    IncomingMessage {
                        message_id: i.to_string(),
                        body: admitted.body,
                    }
                })
                .collect();
            let out = store_batch(
                &store,
                &tideline_stages::memory::MemoryRejects::default(),
                messages,
            )
            .await;
            assert!(out.failed_message_ids.is_empty());
        }
    }
    let h = LocalHarness::start_with(|c, _| c.data_dir = data_dir.clone()).await;
    // A cursor near the end, walked with the query API's largest pages.
    let client = reqwest::Client::new();
    let mut cursor: Option<String> = None;
    for _ in 0..99 {
        let mut url = format!("{}/entities/big/events?limit=1000", h.url());
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    let cursor = cursor.expect("more after 99,000 events");
    for (path, first) in [
        ("/console/entity?id=big".to_string(), 1),
        (
            format!("/console/entity?id=big&cursor={cursor}&page=4951"),
            99_001,
        ),
    ] {
        let started = std::time::Instant::now();
        let (status, body) = get(&h, &path).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("of about 5,000"), "{body}");
        assert_eq!(body.matches("<article class=\"event\"").count(), 20);
        assert!(
            body.contains(&format!(r#"data-sequence="{first}""#)),
            "{path}"
        );
        assert!(
            took < Duration::from_millis(500),
            "{path} took {took:?}: a page must not cost the history"
        );
    }
    // The overview counts the store without reading it.
    let started = std::time::Instant::now();
    let (status, body) = get(&h, "/console/overview/stats").await;
    assert_eq!(status, 200);
    assert!(body.contains("100,000"), "{body}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    h.shutdown().await;
}
