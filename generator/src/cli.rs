//! The command line: argument parsing, target construction, progress display
//! and output. The binary is a thin `main` over [`run`].

use crate::manifest::ManifestWriter;
use crate::profiles::{Distribution, GenConfig, Profile, id_prefix};
use crate::rate::SystemClock;
use crate::send::{self, SendConfig, SendSummary, SharedManifest, Stop};
use crate::stats::SendStats;
use crate::targets::{
    AnySink, BatchLimits, FIREHOSE_MAX_BYTES, FIREHOSE_MAX_RECORDS, FirehoseTransport, LinesSink,
    RetryPolicy, SQS_MAX_BYTES, SQS_MAX_RECORDS, SqsSink, sdk_config,
};
use crate::verify::{self, HttpSource, SigV4, VerifySummary};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Synthetic load through Tideline's ingest API, and end-to-end verification.
#[derive(Debug, Parser)]
#[command(name = "tideline-generator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send synthetic records at a set rate.
    Send(SendArgs),
    /// Read back what a `send` run stored and check it.
    Verify(VerifyArgs),
}

/// Where `send` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetKind {
    /// Firehose PutRecordBatch (AWS, or `tideline up` with --endpoint-url).
    Firehose,
    /// Straight to the SQS FIFO queue (--queue-url).
    Sqs,
    /// JSON Lines on stdout.
    Stdout,
    /// JSON Lines to --output.
    File,
}

/// Entity spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DistributionKind {
    /// Every entity equally likely.
    Uniform,
    /// A few hot entities (see --zipf-exponent).
    Zipf,
}

/// Progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A bar on a terminal, periodic lines otherwise.
    Auto,
    /// Always a bar.
    Bar,
    /// Always periodic lines.
    Lines,
    /// Nothing until the summary.
    None,
}

/// `send` options.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Where to send.
    #[arg(long, value_enum, default_value_t = TargetKind::Firehose)]
    pub target: TargetKind,
    /// Firehose delivery stream.
    #[arg(long, default_value = "tideline-ingest")]
    pub stream: String,
    /// API endpoint, e.g. http://127.0.0.1:4566 for `tideline up`.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// AWS region (default: the SDK's chain; us-east-1 with --endpoint-url).
    #[arg(long)]
    pub region: Option<String>,
    /// SQS FIFO queue URL (--target sqs).
    #[arg(long, required_if_eq("target", "sqs"))]
    pub queue_url: Option<String>,
    /// Output file (--target file).
    #[arg(long, required_if_eq("target", "file"))]
    pub output: Option<PathBuf>,
    /// Number of records (default 1000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// How long to send, e.g. 30s, 5m, 500ms.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Records per second; 0 is as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Concurrent senders; an entity always goes through the same one.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Number of entities.
    #[arg(long, default_value_t = 1000)]
    pub entities: u32,
    /// How records spread over entities.
    #[arg(long, value_enum, default_value_t = DistributionKind::Uniform)]
    pub distribution: DistributionKind,
    /// Zipf skew (1.0: the classic law).
    #[arg(long, default_value_t = 1.0)]
    pub zipf_exponent: f64,
    /// Pad each record to this many bytes (0: natural size, ~300–600 bytes).
    #[arg(long, default_value_t = 0)]
    pub payload_bytes: usize,
    /// Record shape.
    #[arg(long, value_enum, default_value_t = Profile::Orders)]
    pub profile: Profile,
    /// Seed: the same seed sends the same records (default: from the clock, printed in the summary).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Mark events as test events.
    #[arg(long)]
    pub test_events: bool,
    /// Re-send this percentage of records later with the same bytes, as a producer retry would.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    pub duplicates: f64,
    /// Make this percentage of records malformed on purpose; the pipeline must reject them.
    #[arg(long, default_value_t = 0.0, value_parser = parse_percent)]
    pub invalid: f64,
    /// Write what was sent to this file, for `verify`.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Calls per record before giving up, the first included.
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,
    /// Records per call (default: the target's limit, 500 for Firehose, 10 for SQS).
    #[arg(long)]
    pub max_batch_records: Option<usize>,
    /// Bytes per call (default: the target's limit, 4 MiB for Firehose, 1 MiB for SQS).
    #[arg(long)]
    pub max_batch_bytes: Option<usize>,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// `verify` options.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The manifest written by `send --manifest`.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Base URL of the query API, e.g. http://127.0.0.1:4566.
    #[arg(long)]
    pub query_url: String,
    /// Sign requests with SigV4 (API Gateway, service execute-api), default credential chain.
    #[arg(long)]
    pub aws: bool,
    /// AWS region for --aws (default: the SDK's chain).
    #[arg(long)]
    pub region: Option<String>,
    /// Entities read at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `30s`, `5m`, `1h`, `500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; use e.g. 30s, 5m, 500ms"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?}; use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses a percentage from 0 to 100.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not a percentage from 0 to 100"))
    }
}

/// A refusal of the arguments or environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl SendArgs {
    /// The run configuration, after checking the arguments.
    pub fn config(&self) -> Result<SendConfig, UsageError> {
        let bad = |m: String| Err(UsageError(m));
        if self.entities == 0 {
            return bad("--entities must be at least 1".into());
        }
        if self.concurrency == 0 {
            return bad("--concurrency must be at least 1".into());
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return bad(format!("--rate must be 0 or more, got {}", self.rate));
        }
        if !(self.zipf_exponent.is_finite() && self.zipf_exponent > 0.0) {
            return bad("--zipf-exponent must be above 0".into());
        }
        if self.max_attempts == 0 {
            return bad("--max-attempts must be at least 1".into());
        }
        let seed = self.seed.unwrap_or_else(|| {
            chrono::Utc::now().timestamp_micros().unsigned_abs() % 1_000_000_000
        });
        let stop = match (self.count, self.duration) {
            (Some(n), _) => Stop::Count(n),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Count(1000),
        };
        Ok(SendConfig {
            gen_config: GenConfig {
                seed,
                profile: self.profile,
                entities: self.entities,
                distribution: match self.distribution {
                    DistributionKind::Uniform => Distribution::Uniform,
                    DistributionKind::Zipf => Distribution::Zipf {
                        exponent: self.zipf_exponent,
                    },
                },
                payload_bytes: self.payload_bytes,
                test_events: self.test_events,
                duplicates_pct: self.duplicates,
                invalid_pct: self.invalid,
                ..GenConfig::default()
            },
            stop,
            rate: self.rate,
            concurrency: self.concurrency,
            retry: RetryPolicy {
                max_attempts: self.max_attempts,
                ..RetryPolicy::default()
            },
        })
    }

    fn limits(&self, max_records: usize, max_bytes: usize) -> Result<BatchLimits, UsageError> {
        let l = BatchLimits {
            max_records: self.max_batch_records.unwrap_or(max_records),
            max_bytes: self.max_batch_bytes.unwrap_or(max_bytes),
        };
        if l.max_records == 0 || l.max_bytes == 0 {
            return Err(UsageError(
                "--max-batch-records and --max-batch-bytes must be at least 1".into(),
            ));
        }
        Ok(l)
    }

    async fn sink(&self, config: &SendConfig) -> Result<AnySink, UsageError> {
        Ok(match self.target {
            TargetKind::Firehose => {
                let sdk = sdk_config(self.endpoint_url.as_deref(), self.region.as_deref()).await;
                AnySink::Firehose(
                    FirehoseTransport::new(
                        aws_sdk_firehose::Client::new(&sdk),
                        self.stream.clone(),
                    )
                    .with_limits(self.limits(FIREHOSE_MAX_RECORDS, FIREHOSE_MAX_BYTES)?)
                    .map_err(|e| {
                        UsageError(format!("--max-batch-records/--max-batch-bytes: {e}"))
                    })?,
                )
            }
            TargetKind::Sqs => {
                let sdk = sdk_config(self.endpoint_url.as_deref(), self.region.as_deref()).await;
                let gen_config = &config.gen_config;
                let names = (0..gen_config.entities)
                    .map(|k| crate::profiles::entity_name(gen_config.profile, gen_config.seed, k))
                    .collect();
                AnySink::Sqs(SqsSink::new(
                    aws_sdk_sqs::Client::new(&sdk),
                    self.queue_url.clone().unwrap_or_default(),
                    Arc::new(names),
                    id_prefix(gen_config.seed),
                    self.limits(SQS_MAX_RECORDS, SQS_MAX_BYTES)?,
                ))
            }
            TargetKind::Stdout => AnySink::Lines(LinesSink::new(Box::new(
                std::io::BufWriter::new(std::io::stdout()),
            ))),
            TargetKind::File => {
                let path = self.output.clone().unwrap_or_default();
                let file = std::fs::File::create(&path)
                    .map_err(|e| UsageError(format!("--output {}: {e}", path.display())))?;
                AnySink::Lines(LinesSink::new(Box::new(std::io::BufWriter::new(file))))
            }
        })
    }
}

/// The summary of a `send` run, with its seed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SendReport {
    /// The seed, to repeat the run.
    pub seed: u64,
    /// The counts.
    #[serde(flatten)]
    pub summary: SendSummary,
}

/// Runs `send`; the summary decides the exit code.
pub async fn run_send(args: &SendArgs) -> Result<SendReport, UsageError> {
    let config = args.config()?;
    let seed = config.gen_config.seed;
    let sink = Arc::new(args.sink(&config).await?);
    let manifest: Option<SharedManifest> = match &args.manifest {
        None => None,
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| UsageError(format!("--manifest {}: {e}", path.display())))?;
            let out: Box<dyn Write + Send> =
                Box::new(std::io::BufWriter::with_capacity(1 << 16, file));
            let w = ManifestWriter::new(
                out,
                seed,
                chrono::Utc::now().timestamp_micros(),
                &id_prefix(seed),
            )
            .map_err(|e| UsageError(format!("--manifest {}: {e}", path.display())))?;
            Some(Arc::new(Mutex::new(w)))
        }
    };
    let stats = Arc::new(SendStats::default());
    let progress = Progress::start(args.progress, config.stop, stats.clone());
    let mut summary = send::run(
        config,
        sink.clone(),
        Arc::new(SystemClock::new()),
        stats,
        manifest,
    )
    .await;
    progress.finish().await;
    if let AnySink::Lines(lines) = sink.as_ref()
        && let Err(e) = lines.flush()
    {
        summary.failed += 1;
        eprintln!("output: {e}");
    }
    summary.target = format!("{:?}", args.target).to_lowercase();
    Ok(SendReport { seed, summary })
}

/// Runs `send --profile command`: writers through the command API.
pub async fn run_command_send(
    args: &SendArgs,
) -> Result<crate::command::CommandSummary, UsageError> {
    let config = args.config()?;
    let Some(endpoint) = args.endpoint_url.clone() else {
        return Err(UsageError(
            "--profile command appends through the command API: give --endpoint-url (e.g. http://127.0.0.1:4566 for tideline up)".into(),
        ));
    };
    if args.duration.is_some() {
        return Err(UsageError(
            "--profile command runs --count appends; --duration is not supported".into(),
        ));
    }
    let appends = match config.stop {
        Stop::Count(n) => n,
        Stop::Duration(_) => 1000,
    };
    let command = crate::command::CommandConfig {
        endpoint,
        writers: config.concurrency,
        entities: args.entities,
        appends,
        seed: config.gen_config.seed,
        max_attempts: args.max_attempts,
    };
    crate::command::send(&command, args.manifest.as_deref())
        .await
        .map_err(UsageError)
}

/// Runs `verify`.
pub async fn run_verify(args: &VerifyArgs) -> Result<VerifySummary, UsageError> {
    let manifest = crate::manifest::Manifest::read_file(&args.manifest)
        .map_err(|e| UsageError(format!("{} ({})", e, args.manifest.display())))?;
    let signer = if args.aws {
        let sdk = sdk_config(None, args.region.as_deref()).await;
        Some(SigV4::from_config(&sdk).map_err(UsageError)?)
    } else {
        None
    };
    let source = Arc::new(HttpSource::new(&args.query_url, signer));
    verify::verify(&manifest, source, args.concurrency)
        .await
        .map_err(|e| UsageError(e.to_string()))
}

/// Runs the command line and returns the process exit code:
/// 0 success, 1 records not sent or verification failed, 2 usage or I/O error.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Send(args) if args.profile == Profile::Command => {
            match run_command_send(&args).await {
                Ok(summary) => {
                    if args.json {
                        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
                    } else {
                        println!("{}", summary.line());
                    }
                    i32::from(summary.failed > 0)
                }
                Err(e) => {
                    eprintln!("tideline-generator send: {e}");
                    2
                }
            }
        }
        Command::Verify(args) if crate::command::is_command_manifest(&args.manifest) => {
            if args.aws {
                eprintln!(
                    "tideline-generator verify: --aws is not supported with a command manifest yet: verify it against the API without signing (tideline up), or leave --aws out"
                );
                return 2;
            }
            match crate::command::verify(&args.manifest, &args.query_url).await {
                Ok(report) => {
                    if args.json {
                        println!("{}", serde_json::to_string(&report).unwrap_or_default());
                    } else {
                        println!("{}", report.line());
                    }
                    i32::from(!report.problems.is_empty())
                }
                Err(e) => {
                    eprintln!("tideline-generator verify: {e}");
                    2
                }
            }
        }
        Command::Send(args) => match run_send(&args).await {
            Ok(report) => {
                let text = if args.json {
                    serde_json::to_string(&report).unwrap_or_default()
                } else {
                    format!("{} seed={}", report.summary.line(), report.seed)
                };
                if let Some(e) = &report.summary.manifest_error {
                    eprintln!("manifest incomplete: {e}");
                }
                // With JSON Lines on stdout, the summary must not mix into the data.
                if args.target == TargetKind::Stdout {
                    eprintln!("{text}");
                } else {
                    println!("{text}");
                }
                report.summary.exit_code()
            }
            Err(e) => {
                eprintln!("tideline-generator send: {e}");
                2
            }
        },
        Command::Verify(args) => match run_verify(&args).await {
            Ok(summary) => {
                for s in &summary.samples {
                    println!("  {s}");
                }
                if args.json {
                    println!("{}", serde_json::to_string(&summary).unwrap_or_default());
                } else {
                    println!("{}", summary.line());
                }
                summary.exit_code()
            }
            Err(e) => {
                eprintln!("tideline-generator verify: {e}");
                2
            }
        },
    }
}

/// Progress on stderr: an indicatif bar on a terminal, plain lines otherwise.
struct Progress {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(mode: ProgressMode, stop: Stop, stats: Arc<SendStats>) -> Self {
        let bar = match mode {
            ProgressMode::None => {
                return Self {
                    stop: None,
                    task: None,
                };
            }
            ProgressMode::Bar => true,
            ProgressMode::Lines => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let started = std::time::Instant::now();
        let task = tokio::spawn(async move {
            let pb = bar.then(|| {
                let pb = match stop {
                    Stop::Count(n) => indicatif::ProgressBar::new(n),
                    Stop::Duration(_) => indicatif::ProgressBar::new_spinner(),
                };
                let template = "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}";
                if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                    pb.set_style(style);
                }
                pb
            });
            let every = if bar {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(5)
            };
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                let done = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut rx => true,
                };
                let sent = SendStats::get(&stats.sent);
                let failed = SendStats::get(&stats.failed);
                let retried = SendStats::get(&stats.retried);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                let msg = format!(
                    "sent={sent} failed={failed} retried={retried} rate={:.0}/s",
                    sent as f64 / secs
                );
                match &pb {
                    Some(pb) => {
                        pb.set_position(sent + failed);
                        pb.set_message(msg);
                    }
                    None if !done => eprintln!("progress: {msg} elapsed={secs:.1}s"),
                    None => {}
                }
                if done {
                    if let Some(pb) = &pb {
                        pb.finish_and_clear();
                    }
                    return;
                }
            }
        });
        Self {
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_percentages_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_percent("5"), Ok(5.0));
        assert_eq!(parse_percent("2.5%"), Ok(2.5));
        assert!(parse_percent("101").is_err());
    }

    #[test]
    fn the_cli_parses_the_documented_flags() {
        let cli = Cli::try_parse_from([
            "tideline-generator",
            "send",
            "--target",
            "firehose",
            "--endpoint-url",
            "http://127.0.0.1:4566",
            "--duration",
            "30s",
            "--rate",
            "200",
            "--concurrency",
            "4",
            "--entities",
            "50",
            "--distribution",
            "zipf",
            "--payload-bytes",
            "800",
            "--profile",
            "sensor",
            "--seed",
            "9",
            "--test-events",
            "--duplicates",
            "5",
            "--invalid",
            "2",
            "--manifest",
            "m.bin",
            "--json",
        ])
        .unwrap();
        let Command::Send(args) = cli.command else {
            panic!("not send")
        };
        let c = args.config().unwrap();
        assert_eq!(c.stop, Stop::Duration(Duration::from_secs(30)));
        assert_eq!(c.gen_config.seed, 9);
        assert_eq!(args.stream, "tideline-ingest");
        assert!(Cli::try_parse_from(["tideline-generator", "send", "--target", "sqs"]).is_err());
        assert!(
            Cli::try_parse_from([
                "tideline-generator",
                "send",
                "--count",
                "1",
                "--duration",
                "1s"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "tideline-generator",
                "verify",
                "--manifest",
                "m.bin",
                "--query-url",
                "http://x",
                "--aws"
            ])
            .is_ok()
        );
    }
}
