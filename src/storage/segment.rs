//! Sealed segments: immutable per-topic files holding a run of records, read through mmap.
//! A segment is written once (temp file → fsync → rename → fsync dir) and never modified,
//! truncated or rewritten while mapped; it is deleted only when no kept snapshot refers to it.
//!
//! Layout of `segments/{topic_id:016x}-{first_seq:020}-{gen:010}.seg` (little-endian):
//! header 32 B: magic `TOPICSEG`, version u16, reserved u16, count u32, topic_id u64,
//! data_len u64 | index: count × {seq u64, ts i64, offset u32, payload u32} | data: record
//! bodies (the Append frame layout) | tag table: ntags u32, ntags × offset u32, then per tag
//! {len u16, tag, n u32, n × seq u64}, sorted by tag | footer: crc32 of all before u32, `SEGE`.

use super::frame;
use super::fs::Fs;
use crate::model::predicate::TagPredicate;
use crate::model::record::Record;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"TOPICSEG";
const VERSION: u16 = 1;
const HEADER: usize = 32;
const ENTRY: usize = 24;
const FOOTER: usize = 8;

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

/// Write `records` (ascending, non-empty) as a segment file; returns its path.
pub fn write(
    fs: &dyn Fs,
    dir: &Path,
    topic_id: u64,
    gen: u32,
    records: &[Record],
) -> std::io::Result<PathBuf> {
    let first = records.first().map_or(0, |r| r.seq);
    let mut data = Vec::new();
    let mut index = Vec::with_capacity(records.len() * ENTRY);
    let mut tags: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in records {
        index.extend_from_slice(&r.seq.to_le_bytes());
        index.extend_from_slice(&r.ts.to_le_bytes());
        index.extend_from_slice(&(data.len() as u32).to_le_bytes());
        index.extend_from_slice(&(r.payload_bytes() as u32).to_le_bytes());
        frame::encode_record_body(&mut data, r);
        if let Some(t) = &r.tag {
            tags.entry(t).or_default().push(r.seq);
        }
    }
    let mut out = Vec::with_capacity(HEADER + index.len() + data.len() + FOOTER);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&topic_id.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    put_tag_table(&mut out, &tags);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(b"SEGE");
    let path = dir.join(file_name(topic_id, first, gen));
    fs.write_atomic(&path, &out)?;
    Ok(path)
}

fn put_tag_table(out: &mut Vec<u8>, tags: &BTreeMap<&str, Vec<u64>>) {
    out.extend_from_slice(&(tags.len() as u32).to_le_bytes());
    let mut body = Vec::new();
    let mut offsets = Vec::with_capacity(tags.len() * 4);
    for (tag, seqs) in tags {
        offsets.extend_from_slice(&(body.len() as u32).to_le_bytes());
        body.extend_from_slice(&(tag.len() as u16).to_le_bytes());
        body.extend_from_slice(tag.as_bytes());
        body.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
        for s in seqs {
            body.extend_from_slice(&s.to_le_bytes());
        }
    }
    out.extend_from_slice(&offsets);
    out.extend_from_slice(&body);
}

/// An open, mapped segment. Cheap to share (`Bytes` over the mapping).
#[derive(Debug, Clone)]
pub struct Segment {
    pub path: PathBuf,
    buf: Bytes,
    count: usize,
    data_start: usize,
    tags_start: usize,
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

impl Segment {
    /// Map and check a segment's structure. `verify_crc` reads every byte (done right after
    /// sealing; at startup only the structure is checked, so startup cost does not grow with
    /// history — the file was fsynced before it was renamed into place and is never modified).
    pub fn open(path: &Path, verify_crc: bool) -> Result<Segment, String> {
        let err = |what: &str| format!("segment {}: {what}", path.display());
        let file = std::fs::File::open(path).map_err(|e| err(&e.to_string()))?;
        // SAFETY: segment files are immutable once renamed into place and are never truncated
        // or rewritten while any mapping exists (they are only unlinked, which keeps the pages).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| err(&e.to_string()))?;
        let buf = Bytes::from_owner(map);
        let b: &[u8] = &buf;
        if b.len() < HEADER + FOOTER || b[..8] != MAGIC || b.get(b.len() - 4..) != Some(b"SEGE") {
            return Err(err("bad header or footer"));
        }
        if u16::from_le_bytes([b[8], b[9]]) != VERSION {
            return Err(err("unknown format version"));
        }
        let count = u32_at(b, 12).ok_or_else(|| err("short"))? as usize;
        let data_len = u64_at(b, 24).ok_or_else(|| err("short"))? as usize;
        let data_start = HEADER + count * ENTRY;
        let tags_start = data_start
            .checked_add(data_len)
            .ok_or_else(|| err("bad length"))?;
        if tags_start + 4 + FOOTER > b.len() || count == 0 {
            return Err(err("lengths do not fit the file"));
        }
        if verify_crc {
            let crc = u32_at(b, b.len() - FOOTER).ok_or_else(|| err("short"))?;
            if crc32fast::hash(&b[..b.len() - FOOTER]) != crc {
                return Err(err("crc mismatch"));
            }
        }
        Ok(Segment {
            path: path.to_path_buf(),
            buf,
            count,
            data_start,
            tags_start,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn entry(&self, i: usize) -> Entry {
        let at = HEADER + i * ENTRY;
        Entry {
            seq: u64_at(&self.buf, at).unwrap_or(0),
            ts: u64_at(&self.buf, at + 8).unwrap_or(0) as i64,
            payload: u64::from(u32_at(&self.buf, at + 20).unwrap_or(0)),
        }
    }

    pub fn first_seq(&self) -> u64 {
        self.entry(0).seq
    }

    pub fn last_seq(&self) -> u64 {
        self.entry(self.count - 1).seq
    }

    /// Index of the first entry with seq > `seq`.
    pub fn position_after(&self, seq: u64) -> usize {
        let (mut lo, mut hi) = (0, self.count);
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
        (i < self.count && self.entry(i).seq == seq).then_some(i)
    }

    /// Decode record `i` (data and meta share the mapping).
    pub fn record(&self, i: usize) -> Option<Record> {
        let e = self.entry(i);
        let start = self.data_start + u32_at(&self.buf, HEADER + i * ENTRY + 16)? as usize;
        let end = if i + 1 < self.count {
            self.data_start + u32_at(&self.buf, HEADER + (i + 1) * ENTRY + 16)? as usize
        } else {
            self.tags_start
        };
        frame::decode_record_body(&self.buf, start, end, e.seq, e.ts)
    }

    /// Seqs of records whose tag matches, from the on-disk tag table (no record is decoded).
    pub fn tagged(&self, pred: &TagPredicate) -> Vec<u64> {
        let b: &[u8] = &self.buf;
        let Some(n) = u32_at(b, self.tags_start) else {
            return Vec::new();
        };
        let body = self.tags_start + 4 + n as usize * 4;
        let tag_at = |k: usize| -> Option<(&[u8], usize)> {
            let at = body + u32_at(b, self.tags_start + 4 + k * 4)? as usize;
            let len = u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize;
            Some((b.get(at + 2..at + 2 + len)?, at + 2 + len))
        };
        let (want, prefix) = match pred {
            TagPredicate::Eq(v) => (v.as_bytes(), false),
            TagPredicate::Prefix(p) => (p.as_bytes(), true),
        };
        let (mut lo, mut hi) = (0, n as usize);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match tag_at(mid) {
                Some((t, _)) if t < want => lo = mid + 1,
                _ => hi = mid,
            }
        }
        let mut out = Vec::new();
        for k in lo..n as usize {
            let Some((t, at)) = tag_at(k) else { break };
            let hit = if prefix {
                t.starts_with(want)
            } else {
                t == want
            };
            if !hit {
                break;
            }
            let cnt = u32_at(b, at).unwrap_or(0) as usize;
            out.extend((0..cnt).filter_map(|j| u64_at(b, at + 4 + j * 8)));
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rec(seq: u64, tag: Option<&str>, data: &str) -> Record {
        Record {
            seq,
            ts: seq as i64 * 10,
            node: Some(Arc::from("n")),
            tag: tag.map(Arc::from),
            data: Bytes::copy_from_slice(data.as_bytes()),
            meta: seq.is_multiple_of(2).then(|| Bytes::from_static(b"{}")),
            hops: 1,
        }
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("topics-seg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn only_names_this_server_writes_are_its_own() {
        let own = file_name(0xab, 12, 3);
        assert!(is_own_file_name(&own));
        assert!(is_own_temp_name(&format!("{own}.tmp")));
        for foreign in [
            "notes.seg",
            "ab-12-3.seg",
            &own.to_uppercase(),
            &own.replace(".seg", ".seg.bak"),
            &format!("+{}", &own[1..]),
            &format!("x{own}"),
            "notes.seg.tmp",
        ] {
            assert!(!is_own_file_name(foreign), "{foreign}");
        }
        assert!(!is_own_temp_name(&own));
        assert!(!is_own_temp_name("notes.seg.tmp"));
    }

    #[test]
    fn round_trips_records_index_and_tags() {
        let d = tmp("rt");
        let recs = vec![
            rec(3, Some("a:1"), "1"),
            rec(4, None, "[2]"),
            rec(7, Some("b"), "\"x\""),
            rec(9, Some("a:2"), "{}"),
        ];
        let p = write(&crate::storage::fs::RealFs, &d, 5, 2, &recs).unwrap();
        assert!(p.ends_with(file_name(5, 3, 2)));
        let s = Segment::open(&p, true).unwrap();
        assert_eq!((s.len(), s.first_seq(), s.last_seq()), (4, 3, 9));
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(s.record(i).as_ref(), Some(r));
            assert_eq!(
                s.entry(i),
                Entry {
                    seq: r.seq,
                    ts: r.ts,
                    payload: r.payload_bytes()
                }
            );
        }
        assert_eq!(
            (
                s.position_after(0),
                s.position_after(4),
                s.position_after(9)
            ),
            (0, 2, 4)
        );
        assert_eq!((s.position_of(7), s.position_of(5)), (Some(2), None));
        assert_eq!(s.tagged(&TagPredicate::Prefix("a:".into())), vec![3, 9]);
        assert_eq!(s.tagged(&TagPredicate::Eq("b".into())), vec![7]);
        assert!(s.tagged(&TagPredicate::Eq("a".into())).is_empty());
        assert_eq!(
            s.tagged(&TagPredicate::Prefix(String::new())),
            vec![3, 7, 9]
        );
    }

    #[test]
    fn corruption_is_detected() {
        let d = tmp("bad");
        let p = write(
            &crate::storage::fs::RealFs,
            &d,
            1,
            1,
            &[rec(1, None, "1"), rec(2, None, "2")],
        )
        .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let mut flipped = bytes.clone();
        flipped[HEADER + 3] ^= 1;
        std::fs::write(&p, &flipped).unwrap();
        assert!(Segment::open(&p, true).is_err());
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(Segment::open(&p, false).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// A segment file of random bytes, or a valid one cut anywhere, never panics `open`
        /// or any accessor.
        #[test]
        fn open_and_read_never_panic(junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), cut in 0usize..400) {
            let d = tmp("fuzz");
            std::fs::create_dir_all(&d).unwrap();
            let p = d.join("junk.seg");
            std::fs::write(&p, &junk).unwrap();
            if let Ok(s) = Segment::open(&p, false) {
                for i in 0..s.len().min(8) {
                    let _ = s.record(i);
                }
                let _ = s.tagged(&TagPredicate::Prefix(String::new()));
            }
            let good = write(&crate::storage::fs::RealFs, &d, 1, 1, &[rec(1, Some("a"), "1"), rec(2, None, "2")]).unwrap();
            let bytes = std::fs::read(&good).unwrap();
            std::fs::write(&good, &bytes[..cut.min(bytes.len())]).unwrap();
            if let Ok(s) = Segment::open(&good, false) {
                for i in 0..s.len() {
                    let _ = s.record(i);
                }
                let _ = s.tagged(&TagPredicate::Eq("a".into()));
            }
        }
    }
}
