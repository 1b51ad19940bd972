//! `tideline up`: local mode.

use crate::CliError;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tideline_core::ingest::{FieldMap, IngestConfig};
use tideline_core::limits::HopLimits;
use tideline_local::{LocalConfig, LocalStack};
use tideline_realtime::TokenVerifier;

/// Flags of `tideline up`.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Directory for the databases (store, targets) and the lake.
    #[arg(long, default_value = "./.tideline", env = "TIDELINE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address of the Firehose and query APIs: HOST:PORT (`localhost:4578`
    /// is taken as its first address, IPv4 first).
    #[arg(long, default_value = "127.0.0.1:4566", env = "TIDELINE_LISTEN")]
    pub listen: String,
    /// Rules file: a JSON array of {"name", "event_pattern", "target"}.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Firehose delivery stream name the ingest API answers to.
    #[arg(long, default_value = "tideline-ingest")]
    pub stream_name: String,
    /// `source` of integration events.
    #[arg(long, default_value = "tideline", env = "TIDELINE_EVENT_SOURCE")]
    pub source: String,
    /// Field map as JSON Pointers, e.g. '{"entity_id": "/order_id"}'.
    #[arg(long, env = "TIDELINE_FIELD_MAP")]
    pub field_map: Option<String>,
    /// Largest accepted record in bytes (Firehose: 1,000 KiB).
    #[arg(long, env = "TIDELINE_MAX_RECORD_BYTES", default_value_t = tideline_core::ingest::DEFAULT_MAX_RECORD_BYTES)]
    pub max_record_bytes: usize,
    /// The message size limit in bytes of the queue on AWS (SQS
    /// MaximumMessageSize; the Terraform queue's `max_message_size`). Local
    /// mode has no queue, but refuses at ingest what that queue would not
    /// carry, so local and AWS accept the same records.
    #[arg(long, env = "TIDELINE_MAX_MESSAGE_BYTES", default_value_t = tideline_core::limits::DEFAULT_SQS_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// What an acknowledged record survives. `normal` (the default): a crash
    /// of the process (SQLite `synchronous=NORMAL` in WAL mode). `full`: also
    /// an OS crash or power loss (`synchronous=FULL`, an fsync per commit;
    /// slower). See docs/local-mode.md.
    #[arg(long, default_value = "normal", value_parser = ["normal", "full"], env = "TIDELINE_DURABILITY")]
    pub durability: String,
    /// Bundled emission: pack up to this many consecutive events into one
    /// bus entry (detail-type `TidelineBundle`), as the emitter Lambda does
    /// with TIDELINE_BUNDLE_MAX_EVENTS. 1 (the default) is off.
    #[arg(long, env = "TIDELINE_BUNDLE_MAX_EVENTS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub bundle_max_events: u64,
    /// Another host name the HTTP server answers to (repeatable), besides
    /// localhost, loopback addresses and the --listen address. Other `Host`
    /// headers are refused (a DNS-rebinding defence).
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Schema registry file (`schemas/registry.json` layout): a record whose
    /// `data` does not match its type's schema is refused at ingest.
    #[arg(long, env = "TIDELINE_SCHEMA_REGISTRY")]
    pub schema_registry: Option<PathBuf>,
    /// Keep each event this long after it is stored (`7d`, `36h`, `90m`,
    /// `45s`), then remove it and publish `EventExpired`, as DynamoDB's TTL
    /// does on AWS. An event id is de-duplicated while its event is retained.
    /// Without it, events are kept forever.
    #[arg(long, env = "TIDELINE_RETENTION")]
    pub retention: Option<String>,
    /// Serve the realtime WebSocket (`/_tideline/realtime`, docs/realtime.md)
    /// with tokens signed by this HS256 secret. Prefer the environment
    /// variable: a flag's value shows in the process list.
    #[arg(
        long,
        env = "TIDELINE_REALTIME_HS256_SECRET",
        hide_env_values = true,
        conflicts_with_all = ["realtime_jwks_file", "realtime_insecure_dev_tokens"]
    )]
    pub realtime_hs256_secret: Option<String>,
    /// Serve the realtime WebSocket with RS256 tokens checked against this
    /// JWKS file (`{"keys": [...]}`, as an identity provider publishes it).
    #[arg(
        long,
        env = "TIDELINE_REALTIME_JWKS_FILE",
        conflicts_with = "realtime_insecure_dev_tokens"
    )]
    pub realtime_jwks_file: Option<PathBuf>,
    /// The issuer (`iss`) realtime tokens must name (with a secret or a JWKS).
    #[arg(long, env = "TIDELINE_REALTIME_ISSUER")]
    pub realtime_issuer: Option<String>,
    /// Serve the realtime WebSocket accepting unsigned tokens (`alg: none`):
    /// anyone who reaches the port may subscribe to anything. For a
    /// developer's machine only.
    #[arg(long)]
    pub realtime_insecure_dev_tokens: bool,
}

impl UpArgs {
    /// The realtime token verifier these flags describe (`None`: realtime off).
    fn realtime_verifier(&self) -> Result<Option<TokenVerifier>, CliError> {
        let issuer = self.realtime_issuer.clone();
        if let Some(secret) = &self.realtime_hs256_secret {
            return TokenVerifier::hs256(secret.as_bytes(), issuer)
                .map(Some)
                .map_err(|e| CliError::config("--realtime-hs256-secret", e));
        }
        if let Some(path) = &self.realtime_jwks_file {
            return TokenVerifier::jwks_file(path, issuer)
                .map(Some)
                .map_err(|e| CliError::config("--realtime-jwks-file", e));
        }
        if self.realtime_insecure_dev_tokens {
            if issuer.is_some() {
                return Err(CliError::Usage(
                    "--realtime-issuer: unsigned tokens prove no issuer; use it with --realtime-hs256-secret or --realtime-jwks-file".into(),
                ));
            }
            tracing::warn!(
                "--realtime-insecure-dev-tokens: unsigned tokens are accepted; anyone who reaches this port can subscribe to any event"
            );
            return Ok(Some(TokenVerifier::InsecureDev));
        }
        if issuer.is_some() {
            return Err(CliError::Usage(
                "--realtime-issuer needs --realtime-hs256-secret or --realtime-jwks-file".into(),
            ));
        }
        Ok(None)
    }
}

impl UpArgs {
    /// The stack configuration these flags describe.
    pub fn to_config(&self) -> Result<LocalConfig, CliError> {
        let fields = match &self.field_map {
            Some(text) => FieldMap::from_json(text)
                .map_err(|e| CliError::Usage(format!("--field-map: {e}")))?,
            None => FieldMap::default(),
        };
        let limits = HopLimits {
            record_bytes: self.max_record_bytes,
            sqs_message_bytes: self.max_message_bytes,
            ..HopLimits::default()
        };
        let source_chars = self.source.chars().count();
        if source_chars == 0 || source_chars > tideline_core::limits::SOURCE_CHARS {
            return Err(CliError::Usage(format!(
                "--source is {source_chars} characters; PutEvents Source takes 1–{}",
                tideline_core::limits::SOURCE_CHARS
            )));
        }
        limits
            .validate()
            .map_err(|e| CliError::Usage(format!("--max-record-bytes/--max-message-bytes: {e}")))?;
        Ok(LocalConfig {
            data_dir: self.data_dir.clone(),
            listen: resolve_listen(&self.listen)?,
            rules_file: self.rules.clone(),
            stream_name: self.stream_name.clone(),
            source: self.source.clone(),
            ingest: IngestConfig {
                limits,
                fields,
                data_validator: self
                    .schema_registry
                    .as_deref()
                    .map(|path| {
                        tideline_schema::SchemaRegistry::load(path)
                            .map(tideline_core::data_validator::SharedDataValidator::new)
                            .map_err(|e| CliError::config("--schema-registry", e))
                    })
                    .transpose()?,
            },
            durability: self
                .durability
                .parse()
                .map_err(|e: String| CliError::Usage(format!("--durability: {e}")))?,
            allowed_hosts: self.allow_hosts.clone(),
            bundle: tideline_core::bundle::BundleConfig::from_max_events(
                usize::try_from(self.bundle_max_events).unwrap_or(usize::MAX),
            ),
            ttl: self
                .retention
                .as_deref()
                .map(tideline_local::parse_retention)
                .transpose()
                .map_err(|e| CliError::Usage(format!("--retention: {e}")))?,
            realtime: tideline_local::RealtimeConfig {
                verifier: self.realtime_verifier()?,
                ..tideline_local::RealtimeConfig::default()
            },
            ..LocalConfig::default()
        })
    }
}

/// `--listen`'s address: an IP and port, or a host name and port resolved
/// here (IPv4 first, as `localhost` usually means 127.0.0.1 to clients).
fn resolve_listen(listen: &str) -> Result<SocketAddr, CliError> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|e| {
            CliError::config(
                format!("--listen {listen} (give HOST:PORT, e.g. 127.0.0.1:4566)"),
                e,
            )
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| CliError::Usage(format!("--listen {listen}: the name has no address")))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs until Ctrl-C or SIGTERM, then shuts down gracefully.
pub async fn run(args: UpArgs) -> Result<ExitCode, CliError> {
    let stack = LocalStack::start(args.to_config()?)
        .await
        .map_err(CliError::Local)?;
    let addr = stack.local_addr();
    eprintln!("tideline up: listening on http://{addr}");
    eprintln!(
        "  ingest:  aws firehose put-record-batch --endpoint-url http://{addr} --delivery-stream-name {} ...",
        args.stream_name
    );
    eprintln!("  query:   curl http://{addr}/entities/<entity_id>/events");
    eprintln!("  data:    {}", args.data_dir.display());
    shutdown_signal().await;
    eprintln!("tideline up: shutting down");
    stack.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::Parser;
    use tideline_embedded::sqlite::Durability;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpArgs,
    }

    fn config(args: &[&str]) -> Result<LocalConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("up").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.up.to_config().map_err(|e| e.to_string())
    }

    #[test]
    fn durability_defaults_to_normal_and_full_is_accepted() {
        assert_eq!(config(&[]).unwrap().durability, Durability::Normal);
        assert_eq!(
            config(&["--durability", "full"]).unwrap().durability,
            Durability::Full
        );
        let e = config(&["--durability", "fsync"]).unwrap_err();
        assert!(e.contains("normal") && e.contains("full"), "{e}");
    }

    #[test]
    fn retention_is_the_store_ttl_and_bad_input_names_the_flag() {
        assert_eq!(config(&[]).unwrap().ttl, None);
        assert_eq!(
            config(&["--retention", "36h"]).unwrap().ttl,
            Some(chrono::Duration::hours(36))
        );
        let e = config(&["--retention", "7w"]).unwrap_err();
        assert!(e.starts_with("--retention: ") && e.contains("7w"), "{e}");
    }

    #[test]
    fn listen_takes_a_host_name() {
        assert_eq!(
            config(&["--listen", "localhost:4578"]).unwrap().listen,
            "127.0.0.1:4578".parse::<SocketAddr>().unwrap()
        );
        let e = config(&["--listen", "4578"]).unwrap_err();
        assert!(e.starts_with("--listen 4578"), "{e}");
    }

    #[test]
    fn allowed_hosts_are_passed_on() {
        let c = config(&["--allow-host", "tideline", "--allow-host", "box.lan"]).unwrap();
        assert_eq!(c.allowed_hosts, ["tideline", "box.lan"]);
    }
}
