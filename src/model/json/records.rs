//! Record arrays as readers receive them (API.md §1), spliced from stored bytes and never
//! re-serialized. Shared by the diff response and the watch stream's `record` frames.

use super::{push_i64, push_str, push_u64};
use crate::model::record::Record;

/// Which optional record parts a read asked for.
#[derive(Debug, Clone, Copy)]
pub struct Include {
    pub tags: bool,
    pub meta: bool,
    /// `false` drops `data` (watch `include_data:false`).
    pub data: bool,
}

/// Append `[rec,rec,...]`.
pub fn push_records(out: &mut Vec<u8>, records: &[Record], inc: Include) {
    out.push(b'[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_record(out, r, inc);
    }
    out.push(b']');
}

fn push_record(out: &mut Vec<u8>, r: &Record, inc: Include) {
    out.extend_from_slice(b"{\"$seq\":");
    push_u64(out, r.seq);
    out.extend_from_slice(b",\"$ts\":");
    push_i64(out, r.ts);
    if let Some(node) = &r.node {
        out.extend_from_slice(b",\"$node\":");
        push_str(out, node);
    }
    if inc.tags {
        if let Some(tag) = &r.tag {
            out.extend_from_slice(b",\"$tag\":");
            push_str(out, tag);
        }
    }
    if inc.data {
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(&r.data);
    }
    if inc.meta {
        if let Some(meta) = &r.meta {
            out.extend_from_slice(b",\"meta\":");
            out.extend_from_slice(meta);
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::{json, Value};

    #[test]
    fn records_splice_into_valid_json_with_include_flags() {
        let r = Record {
            seq: 7,
            ts: -1,
            node: Some("n\"1".into()),
            tag: Some("t".into()),
            data: Bytes::from_static(br#"{"a":[1,2]}"#),
            meta: Some(Bytes::from_static(br#"{"m":true}"#)),
            hops: 0,
        };
        let mut out = Vec::new();
        push_records(
            &mut out,
            &[r.clone(), r],
            Include {
                tags: true,
                meta: false,
                data: true,
            },
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v[0],
            json!({"$seq":7,"$ts":-1,"$node":"n\"1","$tag":"t","data":{"a":[1,2]}})
        );
        assert_eq!(v.as_array().unwrap().len(), 2);
    }

    #[test]
    fn include_data_false_drops_data() {
        let r = Record {
            seq: 1,
            ts: 2,
            node: None,
            tag: None,
            data: Bytes::from_static(b"5"),
            meta: None,
            hops: 0,
        };
        let mut out = Vec::new();
        let inc = Include {
            tags: false,
            meta: true,
            data: false,
        };
        push_records(&mut out, &[r], inc);
        assert_eq!(out, br#"[{"$seq":1,"$ts":2}]"#);
    }
}
