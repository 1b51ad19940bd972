//! The adapters over real SDK responses for faults moto cannot produce
//! (throttling, conditional failures with the old item, cancelled transactions,
//! partial PutEvents failures), using
//! `aws-smithy-mocks`. SDK retries are off so each rule is one call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::CancellationReason;
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, ProvisionedThroughputExceededException,
    TransactionCanceledException,
};
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_sdk_sqs::operation::send_message_batch::{SendMessageBatchError, SendMessageBatchOutput};
use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use std::collections::HashMap;
use tideline_aws::{DynamoStore, EventBridgeBus, SqsQueue};
use tideline_core::{
    AppendOutcome, BusEntry, Classify, EntityId, ErrorClass, ExpectedSeq, NewEvent,
};
use tideline_stages::{Bus, EventStore, OutgoingMessage, Queue, RejectSink, RejectedRecord};
use tideline_testkit::fixtures::{new_event, record};

fn msg(i: usize) -> OutgoingMessage {
    OutgoingMessage {
        group_id: "e".into(),
        dedup_id: format!("id-{i}"),
        body: "{}".into(),
        trace_header: None,
    }
}

fn event(id: &str) -> NewEvent {
    new_event(&record("e-1", "T").id(id))
}

#[tokio::test]
async fn send_message_batch_throttled_call_is_retryable() {
    let rule = mock!(aws_sdk_sqs::Client::send_message_batch).then_error(|| {
        SendMessageBatchError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&rule], |c| c
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled()));
    let err = SqsQueue::new(client, "q")
        .send_batch(&[msg(0)])
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Retryable, "{err}");
    // The SDK's error is the port error's source, code and all.
    let source = std::error::Error::source(&err).expect("the SDK error as source");
    let sdk =
        source
            .downcast_ref::<aws_sdk_sqs::error::SdkError<
                SendMessageBatchError,
                aws_sdk_sqs::config::http::HttpResponse,
            >>()
            .expect("an SDK error");
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::code(sdk),
        Some("ThrottlingException")
    );
}

#[tokio::test]
async fn send_message_batch_per_entry_results() {
    let rule = mock!(aws_sdk_sqs::Client::send_message_batch).then_output(|| {
        SendMessageBatchOutput::builder()
            .successful(
                SendMessageBatchResultEntry::builder()
                    .id("0")
                    .message_id("m0")
                    .md5_of_message_body("x")
                    .build()
                    .unwrap(),
            )
            .successful(
                SendMessageBatchResultEntry::builder()
                    .id("3")
                    .message_id("m3")
                    .md5_of_message_body("x")
                    .build()
                    .unwrap(),
            )
            .failed(
                BatchResultErrorEntry::builder()
                    .id("1")
                    .code("ThrottlingException")
                    .sender_fault(false)
                    .build()
                    .unwrap(),
            )
            .failed(
                BatchResultErrorEntry::builder()
                    .id("2")
                    .code("InvalidParameterValue")
                    .sender_fault(true)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&rule]);
    let results = SqsQueue::new(client, "q")
        .send_batch(&[msg(0), msg(1), msg(2), msg(3)])
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[3].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err().class,
        ErrorClass::Retryable
    );
    assert_eq!(
        results[2].as_ref().unwrap_err().class,
        ErrorClass::Permanent
    );
}

#[tokio::test]
async fn put_item_throttled_is_retryable() {
    let rule = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::ProvisionedThroughputExceededException(
            // As the deserializer builds it: the code is in the metadata.
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .meta(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&rule], |c| c
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()));
    let err = DynamoStore::new(client, "t")
        .reject(RejectedRecord {
            stage: "store".into(),
            source_id: "m".into(),
            reason: "r".into(),
            body: "b".into(),
            rejected_at: "2026-11-23T08:00:00.000000Z".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Retryable, "{err}");
}

fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
    let mut b = TransactionCanceledException::builder().message("Transaction cancelled");
    for c in codes {
        b = b.cancellation_reasons(CancellationReason::builder().code(*c).build());
    }
    TransactWriteItemsError::TransactionCanceledException(b.build())
}

/// The event item of event `id` at seq 1 of `e-1`, as the store writes it.
fn stored_item(id: &str) -> HashMap<String, AttributeValue> {
    let e = event(id);
    tideline_aws::store::event_item(&tideline_core::StoredEvent {
        entity_id: e.entity_id,
        seq: 1,
        sk: "2026-11-23T08:00:00.000000Z".into(),
        event_id: e.id,
        event_type: e.event_type,
        data: e.data,
        occurred_at: e.occurred_at,
        received_at: e.received_at,
        stored_at: "2026-11-23T08:00:00.000000Z".into(),
        correlation_id: None,
        test: false,
        schema_version: 1,
        expires_at: None,
        traceparent: None,
    })
}

fn condition_failed(item: Option<HashMap<String, AttributeValue>>) -> PutItemError {
    PutItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder()
            .message("The conditional request failed")
            .set_item(item)
            .meta(
                ErrorMetadata::builder()
                    .code("ConditionalCheckFailedException")
                    .build(),
            )
            .build(),
    )
}

fn latest(item: Option<HashMap<String, AttributeValue>>) -> QueryOutput {
    QueryOutput::builder()
        .set_items(Some(item.into_iter().collect()))
        .build()
}

#[tokio::test]
async fn an_existing_marker_pointing_at_its_stored_event_is_a_duplicate() {
    let query =
        mock!(aws_sdk_dynamodb::Client::query).then_output(|| latest(Some(stored_item("a"))));
    // The marker exists (returned with the failure) and points at seq 1's slot...
    let put = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        condition_failed(Some(HashMap::from([
            ("pk".to_string(), AttributeValue::S("e-1".into())),
            ("sk".to_string(), AttributeValue::S("id#a".into())),
            ("kind".to_string(), AttributeValue::S("dedup".into())),
            ("event_seq".to_string(), AttributeValue::N("1".into())),
            (
                "event_sk".to_string(),
                AttributeValue::S("2026-11-23T08:00:00.000000Z".into()),
            ),
        ])))
    });
    // ...where event "a" is stored.
    let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .set_item(Some(stored_item("a")))
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&query, &put, &get]);
    let entity = EntityId::new("e-1").unwrap();
    let out = DynamoStore::new(client, "t")
        .append(&entity, vec![event("a")], ExpectedSeq::Any)
        .await
        .unwrap();
    assert!(
        matches!(&out[..], [AppendOutcome::Duplicate { event_id }] if event_id.as_str() == "a"),
        "{out:?}"
    );
    assert_eq!(put.num_calls(), 1, "nothing written after the marker");
}

#[tokio::test]
async fn a_slot_taken_by_a_concurrent_writer_is_re_read_then_the_next_one_is_taken() {
    let query = mock!(aws_sdk_dynamodb::Client::query)
        .sequence()
        .output(|| latest(Some(stored_item("a"))))
        .output(|| latest(Some(stored_item("a"))))
        .build();
    // marker ok, event: slot taken; then the marker (ours, an intent at the
    // old slot) is found, moved, and the event written.
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .output(|| PutItemOutput::builder().build())
        .error(|| condition_failed(Some(stored_item("z"))))
        .error(|| {
            condition_failed(Some(HashMap::from([
                ("pk".to_string(), AttributeValue::S("e-1".into())),
                ("sk".to_string(), AttributeValue::S("id#b".into())),
                ("kind".to_string(), AttributeValue::S("dedup".into())),
                ("event_seq".to_string(), AttributeValue::N("2".into())),
                (
                    "event_sk".to_string(),
                    AttributeValue::S("2026-11-23T08:00:00.000001Z".into()),
                ),
            ])))
        })
        .output(|| PutItemOutput::builder().build())
        .output(|| PutItemOutput::builder().build())
        .build();
    // The slot holds another writer's event "z", not "b".
    let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .set_item(Some(stored_item("z")))
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&query, &put, &get]);
    let entity = EntityId::new("e-1").unwrap();
    let out = DynamoStore::new(client, "t")
        .append(&entity, vec![event("b")], ExpectedSeq::Any)
        .await
        .unwrap();
    assert!(
        matches!(&out[..], [AppendOutcome::Stored { seq: 2, .. }]),
        "{out:?}"
    );
    assert_eq!(query.num_calls(), 2);
}

#[tokio::test]
async fn a_throttled_event_write_is_retryable() {
    let query =
        mock!(aws_sdk_dynamodb::Client::query).then_output(|| latest(Some(stored_item("a"))));
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .output(|| PutItemOutput::builder().build())
        .error(|| {
            PutItemError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder()
                    .message("slow down")
                    .meta(
                        ErrorMetadata::builder()
                            .code("ProvisionedThroughputExceededException")
                            .build(),
                    )
                    .build(),
            )
        })
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&query, &put], |c| c
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()));
    let entity = EntityId::new("e-1").unwrap();
    let err = DynamoStore::new(client, "t")
        .append(&entity, vec![event("b")], ExpectedSeq::Any)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn an_item_dynamodb_refuses_is_permanent() {
    let query =
        mock!(aws_sdk_dynamodb::Client::query).then_output(|| latest(Some(stored_item("a"))));
    let put = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::generic(
            ErrorMetadata::builder()
                .code("ValidationException")
                .message("Item size has exceeded the maximum allowed size")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&query, &put]);
    let entity = EntityId::new("e-1").unwrap();
    let err = DynamoStore::new(client, "t")
        .append(&entity, vec![event("b")], ExpectedSeq::Any)
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn a_transaction_cancelled_by_throttling_is_retryable() {
    let query =
        mock!(aws_sdk_dynamodb::Client::query).then_output(|| latest(Some(stored_item("a"))));
    let get =
        mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| GetItemOutput::builder().build());
    let tx = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_error(|| cancelled(&["ThrottlingError", "None", "None", "None"]));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&query, &get, &tx]);
    let entity = EntityId::new("e-1").unwrap();
    let err = DynamoStore::new(client, "t")
        .append(&entity, vec![event("b"), event("c")], ExpectedSeq::Any)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(tx.num_calls(), 1);
    let _ = TransactWriteItemsOutput::builder().build();
}

#[tokio::test]
async fn more_than_50_events_per_append_is_refused() {
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[]);
    let entity = EntityId::new("e-1").unwrap();
    let events = (0..51).map(|i| event(&format!("id-{i}"))).collect();
    let err = DynamoStore::new(client, "t")
        .append(&entity, events, ExpectedSeq::Any)
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("50"), "{err}");
}

#[tokio::test]
async fn put_events_failed_entries_in_the_middle() {
    let rule = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(2)
            .entries(PutEventsResultEntry::builder().event_id("1").build())
            .entries(
                PutEventsResultEntry::builder()
                    .error_code("ThrottlingException")
                    .error_message("Rate exceeded")
                    .build(),
            )
            .entries(
                PutEventsResultEntry::builder()
                    .error_code("MalformedDetail")
                    .error_message("bad")
                    .build(),
            )
            .entries(PutEventsResultEntry::builder().event_id("4").build())
            .build()
    });
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, &[&rule]);
    let entry = |s: u64| BusEntry {
        source: "tideline".into(),
        detail_type: "T".into(),
        detail: "{}".into(),
        entity_id: "e".into(),
        sequence: s,
        trace_header: None,
    };
    let results = EventBridgeBus::new(client, "bus")
        .put_events(&[entry(1), entry(2), entry(3), entry(4)])
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[3].is_ok());
    let r1 = results[1].as_ref().unwrap_err();
    assert_eq!(
        (r1.code.as_str(), r1.class),
        ("ThrottlingException", ErrorClass::Retryable)
    );
    let r2 = results[2].as_ref().unwrap_err();
    assert_eq!(
        (r2.code.as_str(), r2.class),
        ("MalformedDetail", ErrorClass::Permanent)
    );
}

const TRACE: &str = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1";

/// The record's trace rides as the SQS `AWSTraceHeader` system attribute
/// (moto drops it from SendMessageBatch, so it is checked on the request).
#[tokio::test]
async fn send_message_batch_carries_the_trace_header() {
    use aws_sdk_sqs::types::MessageSystemAttributeNameForSends as Name;
    let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
        .match_requests(|input| {
            input.entries().first().is_some_and(|e| {
                e.message_system_attributes()
                    .and_then(|a| a.get(&Name::AwsTraceHeader))
                    .and_then(|v| v.string_value())
                    == Some(TRACE)
            })
        })
        .then_output(|| {
            SendMessageBatchOutput::builder()
                .successful(
                    SendMessageBatchResultEntry::builder()
                        .id("0")
                        .message_id("m0")
                        .md5_of_message_body("x")
                        .build()
                        .unwrap(),
                )
                .set_failed(Some(vec![]))
                .build()
                .unwrap()
        });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, &[&rule]);
    let mut m = msg(0);
    m.trace_header = Some(TRACE.into());
    let results = SqsQueue::new(client, "https://q")
        .send_batch(&[m])
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert_eq!(
        rule.num_calls(),
        1,
        "the request carried the AWSTraceHeader attribute"
    );
}

/// The PutEvents entry carries the event's trace as `TraceHeader`.
#[tokio::test]
async fn put_events_carries_the_trace_header() {
    let rule = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|input| {
            input.entries().first().and_then(|e| e.trace_header()) == Some(TRACE)
        })
        .then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(0)
                .entries(PutEventsResultEntry::builder().event_id("x").build())
                .build()
        });
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, &[&rule]);
    let detail = tideline_core::envelope::EventDetail {
        metadata: tideline_core::envelope::DetailMetadata {
            event_id: "ev-1".into(),
            event_type: "T".into(),
            schema_version: 1,
            entity_id: "e-1".into(),
            sequence: 1,
            occurred_at: "2026-11-23T08:00:00.000000Z".into(),
            stored_at: "2026-11-23T08:00:00.000000Z".into(),
            correlation_id: None,
            test: false,
            replay: false,
            removed_by: None,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        },
        data: serde_json::json!({}),
    };
    let entry = BusEntry::new("tideline", &detail);
    assert_eq!(entry.trace_header.as_deref(), Some(TRACE));
    let results = EventBridgeBus::new(client, "bus")
        .put_events(&[entry])
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert_eq!(rule.num_calls(), 1, "the entry carried TraceHeader");
}
