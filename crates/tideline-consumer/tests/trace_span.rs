//! Trace propagation reaches the consumer: the guard runs each event inside a
//! span carrying the producer's trace id, so a handler's log lines join the
//! trace of the record that caused them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::sync::{Arc, Mutex};
use tideline_consumer::{Guard, IntegrationEvent, MemoryCheckpoints};
use tideline_testkit::fixtures::BusEvent;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_handler_runs_in_a_span_with_the_events_trace_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let event: IntegrationEvent<Value> = BusEvent::new("o-1", 1)
        .event_type("OrderPlaced")
        .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .read();
    let guard = Guard::new(MemoryCheckpoints::new(), "orders");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(guard.handle(event, |_e: IntegrationEvent<Value>| async {
            tracing::info!("handled");
            Ok(
                Box::new(|_: &mut std::collections::BTreeMap<String, Value>| {})
                    as tideline_consumer::memory::MemoryWrite,
            )
        }))
        .unwrap();
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"handled\""))
        .expect("the handler logged");
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        v["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{line}"
    );
    assert_eq!(
        v["span"]["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
}
