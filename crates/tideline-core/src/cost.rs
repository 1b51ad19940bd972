//! What Tideline costs on AWS per month and per million events, line by line,
//! next to the reference design it replaces, costed the same way
//! (`tideline cost`, `docs/cost.md`).
//!
//! The DynamoDB lines come from the items the store really writes: a
//! representative record of the requested size is normalised by ingest and
//! laid out by [`crate::item`], and the units per event follow the append
//! protocol of decision 0009 (a test in `tideline-stages` holds them equal to
//! what an append against the in-memory table is billed). Batch sizes, memory
//! sizes and buffers are the Terraform module's defaults (a test reads
//! `terraform/variables.tf`), and each can be overridden.
//!
//! Lambda duration is modelled, not measured: each invocation waits
//! `aws_call_ms` per sequential AWS call and spends `cpu_us_per_event` per
//! record. The reference design's CPU per record is Tideline's times the ratios
//! measured side by side (issue 12: transformer 42×, storer 2.1×, emitter 7.4×).

use crate::ingest::{IngestConfig, normalize_record};
use crate::item::{self, HeadState, event_item, head_item, marker_item, next_slot};
use crate::keys::format_timestamp;
use crate::limits::{DEFAULT_PUT_EVENTS_REQUEST_BYTES, PUT_EVENTS_ENTRIES, SQS_BATCH_ENTRIES};
use crate::{StoredEvent, envelope::EventDetail};
use serde::Serialize;

/// us-east-1 on-demand prices (issue 12), in USD.
pub mod price {
    /// DynamoDB, per write unit (on-demand).
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// DynamoDB, per read unit (on-demand).
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    /// SQS FIFO, per request (each 64 KB chunk of a request is one).
    pub const SQS_FIFO_REQUEST: f64 = 0.50 / 1e6;
    /// Firehose ingestion, per GB, each record rounded up to 5 KB.
    pub const FIREHOSE_GB: f64 = 0.029;
    /// Firehose dynamic partitioning, per GB processed.
    pub const FIREHOSE_PARTITIONING_GB: f64 = 0.020;
    /// Firehose dynamic partitioning, per object delivered.
    pub const FIREHOSE_PARTITIONING_OBJECT: f64 = 0.005 / 1000.0;
    /// Lambda arm64, per GB-second.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    /// Lambda, per request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// EventBridge custom events, per event (64 KB chunk).
    pub const EVENTBRIDGE_EVENT: f64 = 1.00 / 1e6;
    /// S3 PUT, per request.
    pub const S3_PUT: f64 = 0.005 / 1000.0;
    /// CloudWatch Logs ingestion, per GB.
    pub const LOGS_GB: f64 = 0.50;
    /// Lambda x86_64, per GB-second (the reference design's functions).
    pub const LAMBDA_X86_GB_SECOND: f64 = 0.000_016_666_7;
    /// EventBridge archive: events archived, per GB (archive processing).
    pub const EVENTBRIDGE_ARCHIVE_GB: f64 = 0.10;
    /// EventBridge archive storage, per GB-month.
    pub const EVENTBRIDGE_ARCHIVE_STORAGE_GB_MONTH: f64 = 0.023;
    /// X-Ray, per trace recorded.
    pub const XRAY_TRACE: f64 = 5.00 / 1e6;
    /// DynamoDB table storage (Standard class), per GB-month.
    pub const DYNAMODB_STORAGE_GB_MONTH: f64 = 0.25;
    /// DynamoDB continuous backups (point-in-time recovery), per GB-month.
    pub const DYNAMODB_PITR_GB_MONTH: f64 = 0.20;
    /// KMS customer managed key, per month.
    pub const KMS_KEY_MONTH: f64 = 1.00;
    /// KMS requests, per request ($0.03 per 10,000).
    pub const KMS_REQUEST: f64 = 0.03 / 10_000.0;
    /// CloudWatch standard-resolution metric alarm, per month.
    pub const ALARM_MONTH: f64 = 0.10;
}

/// X-Ray's default sampling rule: the first request each second (the
/// reservoir), then 5% of the rest; each sampled invocation is one trace.
const XRAY_RESERVOIR_PER_SECOND: f64 = 1.0;
const XRAY_RATE: f64 = 0.05;
/// DynamoDB bills 100 bytes of overhead per item stored.
const DYNAMODB_ITEM_OVERHEAD: usize = 100;
/// The Lambda platform's own lines per invocation (START, END, REPORT with
/// the X-Ray trace id), bytes.
const PLATFORM_LOG_BYTES_PER_INVOCATION: f64 = 350.0;
/// KMS data-key reuse: SQS (`kms_data_key_reuse_period_seconds` = 300),
/// DynamoDB and CloudWatch Logs each ask KMS about once per 5 minutes per
/// principal and resource; S3 uses a bucket key. Pairs in the default
/// deployment: queue (transformer, storer), table (storer, emitter stream,
/// query API), lake bucket (Firehose), the five encrypted log groups.
const KMS_CALLERS: f64 = 11.0;
const KMS_CALLS_PER_CALLER_PER_MONTH: f64 = SECONDS_PER_MONTH / 300.0;
/// The reference design publishes on one SQS FIFO message group: SQS keeps
/// one group in order at about 300 messages/s, its ceiling.
pub const REFERENCE_MESSAGES_PER_SECOND_CAP: f64 = 300.0;

const GB: f64 = 1e9;
const KB64: usize = 64 * 1024;
const FIREHOSE_RECORD_ROUNDING: usize = 5 * 1024;
const SECONDS_PER_MONTH: f64 = 30.0 * 24.0 * 3600.0;

/// What the payload of the representative record looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// Business JSON: an order with line items (repeated keys deflate well).
    Json,
    /// Random text: deflating saves nothing (the worst case for the store).
    Random,
}

/// Alarms of the root module with its defaults (no consumer; each function
/// brings two, command-api's included): counted in
/// the applied example by scripts/apply-terraform.sh, which fails if they
/// differ.
pub const DEFAULT_ALARMS: f64 = 24.0;

/// The deployment and workload the model prices. Defaults are the Terraform
/// module's (`terraform/variables.tf`).
#[derive(Debug, Clone, Serialize)]
pub struct CostInputs {
    /// Events per month.
    pub events_per_month: f64,
    /// Average record size as the producer sends it, in bytes.
    pub record_bytes: usize,
    /// The representative record's payload.
    pub payload: Payload,
    /// Events per entity over the entity's life (its head is written once).
    pub events_per_entity: f64,
    /// A retention is set (`event_ttl_days`): the head follows each append.
    pub retention: bool,
    /// `firehose_processor_buffer_size_mb`.
    pub processor_buffer_mb: f64,
    /// `firehose_processor_buffer_interval_seconds` (0 under `low_latency`).
    pub processor_interval_seconds: f64,
    /// `emitter_batching_window_seconds` (0 under `low_latency`).
    pub emitter_window_seconds: f64,
    /// `firehose_buffering_size_mb`.
    pub firehose_buffer_mb: f64,
    /// `firehose_buffering_interval_seconds`.
    pub firehose_interval_seconds: f64,
    /// Distinct event types (the lake's type partitions).
    pub event_types: f64,
    /// `storer_batch_size`.
    pub storer_batch_size: f64,
    /// `emitter_batch_size`.
    pub emitter_batch_size: f64,
    /// Memory of each function (`transformer`, `event_storer`, `event_emitter`), MB.
    pub memory_mb: f64,
    /// Wall time of one AWS call from a Lambda, ms.
    pub aws_call_ms: f64,
    /// Tideline's CPU time per record per handler, µs.
    pub cpu_us_per_event: f64,
    /// Log bytes each invocation writes.
    pub log_bytes_per_invocation: f64,
    /// Most events per bus entry (`TIDELINE_BUNDLE_MAX_EVENTS`); 1 = no bundling.
    pub bundle_max_events: f64,
    /// Months of events the table holds: storage and point-in-time recovery
    /// are billed on what is kept (each month kept adds its share).
    pub retained_months: f64,
    /// `archive_retention_days`: how long the bus archive keeps each event.
    pub archive_retention_days: f64,
    /// CloudWatch alarms the root module deploys with its defaults.
    pub alarms: f64,
    /// Memory of the reference design's Node.js functions, MB.
    pub reference_memory_mb: f64,
    /// Log bytes the reference design writes per record (one line each).
    pub reference_log_bytes_per_record: f64,
}

impl Default for CostInputs {
    fn default() -> Self {
        Self {
            events_per_month: 100.0 * SECONDS_PER_MONTH,
            record_bytes: 1024,
            payload: Payload::Json,
            events_per_entity: 1000.0,
            retention: false,
            processor_buffer_mb: 0.3,
            processor_interval_seconds: 60.0,
            emitter_window_seconds: 1.0,
            firehose_buffer_mb: 64.0,
            firehose_interval_seconds: 60.0,
            event_types: 10.0,
            storer_batch_size: 10.0,
            emitter_batch_size: 100.0,
            memory_mb: 256.0,
            aws_call_ms: 10.0,
            cpu_us_per_event: 20.0,
            log_bytes_per_invocation: 600.0,
            bundle_max_events: 1.0,
            retained_months: 1.0,
            archive_retention_days: 30.0,
            alarms: DEFAULT_ALARMS,
            reference_memory_mb: 1024.0,
            reference_log_bytes_per_record: 250.0,
        }
    }
}

/// One line of the bill.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceCost {
    /// The AWS service and what is billed.
    pub service: String,
    /// USD per month.
    pub monthly_usd: f64,
    /// USD per million events.
    pub per_million_usd: f64,
    /// How it is computed.
    pub formula: String,
}

/// A design's bill.
#[derive(Debug, Clone, Serialize)]
pub struct Bill {
    /// USD per million events.
    pub per_million_usd: f64,
    /// USD per month.
    pub monthly_usd: f64,
    /// Line by line.
    pub services: Vec<ServiceCost>,
}

/// DynamoDB work per event, from the items the store writes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StoreUnits {
    /// Event item size as written, bytes.
    pub event_item_bytes: usize,
    /// Whether its payload is stored deflated.
    pub deflated: bool,
    /// Marker item size, bytes.
    pub marker_item_bytes: usize,
    /// Write units of one append, steady state.
    pub write_units: u64,
    /// Read units of one append, steady state.
    pub read_units: u64,
    /// Write units of the append that creates an entity (its head too).
    pub creation_write_units: u64,
    /// Read units of the append that creates an entity: the query for the
    /// latest event finds none, then the head is read (each at least 1 unit).
    pub creation_read_units: u64,
}

/// The representative record: `record_bytes` of JSON as a producer sends it.
pub fn representative_record(record_bytes: usize, payload: Payload) -> String {
    let head = r#"{"entity_id":"order-000123","type":"OrderPlaced","id":"0b7e6a52-3f1c-4d55-9a8e-2c41f0d7b913","occurred_at":"2026-11-29T08:00:00.000Z","data":"#;
    let mut data = String::new();
    match payload {
        Payload::Json => {
            data.push_str(r#"{"customer":"c-4711","currency":"EUR","lines":["#);
            let mut i = 0;
            while head.len() + data.len() + 120 < record_bytes {
                if i > 0 {
                    data.push(',');
                }
                data.push_str(&format!(
                    r#"{{"sku":"SKU-{:05}","qty":{},"price":{}.{:02}}}"#,
                    (i * 7919) % 100_000,
                    1 + i % 5,
                    3 + (i * 13) % 90,
                    (i * 37) % 100
                ));
                i += 1;
            }
            data.push_str(r#"],"note":""#);
            let pad = record_bytes.saturating_sub(head.len() + data.len() + 4);
            data.push_str(&"x".repeat(pad));
            data.push_str("\"}");
        }
        Payload::Random => {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let n = record_bytes.saturating_sub(head.len() + 12);
            let blob: String = (0..n)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect();
            data = format!(r#"{{"blob":"{blob}"}}"#);
        }
    }
    format!("{head}{data}}}")
}

/// The event as the store writes it at a steady-state `seq`.
pub fn representative_event(record: &str) -> Option<(StoredEvent, String)> {
    let now = chrono::Utc::now();
    let rec = normalize_record(&IngestConfig::default(), record.as_bytes(), now).ok()?;
    let data_json = serde_json::to_string(&rec.data).ok()?;
    let stored_at = format_timestamp(now);
    let event = StoredEvent {
        entity_id: rec.entity_id,
        seq: 1000,
        sk: stored_at.clone(),
        event_id: rec.id,
        event_type: rec.event_type,
        data: rec.data,
        occurred_at: rec.occurred_at,
        received_at: rec.received_at,
        stored_at,
        correlation_id: rec.correlation_id,
        test: rec.test,
        schema_version: crate::ingest::SCHEMA_VERSION,
        expires_at: None,
        traceparent: rec.traceparent,
    };
    Some((event, data_json))
}

/// DynamoDB units of appending `event` after a predecessor like it (decision
/// 0009): one strongly consistent read of the latest event; the marker and
/// the event item, each a single conditional put; the head when a retention
/// is set. Creating an entity adds the empty read, the head read and the head.
pub fn store_units(event: &StoredEvent, data_json: &str, retention: bool) -> Option<StoreUnits> {
    let expires = retention.then_some(1_800_000_000);
    let event = StoredEvent {
        expires_at: expires,
        ..event.clone()
    };
    let written = event_item(&event, data_json);
    let event_bytes = item::size_of(&written);
    let slot = next_slot(event.seq, &event.sk, &event.stored_at)?;
    let marker_bytes = item::size_of(&marker_item(
        &event.entity_id,
        &event.event_id,
        &slot,
        expires,
    ));
    let head_bytes = item::size_of(&head_item(
        &event.entity_id,
        &HeadState {
            last_seq: slot.seq,
            last_sk: Some(slot.sk.clone()),
            ..HeadState::of(&event)
        },
    ));
    let head_writes = if retention {
        item::write_units(head_bytes)
    } else {
        0
    };
    Some(StoreUnits {
        event_item_bytes: event_bytes,
        deflated: written.contains_key("data_z"),
        marker_item_bytes: marker_bytes,
        write_units: item::write_units(marker_bytes) + item::write_units(event_bytes) + head_writes,
        read_units: item::read_units(event_bytes),
        creation_write_units: item::write_units(marker_bytes)
            + item::write_units(event_bytes)
            + item::write_units(head_bytes),
        creation_read_units: 2,
    })
}

/// The bus entry's size: the integration event's detail plus type and source.
fn bus_entry_bytes(event: &StoredEvent) -> usize {
    crate::BusEntry::new("tideline", &EventDetail::from_stored(event, false)).size()
}

fn chunks(bytes: f64, chunk: usize) -> f64 {
    (bytes / chunk as f64).ceil().max(1.0)
}

struct Builder<'a> {
    n: f64,
    inputs: &'a CostInputs,
    lines: Vec<ServiceCost>,
}

impl Builder<'_> {
    fn line(&mut self, service: &str, monthly: f64, formula: String) {
        self.lines.push(ServiceCost {
            service: service.to_string(),
            monthly_usd: monthly,
            per_million_usd: if self.n > 0.0 {
                monthly / self.n * 1e6
            } else {
                0.0
            },
            formula,
        });
    }

    /// Lambda requests and GB-seconds of one function (arm64, the module's memory).
    fn lambda(&mut self, name: &str, invocations: f64, seconds_each: f64) {
        let memory = self.inputs.memory_mb;
        self.lambda_at(name, invocations, seconds_each, memory, false);
    }

    /// Lambda requests and GB-seconds at a memory size and architecture.
    fn lambda_at(
        &mut self,
        name: &str,
        invocations: f64,
        seconds_each: f64,
        memory_mb: f64,
        x86: bool,
    ) {
        let gb = memory_mb / 1024.0;
        let (gb_s, arch, price_text) = if x86 {
            (price::LAMBDA_X86_GB_SECOND, "x86_64", "0.0000166667")
        } else {
            (price::LAMBDA_GB_SECOND, "arm64", "0.0000133334")
        };
        let monthly = invocations * (price::LAMBDA_REQUEST + seconds_each * gb * gb_s);
        self.line(
            &format!("Lambda {name}"),
            monthly,
            format!(
                "{invocations:.0} invocations × ($0.20/M + {seconds_each:.3} s × {gb:.3} GB {arch} × ${price_text}/GB-s)"
            ),
        );
    }

    /// CloudWatch Logs ingestion: each invocation's lines (the platform's
    /// START/END/REPORT and the code's) plus any per-record lines.
    fn logs(&mut self, invocations: f64, per_invocation: f64, per_record: f64) {
        let log_gb = (invocations * per_invocation + self.n * per_record) / GB;
        self.line(
            "CloudWatch Logs",
            log_gb * price::LOGS_GB,
            format!(
                "{log_gb:.4} GB ({per_invocation:.0} B per invocation{}) × $0.50/GB",
                if per_record > 0.0 {
                    format!(" + {per_record:.0} B per record")
                } else {
                    String::new()
                }
            ),
        );
    }

    /// X-Ray active tracing on every function: the default sampling rule.
    fn xray(&mut self, invocations: f64) {
        let reservoir = (XRAY_RESERVOIR_PER_SECOND * SECONDS_PER_MONTH).min(invocations);
        let traces = reservoir + XRAY_RATE * (invocations - reservoir).max(0.0);
        self.line(
            "X-Ray traces",
            traces * price::XRAY_TRACE,
            format!(
                "{traces:.0} traces (1/s reservoir + 5% of the other {invocations:.0} invocations) × $5.00/M"
            ),
        );
    }

    /// DynamoDB storage of what the table keeps, and its point-in-time recovery.
    fn table_storage(&mut self, bytes_per_event: f64, pitr: bool) {
        let months = self.inputs.retained_months;
        let gb = self.n * months * bytes_per_event / GB;
        self.line(
            "DynamoDB storage",
            gb * price::DYNAMODB_STORAGE_GB_MONTH,
            format!(
                "{gb:.3} GB ({months} month(s) of events × {bytes_per_event:.0} B with item overhead) × $0.25/GB-month"
            ),
        );
        if pitr {
            self.line(
                "DynamoDB point-in-time recovery",
                gb * price::DYNAMODB_PITR_GB_MONTH,
                format!("{gb:.3} GB × $0.20/GB-month"),
            );
        }
    }

    fn finish(self) -> Bill {
        let monthly: f64 = self.lines.iter().map(|l| l.monthly_usd).sum();
        Bill {
            per_million_usd: if self.n > 0.0 {
                monthly / self.n * 1e6
            } else {
                0.0
            },
            monthly_usd: monthly,
            services: self.lines,
        }
    }
}

/// How often Firehose invokes the transformer when its buffering interval is
/// 0 (`low_latency`): it delivers what has arrived without waiting, and AWS
/// publishes no rate, so the model assumes once per second (or sooner when
/// the processor buffer fills).
pub const ZERO_INTERVAL_FLUSH_SECONDS: f64 = 1.0;
/// Lambda polls each DynamoDB stream shard four times per second: with a
/// batching window of 0 (`low_latency`) a batch holds what one poll finds.
pub const STREAM_POLL_SECONDS: f64 = 0.25;

/// The steady arrival rate, events per second.
fn events_per_second(i: &CostInputs) -> f64 {
    i.events_per_month / SECONDS_PER_MONTH
}

/// Records per transformer invocation: what the processor buffer holds, or
/// what arrives within the buffering interval if that is fewer.
fn records_per_transformer_invocation(i: &CostInputs) -> f64 {
    let buffer = ((i.processor_buffer_mb * 1024.0 * 1024.0) / i.record_bytes as f64).floor();
    let interval = i
        .processor_interval_seconds
        .max(ZERO_INTERVAL_FLUSH_SECONDS);
    buffer.min(events_per_second(i) * interval).floor().max(1.0)
}

/// Events per emitter invocation: a full batch, or what the stream holds
/// when the batching window (at least one poll) closes, if that is fewer.
/// One stream shard: the table's partitions, one below ~1,000 writes/s.
fn events_per_emitter_invocation(i: &CostInputs) -> f64 {
    let window = i.emitter_window_seconds.max(STREAM_POLL_SECONDS);
    i.emitter_batch_size
        .min(events_per_second(i) * window)
        .floor()
        .max(1.0)
}

/// The lines both designs share: Firehose ingestion and S3 delivery.
fn ingest_lines(b: &mut Builder<'_>, dynamic_partitioning: bool) {
    let i = b.inputs;
    let n = b.n;
    let rounded =
        (i.record_bytes.div_ceil(FIREHOSE_RECORD_ROUNDING) * FIREHOSE_RECORD_ROUNDING) as f64;
    b.line(
        "Firehose ingestion",
        n * rounded / GB * price::FIREHOSE_GB,
        format!("{n:.0} records × {rounded:.0} B (rounded up to 5 KB) × $0.029/GB"),
    );
    let bytes = n * i.record_bytes as f64;
    let flushes = SECONDS_PER_MONTH / i.firehose_interval_seconds;
    let partitions = if dynamic_partitioning {
        i.event_types
    } else {
        1.0
    };
    let objects = (bytes / (i.firehose_buffer_mb * 1e6)).max(flushes * partitions.min(n.max(1.0)));
    if dynamic_partitioning {
        b.line(
            "Firehose dynamic partitioning",
            bytes / GB * price::FIREHOSE_PARTITIONING_GB
                + objects * price::FIREHOSE_PARTITIONING_OBJECT,
            format!(
                "{:.3} GB × $0.020/GB + {objects:.0} objects × $0.005/1000",
                bytes / GB
            ),
        );
    }
    b.line(
        "S3 PUT (lake objects)",
        objects * price::S3_PUT,
        format!("max(bytes / {} MB buffer, {flushes:.0} flushes × {partitions:.0} partitions) = {objects:.0} objects × $0.005/1000", i.firehose_buffer_mb),
    );
}

/// What bundling saves per month: the bill without bundling minus the bill
/// with `inputs.bundle_max_events`.
pub fn bundling_saving(inputs: &CostInputs) -> Option<f64> {
    let unbundled = CostInputs {
        bundle_max_events: 1.0,
        ..inputs.clone()
    };
    Some(tideline(&unbundled)?.0.monthly_usd - tideline(inputs)?.0.monthly_usd)
}

/// What the low-latency setting (Terraform `low_latency`: no processor
/// buffering interval, no emitter batching window) adds per month to the
/// bill of `inputs`.
pub fn low_latency_extra(inputs: &CostInputs) -> Option<f64> {
    let low = CostInputs {
        processor_interval_seconds: 0.0,
        emitter_window_seconds: 0.0,
        ..inputs.clone()
    };
    Some(tideline(&low)?.0.monthly_usd - tideline(inputs)?.0.monthly_usd)
}

/// Tideline's bill.
pub fn tideline(inputs: &CostInputs) -> Option<(Bill, StoreUnits)> {
    let record = representative_record(inputs.record_bytes, inputs.payload);
    let (event, data_json) = representative_event(&record)?;
    let units = store_units(&event, &data_json, inputs.retention)?;
    let n = inputs.events_per_month;
    let mut b = Builder {
        n,
        inputs,
        lines: Vec::new(),
    };
    ingest_lines(&mut b, true);
    let i = inputs;
    let cpu = i.cpu_us_per_event / 1e6;
    let call = i.aws_call_ms / 1e3;

    // Transformer: one invocation per processor buffer or buffering
    // interval; messages sent ten per SendMessageBatch (at most one per
    // entity per call, AWS-CONTRACTS.md).
    let per_invocation = records_per_transformer_invocation(i);
    let invocations = (n / per_invocation).ceil();
    let sends = (per_invocation / SQS_BATCH_ENTRIES as f64).ceil();
    b.lambda(
        "transformer",
        invocations,
        sends * call + per_invocation * cpu,
    );

    let batch_bytes = SQS_BATCH_ENTRIES as f64 * (record.len() as f64 + 200.0);
    let send_requests = n / SQS_BATCH_ENTRIES as f64 * chunks(batch_bytes, KB64);
    let receive_requests =
        2.0 * n / i.storer_batch_size * chunks(i.storer_batch_size * record.len() as f64, KB64);
    b.line(
        "SQS FIFO",
        (send_requests + receive_requests) * price::SQS_FIFO_REQUEST,
        format!(
            "{send_requests:.0} SendMessageBatch (10 per call, 64 KB chunks) + {receive_requests:.0} receive and delete (batches of {}) × $0.50/M",
            i.storer_batch_size
        ),
    );

    // Storer: per event one read and two conditional puts, in sequence.
    let storer_invocations = (n / i.storer_batch_size).ceil();
    b.lambda(
        "event storer",
        storer_invocations,
        i.storer_batch_size * (3.0 * call + cpu),
    );
    let creating = 1.0 / i.events_per_entity.max(1.0);
    let wru =
        (1.0 - creating) * units.write_units as f64 + creating * units.creation_write_units as f64;
    let rru =
        (1.0 - creating) * units.read_units as f64 + creating * units.creation_read_units as f64;
    b.line(
        "DynamoDB writes",
        n * wru * price::DYNAMODB_WRITE_UNIT,
        format!(
            "{n:.0} events × {wru:.3} WRU (marker {} B + event item {} B{}{}; head once per {} events) × $0.625/M",
            units.marker_item_bytes,
            units.event_item_bytes,
            if units.deflated { ", payload deflated" } else { "" },
            if i.retention { " + head per append (retention)" } else { "" },
            i.events_per_entity
        ),
    );
    b.line(
        "DynamoDB reads",
        n * rru * price::DYNAMODB_READ_UNIT,
        format!("{n:.0} events × {rru:.3} RRU (the latest event, strongly consistent) × $0.125/M"),
    );
    b.line("DynamoDB Streams", 0.0, "GetRecords by a Lambda trigger are free; markers and heads are filtered before the emitter".into());

    let per_emitter_invocation = events_per_emitter_invocation(i);
    let emitter_invocations = (n / per_emitter_invocation).ceil();
    let entry = bus_entry_bytes(&event) as f64;
    // Bundling (decision 0014): a bundle holds at most the events the size
    // limit lets in (the PutEvents request size) and never spans two emitter
    // batches; EventBridge bills each entry per started 64 KB chunk.
    let per_bundle = i
        .bundle_max_events
        .floor()
        .min((DEFAULT_PUT_EVENTS_REQUEST_BYTES as f64 / entry).floor())
        .min(per_emitter_invocation)
        .max(1.0);
    let entry_bytes = per_bundle * entry;
    let entries = n / per_bundle;
    let entries_per_batch = (per_emitter_invocation / per_bundle).ceil();
    let put_calls = (entries_per_batch / PUT_EVENTS_ENTRIES as f64)
        .ceil()
        .max((per_emitter_invocation * entry / DEFAULT_PUT_EVENTS_REQUEST_BYTES as f64).ceil());
    b.lambda(
        "event emitter",
        emitter_invocations,
        put_calls * call + per_emitter_invocation * cpu,
    );
    b.line(
        "EventBridge PutEvents",
        entries * chunks(entry_bytes, KB64) * price::EVENTBRIDGE_EVENT,
        format!(
            "{entries:.0} entries ({per_bundle:.0} event(s) each) × {} chunk(s) of 64 KB ({entry_bytes:.0} B each) × $1.00/M",
            chunks(entry_bytes, KB64)
        ),
    );
    let all_invocations = invocations + storer_invocations + emitter_invocations;
    b.logs(
        all_invocations,
        PLATFORM_LOG_BYTES_PER_INVOCATION + i.log_bytes_per_invocation,
        0.0,
    );
    b.xray(all_invocations);
    b.table_storage(
        (units.event_item_bytes + units.marker_item_bytes + 2 * DYNAMODB_ITEM_OVERHEAD) as f64,
        true,
    );
    // The archive keeps every entry the bus receives, as published.
    let archived_gb = entries * entry_bytes / GB;
    let stored_gb = archived_gb * i.archive_retention_days / 30.0;
    b.line(
        "EventBridge archive",
        archived_gb * price::EVENTBRIDGE_ARCHIVE_GB
            + stored_gb * price::EVENTBRIDGE_ARCHIVE_STORAGE_GB_MONTH,
        format!(
            "{archived_gb:.3} GB archived × $0.10/GB + {stored_gb:.3} GB kept ({} days) × $0.023/GB-month",
            i.archive_retention_days
        ),
    );
    let kms_requests = KMS_CALLERS * KMS_CALLS_PER_CALLER_PER_MONTH;
    b.line(
        "KMS customer key",
        price::KMS_KEY_MONTH + kms_requests * price::KMS_REQUEST,
        format!(
            "$1.00 key + {kms_requests:.0} requests ({KMS_CALLERS} caller/resource pairs, one per 5-minute data-key period) × $0.03/10,000"
        ),
    );
    b.line(
        "CloudWatch alarms",
        i.alarms * price::ALARM_MONTH,
        format!("{} alarms × $0.10/month", i.alarms),
    );
    Some((b.finish(), units))
}

/// The reference design, costed the same way: one SQS `SendMessage`, one
/// `PutItem` and one `PutEvents` per record, no dynamic partitioning; its CPU
/// per record is Tideline's times the measured ratios.
pub fn reference(inputs: &CostInputs) -> Option<(Bill, u64)> {
    let record = representative_record(inputs.record_bytes, inputs.payload);
    let (event, _) = representative_event(&record)?;
    let n = inputs.events_per_month;
    let i = inputs;
    let mut b = Builder {
        n,
        inputs,
        lines: Vec::new(),
    };
    ingest_lines(&mut b, false);
    let cpu = i.cpu_us_per_event / 1e6;
    let call = i.aws_call_ms / 1e3;
    let per_invocation = records_per_transformer_invocation(i);
    let invocations = (n / per_invocation).ceil();
    let memory = i.reference_memory_mb;
    b.lambda_at(
        "transformer (Node.js)",
        invocations,
        per_invocation * (call + 42.0 * cpu),
        memory,
        true,
    );
    let receive_requests = 2.0 * n / i.storer_batch_size;
    b.line(
        "SQS FIFO",
        (n * chunks(record.len() as f64, KB64) + receive_requests) * price::SQS_FIFO_REQUEST,
        format!(
            "{n:.0} SendMessage + {receive_requests:.0} receive and delete × $0.50/M (one message group: at most about {REFERENCE_MESSAGES_PER_SECOND_CAP:.0} messages/s)"
        ),
    );
    let storer_invocations = (n / i.storer_batch_size).ceil();
    b.lambda_at(
        "event storer (Node.js)",
        storer_invocations,
        i.storer_batch_size * (call + 2.1 * cpu),
        memory,
        true,
    );
    // One item per record: the record's attributes plus pk and a millisecond sk.
    let item_bytes = record.len() + "pk".len() + event.entity_id.as_str().len() + "sk".len() + 24;
    let wru = item::write_units(item_bytes);
    b.line(
        "DynamoDB writes",
        n * wru as f64 * price::DYNAMODB_WRITE_UNIT,
        format!("{n:.0} PutItem × {wru} WRU ({item_bytes} B item) × $0.625/M"),
    );
    let emitter_invocations = (n / i.emitter_batch_size).ceil();
    b.lambda_at(
        "event emitter (Node.js)",
        emitter_invocations,
        i.emitter_batch_size * (call + 7.4 * cpu),
        memory,
        true,
    );
    let entry = bus_entry_bytes(&event) as f64;
    b.line(
        "EventBridge PutEvents",
        n * chunks(entry, KB64) * price::EVENTBRIDGE_EVENT,
        format!("{n:.0} PutEvents of one entry × $1.00/M"),
    );
    let all_invocations = invocations + storer_invocations + emitter_invocations;
    b.logs(
        all_invocations,
        PLATFORM_LOG_BYTES_PER_INVOCATION,
        3.0 * i.reference_log_bytes_per_record,
    );
    b.xray(all_invocations);
    b.table_storage((item_bytes + DYNAMODB_ITEM_OVERHEAD) as f64, false);
    Some((b.finish(), wru))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_representative_record_has_the_requested_size() {
        for size in [512, 1024, 4096, 10_000] {
            for payload in [Payload::Json, Payload::Random] {
                let r = representative_record(size, payload);
                assert!(
                    r.len().abs_diff(size) <= 16,
                    "{payload:?} {size}: {}",
                    r.len()
                );
                assert!(representative_event(&r).is_some());
            }
        }
    }

    #[test]
    fn one_kib_json_events_cost_one_read_and_two_write_units() {
        let (event, data) =
            representative_event(&representative_record(1024, Payload::Json)).unwrap();
        let u = store_units(&event, &data, false).unwrap();
        assert_eq!((u.write_units, u.read_units), (2, 1), "{u:?}");
        assert!(u.deflated);
        let r = store_units(&event, &data, true).unwrap();
        assert_eq!(r.write_units, 3);
    }

    #[test]
    fn bundling_divides_the_bus_entries_by_64_kb_chunks() {
        let line = |bundle: f64| {
            let inputs = CostInputs {
                bundle_max_events: bundle,
                ..CostInputs::default()
            };
            let (bill, _) = tideline(&inputs).unwrap();
            bill.services
                .into_iter()
                .find(|l| l.service == "EventBridge PutEvents")
                .unwrap()
        };
        let plain = line(1.0);
        let entry = bus_entry_bytes(
            &representative_event(&representative_record(1024, Payload::Json))
                .unwrap()
                .0,
        ) as f64;
        // 10 events of ~1.6 KB: one 64 KB chunk per bundle, a tenth of the bill.
        let ten = line(10.0);
        assert!((ten.per_million_usd - plain.per_million_usd / 10.0).abs() < 1e-9);
        // 100 events: the bundle spans ceil(100 × entry / 64 KB) chunks.
        let hundred = line(100.0);
        let expected = plain.per_million_usd / 100.0 * (100.0 * entry / 65536.0).ceil();
        assert!(
            (hundred.per_million_usd - expected).abs() < 1e-9,
            "{} vs {expected}",
            hundred.per_million_usd
        );
        assert!(hundred.per_million_usd < ten.per_million_usd);
        assert!(
            bundling_saving(&CostInputs {
                bundle_max_events: 10.0,
                ..CostInputs::default()
            })
            .unwrap()
                > 0.0
        );
    }

    /// The invocations a bill's Lambda line counts (its formula's first number).
    fn invocations(bill: &Bill, function: &str) -> f64 {
        let line = bill
            .services
            .iter()
            .find(|l| l.service == format!("Lambda {function}"))
            .unwrap_or_else(|| panic!("no Lambda {function} line"));
        line.formula
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", line.formula))
    }

    #[test]
    fn low_latency_invokes_more_often_at_low_rates_and_costs_nothing_at_high_ones() {
        let at = |per_second: f64, interval: f64, window: f64| {
            let inputs = CostInputs {
                events_per_month: per_second * SECONDS_PER_MONTH,
                processor_interval_seconds: interval,
                emitter_window_seconds: window,
                ..CostInputs::default()
            };
            let (bill, _) = tideline(&inputs).unwrap();
            (
                invocations(&bill, "transformer") / SECONDS_PER_MONTH,
                invocations(&bill, "event emitter") / SECONDS_PER_MONTH,
                bill.monthly_usd,
                low_latency_extra(&inputs).unwrap(),
            )
        };
        // 1 event/s: the defaults wait 60 s (60 records per transformer
        // invocation) and 1 s per emitter batch; low latency invokes the
        // transformer once per second and the emitter once per event.
        let (t, e, standard, extra) = at(1.0, 60.0, 1.0);
        assert!((t - 1.0 / 60.0).abs() < 1e-3, "{t}");
        assert!((e - 1.0).abs() < 1e-3, "{e}");
        let (t, e, low, _) = at(1.0, 0.0, 0.0);
        assert!((t - 1.0).abs() < 1e-3, "{t}");
        assert!((e - 1.0).abs() < 1e-3, "{e}");
        assert!((low - standard - extra).abs() < 1e-9 && extra > 0.0);
        // 100 events/s: the 0.3 MB buffer (307 records of 1 KiB) fills in
        // 3 s, so the transformer goes from 1/3.07 to 1 invocation per
        // second; the emitter from batches of 100 to one per poll (25).
        let (t, e, _, extra) = at(100.0, 60.0, 1.0);
        assert!((t - 100.0 / 307.0).abs() < 1e-2, "{t}");
        assert!((e - 1.0).abs() < 1e-3, "{e}");
        assert!(extra > 0.0);
        let (t, e, _, _) = at(100.0, 0.0, 0.0);
        assert!((t - 1.0).abs() < 1e-3, "{t}");
        assert!((e - 4.0).abs() < 1e-3, "{e}");
        // 10,000 events/s: buffers and batches fill before any wait ends.
        let (_, _, _, extra) = at(10_000.0, 60.0, 1.0);
        assert!(extra.abs() < 1e-9, "{extra}");
    }

    #[test]
    fn tideline_is_at_or_below_the_reference_for_one_kib_json_events() {
        for rate in [100.0, 10_000.0] {
            let inputs = CostInputs {
                events_per_month: rate * SECONDS_PER_MONTH,
                ..CostInputs::default()
            };
            let (t, _) = tideline(&inputs).unwrap();
            let (r, _) = reference(&inputs).unwrap();
            assert!(
                t.per_million_usd <= r.per_million_usd,
                "{rate}/s: {} > {}",
                t.per_million_usd,
                r.per_million_usd
            );
        }
    }
}
