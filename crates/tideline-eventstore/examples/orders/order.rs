//! The order aggregate of `docs/command-side.md`: load, decide, append,
//! retry on conflict. Shared by the `orders` example and the tests, which
//! run it against `tideline up` and against DynamoDB (moto).

use serde::{Deserialize, Serialize};
use serde_json::json;
use tideline_eventstore::{
    Aggregate, Backend, Error, EventStore, ProposedEvent, RecordedEvent, Snapshotted,
};

/// An order, folded from its events.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub placed: bool,
    pub items: Vec<String>,
    pub total: u64,
    pub shipped: bool,
}

impl Aggregate for Order {
    fn apply(&mut self, event: &RecordedEvent) {
        match event.event_type.as_str() {
            "OrderPlaced" => self.placed = true,
            "ItemAdded" => {
                self.items
                    .push(event.data["sku"].as_str().unwrap_or_default().to_string());
                self.total += event.data["price"].as_u64().unwrap_or_default();
            }
            "OrderShipped" => self.shipped = true,
            // Types this version does not know change nothing.
            _ => {}
        }
    }
}

/// Loads start from the order's snapshot (stored every 100 events by
/// default); a change to `apply` or to the fields bumps `VERSION`, so older
/// snapshots are ignored.
impl Snapshotted for Order {
    const NAME: &'static str = "Order";
    const VERSION: u32 = 1;
}

/// What a customer asks for.
#[derive(Debug, Clone)]
pub enum Command {
    Place,
    AddItem { sku: String, price: u64 },
    Ship,
}

/// The events a command produces on `order`, or why it is refused. Pure: no
/// I/O, so a retry after a conflict decides again on the fresh state.
pub fn decide(order: &Order, command: &Command) -> Result<Vec<ProposedEvent>, String> {
    match command {
        Command::Place if order.placed => Err("the order is placed already".into()),
        Command::Place => Ok(vec![ProposedEvent::new("OrderPlaced", json!({}))]),
        Command::AddItem { .. } if !order.placed => Err("the order is not placed".into()),
        Command::AddItem { .. } if order.shipped => Err("the order has shipped".into()),
        Command::AddItem { sku, price } => Ok(vec![ProposedEvent::new(
            "ItemAdded",
            json!({"sku": sku, "price": price}),
        )]),
        Command::Ship if order.shipped => Err("the order has shipped already".into()),
        Command::Ship if order.items.is_empty() => Err("the order has no items".into()),
        Command::Ship => Ok(vec![ProposedEvent::new(
            "OrderShipped",
            json!({"items": order.items.len(), "total": order.total}),
        )]),
    }
}

/// How a command ended.
#[derive(Debug)]
pub enum Outcome {
    /// Appended: the order's new version, and the conflicts retried first.
    Done { version: u64, conflicts: u32 },
    /// The decision refused it.
    Refused(String),
}

/// Load, decide, append at the version loaded; on a conflict, load again and
/// decide again. The event ids derive from `command_id`, so a command whose
/// answer was lost and is sent again is stored once.
pub async fn execute<B: Backend>(
    store: &EventStore<B>,
    order_id: &str,
    command_id: &str,
    command: &Command,
) -> Result<Outcome, Error> {
    let mut conflicts = 0;
    loop {
        let loaded = store.load_snapshotted::<Order>(order_id).await?;
        let events = match decide(&loaded.state, command) {
            Ok(events) => events,
            Err(why) => return Ok(Outcome::Refused(why)),
        };
        let events = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.with_id(format!("{command_id}-{i}")))
            .collect();
        match store.append(order_id, loaded.expected(), events).await {
            Ok(version) => return Ok(Outcome::Done { version, conflicts }),
            Err(Error::Conflict { .. }) if conflicts < 20 => conflicts += 1,
            Err(e) => return Err(e),
        }
    }
}
