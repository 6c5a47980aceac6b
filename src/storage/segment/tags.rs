//! Tag lookups in a segment's on-disk tag table (binary search; no record is decoded).
//! Every read is bounds-checked against the table's own extent, so a table that passed its
//! crc but lies about an offset yields fewer seqs, never a panic or bytes from elsewhere.

use super::layout::{u16_at, u32_at, u64_at};
use crate::model::predicate::TagPredicate;

/// Seqs whose tag matches `pred`, ascending. `table` is exactly the tag table's bytes.
pub fn tagged(table: &[u8], pred: &TagPredicate) -> Vec<u64> {
    let Some(n) = u32_at(table, 0).map(|n| n as usize) else {
        return Vec::new();
    };
    let Some(body) = n.checked_mul(4).and_then(|x| x.checked_add(4)) else {
        return Vec::new();
    };
    let tag_at = |k: usize| -> Option<(&[u8], usize)> {
        let at = body.checked_add(u32_at(table, 4 + k * 4)? as usize)?;
        let len = u16_at(table, at)? as usize;
        let end = (at + 2).checked_add(len)?;
        Some((table.get(at + 2..end)?, end))
    };
    let (want, prefix) = match pred {
        TagPredicate::Eq(v) => (v.as_bytes(), false),
        TagPredicate::Prefix(p) => (p.as_bytes(), true),
    };
    let (mut lo, mut hi) = (0, n.min(table.len() / 4));
    while lo < hi {
        let mid = (lo + hi) / 2;
        match tag_at(mid) {
            Some((t, _)) if t < want => lo = mid + 1,
            _ => hi = mid,
        }
    }
    let mut out = Vec::new();
    for k in lo..n.min(table.len() / 4) {
        let Some((t, at)) = tag_at(k) else { break };
        let hit = if prefix {
            t.starts_with(want)
        } else {
            t == want
        };
        if !hit {
            break;
        }
        let cnt = u32_at(table, at).unwrap_or(0) as usize;
        // Bounded by the bytes present, whatever the count says.
        let cnt = cnt.min(table.len().saturating_sub(at + 4) / 8);
        out.extend((0..cnt).filter_map(|j| u64_at(table, at + 4 + j * 8)));
    }
    out.sort_unstable();
    out
}
