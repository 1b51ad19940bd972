//! Bundled emission: several consecutive integration events in one bus entry.
//!
//! EventBridge bills per entry (in 64 KB chunks), so a stream batch of small
//! events costs far less when consecutive events share an entry. A bundle's
//! `detail` is `{"events": [<EventDetail>…], "test_events": bool}`: each element
//! is exactly the detail a plain entry would carry, metadata included, so a
//! consumer unpacks it into the events it would otherwise have received.
//!
//! What a bundle may contain (decision record 0014):
//! - **Consecutive events only**, in the order the emit stage mapped them
//!   (feed order, so each entity's `seq` order). A bundle never reorders.
//! - **One test flag**: a change of `test` closes the bundle, so `test_events`
//!   is true exactly when every element is a test event.
//! - **Several entities**, unless [`BundleConfig::one_entity_per_bundle`] is set
//!   (the ordered bus needs it: its `EventGroupId` is one entity).
//! - **At most the entry size limit** (the PutEvents request size from the
//!   limits model), counted as EventBridge counts it: Source + DetailType + Detail.
//! - A run of one event stays a plain entry, so an event that fits the bus
//!   plain is never refused because the bundle wrapper made it larger.
//!
//! Nesting: an element's `data` sits at `detail.events[i].data`, the deepest
//! envelope [`crate::limits::ENVELOPE_DEPTH`] already reserves, so every
//! record ingest admitted still parses inside a bundle.

use crate::envelope::{BusEntry, EventDetail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::ops::Range;

// The name lives with the limits, below ingest, because ingest reserves it
// too; it stays reachable here, next to the bundles that carry it.
pub use crate::limits::BUNDLE_DETAIL_TYPE;

/// `detail` of a bundle entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BundleDetail {
    /// The events, in publish order; each exactly a plain entry's `detail`.
    pub events: Vec<EventDetail>,
    /// True when every event is a test event (a bundle never mixes them).
    pub test_events: bool,
}

/// How the emitter bundles. Absent (`None` in the emit config) means off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleConfig {
    /// Most events in one bundle (at least 2; 1 would be no bundling).
    pub max_events: usize,
    /// Close a bundle when the entity changes (the ordered bus delivers in
    /// order per `EventGroupId`, which is one entity).
    pub one_entity_per_bundle: bool,
}

impl BundleConfig {
    /// The config for "at most `max_events` per bus entry": `None` (off) for
    /// 0 or 1, which is how an unset or `1` setting turns bundling off.
    pub fn from_max_events(max_events: usize) -> Option<Self> {
        (max_events > 1).then_some(Self {
            max_events,
            one_entity_per_bundle: false,
        })
    }
}

/// One bus entry after packing, with the input entries it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    /// The entry to publish: a bundle, or the input entry unchanged.
    pub entry: BusEntry,
    /// Indexes of the input entries it carries (consecutive, in order).
    pub members: Range<usize>,
}

// `{"events":[` … `],"test_events":` true|false `}`: the bytes a bundle's
// detail adds around its elements (commas between elements counted apart).
const WRAPPER_OPEN: &str = r#"{"events":["#;
const WRAPPER_CLOSE: &str = r#"],"test_events":"#;

fn bundle_entry_size(source: &str, details_len: usize, count: usize, test: bool) -> usize {
    let flag = if test { "true" } else { "false" };
    source.len()
        + BUNDLE_DETAIL_TYPE.len()
        + WRAPPER_OPEN.len()
        + details_len
        + count.saturating_sub(1)
        + WRAPPER_CLOSE.len()
        + flag.len()
        + 1
}

fn bundle_entry(members: &[BusEntry], test: bool) -> BusEntry {
    let source = members
        .first()
        .map(|e| e.source.clone())
        .unwrap_or_default();
    let details_len: usize = members.iter().map(|e| e.detail.len()).sum();
    let mut detail = String::with_capacity(details_len + members.len() + 40);
    detail.push_str(WRAPPER_OPEN);
    for (i, member) in members.iter().enumerate() {
        if i > 0 {
            detail.push(',');
        }
        // Each element is already a serialised EventDetail: no re-parsing.
        detail.push_str(&member.detail);
    }
    detail.push_str(WRAPPER_CLOSE);
    detail.push_str(if test { "true" } else { "false" });
    detail.push('}');
    BusEntry {
        source,
        detail_type: BUNDLE_DETAIL_TYPE.to_string(),
        detail,
        // For logs and the ordered bus's group: the first event's identity.
        entity_id: members
            .first()
            .map(|e| e.entity_id.clone())
            .unwrap_or_default(),
        sequence: members.first().map_or(0, |e| e.sequence),
        // One TraceHeader per entry: the first event's; each event's own
        // trace stays in its `metadata.traceparent` inside the bundle.
        trace_header: members.first().and_then(|e| e.trace_header.clone()),
    }
}

/// Packs ordered entries into bundles of consecutive entries. `is_test(i)`
/// says whether entry `i` is a test event; `max_entry_bytes` is the largest
/// entry the bus takes (the PutEvents request size). Every input entry is in
/// exactly one output, in input order.
pub fn pack(
    entries: &[BusEntry],
    is_test: impl Fn(usize) -> bool,
    config: &BundleConfig,
    max_entry_bytes: usize,
) -> Vec<Packed> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < entries.len() {
        let test = is_test(start);
        let first = &entries[start];
        let mut end = start + 1;
        let mut details_len = first.detail.len();
        while end < entries.len() && end - start < config.max_events {
            let next = &entries[end];
            let joins = is_test(end) == test
                && next.source == first.source
                && (!config.one_entity_per_bundle || next.entity_id == first.entity_id)
                && bundle_entry_size(
                    &first.source,
                    details_len + next.detail.len(),
                    end - start + 1,
                    test,
                ) <= max_entry_bytes;
            if !joins {
                break;
            }
            details_len += next.detail.len();
            end += 1;
        }
        let entry = if end - start == 1 {
            first.clone()
        } else {
            bundle_entry(&entries[start..end], test)
        };
        out.push(Packed {
            entry,
            members: start..end,
        });
        start = end;
    }
    out
}

/// The details a bundle entry's `detail` carries, in order.
pub fn unpack_detail(detail: &str) -> Result<BundleDetail, serde_json::Error> {
    serde_json::from_str(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::DetailMetadata;
    use crate::limits::{JSON_READER_DEPTH, MAX_DATA_DEPTH};
    use serde_json::{Value, json};

    fn detail(entity: &str, seq: u64, test: bool, data: Value) -> EventDetail {
        EventDetail {
            metadata: DetailMetadata {
                event_id: format!("{entity}-{seq}"),
                event_type: "OrderPlaced".into(),
                schema_version: 1,
                entity_id: entity.into(),
                sequence: seq,
                occurred_at: "2026-11-29T00:00:00.000000Z".into(),
                stored_at: "2026-11-29T00:00:00.000001Z".into(),
                correlation_id: None,
                test,
                replay: false,
                removed_by: None,
                traceparent: None,
            },
            data,
        }
    }

    fn entries(spec: &[(&str, u64, bool)]) -> (Vec<BusEntry>, Vec<bool>) {
        let entries = spec
            .iter()
            .map(|&(e, s, t)| BusEntry::new("tideline", &detail(e, s, t, json!({"n": s}))))
            .collect();
        (entries, spec.iter().map(|&(_, _, t)| t).collect())
    }

    fn config(max_events: usize) -> BundleConfig {
        BundleConfig::from_max_events(max_events).unwrap()
    }

    fn unpacked(p: &Packed) -> Vec<(String, u64)> {
        if p.entry.detail_type == BUNDLE_DETAIL_TYPE {
            unpack_detail(&p.entry.detail)
                .unwrap()
                .events
                .into_iter()
                .map(|d| (d.metadata.entity_id, d.metadata.sequence))
                .collect()
        } else {
            vec![(p.entry.entity_id.clone(), p.entry.sequence)]
        }
    }

    #[test]
    fn off_for_zero_and_one() {
        assert_eq!(BundleConfig::from_max_events(0), None);
        assert_eq!(BundleConfig::from_max_events(1), None);
        assert_eq!(config(2).max_events, 2);
    }

    #[test]
    fn packs_consecutive_events_in_order_up_to_max_events() {
        let (es, tests) = entries(&[
            ("a", 1, false),
            ("b", 1, false),
            ("a", 2, false),
            ("a", 3, false),
            ("b", 2, false),
        ]);
        let packed = pack(&es, |i| tests[i], &config(2), 1 << 20);
        assert_eq!(
            packed.iter().map(|p| p.members.clone()).collect::<Vec<_>>(),
            vec![0..2, 2..4, 4..5]
        );
        let flat: Vec<_> = packed.iter().flat_map(unpacked).collect();
        let input: Vec<_> = es
            .iter()
            .map(|e| (e.entity_id.clone(), e.sequence))
            .collect();
        assert_eq!(flat, input, "packing keeps feed order");
        // A run of one stays the plain entry, byte for byte.
        assert_eq!(packed[2].entry, es[4]);
        // Each element is exactly the plain detail.
        let bundle = unpack_detail(&packed[0].entry.detail).unwrap();
        assert_eq!(
            serde_json::to_string(&bundle.events[1]).unwrap(),
            es[1].detail
        );
        assert_eq!(packed[0].entry.entity_id, "a");
        assert_eq!(packed[0].entry.sequence, 1);
    }

    #[test]
    fn a_test_flag_change_closes_the_bundle() {
        let (es, tests) = entries(&[
            ("a", 1, true),
            ("a", 2, true),
            ("a", 3, false),
            ("a", 4, false),
            ("a", 5, true),
        ]);
        let packed = pack(&es, |i| tests[i], &config(10), 1 << 20);
        assert_eq!(
            packed.iter().map(|p| p.members.clone()).collect::<Vec<_>>(),
            vec![0..2, 2..4, 4..5]
        );
        assert!(unpack_detail(&packed[0].entry.detail).unwrap().test_events);
        assert!(!unpack_detail(&packed[1].entry.detail).unwrap().test_events);
    }

    #[test]
    fn one_entity_per_bundle_when_asked() {
        let (es, tests) = entries(&[("a", 1, false), ("a", 2, false), ("b", 1, false)]);
        let per_entity = BundleConfig {
            one_entity_per_bundle: true,
            ..config(10)
        };
        let packed = pack(&es, |i| tests[i], &per_entity, 1 << 20);
        assert_eq!(
            packed.iter().map(|p| p.members.clone()).collect::<Vec<_>>(),
            vec![0..2, 2..3]
        );
    }

    #[test]
    fn bundles_respect_the_entry_size_limit_exactly() {
        let (es, tests) = entries(&[("a", 1, false), ("a", 2, false), ("a", 3, false)]);
        let two = bundle_entry(&es[..2], false);
        // The size model equals the built entry's size.
        assert_eq!(
            two.size(),
            bundle_entry_size(
                "tideline",
                es[0].detail.len() + es[1].detail.len(),
                2,
                false
            )
        );
        let packed = pack(&es, |i| tests[i], &config(10), two.size());
        assert_eq!(
            packed.iter().map(|p| p.members.clone()).collect::<Vec<_>>(),
            vec![0..2, 2..3]
        );
        assert!(packed.iter().all(|p| p.entry.size() <= two.size()));
        let packed = pack(&es, |i| tests[i], &config(10), two.size() - 1);
        assert_eq!(packed.len(), 3, "one byte less and no two fit together");
    }

    #[test]
    fn the_deepest_admitted_data_still_parses_inside_a_bundle() {
        let mut data = Value::Null;
        for _ in 0..MAX_DATA_DEPTH {
            data = json!([data]);
        }
        let es = vec![
            BusEntry::new("tideline", &detail("a", 1, false, data.clone())),
            BusEntry::new("tideline", &detail("a", 2, false, data)),
        ];
        let packed = pack(&es, |_| false, &config(2), 1 << 20);
        assert_eq!(packed.len(), 1);
        let full = packed[0].entry.to_event_json("id", "t");
        let parsed: Value = serde_json::from_str(&full).expect("parses at the reader depth");
        assert_eq!(
            crate::limits::json_depth(&parsed),
            JSON_READER_DEPTH,
            "the bundle is exactly the deepest envelope the limits model reserves"
        );
    }
}
