//! The fault proxy against moto: each fault does what it says, and the SDK
//! reads the injected answers as it would read AWS's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use tideline_testkit::fault_proxy::{Fault, FaultProxy, Rule};
use tideline_testkit::moto::{endpoint, receive_and_delete, sdk_config, unique};

async fn queue(sqs: &aws_sdk_sqs::Client) -> String {
    sqs.create_queue()
        .queue_name(unique("fp"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

async fn bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = receive_and_delete(sqs, url).await;
        if got.is_empty() {
            break;
        }
        out.extend(got);
    }
    out.sort();
    out
}

#[tokio::test]
async fn whole_call_faults_reach_moto_or_not_as_named() {
    let direct = aws_sdk_sqs::Client::new(&sdk_config().await);
    let url = queue(&direct).await;
    let proxy = FaultProxy::start(&endpoint(), 1).await;
    let before = proxy.add(Rule::new("SendMessage", Fault::FailBefore).nth(&[1]));
    let throttle = proxy.add(Rule::new("AmazonSQS.SendMessage", Fault::Throttle).nth(&[2]));
    let after = proxy.add(Rule::new("SendMessage", Fault::FailAfter).nth(&[3]));
    let dropped = proxy.add(Rule::new("SendMessage", Fault::DropAfter).nth(&[4]));
    let sqs = aws_sdk_sqs::Client::new(&proxy.sdk_config().await);
    let send = |body: &str| sqs.send_message().queue_url(&url).message_body(body).send();

    let e = send("1").await.unwrap_err();
    assert_eq!(e.code(), Some("InternalFailure"), "{e:?}");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 500);
    let e = send("2").await.unwrap_err();
    assert_eq!(e.code(), Some("RequestThrottled"), "{e:?}");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
    let e = send("3").await.unwrap_err();
    assert_eq!(e.code(), Some("InternalFailure"), "{e:?}");
    let e = send("4").await.unwrap_err();
    assert!(e.as_service_error().is_none(), "no answer at all: {e:?}");
    send("5").await.unwrap();

    // Only the calls forwarded took effect, answered or not.
    assert_eq!(bodies(&direct, &url).await, ["3", "4", "5"]);
    for rule in [before, throttle, after, dropped] {
        assert_eq!(proxy.injected(rule), 1);
    }
    assert_eq!(proxy.forwarded("SendMessage"), 3);
}

#[tokio::test]
async fn dynamodb_throttling_is_read_as_such() {
    let proxy = FaultProxy::start(&endpoint(), 2).await;
    proxy.add(Rule::new("DynamoDB_20120810.GetItem", Fault::Throttle));
    let ddb = aws_sdk_dynamodb::Client::new(&proxy.sdk_config().await);
    let e = ddb
        .get_item()
        .table_name("any")
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .is_some_and(|s| s.is_provisioned_throughput_exceeded_exception()),
        "{e:?}"
    );
}

#[tokio::test]
async fn send_message_batch_partial_failure_sends_only_the_rest() {
    let direct = aws_sdk_sqs::Client::new(&sdk_config().await);
    let url = queue(&direct).await;
    let proxy = FaultProxy::start(&endpoint(), 3).await;
    let rule = proxy.add(Rule::new("SendMessageBatch", Fault::PartialFailure).limit(1));
    let sqs = aws_sdk_sqs::Client::new(&proxy.sdk_config().await);
    let entries: Vec<_> = (0..8)
        .map(|i| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(format!("e{i}"))
                .message_body(format!("m{i}"))
                .build()
                .unwrap()
        })
        .collect();
    let out = sqs
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.injected(rule), 1);
    assert_eq!(out.successful().len() + out.failed().len(), 8);
    assert!(!out.failed().is_empty());
    for f in out.failed() {
        assert_eq!(f.code(), "InternalError");
        assert!(!f.sender_fault());
    }
    let mut sent: Vec<String> = out
        .successful()
        .iter()
        .map(|s| format!("m{}", &s.id()[1..]))
        .collect();
    sent.sort();
    assert_eq!(
        bodies(&direct, &url).await,
        sent,
        "exactly the successful entries"
    );
}

#[tokio::test]
async fn put_events_partial_failure_splices_failures_in_place() {
    let proxy = FaultProxy::start(&endpoint(), 4).await;
    let rule = proxy.add(Rule::new("AWSEvents.PutEvents", Fault::PartialFailure));
    let eb = aws_sdk_eventbridge::Client::new(&proxy.sdk_config().await);
    let entries: Vec<_> = (0..10)
        .map(|i| {
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("fp")
                .detail_type("T")
                .detail(format!("{{\"i\":{i}}}"))
                .build()
        })
        .collect();
    let out = eb
        .put_events()
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.injected(rule), 1);
    assert_eq!(out.entries().len(), 10, "one result per entry, in place");
    let failed = out
        .entries()
        .iter()
        .filter(|e| e.error_code() == Some("InternalFailure"))
        .count();
    assert!(failed > 0);
    assert_eq!(out.failed_entry_count() as usize, failed);
    for e in out.entries() {
        assert_eq!(e.event_id().is_some(), e.error_code().is_none(), "{e:?}");
    }
}
