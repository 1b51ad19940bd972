//! Record shapes and the deterministic record generator.
//!
//! Each profile is modelled on a real domain (order lifecycles, card
//! transactions, device telemetry, service logs), with nested objects, money
//! as exact decimals and non-ASCII text, because those are what break
//! pipelines. Records are written straight into a byte buffer rather than
//! built as `serde_json::Value`s: the generator must outrun the pipeline it
//! loads, and the benchmark holds it to that against `serde_json`.
//!
//! Identity: record `n` of a run has id `gen-<seed>-<n>` and, inside `data`,
//! `gen_seq`: its entity's own counter 1, 2, 3, … in generation order. The
//! verifier checks stored order against `gen_seq`.

use crate::rng::Rng;
use chrono::{DateTime, Utc};
use std::io::Write;

/// A record shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// E-commerce orders moving through their lifecycle.
    Orders,
    /// Card authorisations, captures and refunds.
    Transactions,
    /// Device telemetry: readings, heartbeats, alerts.
    Sensor,
    /// Structured service logs.
    Logs,
    /// Concurrent writers appending at expected versions through the command
    /// API at `--endpoint-url`, retrying on conflict (`crate::command`);
    /// `--target` does not apply. Where a record is asked of it, it makes the
    /// orders profile's.
    Command,
}

impl Profile {
    /// All record profiles, for tests and benchmarks (`Command` sends
    /// through the command API, not records).
    pub const ALL: [Profile; 4] = [
        Profile::Orders,
        Profile::Transactions,
        Profile::Sensor,
        Profile::Logs,
    ];

    fn entity_prefix(self) -> &'static str {
        match self {
            Profile::Orders | Profile::Command => "order",
            Profile::Transactions => "card",
            Profile::Sensor => "device",
            Profile::Logs => "svc",
        }
    }
}

/// How records are spread over entities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Every entity equally likely.
    Uniform,
    /// Entity of rank `r` (1-based) has weight `1 / r^exponent`: a few hot entities.
    Zipf {
        /// The skew; 1.0 is the classic Zipf law.
        exponent: f64,
    },
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Seed: the same seed gives the same records.
    pub seed: u64,
    /// Record shape.
    pub profile: Profile,
    /// Number of entities.
    pub entities: u32,
    /// Spread over entities.
    pub distribution: Distribution,
    /// Pad each record to at least this many bytes (0: natural size).
    pub payload_bytes: usize,
    /// Mark events as test events.
    pub test_events: bool,
    /// Percentage of records to re-send later, as a producer retry would.
    pub duplicates_pct: f64,
    /// Percentage of records that are malformed on purpose.
    pub invalid_pct: f64,
    /// `occurred_at` of record 0; later records are 1 ms apart, so content is seed-determined.
    pub epoch: DateTime<Utc>,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            profile: Profile::Orders,
            entities: 1000,
            distribution: Distribution::Uniform,
            payload_bytes: 0,
            test_events: false,
            duplicates_pct: 0.0,
            invalid_pct: 0.0,
            epoch: DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
        }
    }
}

/// How a deliberately invalid record breaks the ingest contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// Truncated JSON.
    NotJson,
    /// No `type`.
    MissingType,
    /// `occurred_at` that is not RFC 3339.
    BadOccurredAt,
    /// `test` that is not a boolean.
    TestNotBool,
}

/// One generated record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Run-wide record number; the id is `gen-<seed>-<n>`.
    pub n: u64,
    /// Entity index (`0..entities`).
    pub entity: u32,
    /// The entity's generator sequence, from 1; 0 for invalid records.
    pub gen_seq: u64,
    /// Set when the record breaks the contract on purpose.
    pub invalid: Option<InvalidKind>,
    /// Whether a copy will be re-sent later (`--duplicates`).
    pub duplicate: bool,
    /// The exact bytes to send (no trailing newline).
    pub bytes: Vec<u8>,
}

/// Picks entities under a [`Distribution`].
#[derive(Debug, Clone)]
pub struct EntityPicker {
    entities: u32,
    /// Cumulative weights for Zipf; empty for uniform.
    cdf: Vec<f64>,
}

impl EntityPicker {
    /// A picker over `entities` (at least 1).
    pub fn new(entities: u32, distribution: Distribution) -> Self {
        let entities = entities.max(1);
        let cdf = match distribution {
            Distribution::Uniform => Vec::new(),
            Distribution::Zipf { exponent } => {
                let mut acc = 0.0;
                let mut cdf: Vec<f64> = (1..=entities)
                    .map(|r| {
                        acc += 1.0 / f64::from(r).powf(exponent);
                        acc
                    })
                    .collect();
                for c in &mut cdf {
                    *c /= acc;
                }
                cdf
            }
        };
        Self { entities, cdf }
    }

    /// Draws an entity index.
    pub fn pick(&self, rng: &mut Rng) -> u32 {
        if self.cdf.is_empty() {
            return rng.below(u64::from(self.entities)) as u32;
        }
        let u = rng.unit();
        let i = self.cdf.partition_point(|&c| c <= u);
        (i as u32).min(self.entities - 1)
    }
}

/// The id of record `n` of a run with `seed`.
pub fn record_id(seed: u64, n: u64) -> String {
    format!("{}{n}", id_prefix(seed))
}

/// The part of every id before the record number.
pub fn id_prefix(seed: u64) -> String {
    format!("gen-{seed}-")
}

/// The name of entity `k`; the seed is in it so runs with other seeds do not share histories.
pub fn entity_name(profile: Profile, seed: u64, k: u32) -> String {
    format!("{}-{seed:x}-{k:06}", profile.entity_prefix())
}

/// The deterministic record generator.
#[derive(Debug, Clone)]
pub struct Generator {
    cfg: GenConfig,
    rng: Rng,
    picker: EntityPicker,
    names: Vec<String>,
    gen_seqs: Vec<u64>,
    next_n: u64,
    epoch_ms: i64,
    /// Cached "YYYY-MM-DDTHH:MM:SS." for the current second.
    second_prefix: (i64, String),
    id_prefix: String,
}

impl Generator {
    /// A generator for `cfg`.
    pub fn new(cfg: GenConfig) -> Self {
        let entities = cfg.entities.max(1);
        let names = (0..entities)
            .map(|k| entity_name(cfg.profile, cfg.seed, k))
            .collect();
        Self {
            rng: Rng::new(cfg.seed),
            picker: EntityPicker::new(entities, cfg.distribution),
            names,
            gen_seqs: vec![0; entities as usize],
            next_n: 0,
            epoch_ms: cfg.epoch.timestamp_millis(),
            second_prefix: (i64::MIN, String::new()),
            id_prefix: id_prefix(cfg.seed),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// Entity names, by index.
    pub fn entity_names(&self) -> &[String] {
        &self.names
    }

    /// The next record.
    pub fn next_record(&mut self) -> Record {
        let n = self.next_n;
        self.next_n += 1;
        let entity = self.picker.pick(&mut self.rng);
        let invalid = if self.rng.chance(self.cfg.invalid_pct) {
            Some(match self.rng.below(4) {
                0 => InvalidKind::NotJson,
                1 => InvalidKind::MissingType,
                2 => InvalidKind::BadOccurredAt,
                _ => InvalidKind::TestNotBool,
            })
        } else {
            None
        };
        let gen_seq = if invalid.is_none() {
            let s = &mut self.gen_seqs[entity as usize];
            *s += 1;
            *s
        } else {
            0
        };
        let duplicate = invalid.is_none() && self.rng.chance(self.cfg.duplicates_pct);
        let mut bytes = Vec::with_capacity(self.cfg.payload_bytes.max(384));
        self.write_record(&mut bytes, n, entity, gen_seq, invalid);
        Record {
            n,
            entity,
            gen_seq,
            invalid,
            duplicate,
            bytes,
        }
    }

    fn write_timestamp(&mut self, out: &mut Vec<u8>, n: u64) {
        let ms = self.epoch_ms + n as i64 + self.rng.below(3) as i64;
        let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        if self.second_prefix.0 != secs {
            let t = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
            self.second_prefix = (secs, t.format("%Y-%m-%dT%H:%M:%S.").to_string());
        }
        out.extend_from_slice(self.second_prefix.1.as_bytes());
        push_padded(out, millis as u64, 3);
        out.push(b'Z');
    }

    fn write_record(
        &mut self,
        out: &mut Vec<u8>,
        n: u64,
        entity: u32,
        gen_seq: u64,
        invalid: Option<InvalidKind>,
    ) {
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(self.id_prefix.as_bytes());
        push_u64(out, n);
        out.extend_from_slice(b"\",\"entity_id\":\"");
        out.extend_from_slice(self.names[entity as usize].as_bytes());
        out.push(b'"');
        let event_type = self.event_type(gen_seq);
        if invalid != Some(InvalidKind::MissingType) {
            out.extend_from_slice(b",\"type\":\"");
            out.extend_from_slice(event_type.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"occurred_at\":\"");
        if invalid == Some(InvalidKind::BadOccurredAt) {
            out.extend_from_slice("gestern, 14 Uhr".as_bytes());
        } else {
            self.write_timestamp(out, n);
        }
        out.push(b'"');
        if self.cfg.profile == Profile::Orders {
            out.extend_from_slice(b",\"correlation_id\":\"checkout-");
            out.extend_from_slice(self.names[entity as usize].as_bytes());
            out.push(b'"');
        }
        match (invalid, self.cfg.test_events) {
            (Some(InvalidKind::TestNotBool), _) => out.extend_from_slice(b",\"test\":\"yes\""),
            (_, true) => out.extend_from_slice(b",\"test\":true"),
            _ => {}
        }
        out.extend_from_slice(b",\"data\":{\"gen_seq\":");
        push_u64(out, gen_seq);
        match self.cfg.profile {
            Profile::Orders | Profile::Command => self.orders(out, n, event_type),
            Profile::Transactions => self.transactions(out, event_type),
            Profile::Sensor => self.sensor(out, event_type),
            Profile::Logs => self.logs(out),
        }
        // Pad inside `data` so the record as a whole reaches the asked size.
        let target = self.cfg.payload_bytes;
        const PAD_OVERHEAD: usize = ",\"pad\":\"\"}}".len();
        if out.len() + PAD_OVERHEAD < target {
            let pad = target - out.len() - PAD_OVERHEAD;
            let start = self.rng.below(26) as usize;
            out.extend_from_slice(b",\"pad\":\"");
            out.extend(PAD_ALPHABET.iter().cycle().skip(start).take(pad));
            out.push(b'"');
        }
        out.extend_from_slice(b"}}");
        if invalid == Some(InvalidKind::NotJson) {
            // Cut inside `data`: a producer that lost the end of its buffer.
            let cut = out.len() - 2 - self.rng.below(4) as usize;
            out.truncate(cut);
            while std::str::from_utf8(out).is_err() {
                out.pop();
            }
        }
    }

    fn event_type(&mut self, gen_seq: u64) -> &'static str {
        match self.cfg.profile {
            Profile::Orders | Profile::Command => {
                // An order walks its lifecycle; a rare cancellation interrupts it.
                const LIFECYCLE: [&str; 5] = [
                    "OrderPlaced",
                    "OrderPaid",
                    "OrderPacked",
                    "OrderShipped",
                    "OrderDelivered",
                ];
                if gen_seq > 1 && self.rng.below(50) == 0 {
                    "OrderCancelled"
                } else {
                    LIFECYCLE[(gen_seq.saturating_sub(1) % 5) as usize]
                }
            }
            Profile::Transactions => match self.rng.below(20) {
                0 => "CardDeclined",
                1 => "CardRefunded",
                2..=9 => "CardCaptured",
                _ => "CardAuthorized",
            },
            Profile::Sensor => match self.rng.below(100) {
                0 => "DeviceAlertRaised",
                1..=9 => "DeviceHeartbeat",
                _ => "DeviceReadingRecorded",
            },
            Profile::Logs => "LogEmitted",
        }
    }

    fn orders(&mut self, out: &mut Vec<u8>, n: u64, event_type: &str) {
        let rng = &mut self.rng;
        out.extend_from_slice(b",\"order_no\":\"SO-");
        push_padded(out, 100_000 + n % 900_000, 6);
        let (name, city, country) = *rng.pick(CUSTOMERS);
        out.extend_from_slice(b"\",\"customer\":{\"name\":");
        push_str(out, name);
        out.extend_from_slice(b",\"email\":\"customer");
        push_u64(out, rng.below(100_000));
        out.extend_from_slice(b"@example.com\",\"city\":");
        push_str(out, city);
        out.extend_from_slice(b",\"country\":\"");
        out.extend_from_slice(country.as_bytes());
        out.extend_from_slice(b"\"},\"currency\":\"");
        out.extend_from_slice(rng.pick(&["EUR", "USD", "GBP", "JPY", "SEK"]).as_bytes());
        out.extend_from_slice(b"\",\"items\":[");
        let lines = 1 + rng.below(4);
        let mut total = 0u64;
        for i in 0..lines {
            if i > 0 {
                out.push(b',');
            }
            let (sku, product, price) = *rng.pick(PRODUCTS);
            let qty = 1 + rng.below(3);
            total += qty * price;
            out.extend_from_slice(b"{\"sku\":\"");
            out.extend_from_slice(sku.as_bytes());
            out.extend_from_slice(b"\",\"name\":");
            push_str(out, product);
            out.extend_from_slice(b",\"qty\":");
            push_u64(out, qty);
            out.extend_from_slice(b",\"unit_price\":");
            push_cents(out, price);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"total\":");
        push_cents(out, total);
        if event_type == "OrderShipped" {
            out.extend_from_slice(b",\"carrier\":");
            let carrier: &&str =
                rng.pick(&["DHL Paket", "PostNord", "ヤマト運輸", "La Poste Colissimo"]);
            push_str(out, carrier);
            out.extend_from_slice(b",\"tracking\":\"TRK");
            push_padded(out, rng.below(1_000_000_000), 9);
            out.push(b'"');
        }
    }

    fn transactions(&mut self, out: &mut Vec<u8>, event_type: &str) {
        let rng = &mut self.rng;
        let (merchant, mcc, city, country) = *rng.pick(MERCHANTS);
        out.extend_from_slice(b",\"amount\":");
        let amount = 50 + rng.below(25_000);
        push_cents(out, amount);
        out.extend_from_slice(b",\"currency\":\"");
        out.extend_from_slice(rng.pick(&["EUR", "USD", "GBP", "JPY", "CHF"]).as_bytes());
        out.extend_from_slice(b"\",\"merchant\":{\"name\":");
        push_str(out, merchant);
        out.extend_from_slice(b",\"mcc\":\"");
        out.extend_from_slice(mcc.as_bytes());
        out.extend_from_slice(b"\",\"city\":");
        push_str(out, city);
        out.extend_from_slice(b",\"country\":\"");
        out.extend_from_slice(country.as_bytes());
        out.extend_from_slice(b"\"},\"card\":{\"brand\":\"");
        out.extend_from_slice(rng.pick(&["visa", "mastercard", "amex", "jcb"]).as_bytes());
        out.extend_from_slice(b"\",\"last4\":\"");
        push_padded(out, rng.below(10_000), 4);
        out.extend_from_slice(b"\"},\"channel\":\"");
        out.extend_from_slice(
            rng.pick(&["pos", "ecommerce", "contactless", "atm"])
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"auth_code\":\"");
        push_padded(out, rng.below(1_000_000), 6);
        out.push(b'"');
        if event_type == "CardDeclined" {
            out.extend_from_slice(b",\"decline_reason\":\"");
            out.extend_from_slice(
                rng.pick(&["insufficient_funds", "suspected_fraud", "expired_card"])
                    .as_bytes(),
            );
            out.push(b'"');
        }
    }

    fn sensor(&mut self, out: &mut Vec<u8>, event_type: &str) {
        let rng = &mut self.rng;
        let (site, lat, lon) = *rng.pick(SITES);
        out.extend_from_slice(b",\"device_type\":\"");
        out.extend_from_slice(
            rng.pick(&["thermo-hygro-v2", "air-quality-v1", "cold-chain-v3"])
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"firmware\":\"4.");
        push_u64(out, rng.below(12));
        out.push(b'.');
        push_u64(out, rng.below(30));
        out.extend_from_slice(b"\",\"site\":");
        push_str(out, site);
        out.extend_from_slice(b",\"location\":{\"lat\":");
        push_milli(out, lat * 1000 + rng.below(1000) as i64);
        out.extend_from_slice(b",\"lon\":");
        push_milli(out, lon * 1000 + rng.below(1000) as i64);
        out.push(b'}');
        if event_type != "DeviceHeartbeat" {
            out.extend_from_slice(b",\"readings\":{\"temperature_c\":");
            push_milli(out, -5_000 + rng.below(40_000) as i64);
            out.extend_from_slice(b",\"humidity_pct\":");
            push_milli(out, 20_000 + rng.below(70_000) as i64);
            out.extend_from_slice(b",\"co2_ppm\":");
            push_u64(out, 380 + rng.below(1500));
            out.push(b'}');
        }
        out.extend_from_slice(b",\"battery_pct\":");
        push_u64(out, rng.below(101));
        if event_type == "DeviceAlertRaised" {
            out.extend_from_slice(b",\"alert\":");
            let alert: &&str = rng.pick(ALERTS);
            push_str(out, alert);
        }
    }

    fn logs(&mut self, out: &mut Vec<u8>) {
        let rng = &mut self.rng;
        let (level, message) = *rng.pick(LOG_LINES);
        out.extend_from_slice(b",\"level\":\"");
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(b"\",\"service\":\"");
        out.extend_from_slice(
            rng.pick(&["checkout", "payments", "catalog", "search", "auth"])
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"host\":\"ip-10-0-");
        push_u64(out, rng.below(256));
        out.push(b'-');
        push_u64(out, rng.below(256));
        out.extend_from_slice(b"\",\"message\":");
        push_str(out, message);
        out.extend_from_slice(b",\"trace_id\":\"");
        push_hex(out, rng.next_u64());
        push_hex(out, rng.next_u64());
        out.extend_from_slice(b"\",\"http\":{\"method\":\"");
        out.extend_from_slice(
            rng.pick(&["GET", "GET", "GET", "POST", "PUT", "DELETE"])
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"path\":\"");
        out.extend_from_slice(
            rng.pick(&[
                "/api/v1/cart",
                "/api/v1/orders",
                "/api/v1/search",
                "/health",
            ])
            .as_bytes(),
        );
        out.extend_from_slice(b"\",\"status\":");
        push_u64(
            out,
            *rng.pick(&[200, 200, 200, 201, 204, 301, 400, 404, 500, 503]),
        );
        out.extend_from_slice(b",\"duration_ms\":");
        push_milli(out, rng.below(2_000_000) as i64);
        out.push(b'}');
    }
}

const PAD_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

const CUSTOMERS: &[(&str, &str, &str)] = &[
    ("Zoë Ålund", "Göteborg", "SE"),
    ("José Martínez", "Sevilla", "ES"),
    ("Łukasz Wróbel", "Kraków", "PL"),
    ("山田 太郎", "東京", "JP"),
    ("Dmitrij Šostakovič", "Ljubljana", "SI"),
    ("Anaïs Lefèvre", "Besançon", "FR"),
    ("Müller-Lüdenscheidt", "München", "DE"),
    ("Siobhán O'Connor", "Dún Laoghaire", "IE"),
    ("Νίκος Παπαδόπουλος", "Θεσσαλονίκη", "GR"),
    ("Jane \"JJ\" Doe", "New York", "US"),
];

const PRODUCTS: &[(&str, &str, u64)] = &[
    ("SKU-1001", "Crème brûlée torch", 2_499),
    ("SKU-1002", "Wool socks «Nordlys»", 1_290),
    ("SKU-1003", "抹茶 Matcha 100g", 1_850),
    ("SKU-1004", "Espresso cup ☕ set of 4", 3_400),
    ("SKU-1005", "USB-C cable 2 m", 999),
    ("SKU-1006", "Smørrebrød cookbook", 2_750),
    ("SKU-1007", "Trail shoes \"Fjäll\" 42½", 12_900),
];

const MERCHANTS: &[(&str, &str, &str, &str)] = &[
    ("Café Müller", "5814", "Düsseldorf", "DE"),
    ("東京ラーメン 本店", "5812", "東京", "JP"),
    ("Boulangerie Lévêque", "5462", "Lyon", "FR"),
    ("Åhléns City", "5311", "Stockholm", "SE"),
    ("Shell Station #4471", "5541", "Houston", "US"),
    ("Librería Alcalá", "5942", "Madrid", "ES"),
    ("Żabka", "5411", "Gdańsk", "PL"),
];

const SITES: &[(&str, i64, i64)] = &[
    ("Zürich Nord, Halle 3", 47, 8),
    ("Warehouse Łódź-2", 51, 19),
    ("São Paulo CD Leste", -23, -46),
    ("大阪 冷蔵倉庫 B", 34, 135),
    ("Reykjavík harbour", 64, -21),
];

const ALERTS: &[&str] = &[
    "Temperatur über Grenzwert (8 °C)",
    "Door open > 5 min",
    "Batterie faible — remplacer",
    "温度異常を検知しました",
];

const LOG_LINES: &[(&str, &str)] = &[
    ("INFO", "request completed"),
    ("INFO", "cache miss for key «catalog:v2:de-DE»"),
    ("WARN", "slow query: 1.8 s on orders_by_customer"),
    ("ERROR", "upstream 503 from payments — retrying"),
    ("INFO", "user logged in: ünïcödé ✓"),
    ("DEBUG", "tab\tand \"quotes\" and back\\slash"),
    ("WARN", "レート制限に近づいています"),
];

fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut v = v;
    let mut i = buf.len();
    while v > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = i.min(buf.len() - width.min(20));
    out.extend_from_slice(&buf[start..]);
}

/// Money as an exact decimal with two places: floats would be wrong.
fn push_cents(out: &mut Vec<u8>, cents: u64) {
    push_u64(out, cents / 100);
    out.push(b'.');
    push_padded(out, cents % 100, 2);
}

/// A signed fixed-point number with three decimals.
fn push_milli(out: &mut Vec<u8>, milli: i64) {
    if milli < 0 {
        out.push(b'-');
    }
    let m = milli.unsigned_abs();
    push_u64(out, m / 1000);
    out.push(b'.');
    push_padded(out, m % 1000, 3);
}

fn push_hex(out: &mut Vec<u8>, v: u64) {
    let _ = write!(out, "{v:016x}");
}

/// A JSON string literal; non-ASCII is written as UTF-8, as producers do.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::Value;
    use tideline_core::ingest::{IngestConfig, normalize_record};

    fn cfg(profile: Profile) -> GenConfig {
        GenConfig {
            seed: 42,
            profile,
            entities: 50,
            ..GenConfig::default()
        }
    }

    #[test]
    fn every_profile_passes_the_ingest_contract() {
        for profile in Profile::ALL {
            let mut g = Generator::new(GenConfig {
                test_events: true,
                ..cfg(profile)
            });
            let mut non_ascii = false;
            for _ in 0..500 {
                let r = g.next_record();
                let n = normalize_record(&IngestConfig::default(), &r.bytes, Utc::now())
                    .unwrap_or_else(|e| {
                        panic!("{profile:?}: {e}: {}", String::from_utf8_lossy(&r.bytes))
                    });
                assert_eq!(n.id.as_str(), record_id(42, r.n));
                assert_eq!(n.entity_id.as_str(), g.entity_names()[r.entity as usize]);
                assert_eq!(n.data["gen_seq"], Value::from(r.gen_seq));
                assert!(n.test);
                non_ascii |= !r.bytes.is_ascii();
            }
            assert!(non_ascii, "{profile:?} never produced non-ASCII text");
        }
    }

    #[test]
    fn invalid_records_are_rejected_by_the_contract() {
        let mut g = Generator::new(GenConfig {
            invalid_pct: 100.0,
            ..cfg(Profile::Sensor)
        });
        let mut kinds = std::collections::HashSet::new();
        for _ in 0..200 {
            let r = g.next_record();
            let kind = r.invalid.unwrap();
            kinds.insert(format!("{kind:?}"));
            assert_eq!(r.gen_seq, 0);
            assert!(!r.duplicate);
            assert!(
                normalize_record(&IngestConfig::default(), &r.bytes, Utc::now()).is_err(),
                "{kind:?} was accepted: {}",
                String::from_utf8_lossy(&r.bytes)
            );
        }
        assert_eq!(kinds.len(), 4);
    }

    #[test]
    fn same_seed_same_records_other_seed_other_records() {
        for profile in Profile::ALL {
            let run = |seed| {
                let mut g = Generator::new(GenConfig {
                    seed,
                    duplicates_pct: 10.0,
                    invalid_pct: 5.0,
                    ..cfg(profile)
                });
                (0..300).map(|_| g.next_record()).collect::<Vec<_>>()
            };
            assert_eq!(run(7), run(7));
            assert_ne!(run(7)[0].bytes, run(8)[0].bytes);
        }
    }

    #[test]
    fn gen_seq_counts_per_entity_from_one() {
        let mut g = Generator::new(GenConfig {
            invalid_pct: 10.0,
            ..cfg(Profile::Orders)
        });
        let mut last = vec![0u64; 50];
        for _ in 0..5000 {
            let r = g.next_record();
            if r.invalid.is_none() {
                assert_eq!(r.gen_seq, last[r.entity as usize] + 1);
                last[r.entity as usize] = r.gen_seq;
            }
        }
    }

    #[test]
    fn payload_bytes_pads_to_the_asked_size() {
        for size in [0, 600, 1024, 10_000] {
            let mut g = Generator::new(GenConfig {
                payload_bytes: size,
                ..cfg(Profile::Logs)
            });
            for _ in 0..50 {
                let r = g.next_record();
                let v: Value = serde_json::from_slice(&r.bytes).unwrap();
                assert!(v.is_object());
                if size >= 600 {
                    assert_eq!(r.bytes.len(), size, "asked {size}");
                }
            }
        }
    }

    #[test]
    fn zipf_is_skewed_and_uniform_is_not() {
        let count = |d| {
            let p = EntityPicker::new(100, d);
            let mut rng = Rng::new(3);
            let mut c = vec![0u32; 100];
            for _ in 0..100_000 {
                c[p.pick(&mut rng) as usize] += 1;
            }
            c
        };
        let z = count(Distribution::Zipf { exponent: 1.0 });
        // Harmonic number H(100) ≈ 5.187: rank 1 gets ~19.3%, rank 2 ~9.6%, rank 100 ~0.19%.
        assert!((18_000..20_600).contains(&z[0]), "{}", z[0]);
        assert!((8_900..10_400).contains(&z[1]), "{}", z[1]);
        assert!(z[99] < 400, "{}", z[99]);
        let top10: u32 = z[..10].iter().sum();
        assert!(
            top10 > 50_000,
            "top 10 of 100 should carry over half: {top10}"
        );
        let u = count(Distribution::Uniform);
        assert!(u.iter().all(|&c| (800..1200).contains(&c)));
    }
}
