//! Byte layout of segment files, versions 1 and 2: where each block starts, read from the
//! header and checked against the file length, plus the v2 header/index/tag-table crcs.
//! Nothing here trusts a length before checking it against the bytes present.

pub const MAGIC: [u8; 8] = *b"TOPICSEG";
pub const END_MAGIC: [u8; 4] = *b"SEGE";
/// Version 1: no per-record checksums; still read (without per-record checks).
pub const V1: u16 = 1;
/// Version 2: header, index and tag-table crcs, a crc per record; what this build writes.
pub const V2: u16 = 2;
pub const HEADER_V1: usize = 32;
pub const HEADER_V2: usize = 48;
pub const ENTRY_V1: usize = 24;
pub const ENTRY_V2: usize = 32;
/// Bytes of a v2 index entry that its record crc covers (everything before the crc).
pub const ENTRY_V2_COVERED: usize = 28;
pub const FOOTER: usize = 8;

pub fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(i..i.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(i..i.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(i..i.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Why a segment's structure cannot be trusted, and the file offset where that was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub what: &'static str,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.what)
    }
}

fn damage(offset: usize, what: &'static str) -> Damage {
    Damage {
        offset: offset as u64,
        what,
    }
}

/// Where the blocks of one segment file lie (all offsets into the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub version: u16,
    pub count: usize,
    pub topic_id: u64,
    pub index_start: usize,
    pub entry_len: usize,
    pub data_start: usize,
    pub tags_start: usize,
    /// End of the tag table (the footer follows).
    pub tags_end: usize,
}

impl Layout {
    /// Read the header and check that the blocks fit the file; for v2 also the header,
    /// index and tag-table crcs (O(index + tag table), never the data block).
    pub fn parse(b: &[u8]) -> Result<Layout, Damage> {
        if b.len() < HEADER_V1 + FOOTER || b[..8] != MAGIC {
            return Err(damage(0, "not a segment file (magic or size)"));
        }
        match u16_at(b, 8) {
            Some(V1) => parse_v1(b),
            Some(V2) => parse_v2(b),
            _ => Err(damage(8, "unknown segment format version")),
        }
    }

    pub fn data_len(&self) -> usize {
        self.tags_start - self.data_start
    }
}

fn parse_v1(b: &[u8]) -> Result<Layout, Damage> {
    if b.get(b.len() - 4..) != Some(&END_MAGIC[..]) {
        return Err(damage(b.len() - 4, "footer magic missing"));
    }
    let short = || damage(0, "header does not fit the file");
    let count = u32_at(b, 12).ok_or_else(short)? as usize;
    let topic_id = u64_at(b, 16).ok_or_else(short)?;
    let data_len = usize::try_from(u64_at(b, 24).ok_or_else(short)?).map_err(|_| short())?;
    let data_start = count
        .checked_mul(ENTRY_V1)
        .and_then(|n| n.checked_add(HEADER_V1))
        .ok_or_else(short)?;
    let tags_start = data_start.checked_add(data_len).ok_or_else(short)?;
    let tags_end = b.len() - FOOTER;
    if count == 0 || tags_start.checked_add(4).is_none_or(|t| t > tags_end) {
        return Err(damage(0, "lengths do not fit the file"));
    }
    Ok(Layout {
        version: V1,
        count,
        topic_id,
        index_start: HEADER_V1,
        entry_len: ENTRY_V1,
        data_start,
        tags_start,
        tags_end,
    })
}

fn parse_v2(b: &[u8]) -> Result<Layout, Damage> {
    let header = b
        .get(..HEADER_V2)
        .ok_or_else(|| damage(0, "short header"))?;
    let stored = u32_at(header, 44).ok_or_else(|| damage(0, "short header"))?;
    if crc32fast::hash(&header[..44]) != stored {
        return Err(damage(0, "header crc mismatch"));
    }
    // The header crc passed, so these fields are what the writer wrote.
    let field = |i| u32_at(header, i).unwrap_or(0);
    let count = field(12) as usize;
    let topic_id = u64_at(header, 16).unwrap_or(0);
    let data_len = usize::try_from(u64_at(header, 24).unwrap_or(0)).ok();
    let (tags_len, index_crc, tags_crc) = (field(32) as usize, field(36), field(40));
    let data_start = count
        .checked_mul(ENTRY_V2)
        .and_then(|n| n.checked_add(HEADER_V2));
    let tags_start = data_start.zip(data_len).and_then(|(s, n)| s.checked_add(n));
    let tags_end = tags_start.and_then(|s| s.checked_add(tags_len));
    let (Some(data_start), Some(tags_start), Some(tags_end)) = (data_start, tags_start, tags_end)
    else {
        return Err(damage(0, "lengths overflow"));
    };
    if count == 0 || tags_len < 4 || tags_end.checked_add(FOOTER) != Some(b.len()) {
        return Err(damage(0, "lengths do not fit the file"));
    }
    if crc32fast::hash(&b[HEADER_V2..data_start]) != index_crc {
        return Err(damage(HEADER_V2, "index crc mismatch"));
    }
    if crc32fast::hash(&b[tags_start..tags_end]) != tags_crc {
        return Err(damage(tags_start, "tag table crc mismatch"));
    }
    Ok(Layout {
        version: V2,
        count,
        topic_id,
        index_start: HEADER_V2,
        entry_len: ENTRY_V2,
        data_start,
        tags_start,
        tags_end,
    })
}

/// The version of a file in a format this build does not know (`None` for v1/v2 files, for
/// files that are not segments, and for a v2 file whose version field is damaged: its header
/// crc matches once the field reads `2`). An unknown version is a newer build's file, not
/// damage: the server refuses to start rather than report its records lost.
pub fn unsupported_version(b: &[u8]) -> Option<u16> {
    let v = u16_at(b, 8)?;
    if b.get(..8)? != MAGIC || v == V1 || v == V2 {
        return None;
    }
    let mut header = b.get(..HEADER_V2)?.to_vec();
    header[8..10].copy_from_slice(&V2.to_le_bytes());
    let damaged_v2 = u32_at(&header, 44) == Some(crc32fast::hash(&header[..44]));
    (!damaged_v2).then_some(v)
}

/// The whole-file crc in the footer (covers every byte before it).
pub fn footer_ok(b: &[u8]) -> bool {
    let Some(at) = b.len().checked_sub(FOOTER) else {
        return false;
    };
    u32_at(b, at).is_some_and(|crc| crc32fast::hash(&b[..at]) == crc)
}
