//! Encoding a segment file (always the newest format, v2).

use super::layout::{END_MAGIC, ENTRY_V2, ENTRY_V2_COVERED, HEADER_V2, MAGIC, V2};
use crate::model::record::Record;
use crate::storage::frame;
use std::collections::BTreeMap;

/// The bytes of a v2 segment holding `records` (ascending, non-empty).
pub fn encode(topic_id: u64, records: &[Record]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut index = Vec::with_capacity(records.len() * ENTRY_V2);
    let mut tags: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in records {
        let offset = data.len();
        frame::encode_record_body(&mut data, r);
        put_entry(&mut index, r, offset, &data[offset..]);
        if let Some(t) = &r.tag {
            tags.entry(t).or_default().push(r.seq);
        }
    }
    let mut table = Vec::new();
    put_tag_table(&mut table, &tags);
    let mut out = Vec::with_capacity(HEADER_V2 + index.len() + data.len() + table.len() + 8);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&V2.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&topic_id.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&(table.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&table).to_le_bytes());
    let header_crc = crc32fast::hash(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    out.extend_from_slice(&table);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&END_MAGIC);
    out
}

/// One index entry: its fields, then a crc over those fields and the record's bytes, so a
/// damaged entry and damaged data are caught alike.
fn put_entry(index: &mut Vec<u8>, r: &Record, offset: usize, body: &[u8]) {
    let start = index.len();
    index.extend_from_slice(&r.seq.to_le_bytes());
    index.extend_from_slice(&r.ts.to_le_bytes());
    index.extend_from_slice(&(offset as u32).to_le_bytes());
    index.extend_from_slice(&(body.len() as u32).to_le_bytes());
    index.extend_from_slice(&(r.payload_bytes() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&index[start..start + ENTRY_V2_COVERED]);
    h.update(body);
    index.extend_from_slice(&h.finalize().to_le_bytes());
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
