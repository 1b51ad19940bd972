//! Partial-failure responses, exactly as each AWS contract asks
//! (INVARIANTS.md #5; AWS-CONTRACTS.md).

use std::cmp::Ordering;

/// The FIFO rule for `ReportBatchItemFailures` on an SQS FIFO event source:
/// at the first failure, stop, and report it and every later message of the
/// batch. Anything not reported is deleted, so reporting only the failed one
/// would lose the messages behind it in its group; reporting every later
/// message (not only the same group's) is the safe default.
///
/// `processed` is the number of messages, from the start, that were handled
/// (stored, de-duplicated, or moved aside); the rest are returned.
pub fn fifo_unprocessed<T: Clone>(message_ids: &[T], processed: usize) -> Vec<T> {
    message_ids
        .get(processed..)
        .map(<[T]>::to_vec)
        .unwrap_or_default()
}

/// Compares two DynamoDB Streams sequence numbers. They are decimal strings of
/// up to 40 digits, too long for u128 in general, so compare by length, then text.
pub fn compare_stream_sequence(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The stream rewind point: Lambda restarts at the **lowest** reported sequence
/// number and replays everything after it, so a stream handler reports exactly
/// one item, the lowest failed one (AWS-CONTRACTS.md, Streams).
pub fn stream_rewind_point<'a>(failed: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    failed
        .into_iter()
        .min_by(|a, b| compare_stream_sequence(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_reports_failure_and_the_rest() {
        let ids = ["a", "b", "c", "d"];
        assert_eq!(fifo_unprocessed(&ids, 4), Vec::<&str>::new());
        assert_eq!(fifo_unprocessed(&ids, 1), vec!["b", "c", "d"]);
        assert_eq!(fifo_unprocessed(&ids, 0), ids.to_vec());
        assert_eq!(fifo_unprocessed(&ids, 9), Vec::<&str>::new());
    }

    #[test]
    fn rewind_takes_the_numerically_lowest() {
        let failed = [
            "900000000000000000000000000000000000002",
            "10000000000000000000000000000000000000001",
            "899",
        ];
        assert_eq!(stream_rewind_point(failed), Some("899"));
        assert_eq!(stream_rewind_point(["20", "100"]), Some("20"));
        assert_eq!(stream_rewind_point(Vec::<&str>::new()), None);
    }
}
