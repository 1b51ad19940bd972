//! Test support shared by every moto-backed test in the workspace.
//!
//! - [`endpoint`]: `TIDELINE_MOTO_ENDPOINT`, or moto started once per test
//!   binary from `.venv/bin/moto_server` (installed by `scripts/moto.sh`) and
//!   stopped when the test process exits;
//! - [`sdk_config`]: explicit endpoint, region and dummy credentials, with no
//!   global environment changes, so tests can run in parallel;
//! - [`unique`]: resource names no two tests share;
//! - [`create_event_table`]: the table contract (`pk`/`sk`, LSI `by-sequence`);
//! - [`fault_proxy`]: a proxy in front of moto that injects the faults moto
//!   never produces (throttling, lost answers, partial batch failures).
//!
//! Test-only code: a failure here is a broken test environment, so it panics
//! with a message that says what to do.

#![deny(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod fault_proxy;

/// The region every test uses.
pub const REGION: &str = "us-east-1";

static ENDPOINT: OnceLock<String> = OnceLock::new();

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The moto endpoint, starting moto if needed.
pub fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| match std::env::var("TIDELINE_MOTO_ENDPOINT") {
            Ok(e) if !e.is_empty() => e,
            _ => start_moto(),
        })
        .clone()
}

fn start_moto() -> String {
    let server = repo_root().join(".venv/bin/moto_server");
    assert!(
        server.exists(),
        "moto is not installed at {}: run scripts/moto.sh (or set TIDELINE_MOTO_ENDPOINT to a running moto)",
        server.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A watchdog shell stops moto when this test process exits.
    let parent = std::process::id();
    let script = format!(
        "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m"
    );
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&server)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start moto_server");
    // The watchdog ends with this process; it is deliberately not waited on.
    std::mem::forget(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// SDK config for moto.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(&endpoint()).await
}

/// SDK config for another endpoint in front of moto (the fault proxy), with
/// the same region and dummy credentials.
pub async fn sdk_config_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A unique resource name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Creates a table with the table contract (decision 0009): string `pk`/`sk`;
/// with `stream`, a NEW_AND_OLD_IMAGES stream whose ARN is returned.
pub async fn create_event_table(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    stream: bool,
) -> Option<String> {
    create_event_table_with(ddb, name, stream, false).await
}

/// As [`create_event_table`]; with `legacy_index`, also the numeric `seq`
/// attribute and the LSI `by-sequence` on (`pk`, `seq`) that tables created
/// before decision 0009 have.
pub async fn create_event_table_with(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    stream: bool,
    legacy_index: bool,
) -> Option<String> {
    use aws_sdk_dynamodb::types::*;
    let attr = |n: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let mut request = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range));
    if legacy_index {
        request = request
            .attribute_definitions(attr("seq", ScalarAttributeType::N))
            .local_secondary_indexes(
                LocalSecondaryIndex::builder()
                    .index_name("by-sequence")
                    .key_schema(key("pk", KeyType::Hash))
                    .key_schema(key("seq", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            );
    }
    if stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        );
    }
    let out = request.send().await.unwrap();
    out.table_description.and_then(|t| t.latest_stream_arn)
}

/// Creates a table with a string `pk` (and a string `sk` when `with_sk`), as
/// the Terraform `consumer` module (checkpoints) and the example (read model) create.
pub async fn create_key_table(ddb: &aws_sdk_dynamodb::Client, name: &str, with_sk: bool) {
    use aws_sdk_dynamodb::types::*;
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let mut request = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .key_schema(key("pk", KeyType::Hash));
    if with_sk {
        request = request
            .attribute_definitions(attr("sk"))
            .key_schema(key("sk", KeyType::Range));
    }
    request.send().await.unwrap();
}
