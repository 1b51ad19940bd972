//! Where records go. The retry rule and the Firehose sender are the producer
//! client's ([`tideline_client::deliver`], [`tideline_client::FirehoseTransport`]):
//! one implementation, so Firehose's partial failures (`FailedPutCount` with
//! per-record `ErrorCode`) and SQS's (`Failed` entries) are handled by one
//! tested rule: re-send only what failed, with exponential backoff and jitter,
//! a bounded number of times (INVARIANTS.md #5). Re-sending the whole batch
//! would create duplicates.
//!
//! The generator uses the client's transport and retry loop, not its
//! `Publisher`: it sends invalid records on purpose, which the publisher's
//! admission check would refuse before sending.

use crate::profiles::Record;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
pub use tideline_client::{
    BatchLimits, CallError, CallResult, Delivered, FirehoseTransport, RecordError, RetryPolicy,
    Transport, deliver,
};
use tideline_core::{EntityId, EventId};
use tideline_stages::OutgoingMessage;

/// PutRecordBatch: at most 500 records per call (AWS-CONTRACTS.md, Firehose).
pub const FIREHOSE_MAX_RECORDS: usize = BatchLimits::FIREHOSE.max_records;
/// PutRecordBatch: at most 4 MiB per call (AWS-CONTRACTS.md, Firehose).
pub const FIREHOSE_MAX_BYTES: usize = BatchLimits::FIREHOSE.max_bytes;
/// SendMessageBatch: at most 10 messages per call (AWS-CONTRACTS.md, SQS FIFO).
pub const SQS_MAX_RECORDS: usize = 10;
/// SendMessageBatch: 1 MiB per call since January 2026 (AWS-CONTRACTS.md, SQS FIFO).
pub const SQS_MAX_BYTES: usize = 1024 * 1024;

/// A record on its way out.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The generated record.
    pub record: Record,
    /// True for the later copy sent by `--duplicates`.
    pub resend: bool,
}

impl AsRef<[u8]> for Outgoing {
    /// The bytes as sent: never re-encoded, so non-ASCII text arrives byte-exact.
    fn as_ref(&self) -> &[u8] {
        &self.record.bytes
    }
}

/// One ingest API, as the senders see it.
pub trait Sink: Transport<Outgoing> {}
impl<T: Transport<Outgoing>> Sink for T {}

/// Straight to the FIFO queue with `SendMessageBatch`, bypassing Firehose and
/// the transform. The transform's normalisation is applied here (it is the
/// same library function), so the storer sees exactly what the transform
/// would enqueue; invalid records go as they are and must be refused as poison.
#[derive(Debug, Clone)]
pub struct SqsSink {
    // The pipeline's own SQS adapter: one mapping of SendMessageBatch results.
    queue: Arc<tideline_aws::SqsQueue>,
    entity_names: Arc<Vec<String>>,
    id_prefix: String,
    limits: BatchLimits,
}

impl SqsSink {
    /// A sink for the FIFO queue at `queue_url`.
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: String,
        entity_names: Arc<Vec<String>>,
        id_prefix: String,
        limits: BatchLimits,
    ) -> Self {
        Self {
            queue: Arc::new(tideline_aws::SqsQueue::new(client, queue_url)),
            entity_names,
            id_prefix,
            limits,
        }
    }
}

impl Transport<Outgoing> for SqsSink {
    fn limits(&self) -> BatchLimits {
        self.limits
    }

    fn put(&self, batch: &[&Outgoing]) -> impl Future<Output = CallResult> + Send {
        use tideline_stages::Queue;
        // One result per record, in order: a record whose message cannot be
        // built is refused here; the rest are sent, and their results fill in
        // the positions they were sent from.
        let mut results: Vec<Option<RecordError>> = vec![None; batch.len()];
        let mut sent_from = Vec::with_capacity(batch.len());
        let mut messages = Vec::with_capacity(batch.len());
        for (i, o) in batch.iter().enumerate() {
            match self.message(&o.record) {
                Ok(m) => {
                    sent_from.push(i);
                    messages.push(m);
                }
                Err(refused) => results[i] = Some(refused),
            }
        }
        let queue = self.queue.clone();
        async move {
            if messages.is_empty() {
                return Ok(results);
            }
            let sent = queue.send_batch(&messages).await.map_err(|e| CallError {
                message: e.to_string(),
                retryable: e.class == tideline_core::ErrorClass::Retryable,
            })?;
            for (i, r) in sent_from.into_iter().zip(sent) {
                results[i] = r.err().map(|f| RecordError {
                    code: format!("{}: {}", f.code, f.message),
                    retryable: f.class == tideline_core::ErrorClass::Retryable,
                });
            }
            Ok(results)
        }
    }
}

impl SqsSink {
    /// The queue message of a generated record, built by the pipeline's one
    /// message builder ([`OutgoingMessage::new`]): a valid record as the
    /// transformer would enqueue it, an invalid one (negative profiles) with
    /// its bytes as they are, so the storer's poison handling is exercised,
    /// under its entity's group and its record id's de-duplication id.
    fn message(&self, r: &crate::profiles::Record) -> Result<OutgoingMessage, RecordError> {
        use tideline_core::ingest::{IngestConfig, admit};
        if let Ok(admitted) = admit(&IngestConfig::default(), &r.bytes, chrono::Utc::now()) {
            return Ok(OutgoingMessage::for_record(&admitted));
        }
        let refused = |what: &str, e: tideline_core::ids::IdError| RecordError {
            code: format!("InvalidMessage: {what} {e}"),
            retryable: false,
        };
        let name = self
            .entity_names
            .get(r.entity as usize)
            .map_or("", String::as_str);
        let entity = EntityId::new(name).map_err(|e| refused("entity name", e))?;
        let event = EventId::new(format!("{}{}", self.id_prefix, r.n))
            .map_err(|e| refused("record id", e))?;
        let body = String::from_utf8_lossy(&r.bytes).into_owned();
        Ok(OutgoingMessage::new(&entity, &event, body, None))
    }
}

/// JSON Lines to stdout or a file: for piping into other tools, or to look at.
pub struct LinesSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for LinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinesSink")
    }
}

impl LinesSink {
    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// Flushes the output.
    pub fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut o) => o.flush(),
            Err(_) => Ok(()),
        }
    }
}

impl Transport<Outgoing> for LinesSink {
    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: FIREHOSE_MAX_RECORDS,
            max_bytes: FIREHOSE_MAX_BYTES,
        }
    }

    fn put(&self, batch: &[&Outgoing]) -> impl Future<Output = CallResult> + Send {
        let result = match self.out.lock() {
            Ok(mut out) => batch
                .iter()
                .try_for_each(|o| {
                    out.write_all(&o.record.bytes)?;
                    out.write_all(b"\n")
                })
                .map(|()| vec![None; batch.len()])
                .map_err(|e| CallError {
                    message: format!("write failed: {e}"),
                    retryable: false,
                }),
            Err(_) => Err(CallError {
                message: "output lock poisoned".into(),
                retryable: false,
            }),
        };
        std::future::ready(result)
    }
}

/// Any of the targets, so the runner is one concrete type.
#[derive(Debug)]
pub enum AnySink {
    /// Firehose, through the producer client.
    Firehose(FirehoseTransport),
    /// SQS FIFO.
    Sqs(SqsSink),
    /// JSON Lines.
    Lines(LinesSink),
}

impl Transport<Outgoing> for AnySink {
    fn limits(&self) -> BatchLimits {
        match self {
            AnySink::Firehose(s) => Transport::<Outgoing>::limits(s),
            AnySink::Sqs(s) => s.limits(),
            AnySink::Lines(s) => s.limits(),
        }
    }

    async fn put(&self, batch: &[&Outgoing]) -> CallResult {
        match self {
            AnySink::Firehose(s) => Transport::<Outgoing>::put(s, batch).await,
            AnySink::Sqs(s) => s.put(batch).await,
            AnySink::Lines(s) => s.put(batch).await,
        }
    }
}

/// True when the environment names AWS credentials of any kind; without
/// them, a local endpoint gets dummy ones so the SDK can sign at all.
fn credentials_configured() -> bool {
    const VARS: [&str; 7] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ];
    if VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        return true;
    }
    std::env::var_os("HOME").is_some_and(|home| {
        let aws = std::path::Path::new(&home).join(".aws");
        aws.join("credentials").exists() || aws.join("config").exists()
    })
}

/// The SDK configuration: the default chain, or for a local endpoint
/// (`tideline up`) dummy credentials and `us-east-1` where none are configured.
pub async fn sdk_config(endpoint_url: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    use aws_config::meta::region::RegionProviderChain;
    use aws_config::{BehaviorVersion, Region};
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
        if region.is_none() {
            loader = loader.region(
                RegionProviderChain::default_provider().or_else(Region::from_static("us-east-1")),
            );
        }
        if !credentials_configured() {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                "local",
                "local",
                None,
                None,
                "tideline-generator-local",
            ));
        }
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::profiles::{InvalidKind, Record};

    fn sink() -> SqsSink {
        // Never called: only the message builder is under test.
        let client = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .build(),
        );
        SqsSink::new(
            client,
            "https://sqs.invalid/q.fifo".into(),
            Arc::new(vec!["order-7-000000".into(), "order 7".into()]),
            "gen-7-".into(),
            BatchLimits {
                max_records: SQS_MAX_RECORDS,
                max_bytes: SQS_MAX_BYTES,
            },
        )
    }

    fn record(entity: u32, n: u64, bytes: &[u8]) -> Record {
        Record {
            n,
            entity,
            gen_seq: 0,
            invalid: Some(InvalidKind::NotJson),
            duplicate: false,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn a_poison_record_gets_the_pipelines_group_and_dedup_rules() {
        let m = sink().message(&record(0, 12, b"{\"entity_id\":")).unwrap();
        let entity = EntityId::new("order-7-000000").unwrap();
        let event = EventId::new("gen-7-12").unwrap();
        assert_eq!(
            m,
            OutgoingMessage::new(&entity, &event, "{\"entity_id\":".into(), None)
        );
        assert_eq!(m.group_id, "order-7-000000");
        assert_eq!(
            m.dedup_id,
            tideline_core::ids::queue_dedup_id(&entity, &event)
        );
    }

    #[test]
    fn a_valid_record_is_the_transformers_message() {
        let bytes = br#"{"entity_id":"order-7-000000","type":"T","id":"gen-7-1","data":{}}"#;
        let m = sink().message(&record(0, 1, bytes)).unwrap();
        let entity = EntityId::new("order-7-000000").unwrap();
        let event = EventId::new("gen-7-1").unwrap();
        assert_eq!(
            m.dedup_id,
            tideline_core::ids::queue_dedup_id(&entity, &event)
        );
        let body: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(body["entity_id"], "order-7-000000");
    }

    #[test]
    fn a_record_without_a_valid_group_is_refused_not_sent() {
        // A name SQS would refuse as MessageGroupId, and an unknown entity.
        for entity in [1, 9] {
            let refused = sink().message(&record(entity, 3, b"x")).unwrap_err();
            assert!(!refused.retryable);
            assert!(
                refused.code.starts_with("InvalidMessage: entity name"),
                "{}",
                refused.code
            );
        }
    }
}
