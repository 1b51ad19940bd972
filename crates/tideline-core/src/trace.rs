//! Trace context that follows a record through every hop.
//!
//! A record may carry its trace in its `traceparent` field (W3C Trace
//! Context, `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`) or as an
//! AWS X-Ray header (`Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1`).
//! Ingest normalises either to the W3C form and, for a record with none,
//! starts one derived from the event id, so a Firehose retry of the same
//! record starts the same trace. The producer's trace id is never changed.
//!
//! The trace then rides with the event: in the queue message (and its SQS
//! `AWSTraceHeader` system attribute), on the stored item (`traceparent`),
//! in the integration event (`metadata.traceparent`), on the PutEvents entry
//! (`TraceHeader`), and on the consumer's `tracing` span. X-Ray's trace id is
//! the W3C one split after 8 hex digits (its epoch-seconds part), so the
//! conversion both ways loses nothing.

use sha2::{Digest, Sha256};

/// A parsed trace context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub parent_id: String,
    /// Sampled flag.
    pub sampled: bool,
}

/// Why a trace header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TraceError(String);

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn not_zero(s: &str) -> bool {
    s.bytes().any(|b| b != b'0')
}

impl TraceContext {
    /// Reads a W3C `traceparent` or an X-Ray trace header.
    pub fn parse(text: &str) -> Result<Self, TraceError> {
        let text = text.trim();
        if text.starts_with("Root=") || text.contains(";Root=") {
            return Self::parse_xray(text);
        }
        let parts: Vec<&str> = text.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else {
            return Err(TraceError(
                "expected W3C traceparent 00-<32 hex>-<16 hex>-<2 hex> or an X-Ray header Root=1-…"
                    .into(),
            ));
        };
        if !is_hex(version, 2) || *version == "ff" {
            return Err(TraceError(format!(
                "version {version:?} is not a W3C trace context version"
            )));
        }
        if !is_hex(trace_id, 32) || !not_zero(trace_id) {
            return Err(TraceError(
                "trace id must be 32 hex digits, not all zero".into(),
            ));
        }
        if !is_hex(parent_id, 16) || !not_zero(parent_id) {
            return Err(TraceError(
                "parent id must be 16 hex digits, not all zero".into(),
            ));
        }
        if !is_hex(flags, 2) {
            return Err(TraceError("flags must be 2 hex digits".into()));
        }
        let flags = u8::from_str_radix(flags, 16).map_err(|e| TraceError(e.to_string()))?;
        Ok(Self {
            trace_id: trace_id.to_ascii_lowercase(),
            parent_id: parent_id.to_ascii_lowercase(),
            sampled: flags & 1 == 1,
        })
    }

    fn parse_xray(text: &str) -> Result<Self, TraceError> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = true;
        for field in text.split(';') {
            match field.trim().split_once('=') {
                Some(("Root", v)) => root = Some(v),
                Some(("Parent", v)) => parent = Some(v),
                Some(("Sampled", v)) => sampled = v != "0",
                _ => {}
            }
        }
        let root = root.ok_or_else(|| TraceError("X-Ray header without Root".into()))?;
        let parts: Vec<&str> = root.split('-').collect();
        let ["1", epoch, unique] = parts.as_slice() else {
            return Err(TraceError("X-Ray Root must be 1-<8 hex>-<24 hex>".into()));
        };
        let trace_id = format!("{epoch}{unique}");
        if !is_hex(epoch, 8) || !is_hex(unique, 24) || !not_zero(&trace_id) {
            return Err(TraceError("X-Ray Root must be 1-<8 hex>-<24 hex>".into()));
        }
        // A segment without a parent (the producer is the root): derive a
        // stable parent id from the trace id, so the W3C form is complete.
        let parent_id = match parent {
            Some(p) if is_hex(p, 16) && not_zero(p) => p.to_ascii_lowercase(),
            Some(_) => return Err(TraceError("X-Ray Parent must be 16 hex digits".into())),
            None => hex::encode(&Sha256::digest(trace_id.as_bytes())[..8]),
        };
        Ok(Self {
            trace_id: trace_id.to_ascii_lowercase(),
            parent_id,
            sampled,
        })
    }

    /// A trace started for an event that arrived without one: derived from
    /// its entity and id, so every retry of the record starts the same trace.
    pub fn start_for(entity_id: &str, event_id: &str) -> Self {
        let digest = started_digest(entity_id, event_id);
        let mut trace = hex::encode(&digest[..16]);
        let mut parent = hex::encode(&digest[16..24]);
        // All-zero ids are invalid; a SHA-256 prefix of zeros is not going to
        // happen, but the rule is cheap to keep.
        if !not_zero(&trace) {
            trace.replace_range(31.., "1");
        }
        if !not_zero(&parent) {
            parent.replace_range(15.., "1");
        }
        Self {
            trace_id: trace,
            parent_id: parent,
            sampled: true,
        }
    }

    /// The W3C `traceparent`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.parent_id,
            u8::from(self.sampled)
        )
    }

    /// The X-Ray trace header (SQS `AWSTraceHeader`, PutEvents `TraceHeader`).
    pub fn xray_header(&self) -> String {
        format!(
            "Root=1-{}-{};Parent={};Sampled={}",
            &self.trace_id[..8],
            &self.trace_id[8..],
            self.parent_id,
            u8::from(self.sampled)
        )
    }
}

/// The X-Ray header of a normalised `traceparent`, if it reads. Ingest
/// writes only the canonical W3C form, which is converted by slicing (this
/// runs once per record per hop); anything else is parsed first.
pub fn xray_header_of(traceparent: &str) -> Option<String> {
    let b = traceparent.as_bytes();
    let canonical = b.len() == TRACEPARENT_CHARS
        && traceparent.starts_with("00-")
        && b[35] == b'-'
        && b[52] == b'-'
        && b.iter().enumerate().all(|(i, c)| {
            matches!(i, 2 | 35 | 52) || c.is_ascii_digit() || (b'a'..=b'f').contains(c)
        });
    if !canonical {
        return TraceContext::parse(traceparent)
            .ok()
            .map(|t| t.xray_header());
    }
    let sampled = u8::from_str_radix(traceparent.get(53..55)?, 16).ok()? & 1;
    Some(format!(
        "Root=1-{}-{};Parent={};Sampled={sampled}",
        traceparent.get(3..11)?,
        traceparent.get(11..35)?,
        traceparent.get(36..52)?,
    ))
}

/// The digest a started trace's ids are taken from: the entity and event id,
/// so every retry of a record starts the same trace.
fn started_digest(entity_id: &str, event_id: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"tideline trace\0")
        .chain_update(entity_id.as_bytes())
        .chain_update([0])
        .chain_update(event_id.as_bytes())
        .finalize()
        .into()
}

/// The `traceparent` of [`TraceContext::start_for`], written straight into
/// one string (ingest's hot path for records without a trace).
pub fn started_traceparent(entity_id: &str, event_id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = started_digest(entity_id, event_id);
    if digest[..16].iter().all(|b| *b == 0) || digest[16..24].iter().all(|b| *b == 0) {
        return TraceContext::start_for(entity_id, event_id).traceparent();
    }
    let mut out = String::with_capacity(TRACEPARENT_CHARS);
    out.push_str("00-");
    for (i, byte) in digest[..24].iter().enumerate() {
        if i == 16 {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out.push_str("-01");
    out
}

/// Longest `traceparent` text ingest stores (the W3C form: 55 characters).
pub const TRACEPARENT_CHARS: usize = 55;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn w3c_and_xray_forms_carry_the_same_trace() {
        let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse(w3c).unwrap();
        assert_eq!(t.traceparent(), w3c);
        assert_eq!(
            t.xray_header(),
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        assert_eq!(TraceContext::parse(&t.xray_header()).unwrap(), t);
        let rootless =
            TraceContext::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1").unwrap();
        assert_eq!(rootless.trace_id, "5759e988bd862e3fe1be46a994272793");
        assert_eq!(rootless.traceparent().len(), TRACEPARENT_CHARS);
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Parent=00f067aa0ba902b7",
        ] {
            assert!(TraceContext::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_fast_paths_agree_with_the_parser() {
        let started = TraceContext::start_for("order-1", "ev-1");
        assert_eq!(
            started_traceparent("order-1", "ev-1"),
            started.traceparent()
        );
        for t in [
            started.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".to_string(),
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01".to_string(),
        ] {
            assert_eq!(
                xray_header_of(&t),
                Some(TraceContext::parse(&t).unwrap().xray_header()),
                "{t}"
            );
        }
        assert_eq!(xray_header_of("garbage"), None);
    }

    #[test]
    fn a_started_trace_is_stable_per_event() {
        let a = TraceContext::start_for("order-1", "ev-1");
        assert_eq!(a, TraceContext::start_for("order-1", "ev-1"));
        assert_ne!(
            a.trace_id,
            TraceContext::start_for("order-1", "ev-2").trace_id
        );
        assert_eq!(TraceContext::parse(&a.traceparent()).unwrap(), a);
    }

    proptest! {
        #[test]
        fn any_valid_traceparent_round_trips_through_xray(
            trace in "[0-9a-f]{32}", parent in "[0-9a-f]{16}", sampled: bool
        ) {
            prop_assume!(not_zero(&trace) && not_zero(&parent));
            let t = TraceContext { trace_id: trace, parent_id: parent, sampled };
            prop_assert_eq!(TraceContext::parse(&t.traceparent()).unwrap(), t.clone());
            prop_assert_eq!(TraceContext::parse(&t.xray_header()).unwrap(), t);
        }
    }
}
