//! The embedded data lake: JSON Lines files in the one layout Firehose also
//! writes to S3 ([`tideline_core::lake_layout`]):
//! `lake/events/event_type=<type>/date=<YYYY-MM-DD>/` for accepted records
//! (the day they occurred) and
//! `lake/processing-failed/error_type=processing-failed/date=<YYYY-MM-DD>/`
//! for refused ones (the day they arrived), each line carrying its reason in
//! the fields Firehose uses (`errorCode`, `errorMessage`, `rawData`). The
//! same SQL runs over it with DuckDB as over the S3 lake with Athena
//! (`docs/lake.md`). [`LakeDir`] reads such a directory back (`tideline
//! reingest --lake DIR`).

use chrono::Utc;
use std::fs::{OpenOptions, create_dir_all};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tideline_core::ingest::AdmittedRecord;
use tideline_core::lake_layout;
use tideline_stages::{FailedRecord, Lake, LakeObject, LakeReader, PortError};

/// Prefix of refused records, as Firehose's error output prefix.
pub const PROCESSING_FAILED: &str = lake_layout::PROCESSING_FAILED;

/// A lake rooted at a directory.
#[derive(Debug)]
pub struct FileLake {
    root: PathBuf,
    part: String,
    write_lock: Mutex<()>,
    /// fsync each write and each new directory (`--durability full`), so an
    /// acknowledged record is in the lake after a power loss too.
    sync: bool,
}

fn io_error(e: std::io::Error) -> PortError {
    PortError::retryable("lake", e.to_string()).with_source(e)
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
            sync: false,
        }
    }

    /// Syncs every write to disk before it returns (`--durability full`).
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Creates `dir` and, when syncing, fsyncs each directory it created and
    /// its parent, so the new entries survive a power loss.
    fn create_dirs(&self, dir: &Path) -> std::io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut cursor = Some(dir);
        while let Some(d) = cursor {
            if d.is_dir() {
                break;
            }
            missing.push(d.to_path_buf());
            cursor = d.parent();
        }
        create_dir_all(dir)?;
        if self.sync {
            for d in missing.iter().rev() {
                if let Some(parent) = d.parent() {
                    std::fs::File::open(parent)?.sync_all()?;
                }
            }
        }
        Ok(())
    }

    /// `relative` is a `/`-separated lake directory from `lake_layout`,
    /// whose segments are path-safe by construction.
    fn dir(&self, relative: &str) -> PathBuf {
        under(&self.root, relative)
    }

    fn append(&self, dir: PathBuf, bytes: &[u8]) -> Result<(), PortError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.create_dirs(&dir).map_err(io_error)?;
        let path = dir.join(format!("{}.jsonl", self.part));
        let new_file = self.sync && !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error)?;
        file.write_all(bytes).map_err(io_error)?;
        if self.sync {
            file.sync_data().map_err(io_error)?;
            if new_file {
                std::fs::File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_error)?;
            }
        }
        Ok(())
    }
}

impl Lake for FileLake {
    async fn write_records(&self, records: &[AdmittedRecord]) -> Result<(), PortError> {
        let mut by_partition: std::collections::BTreeMap<PathBuf, Vec<u8>> = Default::default();
        for admitted in records {
            let r = &admitted.record;
            // The line is the body serialised once at admission, plus the newline.
            let line = by_partition
                .entry(self.dir(&lake_layout::events_dir(&r.event_type, &r.occurred_at)))
                .or_default();
            line.extend_from_slice(admitted.body.as_bytes());
            line.push(b'\n');
        }
        for (dir, bytes) in by_partition {
            self.append(dir, &bytes)?;
        }
        Ok(())
    }

    async fn write_failed(&self, records: &[FailedRecord]) -> Result<(), PortError> {
        let now = Utc::now();
        let mut bytes = Vec::new();
        for r in records {
            let line = lake_layout::processing_failed_line(
                &r.record_id,
                &r.raw,
                &r.error_code,
                &r.error_message,
                now,
            );
            bytes.extend(line.into_bytes());
            bytes.push(b'\n');
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let day = lake_layout::day_of(now);
        self.append(
            self.dir(&lake_layout::processing_failed_dir(
                lake_layout::ERROR_TYPE_PROCESSING_FAILED,
                &day,
            )),
            &bytes,
        )
    }
}

/// A lake directory, read back: `tideline up`'s `<data-dir>/lake`, or a copy
/// of the S3 lake. Objects are its `*.jsonl` and `*.json` files.
#[derive(Debug, Clone)]
pub struct LakeDir {
    root: PathBuf,
}

impl LakeDir {
    /// The lake under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The lake's files below `dir`, with their modification times.
fn collect_files(
    dir: &Path,
    out: &mut Vec<(PathBuf, Option<chrono::DateTime<Utc>>)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "json")
        {
            let written = entry
                .metadata()?
                .modified()
                .ok()
                .map(chrono::DateTime::<Utc>::from);
            out.push((path, written));
        }
    }
    Ok(())
}

impl LakeReader for LakeDir {
    async fn list(&self, prefix: &str) -> Result<Vec<LakeObject>, PortError> {
        let mut files = Vec::new();
        // A missing or unreadable directory is a wrong `--lake`, not a passing fault.
        collect_files(&self.root, &mut files)
            .map_err(|e| PortError::permanent("lake", format!("{}: {e}", self.root.display())))?;
        let mut objects: Vec<LakeObject> = files
            .into_iter()
            .filter_map(|(file, written_at)| {
                let relative = file.strip_prefix(&self.root).ok()?;
                let path = relative
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/");
                path.starts_with(prefix)
                    .then_some(LakeObject { path, written_at })
            })
            .collect();
        objects.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(objects)
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>, PortError> {
        let file = under(&self.root, path);
        std::fs::read(&file)
            .map_err(|e| PortError::permanent("lake", format!("{}: {e}", file.display())))
    }
}

/// A `/`-separated lake path below `root`, as a path of this system.
fn under(root: &Path, relative: &str) -> PathBuf {
    let mut out = root.to_path_buf();
    for segment in relative.split('/').filter(|s| !s.is_empty()) {
        out.push(segment);
    }
    out
}
