//! The store's key scheme, shared by DynamoDB and SQLite.
//!
//! - `pk` = entity id.
//! - `sk` = `<UTC time, fixed width, microseconds>#<event id>`: sorts by time,
//!   and the event id makes it unique even when two events share a microsecond.
//! - Two non-event items share the partition: the head (`#head`, holding the last
//!   `seq`; `#` sorts before any digit, so it never interleaves with events) and
//!   one de-duplication marker per event id (`id#<event id>`, sorting after every
//!   timestamp). Neither carries a `seq` attribute, so neither appears in the
//!   `by-sequence` index.
//! - Rejected records live apart from every entity: `pk` = `rejected#<stage>#<nn>`
//!   (one of [`REJECTED_PARTITIONS`] shards), `sk` = `<rejected_at>#<source_id>`
//!   ([`rejected_key`]), so a stage's rejections read back in time order and
//!   the same rejection written twice has the same key.

use chrono::{DateTime, SecondsFormat, Utc};

/// Width of [`format_timestamp`]'s output: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const TIMESTAMP_WIDTH: usize = 27;

/// Sort key of an entity's head item.
pub const HEAD_SK: &str = "#head";

/// Prefix of de-duplication marker sort keys.
pub const DEDUP_SK_PREFIX: &str = "id#";

/// Range-key prefix of snapshot items: `snapshot#<name>#<aggregate version>`.
/// It sorts after every event slot (those start with a digit), so reads of
/// the event range never see a snapshot.
pub const SNAPSHOT_SK_PREFIX: &str = "snapshot#";

/// Rejected records of one stage spread over this many partition keys, so a
/// burst of bad input does not pile onto one DynamoDB partition (about
/// 1,000 WCU/s each) and no single item collection grows without bound.
pub const REJECTED_PARTITIONS: u8 = 16;

/// The partition key of a rejected record: `rejected#<stage>#<nn>`, where
/// `nn` is a stable hash of the record's source id (the same rejection
/// written twice lands on the same key and de-duplicates).
pub fn rejected_partition_key(stage: &str, source_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let shard = Sha256::digest(source_id.as_bytes())[0] % REJECTED_PARTITIONS;
    format!("rejected#{stage}#{shard:02}")
}

/// Every partition key a stage's rejected records may have, for readers.
pub fn rejected_partition_keys(stage: &str) -> impl Iterator<Item = String> + '_ {
    (0..REJECTED_PARTITIONS).map(move |shard| format!("rejected#{stage}#{shard:02}"))
}

/// The sort key of a rejected record: `<rejected_at>#<source_id>`. It sorts
/// a shard's rejections by time, and the source id (the queue message id)
/// makes it unique and stable, so writing the same rejection again hits
/// the same item and the conditional put de-duplicates it.
pub fn rejected_sort_key(rejected_at: &str, source_id: &str) -> String {
    format!("{rejected_at}#{source_id}")
}

/// The `(pk, sk)` of a rejected record: [`rejected_partition_key`] and
/// [`rejected_sort_key`], the one key scheme of the rejected-records sink.
pub fn rejected_key(stage: &str, source_id: &str, rejected_at: &str) -> (String, String) {
    (
        rejected_partition_key(stage, source_id),
        rejected_sort_key(rejected_at, source_id),
    )
}

/// The `kind` attribute of each item the store writes.
pub mod item_kind {
    /// An event item.
    pub const EVENT: &str = "event";
    /// The head item.
    pub const HEAD: &str = "head";
    /// A de-duplication marker.
    pub const DEDUP: &str = "dedup";
    /// A rejected record.
    pub const REJECTED: &str = "rejected";
    /// An aggregate's snapshot (the command side; never an event).
    pub const SNAPSHOT: &str = "snapshot";
}

/// Fixed-width, lexicographically sortable UTC timestamp with microseconds.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a timestamp written by [`format_timestamp`] (or any RFC 3339 time).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The range key of an event item.
pub fn event_sort_key(stored_at: &str, event_id: &str) -> String {
    format!("{stored_at}#{event_id}")
}

/// The range key of an event id's de-duplication marker.
pub fn dedup_sort_key(event_id: &str) -> String {
    format!("{DEDUP_SK_PREFIX}{event_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn rejected_records_spread_over_stable_partitions() {
        let keys: std::collections::HashSet<String> = (0..200)
            .map(|i| rejected_partition_key("store", &format!("msg-{i}")))
            .collect();
        assert!(keys.len() > REJECTED_PARTITIONS as usize / 2, "{keys:?}");
        let all: Vec<String> = rejected_partition_keys("store").collect();
        assert!(keys.iter().all(|k| all.contains(k)));
        assert_eq!(
            rejected_partition_key("store", "m-1"),
            rejected_partition_key("store", "m-1")
        );
    }

    #[test]
    fn rejected_key_is_stable_and_sorts_by_time_within_a_shard() {
        let (pk, sk) = rejected_key("store", "m-1", "2026-11-23T08:00:00.000000Z");
        assert_eq!(pk, rejected_partition_key("store", "m-1"));
        assert!(pk.starts_with("rejected#store#"), "{pk}");
        assert_eq!(pk.len(), "rejected#store#00".len());
        assert_eq!(sk, "2026-11-23T08:00:00.000000Z#m-1");
        // The same rejection written twice: the same item.
        assert_eq!(
            rejected_key("store", "m-1", "2026-11-23T08:00:00.000000Z"),
            (pk.clone(), sk.clone())
        );
        // Later rejections sort after earlier ones.
        assert!(rejected_sort_key("2026-11-23T08:00:01.000000Z", "a") > sk);
        // Another stage never shares a partition.
        assert!(!rejected_partition_keys("transform").any(|k| k == pk));
    }

    #[test]
    fn width_is_fixed() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_timestamp(t), "2026-01-02T03:04:05.000000Z");
        assert_eq!(format_timestamp(t).len(), TIMESTAMP_WIDTH);
        assert!(HEAD_SK < "0" && DEDUP_SK_PREFIX > "9");
    }

    proptest! {
        /// sk sorts by time, and is unique (INVARIANTS.md; issue: "sk sorts by time and is unique").
        #[test]
        fn sort_key_sorts_by_time_and_is_unique(
            a in 0i64..253_402_300_799_000_000, b in 0i64..253_402_300_799_000_000,
            id_a in "[a-z0-9-]{1,20}", id_b in "[a-z0-9-]{1,20}",
        ) {
            let ta = DateTime::from_timestamp_micros(a).unwrap();
            let tb = DateTime::from_timestamp_micros(b).unwrap();
            let ka = event_sort_key(&format_timestamp(ta), &id_a);
            let kb = event_sort_key(&format_timestamp(tb), &id_b);
            if a < b { prop_assert!(ka < kb); }
            if a > b { prop_assert!(ka > kb); }
            if ka == kb { prop_assert!(a == b && id_a == id_b); }
            prop_assert_eq!(format_timestamp(ta).len(), TIMESTAMP_WIDTH);
            prop_assert_eq!(parse_timestamp(&format_timestamp(ta)), Some(ta));
        }
    }
}
