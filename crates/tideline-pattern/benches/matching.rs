//! Events per second through RuleSets of 1, 10 and 100 realistic rules, next to
//! the cost of `serde_json::from_str` of the same event as a baseline.

// Fixture setup: a bad fixture should stop the bench at once.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tideline_pattern::{Pattern, RuleSet};

/// A Tideline CDC event as the emitter publishes it.
const EVENT: &str = r#"{
  "version": "0",
  "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "OrderPlaced",
  "source": "tideline",
  "account": "111122223333",
  "time": "2026-11-23T08:15:30Z",
  "region": "eu-west-1",
  "resources": ["arn:aws:dynamodb:eu-west-1:111122223333:table/tideline-events"],
  "detail": {
    "entity_id": "order-7f3a91",
    "entity_type": "order",
    "sequence": 42,
    "event_id": "01JD8ZB6Q6C2M3T1W4X5Y6Z7A8",
    "payload": {
      "amount": 129.5,
      "currency": "EUR",
      "channel": "web",
      "customer": {"id": "cust-0192", "tier": "gold", "country": "DE", "ip": "10.20.30.40"},
      "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}, {"sku": "C-3", "qty": 5}]
    }
  }
}"#;

const TYPES: &[&str] = &[
    "OrderPlaced",
    "OrderPaid",
    "OrderShipped",
    "OrderCancelled",
    "CustomerCreated",
    "CustomerUpdated",
    "InvoiceIssued",
    "EventExpired",
    "StockReserved",
    "RefundRequested",
];

/// Rule `i`: a mix of the shapes real rules take, over all operators.
fn rule(i: usize) -> Value {
    let t = TYPES[i % TYPES.len()];
    match i % 10 {
        0 => json!({"source": ["tideline"], "detail-type": [t]}),
        1 => {
            json!({"source": ["tideline"], "detail-type": [t, "OrderPaid"], "detail": {"payload": {"amount": [{"numeric": [">", i, "<=", 10_000]}]}}})
        }
        2 => {
            json!({"source": ["tideline"], "detail-type": [{"anything-but": ["EventExpired"]}], "detail": {"entity_type": [format!("type-{i}")]}})
        }
        3 => {
            json!({"source": ["tideline"], "detail": {"entity_id": [{"prefix": format!("order-{:x}", i)}]}})
        }
        4 => {
            json!({"detail-type": [t], "detail": {"payload": {"customer": {"tier": [{"equals-ignore-case": "GOLD"}], "country": ["DE", "AT", "CH"]}}}})
        }
        5 => {
            json!({"source": ["tideline"], "detail-type": [t], "detail": {"payload": {"items": {"sku": [{"wildcard": "B-*"}], "qty": [{"numeric": [">=", 1]}]}}}})
        }
        6 => {
            json!({"source": ["tideline"], "$or": [{"detail-type": [t]}, {"detail": {"payload": {"channel": [format!("partner-{i}")]}}}]})
        }
        7 => {
            json!({"source": [format!("svc-{i}")], "detail": {"payload": {"customer": {"ip": [{"cidr": "10.0.0.0/8"}]}}}})
        }
        8 => {
            json!({"source": ["tideline"], "detail-type": [t], "detail": {"payload": {"refund": [{"exists": false}], "currency": [{"anything-but": {"prefix": "X"}}]}}})
        }
        _ => {
            json!({"account": ["111122223333"], "region": ["eu-west-1"], "detail-type": [{"suffix": "Placed"}], "detail": {"sequence": [{"numeric": [">", i]}]}})
        }
    }
}

fn rules(n: usize) -> RuleSet<usize> {
    let mut set = RuleSet::new();
    for i in 0..n {
        set.add(Pattern::from_value(&rule(i)).expect("valid bench rule"), i);
    }
    set
}

fn bench(c: &mut Criterion) {
    let event: Value = serde_json::from_str(EVENT).expect("valid bench event");
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Elements(1));

    group.bench_function("baseline serde_json::from_str", |b| {
        b.iter(|| black_box(serde_json::from_str::<Value>(black_box(EVENT)).ok()))
    });
    let one = Pattern::from_value(&rule(1)).expect("valid bench rule");
    group.bench_function("Pattern::matches (1 pattern)", |b| {
        b.iter(|| black_box(one.matches(black_box(&event))))
    });
    group.bench_function("Pattern::matches_json (1 pattern)", |b| {
        b.iter(|| black_box(one.matches_json(black_box(EVENT)).ok()))
    });
    for n in [1, 10, 100] {
        let set = rules(n);
        let matched = set.matching(&event).count();
        group.bench_function(
            format!("RuleSet::matching ({n} rules, {matched} match)"),
            |b| b.iter(|| black_box(set.matching(black_box(&event)).count())),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
