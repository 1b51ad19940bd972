//! `tideline cost`: the monthly AWS bill of a deployment, per service and per
//! million events, with the formula of each line, next to the reference
//! design costed the same way. The numbers come from
//! [`tideline_core::cost`], which sizes the items the store really writes.
//!
//! `--json` prints `{"per_million_usd", "monthly_usd", "services": [{"service",
//! "monthly_usd", "per_million_usd", "formula"}…]}` plus `reference`, `inputs`
//! and `store` (units and item sizes per event).

use crate::CliError;
use clap::{Args, ValueEnum};
use std::process::ExitCode;
use tideline_core::cost::{self, CostInputs, Payload};

#[derive(ValueEnum, Debug, Clone, Copy)]
enum PayloadArg {
    /// Business JSON (an order with line items).
    Json,
    /// Random text that deflating cannot shrink (the store's worst case).
    Random,
}

/// Flags of `tideline cost`. Defaults are the Terraform module's.
#[derive(Args, Debug, Clone)]
pub struct CostArgs {
    /// Events per month.
    #[arg(long, value_parser = positive)]
    pub events_per_month: f64,
    /// Average record size in bytes, as producers send it.
    #[arg(long, default_value_t = 1024)]
    pub record_bytes: usize,
    /// What the records' payload looks like.
    #[arg(long, value_enum, default_value = "json")]
    payload: PayloadArg,
    /// Events per entity over its life (its head item is written once).
    #[arg(long, default_value_t = 1000.0, value_parser = positive)]
    pub events_per_entity: f64,
    /// A retention is set (Terraform `event_ttl_days`): the head follows each append.
    #[arg(long)]
    pub retention: bool,
    /// Terraform `firehose_processor_buffer_size_mb`.
    #[arg(long, default_value_t = 0.3, value_parser = positive)]
    pub processor_buffer_mb: f64,
    /// Terraform `firehose_processor_buffer_interval_seconds` (0-900).
    #[arg(long, default_value_t = 60.0, value_parser = seconds_0_to_900)]
    pub processor_interval_seconds: f64,
    /// Terraform `emitter_batching_window_seconds` (0-300).
    #[arg(long, default_value_t = 1.0, value_parser = seconds_0_to_300)]
    pub emitter_window_seconds: f64,
    /// Terraform `low_latency = true`: no processor buffering interval and no
    /// emitter batching window (overrides the two flags above). The output
    /// says what it adds to the default settings' bill.
    #[arg(long)]
    pub low_latency: bool,
    /// Terraform `storer_batch_size`.
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    pub storer_batch_size: f64,
    /// Terraform `emitter_batch_size`.
    #[arg(long, default_value_t = 100.0, value_parser = positive)]
    pub emitter_batch_size: f64,
    /// Memory of each function, MB (Terraform `transformer.memory_mb` etc.).
    #[arg(long, default_value_t = 256.0, value_parser = positive)]
    pub memory_mb: f64,
    /// Distinct event types (the lake's type partitions).
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    pub event_types: f64,
    /// Wall time of one AWS call from a Lambda, ms.
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    pub aws_call_ms: f64,
    /// Most events per bus entry (Terraform `bundle_max_events`); 1 = no bundling.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub bundle_max_events: u32,
    /// Months of events the table keeps (storage and point-in-time recovery).
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    pub retained_months: f64,
    /// Print JSON.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print Markdown tables (what docs/cost.md shows; a test compares them).
    #[arg(long)]
    pub markdown: bool,
}

pub(crate) fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

fn seconds_in(s: &str, max: f64) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=max).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to {max}")),
    }
}

fn seconds_0_to_900(s: &str) -> Result<f64, String> {
    seconds_in(s, 900.0)
}

fn seconds_0_to_300(s: &str) -> Result<f64, String> {
    seconds_in(s, 300.0)
}

impl CostArgs {
    fn inputs(&self) -> CostInputs {
        CostInputs {
            events_per_month: self.events_per_month,
            record_bytes: self.record_bytes,
            payload: match self.payload {
                PayloadArg::Json => Payload::Json,
                PayloadArg::Random => Payload::Random,
            },
            events_per_entity: self.events_per_entity,
            retention: self.retention,
            processor_buffer_mb: self.processor_buffer_mb,
            processor_interval_seconds: if self.low_latency {
                0.0
            } else {
                self.processor_interval_seconds
            },
            emitter_window_seconds: if self.low_latency {
                0.0
            } else {
                self.emitter_window_seconds
            },
            storer_batch_size: self.storer_batch_size,
            emitter_batch_size: self.emitter_batch_size,
            memory_mb: self.memory_mb,
            event_types: self.event_types,
            aws_call_ms: self.aws_call_ms,
            bundle_max_events: f64::from(self.bundle_max_events),
            retained_months: self.retained_months,
            ..CostInputs::default()
        }
    }
}

/// Runs `tideline cost`.
pub fn run(args: CostArgs) -> Result<ExitCode, CliError> {
    if args.record_bytes < 200 || args.record_bytes > tideline_core::limits::FIREHOSE_RECORD_BYTES {
        return Err(CliError::Usage(format!(
            "--record-bytes must be 200–{} (a record with its envelope, up to Firehose's record limit), got {}",
            tideline_core::limits::FIREHOSE_RECORD_BYTES,
            args.record_bytes
        )));
    }
    let inputs = args.inputs();
    let (bill, store) = cost::tideline(&inputs)
        .ok_or_else(|| CliError::Runtime("the representative record did not pass ingest".into()))?;
    let (reference, reference_wru) = cost::reference(&inputs)
        .ok_or_else(|| CliError::Runtime("the representative record did not pass ingest".into()))?;
    let bundling_saves = cost::bundling_saving(&inputs).unwrap_or(0.0);
    // What the low-latency setting adds to these inputs with the defaults'
    // interval and window.
    let low_latency_adds = if args.low_latency {
        let standard = CostInputs {
            processor_interval_seconds: args.processor_interval_seconds,
            emitter_window_seconds: args.emitter_window_seconds,
            ..inputs.clone()
        };
        cost::low_latency_extra(&standard)
    } else {
        None
    };
    if args.json {
        let out = serde_json::json!({
            "bundling_saves_monthly_usd": bundling_saves,
            "low_latency_adds_monthly_usd": low_latency_adds,
            "per_million_usd": bill.per_million_usd,
            "monthly_usd": bill.monthly_usd,
            "services": bill.services,
            "store": store,
            "reference": {
                "per_million_usd": reference.per_million_usd,
                "monthly_usd": reference.monthly_usd,
                "services": reference.services,
                "write_units_per_event": reference_wru,
            },
            "inputs": inputs,
        });
        let text =
            serde_json::to_string_pretty(&out).map_err(|e| CliError::failed("writing JSON", e))?;
        emit(&format!("{text}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    if args.markdown {
        emit(&markdown(&inputs, &bill, &reference, reference_wru));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "Tideline, {:.0} events/month of {} B ({:?} payload): ${:.2}/month, ${:.4} per million events",
        inputs.events_per_month,
        inputs.record_bytes,
        inputs.payload,
        bill.monthly_usd,
        bill.per_million_usd
    );
    let _ = writeln!(
        out,
        "  DynamoDB per event: {} WRU + {} RRU (event item {} B{}, marker {} B)",
        store.write_units,
        store.read_units,
        store.event_item_bytes,
        if store.deflated {
            " with its payload deflated"
        } else {
            ""
        },
        store.marker_item_bytes
    );
    print_table(&mut out, &bill);
    if args.bundle_max_events > 1 {
        let _ = writeln!(
            out,
            "  Bundling up to {} events per bus entry saves ${bundling_saves:.2}/month",
            args.bundle_max_events
        );
    }
    if let Some(extra) = low_latency_adds {
        let _ = writeln!(
            out,
            "  Low latency (no processor buffering interval, no emitter batching window) adds ${extra:.2}/month to the bill with a {} s interval and a {} s window",
            args.processor_interval_seconds, args.emitter_window_seconds
        );
    }
    let _ = writeln!(
        out,
        "\nReference design (one SendMessage, one PutItem of {reference_wru} WRU, one PutEvents per record): ${:.2}/month, ${:.4} per million events",
        reference.monthly_usd, reference.per_million_usd
    );
    print_table(&mut out, &reference);
    let _ = writeln!(
        out,
        "\nTideline / reference: {:.2}×",
        bill.per_million_usd / reference.per_million_usd
    );
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

/// Both bills as Markdown tables, the figures docs/cost.md shows.
fn markdown(
    inputs: &CostInputs,
    bill: &cost::Bill,
    reference: &cost::Bill,
    reference_wru: u64,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let table = |out: &mut String, b: &cost::Bill| {
        let _ = writeln!(
            out,
            "| line | $/month | $ per million events |\n|---|--:|--:|"
        );
        for l in &b.services {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.4} |",
                l.service, l.monthly_usd, l.per_million_usd
            );
        }
        let _ = writeln!(
            out,
            "| **total** | **{:.2}** | **{:.4}** |",
            b.monthly_usd, b.per_million_usd
        );
    };
    let _ = writeln!(
        out,
        "Tideline, {:.0} events/month of {} B ({:?} payload), {} month(s) of events kept:\n",
        inputs.events_per_month, inputs.record_bytes, inputs.payload, inputs.retained_months
    );
    table(&mut out, bill);
    let _ = writeln!(
        out,
        "\nReference design (Node.js on x86_64 at {} MB; one SendMessage on one message group, one PutItem of {reference_wru} WRU, one PutEvents per record):\n",
        inputs.reference_memory_mb
    );
    table(&mut out, reference);
    let _ = writeln!(
        out,
        "\nTideline / reference: {:.2}×",
        bill.per_million_usd / reference.per_million_usd
    );
    out
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn print_table(out: &mut String, bill: &cost::Bill) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "  {:<32} {:>12} {:>12}  formula",
        "service", "$/month", "$/M events"
    );
    for line in &bill.services {
        let _ = writeln!(
            out,
            "  {:<32} {:>12.2} {:>12.4}  {}",
            line.service, line.monthly_usd, line.per_million_usd, line.formula
        );
    }
}
