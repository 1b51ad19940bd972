//! `tideline demo`: a throwaway stack, a realistic order-flow sample pushed
//! through the Firehose API (exactly as an AWS SDK would send it), the events
//! shown as they reach a log target, and a summary.

use crate::CliError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tideline_core::route::parse_rules;
use tideline_local::{LocalConfig, LocalStack};

/// Flags of `tideline demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Orders to simulate (each goes through placed → paid → shipped → delivered).
    #[arg(long, default_value_t = 25)]
    pub orders: usize,
    /// Keep the data directory instead of deleting it.
    #[arg(long)]
    pub keep: bool,
    /// Print every delivered event (otherwise the first 12 and a count).
    #[arg(long)]
    pub verbose: bool,
}

const CUSTOMERS: [&str; 8] = [
    "Zoë Ålund",
    "Antonín Dvořák",
    "佐藤 花子",
    "Łukasz Wróbel",
    "Ngozi Okafor",
    "José Ñúñez",
    "Ахмед Алиев",
    "Siobhán Ó Briain",
];
const CITIES: [&str; 6] = ["Malmö", "Brno", "東京", "Kraków", "Lagos", "São Paulo"];
const STEPS: [&str; 4] = [
    "OrderPlaced",
    "PaymentAuthorized",
    "OrderShipped",
    "OrderDelivered",
];

/// The sample: each order's events in order, interleaved across orders, plus two broken records.
fn sample(orders: usize) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    for (step_no, step) in STEPS.iter().enumerate() {
        for o in 0..orders {
            let order = format!("order-{:04}", o + 1);
            let data = match step_no {
                0 => {
                    json!({"customer": CUSTOMERS[o % CUSTOMERS.len()], "city": CITIES[o % CITIES.len()], "items": (o % 3) + 1, "total": {"amount": 1999 + 250 * o, "currency": "EUR"}})
                }
                1 => {
                    json!({"method": if o % 2 == 0 { "card" } else { "sepa" }, "authorized": 1999 + 250 * o})
                }
                2 => json!({"carrier": "PostNord", "tracking": format!("PN{:08}", 7_300_000 + o)}),
                _ => json!({"signed_by": CUSTOMERS[o % CUSTOMERS.len()]}),
            };
            let record = json!({"entity_id": order, "type": step, "data": data, "id": format!("{order}-{step}"), "correlation_id": format!("checkout-{o}")});
            records.push(record.to_string().into_bytes());
        }
        if step_no == 1 {
            // Two broken records among the good ones: rejected with a reason, never blocking.
            records.push(br#"{"entity_id": "order-0001", "data": {}}"#.to_vec());
            records.push(b"this is not json".to_vec());
        }
    }
    records
}

async fn put_batch(
    client: &reqwest::Client,
    url: &str,
    records: &[Vec<u8>],
) -> Result<Value, CliError> {
    let body = json!({
        "DeliveryStreamName": "tideline-ingest",
        "Records": records.iter().map(|r| json!({"Data": STANDARD.encode(r)})).collect::<Vec<_>>(),
    });
    let resp = client
        .post(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| CliError::failed("PutRecordBatch", e))?;
    resp.json::<Value>()
        .await
        .map_err(|e| CliError::failed("PutRecordBatch response", e))
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<ExitCode, CliError> {
    let dir = tempfile::Builder::new()
        .prefix("tideline-demo-")
        .tempdir()
        .map_err(|e| CliError::failed("temp dir", e))?;
    let log_path = dir.path().join("events.jsonl");
    let rules = parse_rules(&json!([{"name": "demo-log", "event_pattern": {"source": ["tideline"]}, "target": {"type": "log", "path": log_path}}]).to_string())
        .map_err(|e| CliError::failed("the demo's rules", e))?;
    let config = LocalConfig {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0"
            .parse()
            .map_err(|e| CliError::failed("the demo's listen address", e))?,
        rules,
        ..LocalConfig::default()
    };
    let stack = LocalStack::start(config)
        .await
        .map_err(|e| CliError::failed("starting the stack", e))?;
    let url = format!("http://{}/", stack.local_addr());
    let mut deliveries = stack.deliveries();
    println!("tideline demo: a throwaway stack is up at {url}");

    let records = sample(args.orders.max(1));
    let started = Instant::now();
    let client = reqwest::Client::new();
    let (mut accepted, mut failed) = (0u64, 0u64);
    for chunk in records.chunks(50) {
        let resp = put_batch(&client, &url, chunk).await?;
        let f = resp["FailedPutCount"].as_u64().unwrap_or(0);
        failed += f;
        accepted += chunk.len() as u64 - f;
    }
    println!(
        "pushed {} records through Firehose PutRecordBatch ({accepted} accepted, {failed} failed)\n",
        records.len()
    );

    let expected = (args.orders.max(1) * STEPS.len()) as u64;
    let mut shown = 0u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while shown < expected && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), deliveries.recv()).await {
            Ok(Ok(d)) => {
                shown += 1;
                if args.verbose || shown <= 12 {
                    let e: Value = serde_json::from_str(&d.event).unwrap_or(Value::Null);
                    let m = &e["detail"]["metadata"];
                    println!(
                        "  → {} #{} {:<18} {}",
                        m["entity_id"].as_str().unwrap_or("?"),
                        m["sequence"],
                        e["detail-type"].as_str().unwrap_or("?"),
                        e["detail"]["data"]
                    );
                } else if shown == 13 {
                    println!("  … (use --verbose to see every event)");
                }
            }
            // A slow terminal may fall behind the live copy; the log target still has every event.
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(skipped))) => shown += skipped,
            Ok(Err(_)) | Err(_) => {}
        }
    }
    let idle = stack.wait_idle(Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    let m = stack.shared().metrics();
    println!("\nsummary");
    println!("  records sent          {}", records.len());
    println!(
        "  rejected at transform {} (with reasons, in the lake's processing-failed/)",
        m["transform"]["failed"]
    );
    println!(
        "  events stored         {} across {} entities (gapless seq per entity)",
        m["events_stored"], m["entities"]
    );
    println!("  events emitted        {}", m["emit"]["sent"]);
    println!("  delivered to log      {shown}");
    println!(
        "  elapsed               {:.0} ms",
        elapsed.as_secs_f64() * 1000.0
    );
    stack.shutdown().await;
    // Paths and commands are printed only when they still work: without
    // --keep the directory is deleted and the server is stopped.
    if args.keep {
        let kept = dir.keep();
        println!("  data kept in          {}", kept.display());
        println!(
            "  delivered events in   {}",
            kept.join("events.jsonl").display()
        );
        println!(
            "  look again:           tideline up --data-dir {} (then curl http://127.0.0.1:4566/entities/order-0001/events)",
            kept.join("data").display()
        );
    } else {
        println!(
            "  the demo's data is deleted; run `tideline demo --keep` to keep it, or `tideline up` for a stack that stays up"
        );
    }
    match idle {
        Ok(()) if shown == expected => Ok(ExitCode::SUCCESS),
        Ok(()) => Err(CliError::Runtime(format!(
            "expected {expected} deliveries, saw {shown}"
        ))),
        Err(e) => Err(CliError::failed("waiting for the pipeline to go idle", e)),
    }
}
