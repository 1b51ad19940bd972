//! Partial-failure responses, exactly as each AWS contract asks
//! (INVARIANTS.md #5; AWS-CONTRACTS.md).

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
}
