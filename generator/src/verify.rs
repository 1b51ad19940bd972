//! `verify`: read every entity's history back and hold it against the manifest.
//!
//! The checks are the pipeline's promises, seen from outside:
//! - **missing**: an accepted valid record that is not stored (INVARIANTS.md #1);
//! - **duplicated**: an id stored more than once, e.g. after a `--duplicates`
//!   re-send (#2);
//! - **out of order**: in `sequence` order, a record with a lower generator
//!   sequence than one before it of the same entity (#4);
//! - **sequence gaps**: `sequence` not exactly 1, 2, 3, … (#3);
//! - **invalid stored**: a record that is malformed on purpose was stored;
//! - **payload mismatch**: `data.gen_seq` differs from what was sent.
//!
//! Latency is `stored_at` minus the send time of the accepting call.
//!
//! The history is read through the query API page by page, following
//! `next_cursor` until it is null, so long histories are read completely.

use crate::manifest::{FLAG_FAILED, FLAG_INVALID, FLAG_RESEND, Manifest};
use crate::stats::Percentiles;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Largest page the query API serves (`tideline-stages` `MAX_LIMIT`).
pub const PAGE_LIMIT: usize = 1000;

/// One page of `GET /entities/{id}/events`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Page {
    /// Events, in sequence order.
    #[serde(default)]
    pub items: Vec<Item>,
    /// Cursor of the next page, null on the last.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// One stored event, as the query API returns it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Item {
    /// Identity and order.
    pub metadata: ItemMetadata,
    /// The payload.
    #[serde(default)]
    pub data: Value,
}

/// The fields of `metadata` that `verify` reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ItemMetadata {
    /// Event id.
    pub event_id: String,
    /// Per-entity sequence.
    pub sequence: u64,
    /// When it was stored, RFC 3339.
    pub stored_at: String,
}

/// A query that failed after retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query for entity {entity}: {message}")]
pub struct QueryError {
    /// The entity being read.
    pub entity: String,
    /// What went wrong.
    pub message: String,
}

/// Where histories are read from.
pub trait HistorySource: Send + Sync {
    /// One page of an entity's history.
    fn page(
        &self,
        entity: &str,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page, QueryError>> + Send;
}

/// Reads a whole history, following `next_cursor`.
pub async fn read_history<H: HistorySource>(
    source: &H,
    entity: &str,
) -> Result<Vec<Item>, QueryError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = source.page(entity, cursor.as_deref()).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(c) if !c.is_empty() => {
                if cursor.as_deref() == Some(c.as_str()) {
                    return Err(QueryError {
                        entity: entity.to_string(),
                        message: "the API returned the same cursor twice".into(),
                    });
                }
                cursor = Some(c);
            }
            _ => return Ok(items),
        }
    }
}

/// What was sent, per entity, as `verify` needs it.
#[derive(Debug, Default)]
pub struct Expectations {
    id_prefix: String,
    /// Entity index → name.
    pub entities: Vec<(u32, String)>,
    by_entity: HashMap<u32, EntityExpect>,
    /// Counts over the whole manifest.
    pub totals: ManifestTotals,
}

/// Manifest-wide counts.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ManifestTotals {
    /// Valid records accepted by the API: each must be stored once.
    pub sent: u64,
    /// Duplicate re-sends.
    pub resent: u64,
    /// Invalid records accepted by the API: none may be stored.
    pub invalid_sent: u64,
    /// Records the API never accepted: may or may not be stored.
    pub unconfirmed: u64,
}

#[derive(Debug, Default)]
struct EntityExpect {
    /// n → (gen_seq, sent_at_us, confirmed).
    records: HashMap<u64, (u64, i64, bool)>,
    invalid: HashSet<u64>,
}

impl Expectations {
    /// Indexes a manifest.
    pub fn from_manifest(m: &Manifest) -> Self {
        let mut x = Expectations {
            id_prefix: m.id_prefix.clone(),
            ..Expectations::default()
        };
        for e in &m.entries {
            let ent = x.by_entity.entry(e.entity).or_default();
            if e.flags & FLAG_RESEND != 0 {
                x.totals.resent += 1;
            } else if e.flags & FLAG_INVALID != 0 {
                x.totals.invalid_sent += 1;
                ent.invalid.insert(e.n);
            } else if e.flags & FLAG_FAILED != 0 {
                x.totals.unconfirmed += 1;
                ent.records.insert(e.n, (e.gen_seq, e.sent_at_us, false));
            } else {
                x.totals.sent += 1;
                ent.records.insert(e.n, (e.gen_seq, e.sent_at_us, true));
            }
        }
        let mut entities: Vec<(u32, String)> = x
            .by_entity
            .keys()
            .filter_map(|k| m.entities.get(k).map(|name| (*k, name.clone())))
            .collect();
        entities.sort();
        x.entities = entities;
        x
    }

    /// Checks one entity's history.
    pub fn check_entity(&self, entity: u32, items: &[Item]) -> EntityReport {
        let mut r = EntityReport::default();
        let empty = EntityExpect::default();
        let exp = self.by_entity.get(&entity).unwrap_or(&empty);
        let mut sorted: Vec<&Item> = items.iter().collect();
        sorted.sort_by_key(|i| i.metadata.sequence);
        let mut seen: HashSet<u64> = HashSet::new();
        let mut highest_gen_seq = 0u64;
        for (pos, item) in sorted.iter().enumerate() {
            let m = &item.metadata;
            if m.sequence != pos as u64 + 1 {
                r.sequence_gaps += 1;
            }
            let n = m
                .event_id
                .strip_prefix(self.id_prefix.as_str())
                .and_then(|s| s.parse::<u64>().ok());
            let Some(n) = n else {
                r.unexpected += 1;
                continue;
            };
            if let Some(&(gen_seq, sent_at, _)) = exp.records.get(&n) {
                if !seen.insert(n) {
                    r.duplicated += 1;
                    r.samples.push(format!("duplicated {}", m.event_id));
                    continue;
                }
                r.stored += 1;
                if gen_seq < highest_gen_seq {
                    r.out_of_order += 1;
                    r.samples.push(format!(
                        "out of order {} (gen_seq {gen_seq} at sequence {} after gen_seq {highest_gen_seq})",
                        m.event_id, m.sequence
                    ));
                }
                highest_gen_seq = highest_gen_seq.max(gen_seq);
                if item.data.get("gen_seq").and_then(Value::as_u64) != Some(gen_seq) {
                    r.payload_mismatch += 1;
                    r.samples.push(format!("payload mismatch {}", m.event_id));
                }
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&m.stored_at) {
                    r.latencies_us
                        .push(t.timestamp_micros().saturating_sub(sent_at).max(0) as u64);
                }
            } else if exp.invalid.contains(&n) {
                r.invalid_stored += 1;
                r.samples
                    .push(format!("invalid record stored {}", m.event_id));
            } else {
                r.unexpected += 1;
            }
        }
        let mut missing: Vec<u64> = exp
            .records
            .iter()
            .filter(|(n, (_, _, confirmed))| *confirmed && !seen.contains(n))
            .map(|(n, _)| *n)
            .collect();
        missing.sort_unstable();
        r.missing = missing.len() as u64;
        r.samples.extend(
            missing
                .iter()
                .take(5)
                .map(|n| format!("missing {}{n}", self.id_prefix)),
        );
        r
    }
}

/// The findings for one entity.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EntityReport {
    /// Distinct expected ids found.
    pub stored: u64,
    /// Confirmed ids not found.
    pub missing: u64,
    /// Extra copies of an id.
    pub duplicated: u64,
    /// Records behind a higher generator sequence.
    pub out_of_order: u64,
    /// Positions where `sequence` is not the previous plus one.
    pub sequence_gaps: u64,
    /// Invalid records that were stored.
    pub invalid_stored: u64,
    /// `data.gen_seq` differs from the manifest.
    pub payload_mismatch: u64,
    /// Events not from this run.
    pub unexpected: u64,
    /// Send-to-stored latencies.
    pub latencies_us: Vec<u64>,
    /// A few examples of problems, for the report.
    pub samples: Vec<String>,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct VerifySummary {
    /// Entities read.
    pub entities: u64,
    /// Valid records the API accepted.
    pub sent: u64,
    /// Distinct ones found stored.
    pub stored: u64,
    /// Accepted but not stored.
    pub missing: u64,
    /// Stored more than once.
    pub duplicated: u64,
    /// Stored out of per-entity order.
    pub out_of_order: u64,
    /// Gaps or repeats in `sequence`.
    pub sequence_gaps: u64,
    /// Payloads that changed.
    pub payload_mismatch: u64,
    /// Duplicate re-sends made by `send`.
    pub resent: u64,
    /// Invalid records accepted by the API.
    pub invalid_sent: u64,
    /// Invalid records stored (must be 0).
    pub invalid_stored: u64,
    /// Records `send` could not confirm (not counted as missing).
    pub unconfirmed: u64,
    /// Events in these histories that are not from this run.
    pub unexpected: u64,
    /// Send to `stored_at`.
    pub latency: Percentiles,
    /// A few examples of problems.
    pub samples: Vec<String>,
}

impl VerifySummary {
    /// True when nothing is missing, duplicated, out of order or otherwise wrong.
    pub fn ok(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.sequence_gaps == 0
            && self.invalid_stored == 0
            && self.payload_mismatch == 0
    }

    /// 0 when [`Self::ok`], 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.ok())
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        format!(
            "verify {}: sent={} stored={} missing={} duplicated={} out_of_order={} sequence_gaps={} invalid_sent={} invalid_stored={} payload_mismatch={} entities={} latency_p50={:.1}ms latency_p99={:.1}ms latency_max={:.1}ms",
            if self.ok() { "OK" } else { "FAILED" },
            self.sent,
            self.stored,
            self.missing,
            self.duplicated,
            self.out_of_order,
            self.sequence_gaps,
            self.invalid_sent,
            self.invalid_stored,
            self.payload_mismatch,
            self.entities,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
        )
    }
}

/// Reads every entity of the manifest through `source`, `concurrency` at a time.
pub async fn verify<H: HistorySource + 'static>(
    manifest: &Manifest,
    source: Arc<H>,
    concurrency: usize,
) -> Result<VerifySummary, QueryError> {
    let expect = Arc::new(Expectations::from_manifest(manifest));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (expect, next, source) = (expect.clone(), next.clone(), source.clone());
        tasks.spawn(async move {
            let mut reports = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((k, name)) = expect.entities.get(i) else {
                    return Ok(reports);
                };
                let items = read_history(source.as_ref(), name).await?;
                reports.push(expect.check_entity(*k, &items));
            }
        });
    }
    let mut s = VerifySummary {
        entities: expect.entities.len() as u64,
        sent: expect.totals.sent,
        resent: expect.totals.resent,
        invalid_sent: expect.totals.invalid_sent,
        unconfirmed: expect.totals.unconfirmed,
        ..VerifySummary::default()
    };
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let reports = joined.map_err(|e| QueryError {
            entity: String::new(),
            message: format!("reader task failed: {e}"),
        })??;
        for r in reports {
            s.stored += r.stored;
            s.missing += r.missing;
            s.duplicated += r.duplicated;
            s.out_of_order += r.out_of_order;
            s.sequence_gaps += r.sequence_gaps;
            s.invalid_stored += r.invalid_stored;
            s.payload_mismatch += r.payload_mismatch;
            s.unexpected += r.unexpected;
            latencies.extend(r.latencies_us);
            if s.samples.len() < 20 {
                s.samples
                    .extend(r.samples.into_iter().take(20 - s.samples.len()));
            }
        }
    }
    s.latency = Percentiles::of_micros(&mut latencies);
    Ok(s)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// SigV4 signing for API Gateway (`execute-api`), with the default credential chain.
#[derive(Debug)]
pub struct SigV4 {
    provider: aws_credential_types::provider::SharedCredentialsProvider,
    region: String,
    cached: tokio::sync::Mutex<Option<aws_credential_types::Credentials>>,
}

impl SigV4 {
    /// A signer from an SDK configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> Result<Self, String> {
        let provider = config
            .credentials_provider()
            .ok_or("--aws: no AWS credentials provider is configured")?;
        let region = config
            .region()
            .ok_or("--aws: no AWS region is configured (set AWS_REGION or --region)")?
            .to_string();
        Ok(Self {
            provider,
            region,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    async fn credentials(&self) -> Result<aws_credential_types::Credentials, String> {
        use aws_credential_types::provider::ProvideCredentials;
        let mut cached = self.cached.lock().await;
        let fresh = cached.as_ref().is_some_and(|c| {
            c.expiry()
                .is_none_or(|t| t > std::time::SystemTime::now() + Duration::from_secs(60))
        });
        if !fresh {
            let c = self
                .provider
                .provide_credentials()
                .await
                .map_err(|e| format!("--aws: cannot load AWS credentials: {e}"))?;
            *cached = Some(c);
        }
        cached
            .clone()
            .ok_or_else(|| "--aws: no credentials".to_string())
    }

    /// The headers that sign a GET of `url`.
    pub async fn headers(&self, url: &str) -> Result<Vec<(String, String)>, String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = self.credentials().await?.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("sigv4: {e}"))?
            .into();
        let request =
            SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
                .map_err(|e| format!("sigv4: {e}"))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| format!("sigv4: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}

/// The query API over HTTP: `tideline up`, or API Gateway with SigV4.
#[derive(Debug)]
pub struct HttpSource {
    client: reqwest::Client,
    base: String,
    signer: Option<SigV4>,
    limit: usize,
    max_attempts: u32,
}

impl HttpSource {
    /// A source for the API at `base` (e.g. `http://127.0.0.1:4566`).
    pub fn new(base: &str, signer: Option<SigV4>) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_string(),
            signer,
            limit: PAGE_LIMIT,
            max_attempts: 6,
        }
    }
}

impl HistorySource for HttpSource {
    fn page(
        &self,
        entity: &str,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<Page, QueryError>> + Send {
        let mut url = format!(
            "{}/entities/{}/events?limit={}",
            self.base,
            encode_component(entity),
            self.limit
        );
        if let Some(c) = cursor {
            url.push_str("&cursor=");
            url.push_str(&encode_component(c));
        }
        let fail = move |message: String| QueryError {
            entity: entity.to_string(),
            message,
        };
        async move {
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let mut req = self.client.get(&url);
                if let Some(signer) = &self.signer {
                    for (k, v) in signer.headers(&url).await.map_err(fail)? {
                        req = req.header(k, v);
                    }
                }
                let last = match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        if status.is_success() {
                            return resp
                                .json::<Page>()
                                .await
                                .map_err(|e| fail(format!("GET {url}: bad body: {e}")));
                        }
                        let body = resp.text().await.unwrap_or_default();
                        if status.as_u16() == 404 {
                            // No events for this entity: everything expected is missing.
                            return Ok(Page::default());
                        }
                        let msg = format!("GET {url}: HTTP {status}: {body}");
                        if !(status.is_server_error() || status.as_u16() == 429) {
                            return Err(fail(msg));
                        }
                        msg
                    }
                    Err(e) => format!("GET {url}: {e}"),
                };
                if attempt >= self.max_attempts {
                    return Err(fail(format!("{last} (after {attempt} attempts)")));
                }
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{FLAG_TEST, ManifestEntry, ManifestWriter};
    use serde_json::json;

    fn manifest(entries: &[(u64, u32, u64, u8)]) -> Manifest {
        let mut w = ManifestWriter::new(Vec::new(), 3, 1_000_000, "gen-3-").unwrap();
        for &(n, entity, gen_seq, flags) in entries {
            let e = ManifestEntry {
                n,
                entity,
                gen_seq,
                sent_at_us: 1_767_225_600_000_000 + n as i64,
                flags,
            };
            w.append(&e, &format!("e{entity}")).unwrap();
        }
        Manifest::read(w.finish().unwrap().as_slice()).unwrap()
    }

    fn item(id: &str, seq: u64, gen_seq: u64) -> Item {
        serde_json::from_value(json!({
            "metadata": {"event_id": id, "sequence": seq, "stored_at": "2026-01-01T00:00:00.250000Z",
                          "event_type": "T", "schema_version": 1, "entity_id": "e0",
                          "occurred_at": "2026-01-01T00:00:00Z", "correlation_id": null,
                          "test": false, "replay": false},
            "data": {"gen_seq": gen_seq}
        }))
        .unwrap()
    }

    #[test]
    fn a_clean_history_passes() {
        let m = manifest(&[
            (0, 0, 1, 0),
            (1, 0, 2, FLAG_TEST),
            (2, 0, 3, 0),
            (1, 0, 2, FLAG_RESEND),
        ]);
        let x = Expectations::from_manifest(&m);
        assert_eq!(x.totals.sent, 3);
        assert_eq!(x.totals.resent, 1);
        let r = x.check_entity(
            0,
            &[
                item("gen-3-0", 1, 1),
                item("gen-3-1", 2, 2),
                item("gen-3-2", 3, 3),
            ],
        );
        assert_eq!(r.stored, 3);
        assert_eq!(
            (r.missing, r.duplicated, r.out_of_order, r.sequence_gaps),
            (0, 0, 0, 0)
        );
        assert_eq!(r.latencies_us.len(), 3);
        assert!(
            r.latencies_us
                .iter()
                .all(|&l| (249_990..=250_000).contains(&l))
        );
    }

    #[test]
    fn each_problem_is_counted() {
        let m = manifest(&[
            (0, 0, 1, 0),
            (1, 0, 2, 0),
            (2, 0, 3, 0),
            (3, 0, 4, 0),
            (4, 0, 0, FLAG_INVALID),
            (5, 0, 5, FLAG_FAILED),
        ]);
        let x = Expectations::from_manifest(&m);
        let r = x.check_entity(
            0,
            &[
                item("gen-3-0", 1, 1),
                item("gen-3-2", 2, 3),
                item("gen-3-1", 3, 2),      // out of order
                item("gen-3-1", 4, 2),      // duplicated
                item("gen-3-4", 5, 0),      // invalid stored
                item("someone-else", 7, 0), // gap (6 is absent), unexpected
            ],
        );
        assert_eq!(r.stored, 3);
        assert_eq!(r.missing, 1, "gen-3-3; gen-3-5 was unconfirmed");
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.out_of_order, 1);
        assert_eq!(r.invalid_stored, 1);
        assert_eq!(r.unexpected, 1);
        assert_eq!(r.sequence_gaps, 1);
        assert!(r.samples.iter().any(|s| s == "missing gen-3-3"));
    }

    struct Paged(Vec<Item>);

    impl HistorySource for Paged {
        fn page(
            &self,
            _entity: &str,
            cursor: Option<&str>,
        ) -> impl Future<Output = Result<Page, QueryError>> + Send {
            let from: usize = cursor.map_or(0, |c| c.parse().unwrap());
            let to = (from + 2).min(self.0.len());
            std::future::ready(Ok(Page {
                items: self.0[from..to].to_vec(),
                next_cursor: (to < self.0.len()).then(|| to.to_string()),
            }))
        }
    }

    #[test]
    fn histories_are_read_across_pages() {
        let m = manifest(&(0..7).map(|n| (n, 0, n + 1, 0)).collect::<Vec<_>>());
        let items = (0..7)
            .map(|n| item(&format!("gen-3-{n}"), n + 1, n + 1))
            .collect();
        let s = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(verify(&m, Arc::new(Paged(items)), 4))
            .unwrap();
        assert_eq!((s.sent, s.stored, s.missing), (7, 7, 0));
        assert!(s.ok());
        assert!(s.line().starts_with("verify OK: sent=7 stored=7 missing=0"));
    }

    #[test]
    fn entity_ids_are_percent_encoded() {
        assert_eq!(encode_component("order-1f-000001"), "order-1f-000001");
        assert_eq!(encode_component("a/b c#?&%"), "a%2Fb%20c%23%3F%26%25");
    }
}
