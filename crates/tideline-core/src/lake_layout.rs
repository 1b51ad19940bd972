//! The data lake's layout, defined once for both places it is written.
//!
//! ```text
//! events/event_type=<type>/date=<YYYY-MM-DD>/<object>          accepted records
//! processing-failed/error_type=<type>/date=<YYYY-MM-DD>/<object> refused records
//! ```
//!
//! On AWS, Firehose writes it under the lake bucket: the transformer returns
//! [`event_partition_keys`] as `metadata.partitionKeys`, and the delivery
//! stream's prefixes (terraform/modules/ingest) spell the same paths. Locally,
//! `tideline up` writes it under `<data-dir>/lake/`. Both are Hive-style
//! partitions, so the same SQL runs in Athena (Glue tables with partition
//! projection) and in DuckDB (`hive_partitioning`): see `docs/lake.md`.
//!
//! The `date` of an event is the UTC day it occurred (`occurred_at`); the
//! `date` of a refused record is the UTC day it arrived, since a refused
//! record may have no valid time of its own (Firehose's `!{timestamp:…}`).
//!
//! Reading it back is defined here too, for every reader (`tideline
//! reingest`, the replay's entity index): which prefix an object is under
//! ([`is_processing_failed`]), the time span its path covers
//! ([`object_period`]), its text ([`object_text`]: Firehose GZIP-compresses
//! the S3 lake) and what each line carries ([`record_of_line`],
//! [`entity_of_line`]). The tests pin the layout to the strings Firehose and
//! Glue are configured with in `terraform/modules/ingest`.

use chrono::{DateTime, NaiveDate, Utc};

/// Top-level prefix of accepted records.
pub const EVENTS: &str = "events";
/// Top-level prefix of refused records (Firehose's error output prefix).
pub const PROCESSING_FAILED: &str = "processing-failed";
/// Firehose's `error-output-type` for records a processing Lambda refused.
pub const ERROR_TYPE_PROCESSING_FAILED: &str = "processing-failed";
/// Every `error-output-type` Firehose writes for an S3 destination: the
/// `error_type` partition's values (Glue's projection lists the same).
pub const ERROR_TYPES: [&str; 3] = [
    ERROR_TYPE_PROCESSING_FAILED,
    "partitioning-failed",
    "format-conversion-failed",
];
/// Partition key of the event type.
pub const EVENT_TYPE_KEY: &str = "event_type";
/// Partition key of the day.
pub const DATE_KEY: &str = "date";
/// Partition key of the kind of failure.
pub const ERROR_TYPE_KEY: &str = "error_type";
/// Longest partition value kept; S3 keys are at most 1,024 bytes, and a type
/// longer than this still has its exact value in the record's `type` field.
pub const MAX_PARTITION_VALUE_CHARS: usize = 128;
/// The date value of a record without a parsable time.
pub const UNKNOWN_DATE: &str = "unknown";

/// A partition value that is safe as one path segment, on S3 and on every
/// local file system, and that Athena and DuckDB read back unchanged.
///
/// Letters, digits, `-`, `_` and `.` are kept; every other character
/// (`/`, `=`, spaces, `%`, non-ASCII, …) becomes `_`. A value that is empty,
/// starts with `.` (hidden files, `.` and `..`) or is over
/// [`MAX_PARTITION_VALUE_CHARS`] is made safe too. The mapping is not
/// one-to-one (`Order Placed` and `Order_Placed` share a partition): the
/// partition is for pruning, and each record keeps its exact type.
pub fn safe_partition_value(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_PARTITION_VALUE_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The UTC day (`YYYY-MM-DD`) of a fixed-width RFC 3339 time such as
/// `occurred_at`, or [`UNKNOWN_DATE`].
pub fn date_of(timestamp: &str) -> String {
    match timestamp.get(..10) {
        Some(day) if chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok() => day.to_string(),
        _ => UNKNOWN_DATE.to_string(),
    }
}

/// The partition keys of an accepted record, as the transformer returns them
/// to Firehose (`metadata.partitionKeys`): path-safe type and day.
pub fn event_partition_keys(event_type: &str, occurred_at: &str) -> [(&'static str, String); 2] {
    [
        (EVENT_TYPE_KEY, safe_partition_value(event_type)),
        (DATE_KEY, date_of(occurred_at)),
    ]
}

/// The directory (relative to the lake root, `/`-separated, with a trailing
/// `/`) of an accepted record.
pub fn events_dir(event_type: &str, occurred_at: &str) -> String {
    let [(tk, t), (dk, d)] = event_partition_keys(event_type, occurred_at);
    format!("{EVENTS}/{tk}={t}/{dk}={d}/")
}

/// The `date` partition value of a time: its UTC day, `YYYY-MM-DD`.
pub fn day_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The directory of a refused record of `error_type` arriving on `day`
/// (`YYYY-MM-DD`, [`day_of`] its arrival).
pub fn processing_failed_dir(error_type: &str, day: &str) -> String {
    format!(
        "{PROCESSING_FAILED}/{ERROR_TYPE_KEY}={}/{DATE_KEY}={}/",
        safe_partition_value(error_type),
        safe_partition_value(day)
    )
}

/// Where a lake is: an S3 prefix (`s3://bucket/prefix`, Firehose's lake)
/// or a local directory (`tideline up`'s `<data-dir>/lake`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeLocation {
    /// A directory.
    Dir(String),
    /// An S3 bucket and key prefix (possibly empty).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, as given.
        prefix: String,
    },
}

impl LakeLocation {
    /// Reads `s3://bucket[/prefix]`, or anything else as a directory.
    pub fn parse(lake: &str) -> Result<Self, String> {
        let Some(rest) = lake.strip_prefix("s3://") else {
            return Ok(Self::Dir(lake.to_string()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("no bucket name".into());
        }
        Ok(Self::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// Why a lake object or line could not be read. Permanent: the bytes will
/// not change on a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LakeReadError {
    /// The object starts like GZIP but does not decompress.
    #[error("not valid gzip: {0}")]
    NotGzip(String),
    /// The object's text is not UTF-8.
    #[error("not UTF-8 JSON Lines: {0}")]
    NotUtf8(String),
    /// A line is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// A `processing-failed` line's `rawData` is not base64.
    #[error("rawData is not base64: {0}")]
    BadRawData(String),
}

impl crate::Classify for LakeReadError {
    fn class(&self) -> crate::ErrorClass {
        crate::ErrorClass::Permanent
    }
}

/// Whether an object (its path relative to the lake root, `/`-separated) is
/// under the refused records' prefix.
pub fn is_processing_failed(path: &str) -> bool {
    path.split('/').next() == Some(PROCESSING_FAILED)
}

/// Whether an object is under the accepted records' prefix.
pub fn is_events(path: &str) -> bool {
    path.split('/').next() == Some(EVENTS)
}

/// The time span an object's path covers: its `date=YYYY-MM-DD` partition
/// (one day), or the `YYYY/MM/DD/HH/` directories of local lakes written
/// before this layout (one hour). `None` when the path has neither: such an
/// object belongs to no time span and every time filter keeps it.
pub fn object_period(path: &str) -> Option<(DateTime<Utc>, chrono::Duration)> {
    let parts: Vec<&str> = path.split('/').collect();
    let dirs = &parts[..parts.len().saturating_sub(1)];
    let date_segment = format!("{DATE_KEY}=");
    if let Some(day) = dirs
        .iter()
        .rev()
        .find_map(|d| d.strip_prefix(date_segment.as_str()))
    {
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        return Some((
            date.and_hms_opt(0, 0, 0)?.and_utc(),
            chrono::Duration::days(1),
        ));
    }
    let [.., y, m, d, h] = dirs else {
        return None;
    };
    let start = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?
        .and_hms_opt(h.parse().ok()?, 0, 0)?;
    Some((start.and_utc(), chrono::Duration::hours(1)))
}

/// Whether an object's path span overlaps `[from, to)` (either bound open);
/// an object without a span always does.
pub fn period_overlaps(path: &str, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> bool {
    let period = object_period(path);
    from.is_none_or(|from| period.is_none_or(|(start, len)| start + len > from))
        && to.is_none_or(|to| period.is_none_or(|(start, _)| start < to))
}

/// The text of a lake object: Firehose writes the S3 lake GZIP-compressed
/// (recognised by the gzip magic bytes, as its keys carry no reliable
/// extension); local mode and older objects are plain JSON Lines.
pub fn object_text(bytes: Vec<u8>) -> Result<String, LakeReadError> {
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| LakeReadError::NotGzip(e.to_string()))?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| LakeReadError::NotUtf8(e.to_string()))
}

/// A `processing-failed` line in Firehose's format (`errorCode`,
/// `errorMessage`, `rawData` base64, …), as both lakes write a refused
/// record, with its reason.
pub fn processing_failed_line(
    record_id: &str,
    raw: &[u8],
    error_code: &str,
    error_message: &str,
    arrival: DateTime<Utc>,
) -> String {
    serde_json::json!({
        "attemptsMade": 1,
        "arrivalTimestamp": arrival.timestamp_millis(),
        "errorCode": error_code,
        "errorMessage": error_message,
        "recordId": record_id,
        "rawData": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw),
    })
    .to_string()
}

/// The record bytes a lake line holds, as a producer sent them to ingest: a
/// `processing-failed` line's original bytes (base64 in `rawData`, as
/// Firehose writes them), or an accepted line itself (a normalised record,
/// which ingest accepts again under its stable `id`).
pub fn record_of_line(line: &str) -> Result<Vec<u8>, LakeReadError> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| LakeReadError::NotJson(e.to_string()))?;
    match value.get("rawData").and_then(|v| v.as_str()) {
        Some(raw) => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw)
            .map_err(|e| LakeReadError::BadRawData(e.to_string())),
        None => Ok(line.as_bytes().to_vec()),
    }
}

/// The entity and arrival time (`received_at`) of an accepted line, or
/// `None` for a line that is not a normalised record.
pub fn entity_of_line(line: &str) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Keys {
        entity_id: String,
        #[serde(default)]
        received_at: String,
    }
    let keys: Keys = serde_json::from_str(line).ok()?;
    Some((keys.entity_id, keys.received_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn events_dir_is_hive_partitioned_by_type_and_day() {
        assert_eq!(
            events_dir("OrderPlaced", "2026-11-23T08:00:00.000000Z"),
            "events/event_type=OrderPlaced/date=2026-11-23/"
        );
    }

    #[test]
    fn processing_failed_dir_is_hive_partitioned() {
        assert_eq!(
            processing_failed_dir(ERROR_TYPE_PROCESSING_FAILED, "2026-11-23"),
            "processing-failed/error_type=processing-failed/date=2026-11-23/"
        );
    }

    #[test]
    fn unsafe_characters_become_underscores() {
        assert_eq!(safe_partition_value("a/b=c d%e"), "a_b_c_d_e");
        assert_eq!(safe_partition_value("Grüße"), "Gr__e");
        assert_eq!(safe_partition_value(".."), "_.");
        assert_eq!(safe_partition_value("."), "_");
        assert_eq!(safe_partition_value(""), "_");
        assert_eq!(safe_partition_value("v1.2-x_y"), "v1.2-x_y");
    }

    #[test]
    fn a_bad_time_has_the_unknown_date() {
        assert_eq!(date_of("yesterday"), UNKNOWN_DATE);
        assert_eq!(date_of("2026-13-01T00:00:00Z"), UNKNOWN_DATE);
        assert_eq!(date_of(""), UNKNOWN_DATE);
    }

    #[test]
    fn a_lake_is_an_s3_prefix_or_a_directory() {
        assert_eq!(
            LakeLocation::parse("s3://lake/x/y"),
            Ok(LakeLocation::S3 {
                bucket: "lake".into(),
                prefix: "x/y".into()
            })
        );
        assert_eq!(
            LakeLocation::parse("s3://lake"),
            Ok(LakeLocation::S3 {
                bucket: "lake".into(),
                prefix: String::new()
            })
        );
        assert!(LakeLocation::parse("s3:///x").is_err());
        assert_eq!(
            LakeLocation::parse(".tideline/lake"),
            Ok(LakeLocation::Dir(".tideline/lake".into()))
        );
    }

    #[test]
    fn object_paths_are_read_back() {
        let (start, len) =
            object_period("events/event_type=OrderPlaced/date=2026-11-23/part-1.jsonl").unwrap();
        assert_eq!(start.to_rfc3339(), "2026-11-23T00:00:00+00:00");
        assert_eq!(len, chrono::Duration::days(1));
        let (start, len) = object_period("processing-failed/2026/11/23/08/part-1.jsonl").unwrap();
        assert_eq!(start.to_rfc3339(), "2026-11-23T08:00:00+00:00");
        assert_eq!(len, chrono::Duration::hours(1));
        assert_eq!(object_period("notes.jsonl"), None);
        assert!(is_processing_failed(
            "processing-failed/error_type=processing-failed/date=2026-11-23/x"
        ));
        assert!(!is_processing_failed(
            "events/event_type=processing-failed/date=2026-11-23/x"
        ));
        assert!(is_events("events/event_type=A/date=2026-11-23/x"));
        let day = |d: &str| parse(d);
        let path = "events/event_type=A/date=2026-11-23/x";
        assert!(period_overlaps(
            path,
            Some(day("2026-11-23T23:59:59Z")),
            None
        ));
        assert!(!period_overlaps(
            path,
            Some(day("2026-11-24T00:00:00Z")),
            None
        ));
        assert!(!period_overlaps(
            path,
            None,
            Some(day("2026-11-23T00:00:00Z"))
        ));
        assert!(period_overlaps(
            "x.jsonl",
            Some(day("2030-01-01T00:00:00Z")),
            None
        ));
    }

    fn parse(t: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn gzip_objects_are_read_like_plain_ones() {
        use std::io::Write;
        let text = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let compressed = gz.finish().unwrap();
        assert_eq!(object_text(compressed).unwrap(), text);
        assert_eq!(object_text(text.as_bytes().to_vec()).unwrap(), text);
        assert!(matches!(
            object_text(vec![0x1f, 0x8b, 0, 1, 2]),
            Err(LakeReadError::NotGzip(_))
        ));
    }

    #[test]
    fn lines_give_their_record_and_entity() {
        let failed = r#"{"errorCode":"X","rawData":"eyJhIjoxfQ=="}"#;
        assert_eq!(record_of_line(failed).unwrap(), br#"{"a":1}"#);
        let accepted = r#"{"id":"e","entity_id":"o-1","type":"T","data":{},"received_at":"2026-11-23T08:00:00.000000Z"}"#;
        assert_eq!(record_of_line(accepted).unwrap(), accepted.as_bytes());
        assert_eq!(
            entity_of_line(accepted),
            Some(("o-1".into(), "2026-11-23T08:00:00.000000Z".into()))
        );
        assert_eq!(entity_of_line(failed), None);
        assert!(matches!(
            record_of_line("nope"),
            Err(LakeReadError::NotJson(_))
        ));
    }

    /// The one string assigned to `name` in a Terraform file (`name = "…"`).
    fn terraform_string(file: &str, name: &str) -> String {
        let text = std::fs::read_to_string(format!(
            "{}/../../terraform/modules/ingest/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut found = text.lines().filter_map(|l| {
            let (key, value) = l.trim().split_once('=')?;
            (key.trim().trim_matches('"') == name)
                .then(|| value.trim().trim_matches('"').to_string())
        });
        let value = found
            .next()
            .unwrap_or_else(|| panic!("{name} not in {file}"));
        assert!(found.next().is_none(), "{name} assigned twice in {file}");
        value
    }

    /// What Firehose writes is the layout: the delivery stream's prefixes,
    /// with Firehose's placeholders filled as Firehose fills them, are the
    /// directories this module computes; so are Glue's location templates.
    #[test]
    fn the_layout_is_what_terraform_configures_firehose_and_glue_to_write() {
        let occurred = "2026-11-23T08:00:00.000000Z";
        let [(type_key, event_type), (date_key, date)] =
            event_partition_keys("Order Placed/v2", occurred);
        let data_prefix = terraform_string("main.tf", "data_prefix")
            .replace(
                &format!("!{{partitionKeyFromLambda:{type_key}}}"),
                &event_type,
            )
            .replace(&format!("!{{partitionKeyFromLambda:{date_key}}}"), &date);
        assert_eq!(data_prefix, events_dir("Order Placed/v2", occurred));

        for error_type in ERROR_TYPES {
            let error_prefix = terraform_string("main.tf", "error_prefix")
                .replace("!{firehose:error-output-type}", error_type)
                .replace("!{timestamp:yyyy-MM-dd}", "2026-11-23");
            assert_eq!(
                error_prefix,
                processing_failed_dir(error_type, "2026-11-23")
            );
        }

        // Both Glue tables' templates share one parameter name; read each table's.
        let text = std::fs::read_to_string(format!(
            "{}/../../terraform/modules/ingest/lake_catalog.tf",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let templates: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("\"storage.location.template\""))
            .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim().trim_matches('"')))
            .collect();
        assert_eq!(templates.len(), 2, "{templates:?}");
        let fill = |t: &str, values: &[(&str, &str)]| {
            let mut t = t.replace("${local.lake_s3}/", "");
            for (key, value) in values {
                t = t.replace(&format!("$${{{key}}}"), value);
            }
            t
        };
        assert_eq!(
            fill(
                templates[0],
                &[(EVENT_TYPE_KEY, &event_type), (DATE_KEY, &date)]
            ),
            events_dir("Order Placed/v2", occurred)
        );
        assert_eq!(
            fill(
                templates[1],
                &[
                    (ERROR_TYPE_KEY, ERROR_TYPE_PROCESSING_FAILED),
                    (DATE_KEY, "2026-11-23")
                ]
            ),
            processing_failed_dir(ERROR_TYPE_PROCESSING_FAILED, "2026-11-23")
        );
        let error_types = terraform_string("lake_catalog.tf", "error_types");
        let listed: Vec<&str> = error_types
            .trim_matches(['[', ']'])
            .split(',')
            .map(|v| v.trim().trim_matches('"'))
            .collect();
        assert_eq!(listed, ERROR_TYPES);
    }

    proptest! {
        #[test]
        fn every_value_is_one_safe_path_segment(v in ".{0,300}") {
            let s = safe_partition_value(&v);
            prop_assert!(!s.is_empty());
            prop_assert!(s.chars().count() <= MAX_PARTITION_VALUE_CHARS);
            prop_assert!(!s.starts_with('.'));
            prop_assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
        }
    }
}
