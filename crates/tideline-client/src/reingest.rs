//! Lake records fed back through the ingest API (`tideline reingest`).
//!
//! A lake object is JSON Lines ([`tideline_core::lake_layout`]): an accepted
//! line is a normalised record, which the transform accepts again under its
//! stable `id`; a `processing-failed` line carries the producer's original
//! bytes in `rawData` (send them once the cause is fixed). Records go out in
//! calls within the transport's batch limits through [`deliver`], the retry
//! rule every producer shares: only failed records are resent, with backoff.
//! Since event ids are stable, the store keeps each event once however often
//! it is reingested (INVARIANTS.md #2).
//!
//! Records are sent as they are, not checked first: a record ingest still
//! refuses lands in `processing-failed/` again, with its reason.

use crate::deliver::{Clock, Failure, Transport, deliver};
use chrono::{DateTime, Utc};
use tideline_core::lake_layout::{self, LakeReadError};
use tideline_core::retry::RetryPolicy;
use tideline_core::{Classify, ErrorClass};
use tideline_stages::{LakeReader, PortError};

/// Which lake objects are reingested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReingestSelection {
    /// Only objects whose path's time span ends after this.
    pub from: Option<DateTime<Utc>>,
    /// Only objects whose path's time span starts before this.
    pub to: Option<DateTime<Utc>>,
    /// Only `processing-failed/` objects.
    pub failed_only: bool,
}

impl ReingestSelection {
    /// Whether the object at `path` is selected: by prefix, and by the time
    /// span its path covers ([`lake_layout::period_overlaps`]).
    pub fn selects(&self, path: &str) -> bool {
        (!self.failed_only || lake_layout::is_processing_failed(path))
            && lake_layout::period_overlaps(path, self.from, self.to)
    }
}

/// What a reingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReingestReport {
    /// Objects read.
    pub files: usize,
    /// Non-empty lines read.
    pub lines: u64,
    /// Records the ingest API accepted.
    pub sent: u64,
    /// Lines that held no record (not JSON, bad `rawData`).
    pub skipped: u64,
}

/// Why a reingest stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReingestError {
    /// Listing or reading the lake failed.
    #[error(transparent)]
    Lake(#[from] PortError),
    /// An object is not JSON Lines (or not GZIP where it looks so).
    #[error("{path}")]
    Unreadable {
        /// The object's path.
        path: String,
        /// What is wrong with it.
        #[source]
        error: LakeReadError,
    },
    /// The ingest API did not take some records. `retryable` is false when it
    /// refused them for good (an unknown stream, access denied).
    #[error("{failed} of {total} records not accepted after {attempts} attempts: {message}")]
    NotAccepted {
        /// Records not taken.
        failed: usize,
        /// Records in the call.
        total: usize,
        /// Calls that carried them.
        attempts: u32,
        /// The last error.
        message: String,
        /// Whether sending them later may work.
        retryable: bool,
    },
}

impl Classify for ReingestError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Lake(e) => e.class,
            Self::Unreadable { .. } => ErrorClass::Permanent,
            Self::NotAccepted { retryable, .. } => ErrorClass::retryable_if(*retryable),
        }
    }
}

/// Reingests the selected objects of `lake` through `transport`, in path
/// order. `on_skip` hears of each line that holds no record (object path,
/// 1-based line number, why); such lines are counted and passed over.
pub async fn reingest<L, Tr, C>(
    lake: &L,
    transport: &Tr,
    clock: &C,
    policy: &RetryPolicy,
    selection: &ReingestSelection,
    mut on_skip: impl FnMut(&str, usize, &LakeReadError),
) -> Result<ReingestReport, ReingestError>
where
    L: LakeReader,
    Tr: Transport<Vec<u8>>,
    C: Clock,
{
    let objects: Vec<String> = lake
        .list("")
        .await?
        .into_iter()
        .map(|o| o.path)
        .filter(|path| selection.selects(path))
        .collect();
    let limits = transport.limits();
    let mut report = ReingestReport {
        files: objects.len(),
        ..ReingestReport::default()
    };
    let mut call: Vec<Vec<u8>> = Vec::new();
    let mut call_bytes = 0;
    for path in &objects {
        let text = lake_layout::object_text(lake.read(path).await?).map_err(|error| {
            ReingestError::Unreadable {
                path: path.clone(),
                error,
            }
        })?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            report.lines += 1;
            let record = match lake_layout::record_of_line(line) {
                Ok(r) => r,
                Err(e) => {
                    on_skip(path, n + 1, &e);
                    report.skipped += 1;
                    continue;
                }
            };
            if !limits.fits(call.len(), call_bytes, record.len()) {
                report.sent += send(transport, clock, policy, std::mem::take(&mut call)).await?;
                call_bytes = 0;
            }
            call_bytes += record.len();
            call.push(record);
        }
    }
    if !call.is_empty() {
        report.sent += send(transport, clock, policy, call).await?;
    }
    Ok(report)
}

/// One call's worth of records through [`deliver`]; all must be taken.
async fn send<Tr: Transport<Vec<u8>>, C: Clock>(
    transport: &Tr,
    clock: &C,
    policy: &RetryPolicy,
    records: Vec<Vec<u8>>,
) -> Result<u64, ReingestError> {
    let total = records.len();
    let delivered = deliver(transport, clock, policy, records).await;
    // The refusal that cannot heal says most; else the last one.
    let worst = delivered
        .failed
        .iter()
        .map(|(_, f)| f)
        .min_by_key(|f| f.retryable);
    match worst {
        None => Ok(delivered.accepted.len() as u64),
        Some(Failure {
            message,
            retryable,
            attempts,
        }) => Err(ReingestError::NotAccepted {
            failed: delivered.failed.len(),
            total,
            attempts: *attempts,
            message: message.clone(),
            retryable: *retryable,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::{BatchLimits, CallError, CallResult, TokioClock};
    use std::sync::Mutex;
    use tideline_stages::memory::MemoryLakeObjects;

    /// Takes every record; remembers each call's records.
    struct Recorder {
        limits: BatchLimits,
        calls: Mutex<Vec<Vec<Vec<u8>>>>,
        refuse: bool,
    }

    impl Transport<Vec<u8>> for Recorder {
        fn limits(&self) -> BatchLimits {
            self.limits
        }
        fn put(&self, batch: &[&Vec<u8>]) -> impl std::future::Future<Output = CallResult> + Send {
            self.calls
                .lock()
                .unwrap()
                .push(batch.iter().map(|r| (*r).clone()).collect());
            let answer = if self.refuse {
                Err(CallError {
                    message: "ResourceNotFoundException: no stream".into(),
                    retryable: false,
                })
            } else {
                Ok(vec![None; batch.len()])
            };
            std::future::ready(answer)
        }
    }

    fn recorder(max_records: usize, refuse: bool) -> Recorder {
        Recorder {
            limits: BatchLimits {
                max_records,
                max_bytes: 1 << 20,
            },
            calls: Mutex::default(),
            refuse,
        }
    }

    fn lake() -> MemoryLakeObjects {
        let lake = MemoryLakeObjects::default();
        // `{"fixed":1}`, base64, as Firehose writes `rawData`.
        let raw = "eyJmaXhlZCI6MX0=";
        lake.put(
            "events/event_type=T/date=2026-11-23/a",
            None,
            "{\"id\":\"1\"}\n\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n",
        );
        lake.put(
            "processing-failed/error_type=processing-failed/date=2026-11-24/b",
            None,
            format!("{{\"rawData\":\"{raw}\"}}\nnot json\n"),
        );
        lake.put(
            "events/event_type=T/date=2026-10-01/old",
            None,
            "{\"id\":\"0\"}\n",
        );
        lake
    }

    #[tokio::test]
    async fn selected_lines_go_out_in_calls_within_the_limits() {
        let lake = lake();
        let transport = recorder(2, false);
        let selection = ReingestSelection {
            from: chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            ..ReingestSelection::default()
        };
        let mut skipped = Vec::new();
        let report = reingest(
            &lake,
            &transport,
            &TokioClock::default(),
            &RetryPolicy::fast(2),
            &selection,
            |path, line, _| skipped.push((path.to_string(), line)),
        )
        .await
        .unwrap();
        assert_eq!(
            report,
            ReingestReport {
                files: 2,
                lines: 5,
                sent: 4,
                skipped: 1
            }
        );
        assert_eq!(
            skipped,
            [(
                "processing-failed/error_type=processing-failed/date=2026-11-24/b".to_string(),
                2
            )]
        );
        let calls = transport.calls.lock().unwrap().clone();
        let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2]);
        assert_eq!(calls[1][1], b"{\"fixed\":1}");
    }

    #[tokio::test]
    async fn a_refused_call_is_a_permanent_error() {
        let lake = lake();
        let selection = ReingestSelection {
            failed_only: true,
            ..ReingestSelection::default()
        };
        let err = reingest(
            &lake,
            &recorder(10, true),
            &TokioClock::default(),
            &RetryPolicy::fast(3),
            &selection,
            |_, _, _| {},
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                ReingestError::NotAccepted {
                    retryable: false,
                    attempts: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Permanent);
    }
}
