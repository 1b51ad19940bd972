//! What a replay selects, and how a reader finds it without reading the
//! whole store (decision record 0017).
//!
//! A replay re-emits stored events, one entity's `seq` range
//! ([`Selection::Entity`]) or every event stored in a time window
//! ([`Selection::Window`]). A window is on `stored_at`, the time the store
//! wrote the event. Two facts let a reader narrow it down:
//!
//! - **The sort key.** An event's `sk` is the slot its predecessor opened,
//!   `max(previous stored_at, previous sk + 1 µs)`
//!   ([`crate::item::next_slot`]), and its `stored_at` is `max(sk, now)`. So
//!   along an entity, `sk(n) <= stored_at(n) <= sk(n + 1)`: the events stored
//!   in `[since, until)` are the last event with `sk < since` (its
//!   `stored_at` may be in the window) and events with `since <= sk < until`
//!   ([`StoredWindow::sort_key_range`]), read by two key-condition `Query`s
//!   per entity and filtered on `stored_at` ([`StoredWindow::contains`]).
//! - **The lake.** Every accepted record is in the data lake with its
//!   `entity_id`, in an object Firehose wrote soon after the transform
//!   enqueued the record, and the record was stored after that same enqueue,
//!   at most the queue's retention later. So the objects written in
//!   [`StoredWindow::lake_written_range`] name every entity with an event
//!   stored in the window. (Their `date=` partitions cannot say: they are
//!   the day an event *occurred*, which the producer chose.)

use crate::EntityId;
use crate::keys::{format_timestamp, parse_timestamp};
use chrono::{DateTime, Duration, Utc};

/// How long a record can wait between the transform's enqueue and the
/// store: SQS keeps a message at most 14 days (the source queue and its DLQ
/// count from the first enqueue; AWS-CONTRACTS.md, SQS), so a record stored
/// at `t` was enqueued, and its lake object written, after `t` − 14 days.
pub const MAX_QUEUE_WAIT: Duration = Duration::days(14);

/// How long after the enqueue Firehose may write a record's lake object: its
/// buffer holds a record at most 900 s, and a failing S3 delivery is retried
/// for up to 24 hours.
pub const MAX_LAKE_DELAY: Duration = Duration::hours(25);

/// The lowest and highest `sk` an event item can have ([`crate::item::EVENT_SK_RANGE`]).
const SK_FLOOR: &str = crate::item::EVENT_SK_RANGE.0;
const SK_CEILING: &str = crate::item::EVENT_SK_RANGE.1;

/// A refused replay request: what is wrong, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// A time bound is not RFC 3339.
    #[error("{field} {value:?} is not an RFC 3339 time")]
    BadTime {
        /// `since` or `until`.
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// The entity id breaks the id rules.
    #[error("entity: {0}")]
    BadEntity(String),
    /// The sequence range is empty.
    #[error("to_seq {to} is below from_seq {from}")]
    EmptyRange {
        /// First sequence asked for.
        from: u64,
        /// Last sequence asked for.
        to: u64,
    },
    /// Neither an entity nor a window.
    #[error("give either {{\"entity\", \"from_seq\"?, \"to_seq\"?}} or {{\"since\"?, \"until\"?}}")]
    Nothing,
}

impl crate::Classify for SelectionError {
    fn class(&self) -> crate::ErrorClass {
        crate::ErrorClass::Permanent
    }
}

/// The stored-at window `[since, until)`, either end open, as fixed-width
/// timestamps ([`format_timestamp`]) so they compare as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredWindow {
    /// Events stored at or after this.
    pub since: Option<String>,
    /// Events stored before this.
    pub until: Option<String>,
}

impl StoredWindow {
    /// A window from RFC 3339 bounds, each normalised to the store's format.
    pub fn parse(since: Option<&str>, until: Option<&str>) -> Result<Self, SelectionError> {
        let bound = |field: &'static str, t: Option<&str>| {
            t.map(|t| {
                parse_timestamp(t)
                    .map(format_timestamp)
                    .ok_or_else(|| SelectionError::BadTime {
                        field,
                        value: t.to_string(),
                    })
            })
            .transpose()
        };
        Ok(Self {
            since: bound("since", since)?,
            until: bound("until", until)?,
        })
    }

    /// Whether an event stored at `stored_at` is in the window.
    pub fn contains(&self, stored_at: &str) -> bool {
        self.since.as_deref().is_none_or(|s| stored_at >= s)
            && self.until.as_deref().is_none_or(|u| stored_at < u)
    }

    /// The `sk` range (inclusive, for `BETWEEN`) that holds the window's
    /// events, given the `sk` of the entity's last event below `since`
    /// (`predecessor`, which is itself in the range since its `stored_at`
    /// may be in the window): from that `sk` (else `since`) to `until` (an
    /// `sk` is never after its `stored_at`). Filter what is read with
    /// [`Self::contains`].
    pub fn sort_key_range(&self, predecessor: Option<&str>) -> (String, String) {
        let low = predecessor
            .map(str::to_string)
            .or_else(|| self.since.clone())
            .unwrap_or_else(|| SK_FLOOR.to_string());
        let high = self.until.clone().unwrap_or_else(|| SK_CEILING.to_string());
        (low, high)
    }

    /// The write times (`[from, to]`, either end open) of the lake objects
    /// that may hold a record stored in the window: from `since` −
    /// `max_queue_wait` ([`MAX_QUEUE_WAIT`] unless the queue's retention is
    /// known to be shorter) to `until` + [`MAX_LAKE_DELAY`].
    pub fn lake_written_range(
        &self,
        max_queue_wait: Duration,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let since = self.since.as_deref().and_then(parse_timestamp);
        let until = self.until.as_deref().and_then(parse_timestamp);
        (
            since.and_then(|s| s.checked_sub_signed(max_queue_wait)),
            until.and_then(|u| u.checked_add_signed(MAX_LAKE_DELAY)),
        )
    }

    /// Whether a lake record that arrived at `received_at` may have been
    /// stored in the window: it arrived before it was stored, so not if it
    /// arrived at or after `until`. A record without a readable arrival time
    /// is kept.
    pub fn may_hold_arrival(&self, received_at: &str) -> bool {
        self.until.as_deref().is_none_or(|u| {
            parse_timestamp(received_at).is_none_or(|r| format_timestamp(r).as_str() < u)
        })
    }
}

/// Whether a lake object written at `written_at` (unknown: kept) falls in
/// a [`StoredWindow::lake_written_range`].
pub fn written_in(
    written_at: Option<DateTime<Utc>>,
    (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> bool {
    written_at.is_none_or(|w| from.is_none_or(|f| w >= f) && to.is_none_or(|t| w <= t))
}

/// What a replay re-emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// One entity's events with `from_seq <= seq <= to_seq`.
    Entity {
        /// The entity.
        entity: EntityId,
        /// First sequence (at least 1).
        from_seq: u64,
        /// Last sequence.
        to_seq: u64,
    },
    /// Every event stored in the window, per entity in `seq` order.
    Window(StoredWindow),
}

impl Selection {
    /// One entity's range; `from_seq` defaults to 1, `to_seq` to the last.
    pub fn entity(
        entity: &str,
        from_seq: Option<u64>,
        to_seq: Option<u64>,
    ) -> Result<Self, SelectionError> {
        let entity = EntityId::new(entity).map_err(|e| SelectionError::BadEntity(e.to_string()))?;
        let from = from_seq.unwrap_or(1).max(1);
        let to = to_seq.unwrap_or(u64::MAX);
        if to < from {
            return Err(SelectionError::EmptyRange { from, to });
        }
        Ok(Self::Entity {
            entity,
            from_seq: from,
            to_seq: to,
        })
    }

    /// A replay request as the CLI and local mode's HTTP API take it: an
    /// entity with an optional range, or a window with at least one bound.
    pub fn from_request(
        entity: Option<&str>,
        from_seq: Option<u64>,
        to_seq: Option<u64>,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Self, SelectionError> {
        match (entity, since, until) {
            (Some(entity), None, None) => Self::entity(entity, from_seq, to_seq),
            (None, since, until) if since.is_some() || until.is_some() => {
                StoredWindow::parse(since, until).map(Self::Window)
            }
            _ => Err(SelectionError::Nothing),
        }
    }
}

/// Where a rerun of a stopped replay starts: `<entity>#<seq>`.
pub fn rewind_point(entity: &str, seq: u64) -> String {
    format!("{entity}#{seq}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::next_slot;
    use proptest::prelude::*;

    fn window(since: Option<&str>, until: Option<&str>) -> StoredWindow {
        StoredWindow::parse(since, until).unwrap()
    }

    #[test]
    fn bounds_are_normalised_and_checked() {
        let w = window(Some("2026-11-23T08:00:00+01:00"), None);
        assert_eq!(w.since.as_deref(), Some("2026-11-23T07:00:00.000000Z"));
        assert!(w.contains("2026-11-23T07:00:00.000000Z"));
        assert!(!w.contains("2026-11-23T06:59:59.999999Z"));
        let err = StoredWindow::parse(None, Some("soon")).unwrap_err();
        assert_eq!(err.to_string(), "until \"soon\" is not an RFC 3339 time");
    }

    #[test]
    fn requests_are_an_entity_range_or_a_window() {
        assert!(matches!(
            Selection::from_request(Some("o-1"), Some(2), None, None, None),
            Ok(Selection::Entity {
                from_seq: 2,
                to_seq: u64::MAX,
                ..
            })
        ));
        assert_eq!(
            Selection::from_request(Some("o-1"), Some(3), Some(2), None, None),
            Err(SelectionError::EmptyRange { from: 3, to: 2 })
        );
        assert_eq!(
            Selection::from_request(None, None, None, None, None),
            Err(SelectionError::Nothing)
        );
        assert_eq!(
            Selection::from_request(Some("o-1"), None, None, Some("2026-01-01T00:00:00Z"), None),
            Err(SelectionError::Nothing)
        );
        assert!(matches!(
            Selection::from_request(None, None, None, None, Some("2026-01-01T00:00:00Z")),
            Ok(Selection::Window(_))
        ));
    }

    #[test]
    fn the_lake_range_covers_the_queue_wait_and_the_firehose_delay() {
        let w = window(Some("2026-11-23T00:00:00Z"), Some("2026-11-24T00:00:00Z"));
        let range = w.lake_written_range(MAX_QUEUE_WAIT);
        let t = |s: &str| parse_timestamp(s);
        assert!(written_in(t("2026-11-09T00:00:00Z"), range));
        assert!(!written_in(t("2026-11-08T23:59:59Z"), range));
        assert!(written_in(t("2026-11-25T01:00:00Z"), range));
        assert!(!written_in(t("2026-11-25T01:00:01Z"), range));
        assert!(written_in(None, range));
        assert!(w.may_hold_arrival("2026-11-23T23:59:59Z"));
        assert!(!w.may_hold_arrival("2026-11-24T00:00:00Z"));
        assert!(w.may_hold_arrival("not a time"));
    }

    /// Events appended by the slot protocol: each takes the slot its
    /// predecessor opened and is stored at `max(slot, the writer's clock)`;
    /// the writers' clocks need not agree or move forward.
    fn appended(clocks: &[i64]) -> Vec<(String, String)> {
        let at =
            |micros: i64| DateTime::from_timestamp_micros(1_795_000_000_000_000 + micros).unwrap();
        let mut events: Vec<(String, String)> = Vec::new();
        for (n, &clock) in clocks.iter().enumerate() {
            let slot = match events.last() {
                Some((sk, stored_at)) => next_slot(n as u64, sk, stored_at).unwrap().time(),
                None => at(clock),
            };
            let stored_at = slot.max(at(clock));
            events.push((format_timestamp(slot), format_timestamp(stored_at)));
        }
        events
    }

    proptest! {
        /// Reading the predecessor and the key range, then filtering on
        /// `stored_at`, finds exactly the events stored in the window.
        #[test]
        fn the_key_range_finds_exactly_the_events_stored_in_the_window(
            clocks in prop::collection::vec(0i64..1_000_000, 0..30),
            since in prop::option::of(0i64..1_000_000),
            len in 0i64..1_000_000,
        ) {
            let events = appended(&clocks);
            let at = |micros: i64| format_timestamp(DateTime::from_timestamp_micros(1_795_000_000_000_000 + micros).unwrap());
            let w = StoredWindow {
                since: since.map(at),
                until: since.map(|s| at(s + len)),
            };
            let expected: Vec<usize> = (0..events.len()).filter(|&i| w.contains(&events[i].1)).collect();
            let predecessor = w.since.as_deref().and_then(|since| {
                events.iter().rev().find(|(sk, _)| sk.as_str() < since).map(|(sk, _)| sk.as_str())
            });
            let (low, high) = w.sort_key_range(predecessor);
            let found: Vec<usize> = (0..events.len())
                .filter(|&i| low <= events[i].0 && events[i].0 <= high)
                .filter(|&i| w.contains(&events[i].1))
                .collect();
            prop_assert_eq!(found, expected);
        }
    }
}
