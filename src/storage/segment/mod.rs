//! Sealed segments: immutable per-topic files holding a run of records, read through mmap.
//! A segment is written once (temp file → fsync → rename → fsync dir) and never modified,
//! truncated or rewritten while mapped; it is deleted only when no kept snapshot refers to it.
//!
//! Layout (v2, little-endian; `docs/STORAGE.md` has the table): header 48 B with a crc of its
//! own and the crcs of the index and the tag table | index: count × {seq, ts, offset, len,
//! payload, crc} where `crc` covers the entry's other fields and the record's bytes | data |
//! tag table | footer: crc32 of everything before, `SEGE`. Version 1 files (no crcs but the
//! footer) are still read, without per-record checks.
//!
//! What is verified when: `open` checks the structure and, for v2, the header, index and
//! tag-table crcs (O(index), never the data), so binary search and tag lookups only ever run
//! on a verified index; `read` checks a record's own crc every time it is read, so a damaged
//! record is reported, never returned; `verify_footer` (at sealing and by `topics verify`)
//! reads every byte.

mod check;
pub mod layout;
mod tags;
#[cfg(test)]
mod tests;
mod write;

pub use check::{check_file, FileCheck};
pub use layout::Damage;

use super::frame;
use super::fs::Fs;
use crate::model::predicate::TagPredicate;
use crate::model::record::Record;
use bytes::Bytes;
use layout::{u32_at, u64_at, Layout, ENTRY_V2_COVERED, V1};
use std::path::{Path, PathBuf};

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("segments")
}

/// `gen` (the boot that sealed it) keeps names unique when a crash makes a later boot seal the
/// same records again: a name is never reused, so garbage collection cannot hit a live file.
pub fn file_name(topic_id: u64, first_seq: u64, gen: u32) -> String {
    format!("{topic_id:016x}-{first_seq:020}-{gen:010}.seg")
}

/// Whether `name` is a segment file this server wrote: exactly the shape `file_name` produces.
/// Garbage collection removes nothing else, whatever its extension.
pub fn is_own_file_name(name: &str) -> bool {
    parse_file_name(name).is_some_and(|(id, first, gen)| file_name(id, first, gen) == name)
}

/// Whether `name` is the temp file of an interrupted seal of one of this server's segments.
pub fn is_own_temp_name(name: &str) -> bool {
    name.strip_suffix(".tmp").is_some_and(is_own_file_name)
}

fn parse_file_name(name: &str) -> Option<(u64, u64, u32)> {
    let mut parts = name.strip_suffix(".seg")?.split('-');
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let first = parts.next()?.parse().ok()?;
    let gen = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((id, first, gen))
}

/// One index entry: where a record lives and what retention needs without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub ts: i64,
    pub payload: u64,
}

/// Why a segment could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The file could not be read (missing, no permission, I/O error): no verdict on its bytes.
    Io(std::io::Error),
    /// Its bytes failed a structural or checksum check: none of its records can be trusted.
    Damaged(Damage),
    /// A format version this build does not know (written by a newer build).
    Unsupported(u16),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
            OpenError::Damaged(d) => write!(f, "damaged: {d}"),
            OpenError::Unsupported(v) => write!(f, "format version {v} is unknown to this build"),
        }
    }
}

/// Write `records` (ascending, non-empty) as a segment file; returns its path.
pub fn write(
    fs: &dyn Fs,
    dir: &Path,
    topic_id: u64,
    gen: u32,
    records: &[Record],
) -> std::io::Result<PathBuf> {
    let first = records.first().map_or(0, |r| r.seq);
    let out = write::encode(topic_id, records);
    let path = dir.join(file_name(topic_id, first, gen));
    fs.write_atomic(&path, &out)?;
    Ok(path)
}

/// An open, mapped segment whose structure (and, from v2 on, index and tag table) passed
/// their checks. Cheap to share (`Bytes` over the mapping).
#[derive(Debug, Clone)]
pub struct Segment {
    pub path: PathBuf,
    buf: Bytes,
    layout: Layout,
}

impl Segment {
    /// Map a segment and check everything but the data block (see the module doc).
    pub fn open(path: &Path) -> Result<Segment, OpenError> {
        let file = std::fs::File::open(path).map_err(OpenError::Io)?;
        // SAFETY: segment files are immutable once renamed into place and are never truncated
        // or rewritten while any mapping exists (they are only unlinked, which keeps the pages).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(OpenError::Io)?;
        if let Some(v) = layout::unsupported_version(&map) {
            return Err(OpenError::Unsupported(v));
        }
        Segment::from_bytes(path.to_path_buf(), Bytes::from_owner(map)).map_err(OpenError::Damaged)
    }

    /// Check `buf` as `open` does (used by `open`, by `topics verify` and by tests).
    pub fn from_bytes(path: PathBuf, buf: Bytes) -> Result<Segment, Damage> {
        let layout = Layout::parse(&buf)?;
        Ok(Segment { path, buf, layout })
    }

    /// The whole-file crc: reads every byte (done right after sealing and by `topics verify`).
    pub fn verify_footer(&self) -> Result<(), Damage> {
        if layout::footer_ok(&self.buf) {
            Ok(())
        } else {
            Err(Damage {
                offset: (self.buf.len() - layout::FOOTER) as u64,
                what: "footer crc mismatch",
            })
        }
    }

    pub fn version(&self) -> u16 {
        self.layout.version
    }

    pub fn topic_id(&self) -> u64 {
        self.layout.topic_id
    }

    pub fn len(&self) -> usize {
        self.layout.count
    }

    pub fn is_empty(&self) -> bool {
        self.layout.count == 0
    }

    fn entry_at(&self, i: usize) -> usize {
        self.layout.index_start + i * self.layout.entry_len
    }

    /// Index fields of entry `i`; trusted because the index passed its crc at `open` (v2).
    pub fn entry(&self, i: usize) -> Entry {
        let at = self.entry_at(i);
        let payload_at = if self.layout.version == V1 { 20 } else { 24 };
        Entry {
            seq: u64_at(&self.buf, at).unwrap_or(0),
            ts: u64_at(&self.buf, at + 8).unwrap_or(0) as i64,
            payload: u64::from(u32_at(&self.buf, at + payload_at).unwrap_or(0)),
        }
    }

    pub fn first_seq(&self) -> u64 {
        self.entry(0).seq
    }

    pub fn last_seq(&self) -> u64 {
        self.entry(self.layout.count - 1).seq
    }

    /// Index of the first entry with seq > `seq`.
    pub fn position_after(&self, seq: u64) -> usize {
        let (mut lo, mut hi) = (0, self.layout.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).seq <= seq {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Index of the entry holding `seq`, if any.
    pub fn position_of(&self, seq: u64) -> Option<usize> {
        let i = self.position_after(seq.checked_sub(1)?);
        (i < self.layout.count && self.entry(i).seq == seq).then_some(i)
    }

    /// Record `i` (data and meta share the mapping), checked against its crc (v2) and
    /// decoded; `Err` says where and why it cannot be trusted. Never returns damaged bytes.
    pub fn read(&self, i: usize) -> Result<Record, Damage> {
        if i >= self.layout.count {
            return Err(self.damage(self.layout.index_start, "no such index entry"));
        }
        let e = self.entry(i);
        let (start, end) = match self.layout.version {
            V1 => self.v1_bounds(i)?,
            _ => self.v2_checked_bounds(i)?,
        };
        let rec = frame::decode_record_body(&self.buf, start, end, e.seq, e.ts)
            .ok_or_else(|| self.damage(start, "record body does not decode"))?;
        if rec.payload_bytes() != e.payload {
            return Err(self.damage(start, "record size differs from its index entry"));
        }
        Ok(rec)
    }

    fn damage(&self, offset: usize, what: &'static str) -> Damage {
        Damage {
            offset: offset as u64,
            what,
        }
    }

    /// v1 has no record lengths: a record ends where the next begins.
    fn v1_bounds(&self, i: usize) -> Result<(usize, usize), Damage> {
        let l = &self.layout;
        let offset = |k: usize| u32_at(&self.buf, self.entry_at(k) + 16).map(|o| o as usize);
        let start = offset(i).and_then(|o| l.data_start.checked_add(o));
        let end = if i + 1 < l.count {
            offset(i + 1).and_then(|o| l.data_start.checked_add(o))
        } else {
            Some(l.tags_start)
        };
        match (start, end) {
            (Some(s), Some(e)) if s <= e && e <= l.tags_start => Ok((s, e)),
            _ => Err(self.damage(self.entry_at(i), "record outside the data block")),
        }
    }

    /// v2: the record's bytes, after its crc (over the entry's fields and those bytes) passed.
    fn v2_checked_bounds(&self, i: usize) -> Result<(usize, usize), Damage> {
        let l = &self.layout;
        let at = self.entry_at(i);
        let field = |k: usize| u32_at(&self.buf, at + k).map(|v| v as usize);
        let (Some(offset), Some(len), Some(crc)) = (field(16), field(20), field(28)) else {
            return Err(self.damage(at, "index entry outside the file"));
        };
        let start = l.data_start.saturating_add(offset);
        let end = start.saturating_add(len);
        if end > l.tags_start {
            return Err(self.damage(at, "record outside the data block"));
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&self.buf[at..at + ENTRY_V2_COVERED]);
        h.update(&self.buf[start..end]);
        if h.finalize() != crc as u32 {
            return Err(self.damage(start, "record crc mismatch"));
        }
        Ok((start, end))
    }

    /// Seqs of records whose tag matches, from the on-disk tag table (no record is decoded).
    pub fn tagged(&self, pred: &TagPredicate) -> Vec<u64> {
        let l = &self.layout;
        tags::tagged(&self.buf[l.tags_start..l.tags_end], pred)
    }
}
