//! DynamoDB Streams records, as the Lambda event source delivers them, to
//! the emit stage's [`Change`]s.
//!
//! - `INSERT` of an event item → [`ChangeKind::EventInserted`];
//! - `REMOVE` of an event item (old image) → [`ChangeKind::EventRemoved`],
//!   `by_ttl` when the remover is DynamoDB's TTL service
//!   (`userIdentity` = `Service` / `dynamodb.amazonaws.com`, AWS-CONTRACTS.md);
//! - head, marker, rejected-record and snapshot items, `MODIFY`, and the
//!   removal of a non-event item → [`ChangeKind::Skipped`] with a kind for
//!   metrics: `head`, `dedup`, `rejected`, `snapshot`, `modify`, `remove`
//!   (documented skips);
//! - an event item that does not decode, an item of no known kind, an unknown
//!   event name → [`ChangeKind::Undecodable`] with the reason: never skipped,
//!   the emit stage rewinds to it (no silent drop, INVARIANTS.md #1).

use crate::store::{decode_event, item_kind, kind};
use aws_lambda_events::dynamodb::EventRecord;
use tideline_stages::{Change, ChangeKind};
use tracing::warn;

fn undecodable(sequence_number: &str, reason: String) -> ChangeKind {
    warn!(stage = "emit", sequence_number, reason = %reason, "stream record cannot be read; the batch rewinds to it");
    ChangeKind::Undecodable { reason }
}

/// The principal of TTL deletions.
pub const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

fn skipped(kind: &str) -> ChangeKind {
    ChangeKind::Skipped { kind: kind.into() }
}

/// Decodes one stream record.
pub fn decode_record(record: &EventRecord) -> Change {
    let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
    let kind = match record.event_name.as_str() {
        "INSERT" => {
            let image = record.change.new_image.inner();
            match item_kind(image) {
                Some(kind::EVENT) => match decode_event(image) {
                    Ok(event) => ChangeKind::EventInserted(event),
                    Err(e) => undecodable(
                        &sequence_number,
                        format!("inserted event item cannot be decoded: {e}"),
                    ),
                },
                Some(k @ (kind::HEAD | kind::DEDUP | kind::REJECTED | kind::SNAPSHOT)) => {
                    skipped(k)
                }
                other => undecodable(
                    &sequence_number,
                    format!("inserted item has no known kind ({other:?})"),
                ),
            }
        }
        "REMOVE" => {
            let image = record.change.old_image.inner();
            match item_kind(image) {
                Some(kind::EVENT) => match decode_event(image) {
                    Ok(event) => ChangeKind::EventRemoved {
                        event,
                        by_ttl: record.user_identity.as_ref().is_some_and(|u| {
                            u.type_ == "Service" && u.principal_id == TTL_PRINCIPAL
                        }),
                    },
                    Err(e) => undecodable(
                        &sequence_number,
                        format!(
                            "removed event item cannot be decoded (is the view type NEW_AND_OLD_IMAGES?): {e}"
                        ),
                    ),
                },
                _ => skipped("remove"),
            }
        }
        "MODIFY" => skipped("modify"),
        other => undecodable(
            &sequence_number,
            format!("unknown stream event name {other:?}"),
        ),
    };
    Change {
        sequence_number,
        kind,
    }
}

/// Decodes a batch, in stream order.
pub fn decode_records(records: &[EventRecord]) -> Vec<Change> {
    records.iter().map(decode_record).collect()
}
