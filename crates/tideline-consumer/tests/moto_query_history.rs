//! The read side over DynamoDB: a query API history longer than one DynamoDB
//! page (over 1 MB) reads completely through the cursor, against moto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tideline_aws::DynamoStore;
use tideline_core::{EntityId, ExpectedSeq};
use tideline_stages::EventStore;
use tideline_stages::query::{QueryRequest, handle_query};
use tideline_testkit::fixtures::{new_event, record};
use tideline_testkit::moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_over_one_page_reads_completely_through_the_cursor() {
    let sdk = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("tl-query");
    moto::create_event_table(&ddb, &table, false).await;
    let store = DynamoStore::new(ddb, table);
    let entity = EntityId::new("long-history").unwrap();
    let blob = "q".repeat(8 * 1024);
    let n = 300u64;
    // ~2.4 MB of events for one entity: more than two 1 MB Query pages.
    for chunk in (1..=n).collect::<Vec<_>>().chunks(25) {
        let events = chunk
            .iter()
            .map(|i| {
                new_event(
                    &record("long-history", "Bulky")
                        .id(format!("h-{i}"))
                        .data(serde_json::json!({"i": i, "blob": blob})),
                )
            })
            .collect();
        store
            .append(&entity, events, ExpectedSeq::Any)
            .await
            .unwrap();
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = vec![("limit".to_string(), "1000".to_string())];
        if let Some(c) = &cursor {
            params.push(("cursor".to_string(), c.clone()));
        }
        let req = QueryRequest {
            method: "GET".into(),
            path: "/entities/long-history/events".into(),
            params,
        };
        let resp = handle_query(&store, &req).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        pages += 1;
        for item in resp.body["items"].as_array().unwrap() {
            seen.push(item["metadata"]["sequence"].as_u64().unwrap());
        }
        match resp.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 100);
    }
    assert_eq!(seen, (1..=n).collect::<Vec<_>>());

    // Small pages walk the same history through the cursor too.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("limit".to_string(), "70".to_string())];
        if let Some(c) = &cursor {
            params.push(("cursor".to_string(), c.clone()));
        }
        let req = QueryRequest {
            method: "GET".into(),
            path: "/entities/long-history/events".into(),
            params,
        };
        let resp = handle_query(&store, &req).await;
        assert_eq!(resp.status, 200);
        seen.extend(
            resp.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["sequence"].as_u64().unwrap()),
        );
        match resp.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, (1..=n).collect::<Vec<_>>());
}
