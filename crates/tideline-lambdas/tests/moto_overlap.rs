//! Two event-storer invocations at once on overlapping batches of the same
//! message groups, against moto through the fault proxy (issue 19): the shape
//! of a storer outliving its visibility timeout, so that SQS FIFO hands the
//! group's messages to a second invocation while the first still runs.
//!
//! - batch 1 = m1..m10 of groups g1..g3 (one entity per group), handed to the
//!   real store handler as the Lambda runtime would;
//! - once m1..m3 are stored (read on moto directly), batch 2 = m4..m10 again
//!   plus the new m11..m14 goes to a second handler, with its own client, while
//!   batch 1 is still running: both append m4..m10 at the same time;
//! - every call to DynamoDB goes through the fault proxy, which pauses each
//!   call before it reaches moto and before its answer returns, and from batch
//!   2 on loses some answers of writes that took effect (an HTTP 500, or a
//!   dropped connection);
//! - the harness then plays the FIFO mapping: what a handler reported comes
//!   back, in order, until nothing is reported.
//!
//! Checked from the table, read back with Query (never sorted first): each
//! event is stored exactly once, `seq` is 1..n per entity with no gap, and
//! the `seq` order is the order of the group's messages. Each response obeys
//! the FIFO contract: a reported message's later messages of its group are
//! reported too, and every message not reported (which SQS then deletes) is
//! stored. Only the EventStore port's handler and the item attributes `pk`,
//! `sk`, `seq`, `kind` and `event_id` are relied on, so the test holds for any
//! correct append protocol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tideline_aws::DynamoStore;
use tideline_core::ingest::{IngestConfig, admit};
use tideline_lambdas::store;
use tideline_testkit::fault_proxy::{Fault, FaultProxy, Rule, RuleId};
use tideline_testkit::fixtures::{self, SqsRecord, lambda};
use tideline_testkit::moto;

/// Independent runs, each on its own table, proxy seed and entities.
const ROUNDS: u64 = 6;
/// Messages in all, m1..m14; batch 1 is m1..m10, batch 2 m4..m14.
const MESSAGES: usize = 14;
const GROUPS: usize = 3;
/// The longest pause the proxy adds before a call and before its answer.
const MAX_PAUSE: Duration = Duration::from_millis(20);
/// Chance that a write's answer is lost after it took effect (each kind).
const LOST: f64 = 0.06;
/// DynamoDB's write operations, whichever the append protocol uses.
const WRITES: [&str; 4] = ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"];

/// One SQS message of the run.
#[derive(Debug, Clone)]
struct Message {
    /// `m<n>`, prefixed by the run: what `batchItemFailures` names.
    id: String,
    /// The message group: the entity.
    group: String,
    /// The event id the record carries.
    event_id: String,
    /// The normalised record, as the transformer enqueues it.
    body: String,
}

fn messages(run: &str) -> Vec<Message> {
    (1..=MESSAGES)
        .map(|n| {
            let group = format!("{run}-g{}", (n - 1) % GROUPS + 1);
            let event_id = format!("{group}-m{n}");
            let record = fixtures::record(&group, "ItemAdded")
                .id(&event_id)
                .data(json!({"n": n}))
                .bytes();
            let body = admit(&IngestConfig::default(), &record, chrono::Utc::now())
                .unwrap()
                .body;
            Message {
                id: format!("{run}-m{n}"),
                group,
                event_id,
                body,
            }
        })
        .collect()
}

/// One invocation of the real handler on `batch`, as the Lambda runtime
/// calls it; returns the reported message ids.
async fn invoke(storer: &store::State<DynamoStore>, batch: &[Message]) -> Vec<String> {
    let event = fixtures::sqs_event(
        batch
            .iter()
            .map(|m| SqsRecord::fifo(&m.id, &m.group, &m.body)),
    );
    let response = store::handler(storer, lambda(event))
        .await
        .expect("the storer reports failures per message, never fails the invocation");
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// An entity's event items as Query returns them, in key order: (seq, event id).
async fn stored_events(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    entity: &str,
) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(entity.to_string()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            if item
                .get("kind")
                .and_then(|k| k.as_s().ok())
                .map(String::as_str)
                != Some("event")
            {
                continue;
            }
            let seq = item
                .get("seq")
                .and_then(|s| s.as_n().ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    panic!("{entity}: an event item without a numeric seq: {item:?}")
                });
            let id = item
                .get("event_id")
                .and_then(|s| s.as_s().ok())
                .unwrap_or_else(|| panic!("{entity}: an event item without event_id: {item:?}"));
            out.push((seq, id.clone()));
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return out,
        }
    }
}

/// The event ids stored for `messages`' groups.
async fn stored_ids(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    messages: &[Message],
) -> HashSet<String> {
    let groups: HashSet<&str> = messages.iter().map(|m| m.group.as_str()).collect();
    let mut ids = HashSet::new();
    for group in groups {
        ids.extend(
            stored_events(ddb, table, group)
                .await
                .into_iter()
                .map(|(_, id)| id),
        );
    }
    ids
}

/// The FIFO contract of one response (AWS-CONTRACTS.md): only the batch's
/// messages are reported; a reported message's later messages of the same
/// group are reported too; and a message not reported, which SQS deletes, is
/// stored.
fn assert_fifo_contract(
    what: &str,
    batch: &[Message],
    reported: &[String],
    stored: &HashSet<String>,
) {
    let reported: HashSet<&str> = reported.iter().map(String::as_str).collect();
    let ids: HashSet<&str> = batch.iter().map(|m| m.id.as_str()).collect();
    assert!(
        reported.is_subset(&ids),
        "{what}: reported {reported:?}, not all in the batch"
    );
    let mut failed_groups = HashSet::new();
    for m in batch {
        if reported.contains(m.id.as_str()) {
            failed_groups.insert(m.group.as_str());
        } else {
            assert!(
                !failed_groups.contains(m.group.as_str()),
                "{what}: {} is not reported although an earlier message of {} is: its group's order breaks",
                m.id,
                m.group
            );
            assert!(
                stored.contains(&m.event_id),
                "{what}: {} was not reported, so SQS deletes it, but {} is not stored",
                m.id,
                m.event_id
            );
        }
    }
}

/// Waits until `last`'s event is in the table, read on moto directly: one
/// Query a poll, so batch 2 starts as soon after as it can. Batch 1 appends
/// in order and loses no answer before then, so what comes before it is in.
async fn wait_stored(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    last: &Message,
    batch1: &tokio::task::JoinHandle<(Vec<String>, Instant)>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = stored_events(ddb, table, &last.group).await;
        if events.iter().any(|(_, id)| *id == last.event_id) {
            return;
        }
        assert!(
            !batch1.is_finished(),
            "batch 1 ended before {} was stored",
            last.id
        );
        assert!(
            Instant::now() < deadline,
            "{} not stored after 30 s",
            last.id
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One round; returns the lost answers the proxy injected.
async fn round(round: u64) -> u64 {
    let direct = aws_sdk_dynamodb::Client::new(&moto::sdk_config().await);
    let table = moto::unique("overlap");
    moto::create_event_table(&direct, &table, false).await;
    let proxy = FaultProxy::start(&moto::endpoint(), 19_000 + round).await;
    proxy.set_delays(MAX_PAUSE, MAX_PAUSE);
    // Two Lambda instances: each its own client, as two execution environments have.
    let storer = || async {
        Arc::new(store::State {
            max_concurrent_entities: tideline_aws::config::DEFAULT_MAX_CONCURRENT_ENTITIES,
            store: DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&proxy.sdk_config().await),
                &table,
            ),
        })
    };
    let (first, second) = (storer().await, storer().await);

    let run = moto::unique("ov");
    let all = messages(&run);
    let batch1 = all[..10].to_vec();
    let batch2 = all[3..].to_vec();

    let started1 = Instant::now();
    let task1 = {
        let (storer, batch) = (first.clone(), batch1.clone());
        tokio::spawn(async move { (invoke(&storer, &batch).await, Instant::now()) })
    };
    // m1..m3 are done (an earlier delivery's, as far as SQS knows): the queue
    // hands the rest of the groups to a second invocation while the first runs.
    wait_stored(&direct, &table, &all[2], &task1).await;
    let lost: Vec<RuleId> = WRITES
        .iter()
        .flat_map(|op| {
            [
                proxy.add(Rule::new(op, Fault::FailAfter).probability(LOST)),
                proxy.add(Rule::new(op, Fault::DropAfter).probability(LOST)),
            ]
        })
        .collect();
    let started2 = Instant::now();
    let task2 = {
        let (storer, batch) = (second.clone(), batch2.clone());
        tokio::spawn(async move { (invoke(&storer, &batch).await, Instant::now()) })
    };
    let (reported1, ended1) = task1.await.unwrap();
    let (reported2, _) = task2.await.unwrap();
    assert!(
        ended1 > started2,
        "round {round}: batch 1 ended {:?} after it started, before batch 2 started ({:?}): no overlap",
        ended1 - started1,
        started2 - started1
    );

    // What SQS deletes now must be stored now.
    let stored = stored_ids(&direct, &table, &all).await;
    assert_fifo_contract(
        &format!("round {round} batch 1"),
        &batch1,
        &reported1,
        &stored,
    );
    assert_fifo_contract(
        &format!("round {round} batch 2"),
        &batch2,
        &reported2,
        &stored,
    );

    // The FIFO mapping: batch 2's receipt is the latest for m4..m14, batch
    // 1's for m1..m3; what was reported comes back in order, until none is.
    let mut outstanding: Vec<Message> = all
        .iter()
        .filter(|m| {
            reported2.contains(&m.id)
                || (!batch2.iter().any(|b| b.id == m.id) && reported1.contains(&m.id))
        })
        .cloned()
        .collect();
    let mut redeliveries = 0;
    while !outstanding.is_empty() {
        redeliveries += 1;
        assert!(
            redeliveries <= 30,
            "round {round}: still reported after 30 redeliveries: {outstanding:?}"
        );
        let batch: Vec<Message> = outstanding.iter().take(10).cloned().collect();
        let reported = invoke(
            if redeliveries % 2 == 0 {
                &first
            } else {
                &second
            },
            &batch,
        )
        .await;
        let stored = stored_ids(&direct, &table, &all).await;
        assert_fifo_contract(
            &format!("round {round} redelivery {redeliveries}"),
            &batch,
            &reported,
            &stored,
        );
        outstanding.retain(|m| !batch.iter().any(|b| b.id == m.id) || reported.contains(&m.id));
    }

    // Read back as Query returns it: never sorted here.
    let mut sent: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in &all {
        sent.entry(m.group.as_str())
            .or_default()
            .push(m.event_id.as_str());
    }
    for (group, ids) in &sent {
        let events = stored_events(&direct, &table, group).await;
        let got_ids: Vec<&str> = events.iter().map(|(_, id)| id.as_str()).collect();
        let seqs: Vec<u64> = events.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(
            &got_ids, ids,
            "round {round}, {group}: each event stored once, in the order of its messages (seqs {seqs:?})"
        );
        assert_eq!(
            seqs,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "round {round}, {group}: seq gapless from 1, in key order"
        );
    }
    let lost: u64 = lost.iter().map(|&id| proxy.injected(id)).sum();
    eprintln!(
        "round {round}: batch 2 started {:?} into batch 1, which ran {:?}; reported {} and {}; {redeliveries} redeliveries; {lost} answers lost",
        started2 - started1,
        ended1 - started1,
        reported1.len(),
        reported2.len()
    );
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_storers_on_overlapping_batches_store_each_event_once_gapless_in_order() {
    let mut lost = 0;
    for r in 0..ROUNDS {
        lost += round(r).await;
    }
    // Not vacuous: answers of applied writes were lost on the way.
    assert!(lost > 0, "no answer was lost in {ROUNDS} rounds");
}
