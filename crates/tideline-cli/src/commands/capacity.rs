//! `tideline capacity`: what a deployment needs to sustain a rate of events,
//! hop by hop (function concurrency, the FIFO queue's mode, table partitions
//! and stream shards, PutEvents requests, Firehose's quotas, end-to-end
//! latency), and which limit binds first. The model is
//! [`tideline_core::capacity`]; its flags are `tideline cost`'s where they
//! mean the same setting, with the Terraform module's defaults.
//!
//! `--json` prints the model whole: `inputs`, `transformer`, `storer`,
//! `emitter` (each `records_per_batch`, `chained_calls`, `batch_ms`,
//! `invocations_per_second`, `concurrency`), `fifo_mode_needed`, `partitions`,
//! `stream_shards`, `put_events_per_second`, `latency_fastest_seconds`,
//! `latency_slowest_seconds`, `limits` (highest utilisation first) and
//! `binding` (the first limit's name).

use super::cost::{emit, positive};
use crate::CliError;
use clap::Args;
use std::fmt::Write as _;
use std::process::ExitCode;
use tideline_core::capacity::{self, CapacityInputs};

/// Flags of `tideline capacity`. Defaults are the Terraform module's.
#[derive(Args, Debug, Clone)]
pub struct CapacityArgs {
    /// The sustained rate to plan for, events per second.
    #[arg(long, value_parser = positive)]
    pub events_per_second: f64,
    /// Entities receiving the events (evenly): each is a FIFO message group.
    #[arg(long, default_value_t = 10_000.0, value_parser = positive)]
    pub entities: f64,
    /// Average record size in bytes, as producers send it.
    #[arg(long, default_value_t = 1024.0, value_parser = positive)]
    pub record_bytes: f64,
    /// Wall time of one AWS call from a Lambda, ms (5 is in-region DynamoDB,
    /// SQS and EventBridge; benches/sdk_latency.rs measures at it).
    #[arg(long, default_value_t = 5.0, value_parser = positive)]
    pub aws_call_ms: f64,
    /// A retention is set (Terraform `event_ttl_days`): the head follows each append.
    #[arg(long)]
    pub retention: bool,
    /// Terraform `firehose_processor_buffer_size_mb`.
    #[arg(long, default_value_t = 0.3, value_parser = positive)]
    pub processor_buffer_mb: f64,
    /// Terraform `firehose_processor_buffer_interval_seconds`.
    #[arg(long, default_value_t = 60.0, value_parser = positive)]
    pub processor_buffer_interval_seconds: f64,
    /// `TIDELINE_MAX_CONCURRENT_SENDS` of the transformer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_sends: u32,
    /// Terraform `queue_high_throughput` is false.
    #[arg(long)]
    pub standard_fifo: bool,
    /// Terraform `storer_batch_size`.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub storer_batch_size: u32,
    /// `TIDELINE_MAX_CONCURRENT_ENTITIES` of the storer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_entities: u32,
    /// Terraform `storer_maximum_concurrency`.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub storer_maximum_concurrency: u32,
    /// Terraform `emitter_batch_size`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub emitter_batch_size: u32,
    /// Terraform `emitter_batching_window_seconds`.
    #[arg(long, default_value_t = 1.0)]
    pub emitter_batching_window_seconds: f64,
    /// Terraform `emitter_parallelization_factor`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub emitter_parallelization_factor: u32,
    /// Most events per bus entry (Terraform `bundle_max_events`); 1 = no bundling.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub bundle_max_events: u32,
    /// The account's PutEvents quota, requests/s (10,000 in us-east-1).
    #[arg(long, default_value_t = capacity::PUT_EVENTS_QUOTA, value_parser = positive)]
    pub put_events_quota: f64,
    /// The account's Lambda concurrency quota.
    #[arg(long, default_value_t = capacity::LAMBDA_CONCURRENCY_QUOTA, value_parser = positive)]
    pub lambda_concurrency_quota: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl CapacityArgs {
    fn inputs(&self) -> CapacityInputs {
        CapacityInputs {
            events_per_second: self.events_per_second,
            entities: self.entities,
            record_bytes: self.record_bytes,
            aws_call_ms: self.aws_call_ms,
            retention: self.retention,
            processor_buffer_mb: self.processor_buffer_mb,
            processor_buffer_interval_seconds: self.processor_buffer_interval_seconds,
            transformer_max_concurrent_sends: f64::from(self.max_concurrent_sends),
            queue_high_throughput: !self.standard_fifo,
            storer_batch_size: f64::from(self.storer_batch_size),
            storer_max_concurrent_entities: f64::from(self.max_concurrent_entities),
            storer_maximum_concurrency: f64::from(self.storer_maximum_concurrency),
            emitter_batch_size: f64::from(self.emitter_batch_size),
            emitter_batching_window_seconds: self.emitter_batching_window_seconds,
            emitter_parallelization_factor: f64::from(self.emitter_parallelization_factor),
            bundle_max_events: f64::from(self.bundle_max_events),
            put_events_quota: self.put_events_quota,
            lambda_concurrency_quota: self.lambda_concurrency_quota,
        }
    }
}

/// Runs `tideline capacity`.
pub fn run(args: CapacityArgs) -> Result<ExitCode, CliError> {
    if !(0.0..=300.0).contains(&args.emitter_batching_window_seconds) {
        return Err(CliError::Usage(format!(
            "--emitter-batching-window-seconds must be 0-300 (the stream event source's limit), got {}",
            args.emitter_batching_window_seconds
        )));
    }
    let model = capacity::model(&args.inputs());
    let binding = model.binding().cloned();
    if args.json {
        let mut value =
            serde_json::to_value(&model).map_err(|e| CliError::failed("writing JSON", e))?;
        value["binding"] = serde_json::json!(binding.as_ref().map(|l| l.name.clone()));
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| CliError::failed("writing JSON", e))?;
        emit(&format!("{text}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let i = &model.inputs;
    let _ = writeln!(
        out,
        "Tideline at {} events/s over {} entities, {} B records, {} ms per AWS call",
        i.events_per_second, i.entities, i.record_bytes, i.aws_call_ms
    );
    let _ = writeln!(
        out,
        "\n  {:<12} {:>10} {:>14} {:>10} {:>14} {:>12}",
        "function", "records", "chained calls", "ms/batch", "invocations/s", "concurrency"
    );
    for (name, s) in [
        ("transformer", &model.transformer),
        ("event-storer", &model.storer),
        ("event-emitter", &model.emitter),
    ] {
        let _ = writeln!(
            out,
            "  {:<12} {:>10.0} {:>14.1} {:>10.1} {:>14.1} {:>12.1}",
            name,
            s.records_per_batch,
            s.chained_calls,
            s.batch_ms,
            s.invocations_per_second,
            s.concurrency
        );
    }
    let _ = writeln!(
        out,
        "\n  SQS FIFO mode needed: {} (configured: {})",
        model.fifo_mode_needed,
        if i.queue_high_throughput {
            "high-throughput"
        } else {
            "standard"
        }
    );
    let _ = writeln!(
        out,
        "  DynamoDB: {:.0} partition(s), {:.0} stream shard(s)",
        model.partitions, model.stream_shards
    );
    let _ = writeln!(
        out,
        "  EventBridge: {:.1} PutEvents requests/s (quota {})",
        model.put_events_per_second, i.put_events_quota
    );
    let _ = writeln!(
        out,
        "  Latency, put to bus: {:.2} s to {:.2} s (processor buffer, handlers, emitter window; plus DynamoDB Streams and EventBridge delivery, which AWS does not bound)",
        model.latency_fastest_seconds, model.latency_slowest_seconds
    );
    let _ = writeln!(
        out,
        "\n  {:<36} {:>14} {:>14} {:>8}  source",
        "limit", "needed", "available", "used"
    );
    for l in &model.limits {
        let _ = writeln!(
            out,
            "  {:<36} {:>14.1} {:>14.1} {:>7.0}%  {} ({})",
            l.name,
            l.needed,
            l.available,
            l.utilisation * 100.0,
            l.source,
            l.unit
        );
    }
    match binding {
        Some(l) if l.utilisation > 1.0 => {
            let _ = writeln!(
                out,
                "\nBinds first: {} at {:.0}% — {}; the deployment cannot sustain this rate as configured.",
                l.name,
                l.utilisation * 100.0,
                l.remedy
            );
        }
        Some(l) => {
            let _ = writeln!(
                out,
                "\nBinds first: {} at {:.0}% (headroom ×{:.1}); when it binds: {}.",
                l.name,
                l.utilisation * 100.0,
                1.0 / l.utilisation.max(1e-9),
                l.remedy
            );
        }
        None => {}
    }
    emit(&out);
    Ok(ExitCode::SUCCESS)
}
