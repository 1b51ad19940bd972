//! The send manifest: what was accepted by the ingest API, and when.
//!
//! `verify` needs, for every record: its id, entity, generator sequence, send
//! time and whether it was a re-send or invalid on purpose. A million records
//! as CSV would be ~60 MB; this format takes ~8 bytes a record because:
//! - ids are `<prefix><n>`, so only `n` is stored, as a delta from the previous entry;
//! - entity names are interned: each appears once, then by index;
//! - times are microsecond deltas from the previous entry;
//! - all integers are LEB128 varints (deltas zig-zag encoded).
//!
//! Layout (all varints unless said otherwise):
//! ```text
//! header   "TLGMAN01" (8 bytes) seed start_unix_micros prefix_len prefix_bytes
//! entity   0x01 index name_len name_bytes          (before its first record)
//! record   0x02 zz(n - prev_n) entity gen_seq zz(t - prev_t) flags(1 byte)
//! ```
//! The file is append-only and self-delimiting, so a run cut short still
//! leaves a readable manifest up to its last whole entry.

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"TLGMAN01";
const TAG_ENTITY: u8 = 1;
const TAG_RECORD: u8 = 2;

/// Entry flag: a duplicate re-send of an earlier record (same id, same bytes).
pub const FLAG_RESEND: u8 = 1;
/// Entry flag: malformed on purpose; the pipeline must reject it.
pub const FLAG_INVALID: u8 = 2;
/// Entry flag: the API never accepted it (retries exhausted).
pub const FLAG_FAILED: u8 = 4;
/// Entry flag: sent as a test event.
pub const FLAG_TEST: u8 = 8;

/// One sent record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Record number: the id is `<prefix><n>`.
    pub n: u64,
    /// Entity index.
    pub entity: u32,
    /// Generator sequence (0 for invalid records).
    pub gen_seq: u64,
    /// When the accepting call was made, Unix microseconds.
    pub sent_at_us: i64,
    /// `FLAG_*` bits.
    pub flags: u8,
}

/// Writes a manifest.
#[derive(Debug)]
pub struct ManifestWriter<W: Write> {
    out: W,
    known: Vec<bool>,
    prev_n: u64,
    prev_t: i64,
    bytes: u64,
}

impl ManifestWriter<BufWriter<std::fs::File>> {
    /// Creates (truncates) a manifest file.
    pub fn create(path: &Path, seed: u64, start_unix_us: i64, id_prefix: &str) -> io::Result<Self> {
        let file = std::fs::File::create(path)?;
        Self::new(
            BufWriter::with_capacity(1 << 16, file),
            seed,
            start_unix_us,
            id_prefix,
        )
    }
}

impl<W: Write> ManifestWriter<W> {
    /// Starts a manifest on `out`.
    pub fn new(mut out: W, seed: u64, start_unix_us: i64, id_prefix: &str) -> io::Result<Self> {
        let mut head = MAGIC.to_vec();
        put_varint(&mut head, seed);
        put_varint(&mut head, zigzag(start_unix_us));
        put_varint(&mut head, id_prefix.len() as u64);
        head.extend_from_slice(id_prefix.as_bytes());
        out.write_all(&head)?;
        Ok(Self {
            out,
            known: Vec::new(),
            prev_n: 0,
            prev_t: start_unix_us,
            bytes: head.len() as u64,
        })
    }

    /// Appends one entry; `entity_name` is written the first time the entity appears.
    pub fn append(&mut self, e: &ManifestEntry, entity_name: &str) -> io::Result<()> {
        let mut buf = Vec::with_capacity(48);
        let k = e.entity as usize;
        if self.known.len() <= k {
            self.known.resize(k + 1, false);
        }
        if !self.known[k] {
            self.known[k] = true;
            buf.push(TAG_ENTITY);
            put_varint(&mut buf, u64::from(e.entity));
            put_varint(&mut buf, entity_name.len() as u64);
            buf.extend_from_slice(entity_name.as_bytes());
        }
        buf.push(TAG_RECORD);
        put_varint(&mut buf, zigzag(e.n.wrapping_sub(self.prev_n) as i64));
        put_varint(&mut buf, u64::from(e.entity));
        put_varint(&mut buf, e.gen_seq);
        put_varint(&mut buf, zigzag(e.sent_at_us.wrapping_sub(self.prev_t)));
        buf.push(e.flags);
        self.prev_n = e.n;
        self.prev_t = e.sent_at_us;
        self.bytes += buf.len() as u64;
        self.out.write_all(&buf)
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Flushes buffered entries.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A manifest read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// The run's seed.
    pub seed: u64,
    /// When the run started, Unix microseconds.
    pub start_unix_us: i64,
    /// Ids are `<id_prefix><n>`.
    pub id_prefix: String,
    /// Entity names by index.
    pub entities: HashMap<u32, String>,
    /// Entries in the order written.
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// Reads a manifest file.
    pub fn read_file(path: &Path) -> Result<Self, ManifestError> {
        let file = std::fs::File::open(path).map_err(|e| ManifestError::Io(e.to_string()))?;
        Self::read(file)
    }

    /// Reads a manifest. A truncated last entry (a run cut short) is ignored.
    pub fn read(input: impl Read) -> Result<Self, ManifestError> {
        let mut r = Reader {
            input: BufReader::new(input).bytes(),
            offset: 0,
        };
        let mut magic = [0u8; 8];
        for m in &mut magic {
            *m = r.byte()?.ok_or(ManifestError::NotAManifest)?;
        }
        if &magic != MAGIC {
            return Err(ManifestError::NotAManifest);
        }
        let seed = r.need_varint()?;
        let start_unix_us = unzigzag(r.need_varint()?);
        let prefix = r.need_string()?;
        let mut m = Manifest {
            seed,
            start_unix_us,
            id_prefix: prefix,
            ..Manifest::default()
        };
        let (mut prev_n, mut prev_t) = (0u64, start_unix_us);
        loop {
            let at = r.offset;
            let Some(tag) = r.byte()? else { break };
            let entry = (|| -> Result<Option<ManifestEntry>, ManifestError> {
                match tag {
                    TAG_ENTITY => {
                        let k = r.need_varint()? as u32;
                        let name = r.need_string()?;
                        m.entities.insert(k, name);
                        Ok(None)
                    }
                    TAG_RECORD => {
                        let n = prev_n.wrapping_add(unzigzag(r.need_varint()?) as u64);
                        let entity = r.need_varint()? as u32;
                        let gen_seq = r.need_varint()?;
                        let t = prev_t.wrapping_add(unzigzag(r.need_varint()?));
                        let flags = r.byte()?.ok_or(ManifestError::Truncated)?;
                        Ok(Some(ManifestEntry {
                            n,
                            entity,
                            gen_seq,
                            sent_at_us: t,
                            flags,
                        }))
                    }
                    other => Err(ManifestError::Corrupt {
                        offset: at,
                        problem: format!("unknown entry tag {other:#04x}"),
                    }),
                }
            })();
            match entry {
                Ok(Some(e)) => {
                    if !m.entities.contains_key(&e.entity) {
                        return Err(ManifestError::Corrupt {
                            offset: at,
                            problem: format!("record refers to undeclared entity {}", e.entity),
                        });
                    }
                    prev_n = e.n;
                    prev_t = e.sent_at_us;
                    m.entries.push(e);
                }
                Ok(None) => {}
                Err(ManifestError::Truncated) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(m)
    }

    /// The id of record `n`.
    pub fn id(&self, n: u64) -> String {
        format!("{}{n}", self.id_prefix)
    }

    /// The record number of an id of this run, if it is one.
    pub fn parse_id(&self, id: &str) -> Option<u64> {
        id.strip_prefix(self.id_prefix.as_str())?.parse().ok()
    }
}

/// A manifest that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// I/O failure.
    #[error("manifest: {0}")]
    Io(String),
    /// Wrong magic bytes.
    #[error("manifest: not a tideline-generator manifest (expected it to start with \"TLGMAN01\")")]
    NotAManifest,
    /// Ends inside the header or an entry.
    #[error("manifest: truncated")]
    Truncated,
    /// Bytes that do not parse.
    #[error("manifest: corrupt at byte {offset}: {problem}")]
    Corrupt {
        /// Byte offset of the entry.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
}

struct Reader<R: Read> {
    input: io::Bytes<R>,
    offset: u64,
}

impl<R: Read> Reader<R> {
    fn byte(&mut self) -> Result<Option<u8>, ManifestError> {
        match self.input.next() {
            None => Ok(None),
            Some(Ok(b)) => {
                self.offset += 1;
                Ok(Some(b))
            }
            Some(Err(e)) => Err(ManifestError::Io(e.to_string())),
        }
    }

    fn need_varint(&mut self) -> Result<u64, ManifestError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?.ok_or(ManifestError::Truncated)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ManifestError::Corrupt {
            offset: self.offset,
            problem: "varint longer than 10 bytes".into(),
        })
    }

    fn need_string(&mut self) -> Result<String, ManifestError> {
        let len = self.need_varint()?;
        if len > 4096 {
            return Err(ManifestError::Corrupt {
                offset: self.offset,
                problem: format!("string of {len} bytes"),
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        for _ in 0..len {
            bytes.push(self.byte()?.ok_or(ManifestError::Truncated)?);
        }
        String::from_utf8(bytes).map_err(|_| ManifestError::Corrupt {
            offset: self.offset,
            problem: "string is not UTF-8".into(),
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn entries(count: u64, entities: u32) -> Vec<ManifestEntry> {
        let mut rng = Rng::new(5);
        let mut seqs = vec![0u64; entities as usize];
        let mut t = 1_767_225_600_000_000i64;
        (0..count)
            .map(|i| {
                let entity = rng.below(u64::from(entities)) as u32;
                seqs[entity as usize] += 1;
                // Concurrent workers log slightly out of order, in both n and time.
                t += rng.below(200) as i64 - 50;
                ManifestEntry {
                    n: i ^ (rng.below(4)),
                    entity,
                    gen_seq: seqs[entity as usize],
                    sent_at_us: t,
                    flags: (rng.below(16)) as u8,
                }
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let es = entries(10_000, 300);
        let mut w = ManifestWriter::new(Vec::new(), 77, 1_767_225_600_000_000, "gen-77-").unwrap();
        for e in &es {
            w.append(e, &format!("order-4d-{:06}", e.entity)).unwrap();
        }
        let written = w.bytes_written();
        let bytes = w.finish().unwrap();
        assert_eq!(written, bytes.len() as u64);
        let m = Manifest::read(bytes.as_slice()).unwrap();
        assert_eq!(m.seed, 77);
        assert_eq!(m.id_prefix, "gen-77-");
        assert_eq!(m.entries, es);
        assert_eq!(m.entities.len(), 300);
        assert_eq!(m.entities[&12], "order-4d-000012");
        assert_eq!(m.parse_id(&m.id(123)), Some(123));
        assert_eq!(m.parse_id("gen-78-1"), None);
    }

    #[test]
    fn a_million_records_stay_small() {
        let es = entries(1_000_000, 10_000);
        let mut w = ManifestWriter::new(io::sink(), 1, 1_767_225_600_000_000, "gen-1-").unwrap();
        for e in &es {
            w.append(e, &format!("device-1-{:06}", e.entity)).unwrap();
        }
        let per_record = w.bytes_written() as f64 / 1e6;
        println!("manifest: {per_record:.2} bytes per record");
        assert!(per_record < 12.0, "{per_record} bytes per record");
    }

    #[test]
    fn a_cut_short_manifest_reads_up_to_its_last_whole_entry() {
        let es = entries(100, 10);
        let mut w = ManifestWriter::new(Vec::new(), 1, 0, "gen-1-").unwrap();
        for e in &es {
            w.append(e, "e").unwrap();
        }
        let bytes = w.finish().unwrap();
        let m = Manifest::read(&bytes[..bytes.len() - 2]).unwrap();
        assert_eq!(m.entries.len(), 99);
        assert_eq!(
            Manifest::read(&b"TLGMAN02"[..]),
            Err(ManifestError::NotAManifest)
        );
        let mut bad = bytes.clone();
        let header_len = 8 + 1 + 1 + 1 + 6;
        bad[header_len] = 9;
        assert!(matches!(
            Manifest::read(bad.as_slice()),
            Err(ManifestError::Corrupt { .. })
        ));
    }
}
