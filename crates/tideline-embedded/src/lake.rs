//! The embedded data lake: JSON Lines files under `lake/YYYY/MM/DD/HH/`, the
//! layout Firehose writes to S3, and refused records under
//! `lake/processing-failed/YYYY/MM/DD/HH/`, each line carrying its reason in
//! the fields Firehose uses (`errorCode`, `errorMessage`, `rawData`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use std::fs::{OpenOptions, create_dir_all};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tideline_core::ingest::NormalizedRecord;
use tideline_core::keys::parse_timestamp;
use tideline_ports::{FailedRecord, Lake, PortError};

/// Prefix of refused records, as Firehose's error output prefix.
pub const PROCESSING_FAILED: &str = "processing-failed";

/// A lake rooted at a directory.
#[derive(Debug)]
pub struct FileLake {
    root: PathBuf,
    part: String,
    write_lock: Mutex<()>,
}

fn io_error(e: std::io::Error) -> PortError {
    PortError::retryable("lake", e.to_string())
}

impl FileLake {
    /// A lake under `root`; this process writes its own part files.
    pub fn new(root: &Path) -> Self {
        let part = format!(
            "part-{}-{}",
            Utc::now().format("%Y%m%dT%H%M%S"),
            std::process::id()
        );
        Self {
            root: root.to_path_buf(),
            part,
            write_lock: Mutex::new(()),
        }
    }

    fn hour_dir(&self, prefix: Option<&str>, t: DateTime<Utc>) -> PathBuf {
        let mut dir = self.root.clone();
        if let Some(p) = prefix {
            dir.push(p);
        }
        dir.push(t.format("%Y/%m/%d/%H").to_string());
        dir
    }

    fn append(&self, dir: PathBuf, bytes: &[u8]) -> Result<(), PortError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        create_dir_all(&dir).map_err(io_error)?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.jsonl", self.part)))
            .map_err(io_error)?;
        file.write_all(bytes).map_err(io_error)
    }
}

impl Lake for FileLake {
    async fn write_records(&self, records: &[NormalizedRecord]) -> Result<(), PortError> {
        let mut by_hour: std::collections::BTreeMap<PathBuf, Vec<u8>> = Default::default();
        for r in records {
            let t = parse_timestamp(&r.received_at).unwrap_or_else(Utc::now);
            by_hour
                .entry(self.hour_dir(None, t))
                .or_default()
                .extend(r.to_json_line());
        }
        for (dir, bytes) in by_hour {
            self.append(dir, &bytes)?;
        }
        Ok(())
    }

    async fn write_failed(&self, records: &[FailedRecord]) -> Result<(), PortError> {
        let now = Utc::now();
        let mut bytes = Vec::new();
        for r in records {
            let line = serde_json::json!({
                "attemptsMade": 1,
                "arrivalTimestamp": now.timestamp_millis(),
                "errorCode": r.error_code,
                "errorMessage": r.error_message,
                "recordId": r.record_id,
                "rawData": STANDARD.encode(&r.raw),
            });
            bytes.extend(line.to_string().into_bytes());
            bytes.push(b'\n');
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.append(self.hour_dir(Some(PROCESSING_FAILED), now), &bytes)
    }
}
