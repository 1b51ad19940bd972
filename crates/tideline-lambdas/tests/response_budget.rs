//! The transformer's response never exceeds Lambda's 6 MB, for any batch the
//! processor configuration in `terraform/` allows (issue "Accounted for at
//! every edge", defect 8). Proved at the worst case: the smallest valid
//! records filling the processor buffer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tideline_core::ingest::IngestConfig;
use tideline_core::limits::LAMBDA_PAYLOAD_BYTES;
use tideline_core::retry::RetryPolicy;
use tideline_lambdas::transform;
use tideline_stages::memory::MemoryQueue;
use tideline_testkit::fixtures::{FirehoseEvent, lambda};

/// The smallest records the default contract accepts, all distinct (a
/// one-character entity, a one-character type, a number as data):
/// `{"entity_id":"a","type":"T","data":0}` is 37 bytes.
fn smallest(i: usize) -> String {
    const ENTITIES: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let entity = ENTITIES[i % ENTITIES.len()] as char;
    format!(
        r#"{{"entity_id":"{entity}","type":"T","data":{}}}"#,
        i / ENTITIES.len()
    )
}

/// How many of the smallest records fill `bytes` of buffer.
fn records_filling(bytes: usize) -> usize {
    let mut total = 0;
    let mut n = 0;
    while total + smallest(n).len() <= bytes {
        total += smallest(n).len();
        n += 1;
    }
    n
}

/// The largest processor buffer the Terraform module allows: the upper bound
/// of its `processor_buffer_size_mb` validation, read from the module itself
/// so the proof follows the configuration.
fn terraform_max_processor_buffer_bytes() -> usize {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../terraform/modules/ingest/variables.tf"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let block = text
        .split("variable \"processor_buffer_size_mb\"")
        .nth(1)
        .expect("the ingest module declares processor_buffer_size_mb");
    let condition = block
        .lines()
        .find(|l| l.contains("condition"))
        .expect("processor_buffer_size_mb has a validation");
    let max_mb: f64 = condition
        .rsplit("<=")
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("the validation's upper bound is a number");
    // Firehose's "MB" for the processor buffer is MiB; count generously.
    (max_mb * 1024.0 * 1024.0) as usize
}

fn invocation(records: usize) -> LambdaEvent<aws_lambda_events::firehose::KinesisFirehoseEvent> {
    let records: Vec<String> = (0..records).map(smallest).collect();
    let payload = FirehoseEvent::new()
        // Firehose's record ids are 56-digit numbers plus a suffix.
        .record_ids(|i| format!("49546986683135544286507457936321625675700192471156785154{i:08}"))
        .build(&records);
    lambda(payload)
}

async fn run(records: usize) -> (Vec<Value>, usize, usize) {
    let state = transform::State {
        max_concurrent_sends: tideline_aws::config::DEFAULT_MAX_CONCURRENT_SENDS,
        queue: MemoryQueue::default(),
        ingest: IngestConfig::default(),
        retry: RetryPolicy::fast(2),
    };
    let event = invocation(records);
    let event = LambdaEvent::new(event.payload.into(), event.context);
    let resp = transform::handler(&state, event).await.unwrap();
    let bytes = serde_json::to_vec(&resp).unwrap().len();
    let value = serde_json::to_value(resp).unwrap();
    let out = value["records"].as_array().unwrap().clone();
    (out, bytes, state.queue.messages().len())
}

#[tokio::test]
async fn worst_case_batch_the_terraform_buffer_allows_fits_the_response() {
    let buffer = terraform_max_processor_buffer_bytes();
    let n = records_filling(buffer);
    let (records, bytes, enqueued) = run(n).await;
    assert_eq!(records.len(), n);
    assert!(
        bytes <= LAMBDA_PAYLOAD_BYTES,
        "{n} smallest records ({buffer} B buffer) answer with {bytes} B, over Lambda's {LAMBDA_PAYLOAD_BYTES}"
    );
    // The configuration allows no batch the budget must cut: all are Ok.
    assert!(
        records.iter().all(|r| r["result"] == "Ok"),
        "a record was cut by the budget"
    );
    assert_eq!(enqueued, n);
    println!(
        "worst case: {n} smallest records in a {buffer} B buffer -> {bytes} B response ({:.1}% of the limit)",
        100.0 * bytes as f64 / LAMBDA_PAYLOAD_BYTES as f64
    );
}

#[tokio::test]
async fn a_batch_over_the_budget_is_cut_before_enqueueing_never_over_6mb() {
    // The largest invocation Lambda can receive: a request just under 6 MB of
    // the smallest records (whatever the buffer setting, Firehose cannot send
    // more in one invocation). The budget must cut it.
    let per_record = serde_json::to_vec(&invocation(1000).payload).unwrap().len() / 1000 + 1;
    let n = (LAMBDA_PAYLOAD_BYTES - 1024) / per_record;
    let request = serde_json::to_vec(&invocation(n).payload).unwrap().len();
    assert!(request <= LAMBDA_PAYLOAD_BYTES, "request {request}");
    let (records, bytes, enqueued) = run(n).await;
    assert_eq!(records.len(), n, "one result per record id");
    assert!(bytes <= LAMBDA_PAYLOAD_BYTES, "response of {bytes} B");
    let ok = records.iter().filter(|r| r["result"] == "Ok").count();
    assert!(ok < n, "the budget cut nothing");
    // Exactly the Ok records were enqueued: a cut record is not in the queue,
    // so Firehose's processing-failed copy is its only copy, with a reason.
    assert_eq!(enqueued, ok);
    // Records are cut from the end: Ok ones form a prefix.
    assert!(records[..ok].iter().all(|r| r["result"] == "Ok"));
    assert!(
        records[ok..]
            .iter()
            .all(|r| r["result"] == "ProcessingFailed")
    );
    println!("largest invocation: {n} records, request {request} B -> response {bytes} B, {ok} Ok");
}

/// The bounds the budget uses are the serialisation's, or above it by little.
#[test]
fn response_record_bounds_match_the_serialisation() {
    use aws_lambda_events::firehose::*;
    let id = "49546986683135544286507457936321625675700192471156785154-0";
    for (data_len, event_type) in [(0usize, "T"), (1, "Order\"Placed"), (1000, "x")] {
        let mut r = KinesisFirehoseResponseRecord::default();
        r.record_id = Some(id.into());
        r.result = Some("ProcessingFailed".into());
        r.data.0 = vec![b'a'; data_len];
        let failed = serde_json::to_string(&r).unwrap().len() + 1;
        let bound = transform::failed_record_bound(id, data_len);
        assert!(
            failed <= bound && bound <= failed + 8,
            "{failed} vs {bound}"
        );
        let mut m = KinesisFirehoseResponseRecordMetadata::default();
        m.partition_keys
            .insert("event_type".into(), event_type.into());
        m.partition_keys.insert("date".into(), "2026-11-29".into());
        r.metadata = m;
        r.result = Some("Ok".into());
        let ok = serde_json::to_string(&r).unwrap().len() + 1;
        let bound = transform::ok_record_bound(id, data_len, event_type);
        assert!(
            ok <= bound && bound <= ok + 3 * event_type.len() + 8,
            "{ok} vs {bound}"
        );
    }
}
