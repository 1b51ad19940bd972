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

/// Top-level prefix of accepted records.
pub const EVENTS: &str = "events";
/// Top-level prefix of refused records (Firehose's error output prefix).
pub const PROCESSING_FAILED: &str = "processing-failed";
/// Firehose's `error-output-type` for records a processing Lambda refused.
pub const ERROR_TYPE_PROCESSING_FAILED: &str = "processing-failed";
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

/// The directory of a refused record of `error_type` arriving on `day`
/// (`YYYY-MM-DD`).
pub fn processing_failed_dir(error_type: &str, day: &str) -> String {
    format!(
        "{PROCESSING_FAILED}/{ERROR_TYPE_KEY}={}/{DATE_KEY}={}/",
        safe_partition_value(error_type),
        safe_partition_value(day)
    )
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
