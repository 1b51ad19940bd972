//! The DynamoDB item layout of the event store, and what each item costs.
//!
//! One table, string keys `pk`/`sk` (decision record 0009):
//! - **event**: `pk` = entity, `sk` = the event's *slot*: a fixed-width UTC
//!   time, strictly increasing per entity, that its predecessor opened
//!   ([`next_slot`]); `seq`, `kind` = `event`, `event_id`, `event_type`, the
//!   payload as JSON text in `data` (or deflated in `data_z` when that saves a
//!   write unit), `occurred_at`, `received_at`, `stored_at`, `correlation_id`
//!   (omitted when none), `test`, `schema_version`, `expires_at` (TTL; omitted
//!   when none), `traceparent` (the W3C trace context; omitted when none);
//! - **head** (`sk` = `#head`, `kind` = `head`): written once when an entity
//!   is created (`last_seq` 0: it seeds the first slot), and after each append
//!   only when a retention is set, so `seq` continues after every event
//!   expired; `last_seq`, `last_stored_at`, `last_sk`;
//! - **de-duplication marker** (`sk` = `id#<event_id>`, `kind` = `dedup`):
//!   `event_seq`, `event_sk` (the slot its event is written at), `expires_at`.
//!   A marker without `event_sk` was written by the transactional design
//!   before 0009, together with its event: it means "stored".
//! - **snapshot** (`sk` = `snapshot#<name>#<aggregate version>`, `kind` =
//!   `snapshot`): an aggregate's state folded up to `snapshot_seq`, as JSON
//!   text in `state`; `stored_at`, `expires_at`. Optional, never read by the
//!   pipeline: the emitter's stream filter drops it (decision 0020).
//!
//! Why a slot and not the writer's clock: the event write itself is the
//! conditional write that makes `seq` unique. Every writer that read the same
//! latest event computes the same slot, so two concurrent appends of `seq` n
//! collide on one key and exactly one wins (INVARIANTS.md #3), without a
//! transaction (which costs twice the write units).
//!
//! Sizes and units follow DynamoDB's rules: an item's size is its attribute
//! names plus values; a write costs one unit per KB (rounded up, at least 1);
//! a strongly consistent read one unit per 4 KB.

use crate::event::{EntityHead, StoredEvent};
use crate::ids::{EntityId, EventId, IdError};
use crate::keys::{
    DEDUP_SK_PREFIX, HEAD_SK, SNAPSHOT_SK_PREFIX, TIMESTAMP_WIDTH, format_timestamp, item_kind,
    parse_timestamp,
};
use crate::limits::{DYNAMODB_ITEM_BYTES, FIREHOSE_RECORD_BYTES};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// DynamoDB: one write unit per 1 KB of item.
pub const WRITE_UNIT_BYTES: usize = 1024;
/// DynamoDB: one strongly consistent read unit per 4 KB.
pub const READ_UNIT_BYTES: usize = 4 * 1024;

/// An owned attribute value, as the store writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// `S`.
    S(String),
    /// `N`, as DynamoDB carries it: decimal text.
    N(String),
    /// `B`.
    B(Vec<u8>),
    /// `BOOL`.
    Bool(bool),
}

/// A borrowed attribute value: what a decoder reads from any representation
/// (the SDK's, a stream record's, [`AttrValue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrRef<'a> {
    /// `S`.
    S(&'a str),
    /// `N`.
    N(&'a str),
    /// `B`.
    B(&'a [u8]),
    /// `BOOL`.
    Bool(bool),
}

impl AttrRef<'_> {
    /// The DynamoDB type's name, as a decoding error says it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::S(_) => "string",
            Self::N(_) => "number",
            Self::B(_) => "binary",
            Self::Bool(_) => "boolean",
        }
    }
}

impl AttrValue {
    /// Borrows it.
    pub fn as_ref(&self) -> AttrRef<'_> {
        match self {
            Self::S(v) => AttrRef::S(v),
            Self::N(v) => AttrRef::N(v),
            Self::B(v) => AttrRef::B(v),
            Self::Bool(v) => AttrRef::Bool(*v),
        }
    }

    fn number(n: impl ToString) -> Self {
        Self::N(n.to_string())
    }

    /// Its size by DynamoDB's rules.
    pub fn size(&self) -> usize {
        match self {
            Self::S(v) => v.len(),
            Self::B(v) => v.len(),
            Self::Bool(_) => 1,
            Self::N(v) => v
                .parse::<i128>()
                .map_or_else(|_| number_text_size(v), crate::limits::number_size),
        }
    }
}

/// A number's size: significant digits / 2, rounded up, plus 1.
fn number_text_size(text: &str) -> usize {
    let digits = text.trim_start_matches(['-', '0']);
    let digits = digits.trim_end_matches('0');
    let significant = digits.chars().filter(char::is_ascii_digit).count().max(1);
    significant.div_ceil(2) + 1
}

/// An item: attribute name → value (ordered, so encodings are deterministic).
pub type Item = BTreeMap<String, AttrValue>;

/// The size DynamoDB counts for an item.
pub fn size_of(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// Write units of writing (or failing to conditionally write) an item of `size` bytes.
pub fn write_units(size: usize) -> u64 {
    size.div_ceil(WRITE_UNIT_BYTES).max(1) as u64
}

/// Units of a strongly consistent read returning `size` bytes (at least 1).
pub fn read_units(size: usize) -> u64 {
    size.div_ceil(READ_UNIT_BYTES).max(1) as u64
}

/// Read and write units, counted as DynamoDB bills them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Units {
    /// Write units.
    pub write: u64,
    /// Read units (strongly consistent).
    pub read: u64,
}

impl std::ops::AddAssign for Units {
    fn add_assign(&mut self, o: Self) {
        self.write += o.write;
        self.read += o.read;
    }
}

/// Where the next event of an entity goes: its `seq` and its slot (`sk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The gapless sequence number.
    pub seq: u64,
    /// The range key: a fixed-width UTC time, unique within the entity.
    pub sk: String,
    time: DateTime<Utc>,
}

impl Slot {
    /// The slot's time.
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }
}

/// The time in an event's `sk`: the whole key (this design) or its first
/// [`TIMESTAMP_WIDTH`] characters (`<time>#<event id>`, before 0009).
fn sk_time(sk: &str) -> Option<DateTime<Utc>> {
    parse_timestamp(sk.get(..TIMESTAMP_WIDTH)?)
}

/// The slot after an event with this `seq`, `sk` and `stored_at`: the time it
/// was stored, or 1 µs after its own slot if that is later. Deterministic in
/// the predecessor, so concurrent writers agree on it; strictly increasing,
/// so `sk` order is `seq` order and no slot is reused.
pub fn next_slot(seq: u64, sk: &str, stored_at: &str) -> Option<Slot> {
    let after_own = sk_time(sk)? + Duration::microseconds(1);
    let time = parse_timestamp(stored_at).map_or(after_own, |s| s.max(after_own));
    Some(Slot {
        seq: seq + 1,
        sk: format_timestamp(time),
        time,
    })
}

/// The slot after a head: the first slot of a new entity (`last_seq` 0: the
/// head's creation time), or the one after the head's last event (when every
/// event has expired).
pub fn slot_after_head(head: &HeadState) -> Option<Slot> {
    if head.last_seq == 0 {
        let time = parse_timestamp(&head.last_stored_at)?;
        return Some(Slot {
            seq: 1,
            sk: format_timestamp(time),
            time,
        });
    }
    let last_sk = head.last_sk.as_deref().unwrap_or(&head.last_stored_at);
    next_slot(head.last_seq, last_sk, &head.last_stored_at)
}

/// The head item's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadState {
    /// Highest `seq` recorded (0: the entity was just created).
    pub last_seq: u64,
    /// `stored_at` of that event, or the creation time.
    pub last_stored_at: String,
    /// `sk` of that event; absent in heads written before 0009.
    pub last_sk: Option<String>,
    /// `expires_at` of that event, if it expires.
    pub expires_at: Option<i64>,
    /// Written in this version's layout (`high_*`). A head in the older
    /// layout (`last_seq`) is *fenced* before this version appends after it:
    /// writers of the transactional design read `last_seq` and condition
    /// their write on it, so once it is gone they refuse instead of
    /// repeating a `seq` this version assigned (decision record 0009).
    pub fenced: bool,
}

impl HeadState {
    /// A head that records `event` as the highest `seq`.
    pub fn of(event: &StoredEvent) -> Self {
        Self {
            last_seq: event.seq,
            last_stored_at: event.stored_at.clone(),
            last_sk: Some(event.sk.clone()),
            expires_at: event.expires_at,
            fenced: true,
        }
    }

    /// The head of a new entity, created at `stored_at`.
    pub fn created(stored_at: String) -> Self {
        Self {
            last_seq: 0,
            last_stored_at: stored_at,
            last_sk: None,
            expires_at: None,
            fenced: true,
        }
    }

    /// As the port's [`EntityHead`].
    pub fn to_entity_head(&self, entity: &EntityId) -> EntityHead {
        EntityHead {
            entity_id: entity.clone(),
            last_seq: self.last_seq,
            last_stored_at: self.last_stored_at.clone(),
        }
    }
}

/// The head's attribute names in this version's layout.
pub mod head_attr {
    /// Highest `seq` recorded.
    pub const SEQ: &str = "high_seq";
    /// `stored_at` of that event.
    pub const STORED_AT: &str = "high_stored_at";
    /// `sk` of that event.
    pub const SK: &str = "high_sk";
    /// `expires_at` of that event.
    pub const EXPIRES_AT: &str = "high_expires_at";
    /// The older layout's `seq`, which fenced heads no longer carry.
    pub const LEGACY_SEQ: &str = "last_seq";
}

/// The head item, in this version's (fenced) layout. It carries no
/// `expires_at`: TTL never removes it, so `seq` outlives every event.
pub fn head_item(entity: &EntityId, head: &HeadState) -> Item {
    let mut item = Item::from([
        ("pk".into(), AttrValue::S(entity.as_str().into())),
        ("sk".into(), AttrValue::S(HEAD_SK.into())),
        ("kind".into(), AttrValue::S(item_kind::HEAD.into())),
        (head_attr::SEQ.into(), AttrValue::number(head.last_seq)),
        (
            head_attr::STORED_AT.into(),
            AttrValue::S(head.last_stored_at.clone()),
        ),
    ]);
    if let Some(sk) = &head.last_sk {
        item.insert(head_attr::SK.into(), AttrValue::S(sk.clone()));
    }
    if let Some(t) = head.expires_at {
        item.insert(head_attr::EXPIRES_AT.into(), AttrValue::number(t));
    }
    item
}

/// Why an item read from the store cannot be decoded. Every variant names
/// the attribute, so a caller can say which part of which item is broken.
/// Permanent: reading the same item again gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A required attribute is absent.
    #[error("attribute {attribute} is missing (a {expected} is required)")]
    Missing {
        /// The attribute's name.
        attribute: String,
        /// The DynamoDB type it should have: `string` or `number`.
        expected: &'static str,
    },
    /// An attribute has another DynamoDB type than the layout's.
    #[error("attribute {attribute} is a {found}, not a {expected}")]
    WrongType {
        /// The attribute's name.
        attribute: String,
        /// The type the layout gives it.
        expected: &'static str,
        /// The type it has.
        found: &'static str,
    },
    /// A number attribute does not fit the field's type.
    #[error("attribute {attribute} ({value}) is not a {expected}")]
    OutOfRange {
        /// The attribute's name.
        attribute: String,
        /// Its text.
        value: String,
        /// The Rust type it should fit.
        expected: &'static str,
    },
    /// An event item has neither `data` nor `data_z`.
    #[error("attribute data (or data_z) is missing")]
    MissingData,
    /// The payload is not JSON.
    #[error("{attribute} is not JSON: {reason}")]
    NotJson {
        /// `data` or `data_z`.
        attribute: &'static str,
        /// serde_json's message.
        reason: String,
    },
    /// The deflated payload does not inflate to UTF-8 text.
    #[error("{attribute} does not inflate to UTF-8 text: {reason}")]
    NotInflatable {
        /// `data_z`.
        attribute: &'static str,
        /// The inflater's message.
        reason: String,
    },
    /// The deflated payload inflates to more than a record can hold.
    #[error("{attribute} inflates to more than {max} bytes")]
    InflatesTooLarge {
        /// `data_z`.
        attribute: &'static str,
        /// The most a record's payload can be.
        max: usize,
    },
    /// An id attribute breaks the id rules.
    #[error("{attribute} {reason}")]
    InvalidId {
        /// `pk` or `event_id`.
        attribute: &'static str,
        /// The rule it breaks.
        reason: IdError,
    },
}

impl DecodeError {
    /// The attribute the error is about.
    pub fn attribute(&self) -> &str {
        match self {
            Self::Missing { attribute, .. }
            | Self::WrongType { attribute, .. }
            | Self::OutOfRange { attribute, .. } => attribute,
            Self::MissingData => "data",
            Self::NotJson { attribute, .. }
            | Self::NotInflatable { attribute, .. }
            | Self::InflatesTooLarge { attribute, .. }
            | Self::InvalidId { attribute, .. } => attribute,
        }
    }
}

impl crate::Classify for DecodeError {
    fn class(&self) -> crate::ErrorClass {
        // The item is what it is: reading it again decodes no better.
        crate::ErrorClass::Permanent
    }
}

/// Reads a head item, in this version's layout or the older one (`last_seq`,
/// `last_stored_at`, `last_sk`: then `fenced` is false).
pub fn decode_head<'a>(
    get: impl Fn(&str) -> Option<AttrRef<'a>>,
) -> Result<HeadState, DecodeError> {
    let optional = |name: &str| match get(name) {
        Some(AttrRef::S(s)) => Some(s.to_string()),
        _ => None,
    };
    if get(head_attr::SEQ).is_some() {
        return Ok(HeadState {
            last_seq: number(&get, head_attr::SEQ)?,
            last_stored_at: string(&get, head_attr::STORED_AT)?.to_string(),
            last_sk: optional(head_attr::SK),
            expires_at: match get(head_attr::EXPIRES_AT) {
                Some(AttrRef::N(s)) => s.parse().ok(),
                _ => None,
            },
            fenced: true,
        });
    }
    Ok(HeadState {
        last_seq: number(&get, head_attr::LEGACY_SEQ)?,
        last_stored_at: string(&get, "last_stored_at")?.to_string(),
        last_sk: optional("last_sk"),
        expires_at: None,
        fenced: false,
    })
}

/// A de-duplication marker's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The event's `seq` (its slot's).
    pub event_seq: u64,
    /// The slot its event is (to be) written at; `None`: written with its
    /// event in one transaction before 0009, so the event is stored.
    pub event_sk: Option<String>,
    /// When TTL may remove it; never before its event's.
    pub expires_at: Option<i64>,
}

/// The marker item of `event_id`, pointing at `slot`.
pub fn marker_item(
    entity: &EntityId,
    event_id: &EventId,
    slot: &Slot,
    expires_at: Option<i64>,
) -> Item {
    let mut item = Item::from([
        ("pk".into(), AttrValue::S(entity.as_str().into())),
        ("sk".into(), AttrValue::S(marker_sort_key(event_id))),
        ("kind".into(), AttrValue::S(item_kind::DEDUP.into())),
        ("event_seq".into(), AttrValue::number(slot.seq)),
        ("event_sk".into(), AttrValue::S(slot.sk.clone())),
    ]);
    // The marker lives as long as its event, so markers cannot outgrow the
    // events they guard (docs/deploy.md, "The events table").
    if let Some(t) = expires_at {
        item.insert("expires_at".into(), AttrValue::number(t));
    }
    item
}

/// The marker's range key.
pub fn marker_sort_key(event_id: &EventId) -> String {
    format!("{DEDUP_SK_PREFIX}{}", event_id.as_str())
}

/// Reads a marker item.
pub fn decode_marker<'a>(get: impl Fn(&str) -> Option<AttrRef<'a>>) -> Result<Marker, DecodeError> {
    Ok(Marker {
        event_seq: number(&get, "event_seq")?,
        event_sk: match get("event_sk") {
            Some(AttrRef::S(s)) => Some(s.to_string()),
            _ => None,
        },
        expires_at: match get("expires_at") {
            Some(AttrRef::N(s)) => s.parse().ok(),
            _ => None,
        },
    })
}

/// An aggregate's state at a sequence: a shortcut for loading it, stored
/// beside the entity's events. Never required: without it, or when its
/// `aggregate_version` is not the loader's, the events are folded from the
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The aggregate's name (`Order`): one entity may be folded by several.
    pub name: String,
    /// The version of the aggregate's code that folded it: a new version
    /// ignores older snapshots.
    pub aggregate_version: u32,
    /// The last sequence folded into `state`.
    pub sequence: u64,
    /// The state, JSON text.
    pub state: String,
    /// When it was stored.
    pub stored_at: String,
}

/// The longest snapshot name: it is part of the range key.
pub const MAX_SNAPSHOT_NAME_CHARS: usize = 64;

/// Why a snapshot is refused before it is written. Permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotRefused {
    /// The name is empty, too long, or has a character other than letters,
    /// digits, `-`, `_` and `.`.
    #[error("snapshot name {0:?} must be 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    /// Sequence 0 folds nothing.
    #[error("a snapshot's sequence must be at least 1")]
    EmptySequence,
    /// The entity has not reached that sequence.
    #[error("sequence {sequence} is past the entity's last sequence {last}")]
    PastHead {
        /// The snapshot's sequence.
        sequence: u64,
        /// The entity's last sequence.
        last: u64,
    },
    /// The item would pass DynamoDB's 400 KB item limit.
    #[error("the snapshot item is {size} bytes, over DynamoDB's {limit}-byte item limit")]
    TooLarge {
        /// The item's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The state is not JSON.
    #[error("state is not JSON: {0}")]
    NotJson(String),
}

/// The snapshot's range key.
pub fn snapshot_sort_key(name: &str, aggregate_version: u32) -> String {
    format!("{SNAPSHOT_SK_PREFIX}{name}#{aggregate_version}")
}

/// Checks a snapshot's name, sequence and state (not its place against the
/// head, which needs a read).
pub fn check_snapshot(snapshot: &Snapshot) -> Result<(), SnapshotRefused> {
    let name = &snapshot.name;
    if name.is_empty()
        || name.chars().count() > MAX_SNAPSHOT_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(SnapshotRefused::BadName(name.clone()));
    }
    if snapshot.sequence == 0 {
        return Err(SnapshotRefused::EmptySequence);
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&snapshot.state)
        .map_err(|e| SnapshotRefused::NotJson(e.to_string()))?;
    Ok(())
}

/// The snapshot item of `entity`, checked against the item size limit.
pub fn snapshot_item(
    entity: &EntityId,
    snapshot: &Snapshot,
    expires_at: Option<i64>,
) -> Result<Item, SnapshotRefused> {
    check_snapshot(snapshot)?;
    let mut item = Item::from([
        ("pk".into(), AttrValue::S(entity.as_str().into())),
        (
            "sk".into(),
            AttrValue::S(snapshot_sort_key(
                &snapshot.name,
                snapshot.aggregate_version,
            )),
        ),
        ("kind".into(), AttrValue::S(item_kind::SNAPSHOT.into())),
        ("snapshot_name".into(), AttrValue::S(snapshot.name.clone())),
        (
            "aggregate_version".into(),
            AttrValue::number(snapshot.aggregate_version),
        ),
        ("snapshot_seq".into(), AttrValue::number(snapshot.sequence)),
        ("state".into(), AttrValue::S(snapshot.state.clone())),
        ("stored_at".into(), AttrValue::S(snapshot.stored_at.clone())),
    ]);
    // A snapshot holds the events' data: it expires with them.
    if let Some(t) = expires_at {
        item.insert("expires_at".into(), AttrValue::number(t));
    }
    let size = size_of(&item);
    if size > DYNAMODB_ITEM_BYTES {
        return Err(SnapshotRefused::TooLarge {
            size,
            limit: DYNAMODB_ITEM_BYTES,
        });
    }
    Ok(item)
}

/// Reads a snapshot item.
pub fn decode_snapshot<'a>(
    get: impl Fn(&str) -> Option<AttrRef<'a>>,
) -> Result<Snapshot, DecodeError> {
    let text = |name: &str| string(&get, name).map(str::to_string);
    Ok(Snapshot {
        name: text("snapshot_name")?,
        aggregate_version: number(&get, "aggregate_version")?,
        sequence: number(&get, "snapshot_seq")?,
        state: text("state")?,
        stored_at: text("stored_at")?,
    })
}

/// The event item's `fmt`: written by this version of the append protocol.
/// An entity whose latest event lacks it was last written by an older
/// version, so its head is read (and fenced) before appending after it.
pub const STORE_FORMAT: u64 = 2;

/// Whether an event item was written by this version of the protocol.
pub fn is_current_format<'a>(get: impl Fn(&str) -> Option<AttrRef<'a>>) -> bool {
    matches!(get("fmt"), Some(AttrRef::N(n)) if n.parse::<u64>().is_ok_and(|v| v >= STORE_FORMAT))
}

/// An event item is worth deflating only above one write unit: below it,
/// compression cannot save a unit and costs CPU on every write and read.
const COMPRESS_ABOVE: usize = WRITE_UNIT_BYTES;

/// The event item of a stored event, with its payload serialised as
/// `data_json`. The payload is stored deflated (`data_z`) when that makes the
/// item cost fewer write units, as text (`data`) otherwise.
pub fn event_item(e: &StoredEvent, data_json: &str) -> Item {
    let mut item = Item::from([
        ("pk".into(), AttrValue::S(e.entity_id.as_str().into())),
        ("sk".into(), AttrValue::S(e.sk.clone())),
        ("seq".into(), AttrValue::number(e.seq)),
        ("kind".into(), AttrValue::S(item_kind::EVENT.into())),
        ("event_id".into(), AttrValue::S(e.event_id.as_str().into())),
        ("event_type".into(), AttrValue::S(e.event_type.clone())),
        ("occurred_at".into(), AttrValue::S(e.occurred_at.clone())),
        ("received_at".into(), AttrValue::S(e.received_at.clone())),
        ("stored_at".into(), AttrValue::S(e.stored_at.clone())),
        ("test".into(), AttrValue::Bool(e.test)),
        ("schema_version".into(), AttrValue::number(e.schema_version)),
        ("fmt".into(), AttrValue::number(STORE_FORMAT)),
    ]);
    if let Some(c) = &e.correlation_id {
        item.insert("correlation_id".into(), AttrValue::S(c.clone()));
    }
    if let Some(t) = e.expires_at {
        item.insert("expires_at".into(), AttrValue::number(t));
    }
    if let Some(t) = &e.traceparent {
        item.insert("traceparent".into(), AttrValue::S(t.clone()));
    }
    let plain = size_of(&item) + "data".len() + data_json.len();
    if plain > COMPRESS_ABOVE
        && let Some(deflated) = deflate(data_json.as_bytes())
        && write_units(size_of(&item) + "data_z".len() + deflated.len()) < write_units(plain)
    {
        item.insert("data_z".into(), AttrValue::B(deflated));
    } else {
        item.insert("data".into(), AttrValue::S(data_json.into()));
    }
    item
}

fn deflate(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(bytes.len() / 2),
        flate2::Compression::fast(),
    );
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

/// Inflates `data_z`, refusing more than a record can hold (a corrupt or
/// hostile item must not exhaust memory).
fn inflate(bytes: &[u8]) -> Result<String, DecodeError> {
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(FIREHOSE_RECORD_BYTES as u64 + 1)
        .read_to_string(&mut out)
        .map_err(|e| DecodeError::NotInflatable {
            attribute: "data_z",
            reason: e.to_string(),
        })?;
    if out.len() > FIREHOSE_RECORD_BYTES {
        return Err(DecodeError::InflatesTooLarge {
            attribute: "data_z",
            max: FIREHOSE_RECORD_BYTES,
        });
    }
    Ok(out)
}

/// Checks an item against DynamoDB's 400 KB limit, as it will be written.
pub fn check_item_size(item: &Item) -> Result<usize, String> {
    let size = size_of(item);
    if size > DYNAMODB_ITEM_BYTES {
        return Err(format!(
            "{size} bytes as a DynamoDB item; the item limit is {DYNAMODB_ITEM_BYTES} bytes"
        ));
    }
    Ok(size)
}

fn string<'a>(
    get: &impl Fn(&str) -> Option<AttrRef<'a>>,
    name: &str,
) -> Result<&'a str, DecodeError> {
    match get(name) {
        Some(AttrRef::S(s)) => Ok(s),
        None => Err(DecodeError::Missing {
            attribute: name.to_string(),
            expected: "string",
        }),
        Some(other) => Err(DecodeError::WrongType {
            attribute: name.to_string(),
            expected: "string",
            found: other.type_name(),
        }),
    }
}

fn number<'a, T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<AttrRef<'a>>,
    name: &str,
) -> Result<T, DecodeError> {
    match get(name) {
        Some(AttrRef::N(s)) => s.parse().map_err(|_| DecodeError::OutOfRange {
            attribute: name.to_string(),
            value: s.to_string(),
            expected: std::any::type_name::<T>(),
        }),
        None => Err(DecodeError::Missing {
            attribute: name.to_string(),
            expected: "number",
        }),
        Some(other) => Err(DecodeError::WrongType {
            attribute: name.to_string(),
            expected: "number",
            found: other.type_name(),
        }),
    }
}

/// Reads an event item (this design's or the one before 0009).
pub fn decode_event<'a>(
    get: impl Fn(&str) -> Option<AttrRef<'a>>,
) -> Result<StoredEvent, DecodeError> {
    let not_json = |attribute: &'static str| {
        move |e: serde_json::Error| DecodeError::NotJson {
            attribute,
            reason: e.to_string(),
        }
    };
    let data = match (get("data"), get("data_z")) {
        (Some(AttrRef::S(text)), _) => serde_json::from_str(text).map_err(not_json("data"))?,
        (_, Some(AttrRef::B(bytes))) => {
            serde_json::from_str(&inflate(bytes)?).map_err(not_json("data_z"))?
        }
        _ => return Err(DecodeError::MissingData),
    };
    let id = |attribute: &'static str| {
        move |reason: IdError| DecodeError::InvalidId { attribute, reason }
    };
    Ok(StoredEvent {
        entity_id: EntityId::new(string(&get, "pk")?).map_err(id("pk"))?,
        seq: number(&get, "seq")?,
        sk: string(&get, "sk")?.to_string(),
        event_id: EventId::new(string(&get, "event_id")?).map_err(id("event_id"))?,
        event_type: string(&get, "event_type")?.to_string(),
        data,
        occurred_at: string(&get, "occurred_at")?.to_string(),
        received_at: string(&get, "received_at")?.to_string(),
        stored_at: string(&get, "stored_at")?.to_string(),
        correlation_id: match get("correlation_id") {
            Some(AttrRef::S(s)) => Some(s.to_string()),
            _ => None,
        },
        test: matches!(get("test"), Some(AttrRef::Bool(true))),
        schema_version: number(&get, "schema_version")?,
        expires_at: match get("expires_at") {
            Some(AttrRef::N(s)) => s.parse().ok(),
            _ => None,
        },
        traceparent: match get("traceparent") {
            Some(AttrRef::S(s)) => Some(s.to_string()),
            _ => None,
        },
    })
}

/// A lookup over an owned [`Item`], for the decoders.
pub fn lookup<'a>(item: &'a Item) -> impl Fn(&str) -> Option<AttrRef<'a>> + 'a {
    move |name| item.get(name).map(AttrValue::as_ref)
}

/// The `kind` attribute of an item.
pub fn kind_of<'a>(get: impl Fn(&str) -> Option<AttrRef<'a>>) -> Option<&'a str> {
    match get("kind") {
        Some(AttrRef::S(s)) => Some(s),
        _ => None,
    }
}

/// The range of `sk` values event items have: fixed-width times start with a
/// digit, the head (`#head`) sorts before and markers (`id#…`) after.
pub const EVENT_SK_RANGE: (&str, &str) = ("0", "9~");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestConfig, normalize_record};

    fn stored(data: &str, seq: u64) -> StoredEvent {
        let rec = normalize_record(
            &IngestConfig::default(),
            format!(r#"{{"entity_id":"e-1","type":"T","id":"x-{seq}","data":{data}}}"#).as_bytes(),
            Utc::now(),
        )
        .unwrap();
        StoredEvent {
            entity_id: rec.entity_id,
            seq,
            sk: "2026-11-23T08:00:00.000000Z".into(),
            event_id: rec.id,
            event_type: rec.event_type,
            data: rec.data,
            occurred_at: rec.occurred_at,
            received_at: rec.received_at,
            stored_at: "2026-11-23T08:00:00.000004Z".into(),
            correlation_id: None,
            test: false,
            schema_version: 1,
            expires_at: Some(1_795_420_800),
            traceparent: rec.traceparent,
        }
    }

    #[test]
    fn small_items_keep_text_and_large_compressible_ones_are_deflated() {
        let small = stored(r#"{"name":"Zoë ✓"}"#, 1);
        let item = event_item(&small, &serde_json::to_string(&small.data).unwrap());
        assert!(item.contains_key("data") && !item.contains_key("data_z"));
        assert_eq!(decode_event(lookup(&item)).unwrap(), small);

        let lines: Vec<String> = (0..30)
            .map(|i| format!(r#"{{"sku":"SKU-{i:04}","qty":{i},"price":12.5}}"#))
            .collect();
        let large = stored(&format!(r#"{{"lines":[{}]}}"#, lines.join(",")), 2);
        let text = serde_json::to_string(&large.data).unwrap();
        let item = event_item(&large, &text);
        assert!(item.contains_key("data_z"), "{} bytes of text", text.len());
        assert_eq!(write_units(size_of(&item)), 1);
        assert_eq!(decode_event(lookup(&item)).unwrap(), large);
    }

    #[test]
    fn incompressible_data_stays_text() {
        use rand::RngCore;
        let mut bytes = [0u8; 900];
        rand::rng().fill_bytes(&mut bytes);
        let noise = format!("\"{}\"", hex::encode(bytes));
        let e = stored(&noise, 1);
        let text = serde_json::to_string(&e.data).unwrap();
        let item = event_item(&e, &text);
        // Hex text deflates to about half, which does save a unit here; pure
        // high-entropy bytes would not. Either way the item decodes.
        assert_eq!(decode_event(lookup(&item)).unwrap(), e);
    }

    #[test]
    fn slots_increase_strictly_and_agree_between_writers() {
        let a = next_slot(
            1,
            "2026-11-23T08:00:00.000000Z",
            "2026-11-23T08:00:00.000000Z",
        )
        .unwrap();
        assert_eq!(a.seq, 2);
        assert_eq!(a.sk, "2026-11-23T08:00:00.000001Z");
        // A predecessor stored later than its slot opens the next slot then.
        let b = next_slot(2, &a.sk, "2026-11-23T09:00:00.000000Z").unwrap();
        assert_eq!(b.sk, "2026-11-23T09:00:00.000000Z");
        // Keys from before 0009 (`<time>#<id>`) chain on.
        let c = next_slot(
            7,
            "2026-11-23T08:00:00.000000Z#ev-7",
            "2026-11-23T08:00:00.000000Z",
        )
        .unwrap();
        assert_eq!((c.seq, c.sk.as_str()), (8, "2026-11-23T08:00:00.000001Z"));
        assert!(c.sk.as_str() > "2026-11-23T08:00:00.000000Z#ev-7");
        // A head that outlived its events continues the same chain.
        let head = HeadState {
            last_seq: 2,
            last_stored_at: "2026-11-23T09:00:00.000000Z".into(),
            last_sk: Some(b.sk.clone()),
            expires_at: None,
            fenced: true,
        };
        let from_event = next_slot(2, &b.sk, "2026-11-23T09:00:00.000000Z").unwrap();
        assert_eq!(slot_after_head(&head).unwrap(), from_event);
        assert!(EVENT_SK_RANGE.0 < a.sk.as_str() && a.sk.as_str() < EVENT_SK_RANGE.1);
        assert!(HEAD_SK < EVENT_SK_RANGE.0 && "id#x" > EVENT_SK_RANGE.1);
    }

    #[test]
    fn number_sizes_follow_dynamodb() {
        assert_eq!(AttrValue::number(0).size(), 1);
        assert_eq!(AttrValue::number(1).size(), 2);
        assert_eq!(AttrValue::number(12).size(), 2);
        assert_eq!(AttrValue::number(123).size(), 3);
        assert_eq!(AttrValue::number(1000).size(), 2);
        assert_eq!(AttrValue::number(1_795_420_800).size(), 5);
    }
}
