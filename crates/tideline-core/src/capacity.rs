//! The capacity model behind `tideline capacity`: what a deployment needs to
//! sustain a rate of events, hop by hop, and which limit binds first.
//!
//! Each handler's time per batch is its calls that must wait for each other
//! (the chain an entity's ordering imposes) times the time of one AWS call,
//! plus its CPU per batch. The call counts are the append protocol's and the
//! stages' own (decision 0009, 0022); the CPU figures and the model's batch
//! times are checked against `benches/sdk_latency.rs` (docs/capacity.md).
//! Concurrency follows Little's law: invocations in flight = invocations per
//! second × seconds each. Every AWS quota is quoted with its source; quotas
//! that differ by region use the largest regions' (us-east-1, us-west-2,
//! eu-west-1) values, as `--put-events-quota` and the others can override.

use serde::Serialize;

/// SQS FIFO without high-throughput mode: 300 calls/s per API action
/// (3,000 messages/s batched by 10). AWS-CONTRACTS.md, SQS FIFO.
pub const FIFO_CALLS_PER_SECOND: f64 = 300.0;
/// SQS FIFO in high-throughput mode: 70,000 calls/s per API action in the
/// largest regions (SQS Developer Guide, "Quotas related to messages",
/// high throughput for FIFO queues); each message group still takes at most
/// 300 messages/s.
pub const FIFO_HIGH_THROUGHPUT_CALLS_PER_SECOND: f64 = 70_000.0;
/// SQS FIFO: messages per second one message group takes.
pub const FIFO_MESSAGES_PER_GROUP_PER_SECOND: f64 = 300.0;
/// DynamoDB: write units per second one partition serves (AWS-CONTRACTS.md).
pub const PARTITION_WRITE_UNITS: f64 = 1_000.0;
/// DynamoDB: read units per second one partition serves (DynamoDB Developer
/// Guide, "Partitions and data distribution").
pub const PARTITION_READ_UNITS: f64 = 3_000.0;
/// EventBridge PutEvents requests per second, account-wide, us-east-1 (soft;
/// AWS-CONTRACTS.md, EventBridge quotas).
pub const PUT_EVENTS_QUOTA: f64 = 10_000.0;
/// Entries one PutEvents request carries.
pub const PUT_EVENTS_ENTRIES: f64 = 10.0;
/// Firehose direct PUT per delivery stream, largest regions: 500,000
/// records/s, 2,000 requests/s, 5 MiB/s (Firehose Developer Guide, "Quota").
pub const FIREHOSE_RECORDS_PER_SECOND: f64 = 500_000.0;
/// See [`FIREHOSE_RECORDS_PER_SECOND`].
pub const FIREHOSE_REQUESTS_PER_SECOND: f64 = 2_000.0;
/// See [`FIREHOSE_RECORDS_PER_SECOND`].
pub const FIREHOSE_BYTES_PER_SECOND: f64 = 5.0 * 1024.0 * 1024.0;
/// Records a producer puts per `PutRecordBatch` (Firehose's maximum).
pub const FIREHOSE_RECORDS_PER_REQUEST: f64 = 500.0;
/// Lambda concurrent executions per account and region, by default (Lambda
/// Developer Guide, "Lambda quotas"; raisable).
pub const LAMBDA_CONCURRENCY_QUOTA: f64 = 1_000.0;
/// The storer's CPU per batch of 10 and the transformer's per record and the
/// emitter's per record, ms (`benches/handlers.rs`, release build, the
/// figures issue 25 quotes: 12 ms per storer batch, 55 ms per 500 records).
pub const STORER_CPU_MS_PER_BATCH: f64 = 12.0;
/// See [`STORER_CPU_MS_PER_BATCH`].
pub const TRANSFORMER_CPU_MS_PER_RECORD: f64 = 55.0 / 500.0;
/// See [`STORER_CPU_MS_PER_BATCH`].
pub const EMITTER_CPU_MS_PER_RECORD: f64 = 0.1;

/// What the model is asked about; the defaults are the Terraform module's.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityInputs {
    /// The sustained rate to plan for.
    pub events_per_second: f64,
    /// Entities receiving events (message groups), evenly.
    pub entities: f64,
    /// Average record size, bytes.
    pub record_bytes: f64,
    /// Wall time of one AWS call from a Lambda, ms.
    pub aws_call_ms: f64,
    /// A retention is set: the head follows each append (one more put).
    pub retention: bool,
    /// `firehose_processor_buffer_size_mb`.
    pub processor_buffer_mb: f64,
    /// `firehose_processor_buffer_interval_seconds`.
    pub processor_buffer_interval_seconds: f64,
    /// `TIDELINE_MAX_CONCURRENT_SENDS`.
    pub transformer_max_concurrent_sends: f64,
    /// `queue_high_throughput`.
    pub queue_high_throughput: bool,
    /// `storer_batch_size`.
    pub storer_batch_size: f64,
    /// `TIDELINE_MAX_CONCURRENT_ENTITIES`.
    pub storer_max_concurrent_entities: f64,
    /// `storer_maximum_concurrency`.
    pub storer_maximum_concurrency: f64,
    /// `emitter_batch_size`.
    pub emitter_batch_size: f64,
    /// `emitter_batching_window_seconds`.
    pub emitter_batching_window_seconds: f64,
    /// `emitter_parallelization_factor`.
    pub emitter_parallelization_factor: f64,
    /// `bundle_max_events`.
    pub bundle_max_events: f64,
    /// The account's PutEvents quota, requests/s.
    pub put_events_quota: f64,
    /// The account's Lambda concurrency quota.
    pub lambda_concurrency_quota: f64,
}

impl Default for CapacityInputs {
    fn default() -> Self {
        Self {
            events_per_second: 100.0,
            entities: 10_000.0,
            record_bytes: 1024.0,
            aws_call_ms: 5.0,
            retention: false,
            processor_buffer_mb: 0.3,
            processor_buffer_interval_seconds: 60.0,
            transformer_max_concurrent_sends: 10.0,
            queue_high_throughput: true,
            storer_batch_size: 10.0,
            storer_max_concurrent_entities: 10.0,
            storer_maximum_concurrency: 10.0,
            emitter_batch_size: 100.0,
            emitter_batching_window_seconds: 1.0,
            emitter_parallelization_factor: 1.0,
            bundle_max_events: 1.0,
            put_events_quota: PUT_EVENTS_QUOTA,
            lambda_concurrency_quota: LAMBDA_CONCURRENCY_QUOTA,
        }
    }
}

/// One limit: what the rate needs of it, what it allows, and where the
/// allowance comes from.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    /// What is limited.
    pub name: String,
    /// What the rate needs.
    pub needed: f64,
    /// What the limit allows.
    pub available: f64,
    /// needed / available: above 1, the deployment cannot sustain the rate.
    pub utilisation: f64,
    /// The unit of `needed` and `available`.
    pub unit: String,
    /// Where `available` comes from.
    pub source: String,
    /// What to change when it binds.
    pub remedy: String,
}

/// One handler's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Records per invocation.
    pub records_per_batch: f64,
    /// AWS calls per batch that wait for each other.
    pub chained_calls: f64,
    /// Wall time of a batch, ms.
    pub batch_ms: f64,
    /// Invocations per second at the rate.
    pub invocations_per_second: f64,
    /// Invocations in flight at the rate (Little's law).
    pub concurrency: f64,
}

/// The model's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    /// The inputs.
    pub inputs: CapacityInputs,
    /// The transformer (Firehose's processor).
    pub transformer: Stage,
    /// The storer.
    pub storer: Stage,
    /// The emitter.
    pub emitter: Stage,
    /// The FIFO queue's mode the rate needs: `standard` or `high-throughput`.
    pub fifo_mode_needed: String,
    /// DynamoDB partitions the write and read units imply.
    pub partitions: f64,
    /// Stream shards (one per partition).
    pub stream_shards: f64,
    /// PutEvents requests per second.
    pub put_events_per_second: f64,
    /// Seconds from a producer's put to the bus, with the processor buffer
    /// full (`fastest`: the record that fills it) and waiting for its interval
    /// or size (`slowest`), handler times and batching windows included;
    /// DynamoDB Streams' and EventBridge's own delivery, which AWS does not
    /// bound, are not.
    pub latency_fastest_seconds: f64,
    /// See [`Self::latency_fastest_seconds`].
    pub latency_slowest_seconds: f64,
    /// Every limit, highest utilisation first.
    pub limits: Vec<Limit>,
}

impl Capacity {
    /// The limit that binds first: the highest utilisation.
    pub fn binding(&self) -> Option<&Limit> {
        self.limits.first()
    }
}

/// Expected distinct entities among `batch` records drawn evenly from `entities`.
fn distinct(entities: f64, batch: f64) -> f64 {
    if entities <= 1.0 {
        return 1.0_f64.min(batch);
    }
    // E·(1 − (1 − 1/E)^B), in a form that keeps its precision for large E.
    (-entities * (batch * (-1.0 / entities).ln_1p()).exp_m1()).clamp(1.0, batch)
}

fn limit(name: &str, needed: f64, available: f64, unit: &str, source: &str, remedy: &str) -> Limit {
    Limit {
        name: name.into(),
        needed,
        available,
        utilisation: if available > 0.0 {
            needed / available
        } else {
            f64::INFINITY
        },
        unit: unit.into(),
        source: source.into(),
        remedy: remedy.into(),
    }
}

/// The model, for `inputs`.
pub fn model(inputs: &CapacityInputs) -> Capacity {
    let rate = inputs.events_per_second.max(0.0);
    let call = inputs.aws_call_ms.max(0.0);
    let entities = inputs.entities.max(1.0);

    // Transformer: Firehose fills an invocation to the processor buffer, or
    // sends what arrived within the interval.
    let buffer_bytes = inputs.processor_buffer_mb * 1024.0 * 1024.0;
    let buffer_records = (buffer_bytes / inputs.record_bytes.max(1.0))
        .floor()
        .max(1.0);
    let records = buffer_records.min((rate * inputs.processor_buffer_interval_seconds).max(1.0));
    // A round carries each entity's earliest pending record, 10 per call,
    // up to `sends` calls in flight; an entity's next record waits a round.
    let per_entity = (records / entities).ceil().max(1.0);
    let calls_per_round = (distinct(entities, records) / 10.0).ceil().max(1.0);
    let sends = inputs.transformer_max_concurrent_sends.max(1.0);
    let transformer_chain = per_entity * (calls_per_round / sends).ceil();
    let transformer_ms = transformer_chain * call + records * TRANSFORMER_CPU_MS_PER_RECORD;
    let transformer = stage(rate, records, transformer_chain, transformer_ms);
    let fill_seconds = (buffer_bytes / (rate * inputs.record_bytes).max(1e-9))
        .min(inputs.processor_buffer_interval_seconds);

    // Storer: each entity of a batch in a chain of its own: the first append
    // reads the tail and puts twice, a later one of the same entity puts
    // twice from the tail it knows; with a retention, the head is put too.
    let batch = inputs.storer_batch_size.max(1.0);
    let batch_entities = distinct(entities, batch);
    // The longest chain: an entity's first append, and at worst every
    // repeated entity of the batch (expected `batch - batch_entities`) on it.
    let repeats = (batch - batch_entities).max(0.0);
    let per_entity_in_batch = 1.0 + repeats;
    let head = if inputs.retention { 1.0 } else { 0.0 };
    let entity_chain = (3.0 + head) + (2.0 + head) * repeats;
    let waves = (batch_entities / inputs.storer_max_concurrent_entities.max(1.0)).ceil();
    let storer_chain = waves * entity_chain;
    let storer_ms = storer_chain * call + STORER_CPU_MS_PER_BATCH * batch / 10.0;
    let storer = stage(rate, batch, storer_chain, storer_ms);

    // DynamoDB: 1 KB of item per write unit (the event item carries the
    // record and its envelope; the marker is small), 4 KB per read unit.
    let event_item_wru = (inputs.record_bytes / 1024.0).ceil().max(1.0);
    let wru_per_event = event_item_wru + 1.0 + head;
    let reads_per_event = batch_entities / batch;
    let wcu = rate * wru_per_event;
    let rcu = rate * reads_per_event * (inputs.record_bytes / 4096.0).ceil().max(1.0);
    let partitions = (wcu / PARTITION_WRITE_UNITS)
        .max(rcu / PARTITION_READ_UNITS)
        .ceil()
        .max(1.0);
    let stream_shards = partitions;

    // Emitter: a shard's batch is published in order, one PutEvents of up
    // to 10 entries (each of up to `bundle_max_events` events) after another.
    let per_shard = rate / stream_shards;
    let emitter_records = inputs
        .emitter_batch_size
        .min((per_shard * inputs.emitter_batching_window_seconds.max(0.0)).max(1.0))
        .max(1.0);
    let per_put = PUT_EVENTS_ENTRIES * inputs.bundle_max_events.max(1.0);
    let emitter_chain = (emitter_records / per_put).ceil();
    let emitter_ms = emitter_chain * call + emitter_records * EMITTER_CPU_MS_PER_RECORD;
    let emitter = stage(rate, emitter_records, emitter_chain, emitter_ms);
    let put_events_per_second = rate / per_put;

    let fifo_calls = rate / 10.0;
    let fifo_mode_needed = if fifo_calls > FIFO_CALLS_PER_SECOND {
        "high-throughput"
    } else {
        "standard"
    };
    let fifo_available = if inputs.queue_high_throughput {
        FIFO_HIGH_THROUGHPUT_CALLS_PER_SECOND
    } else {
        FIFO_CALLS_PER_SECOND
    };
    let lambda_total = transformer.concurrency + storer.concurrency + emitter.concurrency;
    let per_entity_rate = rate / entities;
    let mut limits = vec![
        limit(
            "storer concurrency",
            storer.concurrency,
            inputs.storer_maximum_concurrency,
            "invocations in flight",
            "Terraform storer_maximum_concurrency (the SQS event source's maximum concurrency)",
            "raise storer_maximum_concurrency (2-1000)",
        ),
        limit(
            "storer concurrency: message groups",
            storer.concurrency,
            (entities / batch_entities).max(1.0),
            "invocations in flight",
            "Lambda scales a FIFO event source to the active message groups: a batch holds its groups' messages",
            "more entities, or a smaller storer_batch_size",
        ),
        limit(
            "events per entity",
            per_entity_rate,
            (per_entity_in_batch / (storer_ms / 1000.0)).min(FIFO_MESSAGES_PER_GROUP_PER_SECOND),
            "events/s",
            "one storer batch of an entity at a time (FIFO), and 300 messages/s per message group (SQS quotas)",
            "spread events over more entities",
        ),
        limit(
            "SQS FIFO SendMessageBatch",
            fifo_calls,
            fifo_available,
            "calls/s",
            if inputs.queue_high_throughput {
                "SQS high-throughput FIFO: 70,000 calls/s per action (largest regions)"
            } else {
                "SQS FIFO: 300 calls/s per action (AWS-CONTRACTS.md)"
            },
            "queue_high_throughput = true",
        ),
        limit(
            "DynamoDB hot entity",
            per_entity_rate * wru_per_event,
            PARTITION_WRITE_UNITS,
            "write units/s",
            "1,000 write units/s per partition key (AWS-CONTRACTS.md)",
            "spread events over more entities",
        ),
        limit(
            "EventBridge PutEvents",
            put_events_per_second,
            inputs.put_events_quota,
            "requests/s",
            "10,000 requests/s per account in us-east-1, soft (AWS-CONTRACTS.md)",
            "bundle_max_events > 1 (decision 0014), or a quota increase",
        ),
        limit(
            "emitter per shard",
            per_shard,
            inputs.emitter_parallelization_factor.max(1.0) * emitter_records
                / (emitter_ms / 1000.0),
            "events/s",
            "one batch per shard at a time, times emitter_parallelization_factor",
            "emitter_parallelization_factor (1-10), bundle_max_events, emitter_batch_size",
        ),
        limit(
            "Firehose records",
            rate,
            FIREHOSE_RECORDS_PER_SECOND,
            "records/s",
            "Firehose direct PUT: 500,000 records/s per stream (largest regions)",
            "a quota increase, or a second delivery stream",
        ),
        limit(
            "Firehose requests",
            rate / FIREHOSE_RECORDS_PER_REQUEST,
            FIREHOSE_REQUESTS_PER_SECOND,
            "requests/s",
            "Firehose direct PUT: 2,000 requests/s per stream, at 500 records per PutRecordBatch",
            "producers batch fuller requests",
        ),
        limit(
            "Firehose bytes",
            rate * inputs.record_bytes,
            FIREHOSE_BYTES_PER_SECOND,
            "bytes/s",
            "Firehose direct PUT: 5 MiB/s per stream (largest regions)",
            "a quota increase, or a second delivery stream",
        ),
        limit(
            "Lambda concurrency",
            lambda_total,
            inputs.lambda_concurrency_quota,
            "executions in flight",
            "1,000 concurrent executions per account and region by default (Lambda quotas)",
            "a quota increase",
        ),
    ];
    limits.sort_by(|a, b| b.utilisation.total_cmp(&a.utilisation));

    let handlers_seconds = (transformer.batch_ms + storer.batch_ms + emitter.batch_ms) / 1000.0;
    let window = inputs.emitter_batching_window_seconds.max(0.0);
    Capacity {
        inputs: inputs.clone(),
        transformer,
        storer,
        emitter,
        fifo_mode_needed: fifo_mode_needed.into(),
        partitions,
        stream_shards,
        put_events_per_second,
        latency_fastest_seconds: handlers_seconds,
        latency_slowest_seconds: fill_seconds + handlers_seconds + window,
        limits,
    }
}

fn stage(rate: f64, records: f64, chained_calls: f64, batch_ms: f64) -> Stage {
    let invocations_per_second = rate / records.max(1.0);
    Stage {
        records_per_batch: records,
        chained_calls,
        batch_ms,
        invocations_per_second,
        concurrency: invocations_per_second * batch_ms / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rate: f64) -> Capacity {
        model(&CapacityInputs {
            events_per_second: rate,
            ..CapacityInputs::default()
        })
    }

    #[test]
    fn a_storer_batch_of_ten_entities_is_one_chain_of_three_calls() {
        let c = model(&CapacityInputs {
            entities: 1e9,
            ..CapacityInputs::default()
        });
        assert!((c.storer.chained_calls - 3.0).abs() < 1e-6);
        assert!((c.storer.batch_ms - (15.0 + STORER_CPU_MS_PER_BATCH)).abs() < 1e-6);
        // One entity: the first append reads, the nine after it do not.
        let one = model(&CapacityInputs {
            entities: 1.0,
            ..CapacityInputs::default()
        });
        assert!((one.storer.chained_calls - (3.0 + 2.0 * 9.0)).abs() < 1e-6);
    }

    #[test]
    fn concurrency_grows_with_the_rate_and_the_first_limit_binds() {
        let low = at(100.0);
        let high = at(10_000.0);
        assert!(high.storer.concurrency > 50.0 * low.storer.concurrency);
        assert_eq!(low.fifo_mode_needed, "standard");
        assert_eq!(high.fifo_mode_needed, "high-throughput");
        // At 100/s nothing binds; at 10,000/s the storer's default maximum
        // concurrency (10) does.
        assert!(
            low.binding().is_some_and(|l| l.utilisation < 1.0),
            "{low:#?}"
        );
        let binding = high.binding().map(|l| l.name.as_str());
        assert_eq!(binding, Some("storer concurrency"));
        // Highest utilisation first, never sorted otherwise.
        assert!(
            high.limits
                .windows(2)
                .all(|w| w[0].utilisation >= w[1].utilisation)
        );
    }

    #[test]
    fn the_processor_buffer_sets_the_latency() {
        // 100 events/s of 1 KiB fill 0.3 MiB in about 3 s; 1 event/s waits
        // for the 60 s interval.
        let c = at(100.0);
        assert!(
            c.latency_slowest_seconds > 3.0 && c.latency_slowest_seconds < 5.0,
            "{c:#?}"
        );
        let slow = at(1.0);
        assert!(slow.latency_slowest_seconds > 60.0);
        assert!(c.latency_fastest_seconds < 1.0);
    }

    #[test]
    fn bundling_divides_put_events_requests() {
        let plain = at(10_000.0);
        let bundled = model(&CapacityInputs {
            events_per_second: 10_000.0,
            bundle_max_events: 10.0,
            ..CapacityInputs::default()
        });
        assert!((plain.put_events_per_second - 1_000.0).abs() < 1e-6);
        assert!((bundled.put_events_per_second - 100.0).abs() < 1e-6);
    }
}
