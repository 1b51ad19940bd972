//! The worked example of `docs/command-side.md`: an order aggregate over
//! Tideline's event store, against `tideline up` (`--endpoint`) or directly
//! against the DynamoDB table (`--dynamodb-table`, with the AWS SDK's usual
//! settings; `AWS_ENDPOINT_URL` points it at moto).
//!
//! ```text
//! orders --endpoint http://127.0.0.1:4566 place order-7 --command c-1
//! orders --endpoint http://127.0.0.1:4566 add-item order-7 --command c-2 --sku A-1 --price 40
//! orders --endpoint http://127.0.0.1:4566 show order-7
//! orders --endpoint http://127.0.0.1:4566 contend order-8 --writers 8
//! ```
#![allow(clippy::print_stdout)]

mod order;

use clap::{Parser, Subcommand};
use order::{Command, Order, Outcome, execute};
use std::process::ExitCode;
use tideline_eventstore::{Backend, Direct, EventStore, Expected, ProposedEvent};

#[derive(Parser)]
#[command(about = "An order aggregate on Tideline's event store")]
struct Args {
    /// Tideline's HTTP API (`tideline up`).
    #[arg(
        long,
        default_value = "http://127.0.0.1:4566",
        conflicts_with = "dynamodb_table"
    )]
    endpoint: String,
    /// Append directly to this DynamoDB events table instead.
    #[arg(long)]
    dynamodb_table: Option<String>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Place an order.
    Place {
        order: String,
        /// The command's id: sending it again stores nothing twice.
        #[arg(long)]
        command: String,
    },
    /// Add an item.
    AddItem {
        order: String,
        #[arg(long)]
        command: String,
        #[arg(long)]
        sku: String,
        #[arg(long)]
        price: u64,
    },
    /// Ship the order.
    Ship {
        order: String,
        #[arg(long)]
        command: String,
    },
    /// Print the order, folded from its events.
    Show { order: String },
    /// Place the order, then let `writers` concurrent writers add one item
    /// each at the version they loaded, retrying on conflict.
    Contend {
        order: String,
        #[arg(long, default_value_t = 8)]
        writers: u32,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match &args.dynamodb_table {
        Some(table) => {
            let config = aws_config::load_from_env().await;
            let client = aws_sdk_dynamodb::Client::new(&config);
            run(
                EventStore::new(Direct::new(tideline_aws::DynamoStore::new(client, table))),
                args.action,
            )
            .await
        }
        None => run(EventStore::http(&args.endpoint), args.action).await,
    }
}

async fn run<B: Backend + 'static>(store: EventStore<B>, action: Action) -> ExitCode {
    let (order, command_id, command) = match action {
        Action::Place { order, command } => (order, command, Command::Place),
        Action::AddItem {
            order,
            command,
            sku,
            price,
        } => (order, command, Command::AddItem { sku, price }),
        Action::Ship { order, command } => (order, command, Command::Ship),
        Action::Show { order } => {
            return match store.load::<Order>(&order).await {
                Ok(loaded) => {
                    let o = loaded.state;
                    println!(
                        "{order} at version {}: placed={} items={:?} total={} shipped={}",
                        loaded.version, o.placed, o.items, o.total, o.shipped
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            };
        }
        Action::Contend { order, writers } => return contend(store, &order, writers).await,
    };
    match execute(&store, &order, &command_id, &command).await {
        Ok(Outcome::Done { version, conflicts }) => {
            println!("{order} is at version {version} ({conflicts} conflicts retried)");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Refused(why)) => {
            eprintln!("refused: {why}");
            ExitCode::from(2)
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &tideline_eventstore::Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

async fn contend<B: Backend + 'static>(
    store: EventStore<B>,
    order: &str,
    writers: u32,
) -> ExitCode {
    // A stale writer first: it expects the order not to exist yet, and the
    // place below makes that wrong.
    if let Err(e) = execute(&store, order, &format!("{order}-place"), &Command::Place).await {
        return fail(&e);
    }
    match store
        .append(
            order,
            Expected::NoStream,
            vec![ProposedEvent::new("OrderPlaced", serde_json::json!({}))],
        )
        .await
    {
        Err(e @ tideline_eventstore::Error::Conflict { .. }) => println!("typed conflict: {e}"),
        other => {
            eprintln!("expected a conflict, got {other:?}");
            return ExitCode::from(1);
        }
    }
    let store = std::sync::Arc::new(store);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, order) = (store.clone(), order.to_string());
        tasks.push(async move {
            let command = Command::AddItem {
                sku: format!("sku-{w}"),
                price: 10,
            };
            execute(&*store, &order, &format!("{order}-w{w}"), &command).await
        });
    }
    let mut conflicts = 0;
    for result in futures::future::join_all(tasks).await {
        match result {
            Ok(Outcome::Done { conflicts: c, .. }) => conflicts += c,
            Ok(Outcome::Refused(why)) => {
                eprintln!("refused: {why}");
                return ExitCode::from(1);
            }
            Err(e) => return fail(&e),
        }
    }
    match store.load::<Order>(order).await {
        Ok(loaded) if loaded.state.items.len() == writers as usize => {
            println!(
                "contend OK: {writers} writers, {conflicts} conflicts retried, {order} at version {} with {} items",
                loaded.version,
                loaded.state.items.len()
            );
            ExitCode::SUCCESS
        }
        Ok(loaded) => {
            eprintln!(
                "contend FAILED: {} items for {writers} writers",
                loaded.state.items.len()
            );
            ExitCode::from(1)
        }
        Err(e) => fail(&e),
    }
}
