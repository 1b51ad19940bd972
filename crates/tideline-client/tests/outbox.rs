//! The transactional outbox: written in the caller's transaction, published
//! after commit in commit order, once per event id across a crash, refusals
//! recorded with their reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rusqlite::Connection;
use serde_json::json;
use std::sync::Arc;
use support::{NoWait, Plan, Recording};
use tideline_client::{
    Event, EventId, Outbox, OutboxError, Publisher, Relay, RetryPolicy, RowState,
};
use tideline_core::ingest::IngestConfig;

fn db(dir: &tempfile::TempDir) -> Connection {
    let conn = Connection::open(dir.path().join("app.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER)")
        .unwrap();
    conn
}

fn relay(dir: &tempfile::TempDir, t: &Arc<Recording>) -> Relay<Arc<Recording>, NoWait> {
    let publisher = Publisher::new(t.clone(), NoWait).with_retry(RetryPolicy::fast(2));
    Relay::new(db(dir), publisher).unwrap()
}

fn placed(order: &str, n: u32) -> Event {
    Event::new(
        order,
        "OrderPlaced",
        json!({ "n": n, "customer": "Zoë ✓ 日本 🚀" }),
    )
}

/// Places an order: the business row and its event in one transaction.
fn place_order(conn: &mut Connection, outbox: &Outbox, order: &str, n: u32) -> EventId {
    let tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT OR REPLACE INTO orders (id, total) VALUES (?1, ?2)",
        rusqlite::params![order, n],
    )
    .unwrap();
    let id = outbox.enqueue(&tx, placed(order, n)).unwrap();
    tx.commit().unwrap();
    id
}

#[tokio::test]
async fn a_crash_between_commit_and_publish_loses_nothing_and_publishes_each_id_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = db(&dir);
    let outbox = Outbox::open(&app).unwrap();
    let ids: Vec<EventId> = (0..5)
        .map(|n| place_order(&mut app, &outbox, &format!("order-{}", n % 2), n))
        .collect();

    // First relay: the service is down, so nothing is accepted; then it "crashes" (dropped).
    let down = Arc::new(Recording {
        default_plan: Some(Plan::FailCall { retryable: true }),
        ..Recording::default()
    });
    let mut first = relay(&dir, &down);
    let report = first.run_once().await.unwrap();
    assert_eq!((report.published, report.retry_later), (0, 5));
    assert!(down.accepted_ids().is_empty());
    drop(first);
    assert_eq!(Outbox::pending_count(&app).unwrap(), 5);
    assert!(matches!(
        Outbox::state(&app, &ids[0]).unwrap(),
        Some(RowState::Pending {
            attempts: 2,
            last_error: Some(_)
        })
    ));

    // Restart: a new relay publishes every row, in commit order, once.
    let up = Arc::new(Recording::default());
    let mut second = relay(&dir, &up);
    let report = second.run_until_idle().await.unwrap();
    assert_eq!(report.published, 5);
    let published: Vec<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(up.accepted_ids(), published);
    // A further pass sends nothing again.
    assert_eq!(second.run_once().await.unwrap().published, 0);
    assert_eq!(up.accepted_ids().len(), 5);
    assert_eq!(Outbox::pending_count(&app).unwrap(), 0);
    assert!(matches!(
        Outbox::state(&app, &ids[4]).unwrap(),
        Some(RowState::Published { .. })
    ));
    // The bytes are what the caller enqueued, non-ASCII included.
    assert_eq!(
        up.accepted.lock().unwrap()[0].1,
        placed("order-0", 0).to_bytes()
    );
}

#[tokio::test]
async fn a_crash_after_firehose_accepted_but_before_marking_resends_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = db(&dir);
    let outbox = Outbox::open(&app).unwrap();
    let id = place_order(&mut app, &outbox, "order-1", 1);

    // The relay is killed while its call is in flight (the service took the record).
    let t = Arc::new(Recording::default());
    let mut killed = relay(&dir, &t);
    let slow = Arc::new(SlowAfterAccept(t.clone()));
    let publisher = Publisher::new(slow, NoWait);
    let mut in_flight = Relay::new(db(&dir), publisher).unwrap();
    let pass = in_flight.run_once();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), pass)
            .await
            .is_err()
    );
    drop(in_flight);
    assert_eq!(t.accepted_ids(), vec![id.to_string()]);
    assert_eq!(Outbox::pending_count(&app).unwrap(), 1);

    // After a restart the row goes again, with the same bytes and so the same
    // event id: the store de-duplicates it (stored once).
    killed.run_until_idle().await.unwrap();
    assert_eq!(t.accepted_ids(), vec![id.to_string(), id.to_string()]);
    let accepted = t.accepted.lock().unwrap();
    assert_eq!(accepted[0].1, accepted[1].1);
}

/// Accepts through the inner transport, then never answers.
struct SlowAfterAccept(Arc<Recording>);

impl tideline_client::Transport<tideline_client::Prepared> for SlowAfterAccept {
    fn limits(&self) -> tideline_client::BatchLimits {
        tideline_client::BatchLimits::FIREHOSE
    }
    async fn put(&self, batch: &[&tideline_client::Prepared]) -> tideline_client::CallResult {
        let _ = self.0.put(batch).await;
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = db(&dir);
    let outbox = Outbox::open(&app).unwrap();
    {
        let tx = app.transaction().unwrap();
        outbox.enqueue(&tx, placed("order-1", 1)).unwrap();
        tx.rollback().unwrap();
    }
    let t = Arc::new(Recording::default());
    let report = relay(&dir, &t).run_until_idle().await.unwrap();
    assert_eq!(report.published, 0);
    assert!(t.calls().is_empty());
}

#[tokio::test]
async fn a_row_refused_for_good_is_recorded_with_its_reason_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = db(&dir);
    let outbox = Outbox::open(&app).unwrap();
    let small = place_order(&mut app, &outbox, "order-1", 1);
    let big_id = {
        let tx = app.transaction().unwrap();
        let big = Event::new(
            "order-2",
            "OrderPlaced",
            json!({ "blob": "é".repeat(2000) }),
        );
        let id = outbox.enqueue(&tx, big).unwrap();
        tx.commit().unwrap();
        id
    };
    let after = place_order(&mut app, &outbox, "order-2", 3);

    // The deployed queue's MaximumMessageSize is 2 KiB: the relay checks against it.
    let mut ingest = IngestConfig::default();
    ingest.limits.sqs_message_bytes = 2048;
    let t = Arc::new(Recording::default());
    let publisher = Publisher::new(t.clone(), NoWait).with_ingest_config(ingest);
    let mut r = Relay::new(db(&dir), publisher).unwrap();
    let report = r.run_until_idle().await.unwrap();
    assert_eq!((report.published, report.refused), (2, 1));
    assert_eq!(t.accepted_ids(), vec![small.to_string(), after.to_string()]);
    match Outbox::state(&app, &big_id).unwrap() {
        Some(RowState::Refused { code, reason }) => {
            assert_eq!(code, "OverLimit");
            assert!(reason.contains("SQS"), "{reason}");
        }
        other => panic!("expected refused, got {other:?}"),
    }
    // Refused rows are not pending: later passes never send them.
    assert_eq!(r.run_once().await.unwrap(), Default::default());
    assert_eq!(t.calls().len(), 1);
}

#[tokio::test]
async fn enqueue_refuses_what_ingest_would_and_keeps_one_row_per_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = db(&dir);
    let outbox = Outbox::open(&app).unwrap();
    let tx = app.transaction().unwrap();
    let e = outbox
        .enqueue(
            &tx,
            br#"{"entity_id":"order 1","type":"T","data":{}}"#.to_vec(),
        )
        .unwrap_err();
    assert!(matches!(e, OutboxError::Refused(_)), "{e}");
    let a = outbox.enqueue(&tx, placed("order-1", 1)).unwrap();
    let b = outbox.enqueue(&tx, placed("order-1", 1)).unwrap();
    assert_eq!(a, b);
    let clash = placed("order-1", 2).with_id(a.as_str());
    assert!(matches!(
        outbox.enqueue(&tx, clash).unwrap_err(),
        OutboxError::IdConflict { .. }
    ));
    tx.commit().unwrap();
    assert_eq!(Outbox::pending_count(&app).unwrap(), 1);
}

#[tokio::test]
async fn rows_go_out_in_commit_order_and_a_failed_row_goes_first_in_the_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = db(&dir);
    let outbox = Outbox::open(&app).unwrap();
    let ids: Vec<EventId> = (0..6)
        .map(|n| place_order(&mut app, &outbox, "order-1", n))
        .collect();
    // Record 1 fails on both attempts of the first pass; record 1's successors of
    // the same call are taken (Firehose gives no order within a call).
    let t = Arc::new(Recording {
        limits: Some(tideline_client::BatchLimits {
            max_records: 3,
            max_bytes: 1 << 20,
        }),
        ..Recording::with_plans(vec![
            Plan::FailPositions(vec![1]),
            Plan::FailPositions(vec![0]),
        ])
    });
    let mut r = relay(&dir, &t);
    let first = r.run_once().await.unwrap();
    assert_eq!((first.published, first.retry_later), (2, 1));
    r.run_until_idle().await.unwrap();
    let calls: Vec<Vec<EventId>> = t
        .calls()
        .iter()
        .map(|c| c.iter().map(|b| EventId::derive(b)).collect())
        .collect();
    assert_eq!(
        calls,
        vec![
            vec![ids[0].clone(), ids[1].clone(), ids[2].clone()],
            vec![ids[1].clone()],
            // The next pass starts at the oldest pending row.
            vec![ids[1].clone(), ids[3].clone(), ids[4].clone()],
            vec![ids[5].clone()],
        ]
    );
}
