//! What a sink sends for one step: the Kafka form of each source record (value = the stored
//! `data` bytes, headers naming topic, seq, ts, node and tag, key per the definition) and the
//! in-band marker for a range the source lost before it was forwarded. No Kafka client here.

use crate::model::record::Record;
use crate::model::sink::KeyChoice;
use bytes::Bytes;

/// One Kafka record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub key: Option<Vec<u8>>,
    pub value: Bytes,
    /// Header names and values, in this order.
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

/// The records of one step, in seq order, and where the cursor goes once they are in Kafka.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<OutRecord>,
    /// First and last source seq this step accounts for (the markers' ranges included).
    pub first_seq: u64,
    pub last_seq: u64,
    /// Source records in `records` (markers excluded).
    pub forwarded: u64,
    pub gap_markers: u64,
    /// The sink's counters once this batch is in (the progress record carries them).
    pub forwarded_total_after: u64,
    pub gap_markers_total_after: u64,
}

pub fn record(topic: &str, key: &KeyChoice, r: &Record) -> OutRecord {
    let mut headers = vec![
        ("topics.topic", topic.as_bytes().to_vec()),
        ("topics.seq", r.seq.to_string().into_bytes()),
        ("topics.ts", r.ts.to_string().into_bytes()),
    ];
    if let Some(n) = &r.node {
        headers.push(("topics.node", n.as_bytes().to_vec()));
    }
    if let Some(t) = &r.tag {
        headers.push(("topics.tag", t.as_bytes().to_vec()));
    }
    OutRecord {
        key: key.key_of(r.tag.as_deref(), &r.data),
        value: r.data.clone(),
        headers,
    }
}

/// The marker for source seqs `from..=to` lost to `reason` (a tombstone reason of API.md §6):
/// no key, a small JSON value repeating the headers, so a consumer that reads only values
/// still sees it.
pub fn gap_marker(topic: &str, from: u64, to: u64, reason: &str) -> OutRecord {
    let value = serde_json::json!({ "topics_gap": { "topic": topic, "from": from, "to": to,
        "reason": reason } });
    OutRecord {
        key: None,
        value: Bytes::from(value.to_string()),
        headers: vec![
            ("topics.topic", topic.as_bytes().to_vec()),
            ("topics.gap.from", from.to_string().into_bytes()),
            ("topics.gap.to", to.to_string().into_bytes()),
            ("topics.gap.reason", reason.as_bytes().to_vec()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rec(seq: u64, node: Option<&str>, tag: Option<&str>) -> Record {
        Record {
            seq,
            ts: 1_700_000_000_123,
            node: node.map(Arc::from),
            tag: tag.map(Arc::from),
            data: Bytes::from_static(br#"{"a":{"b":"k1"}}"#),
            meta: None,
            hops: 0,
        }
    }

    fn names(o: &OutRecord) -> Vec<&str> {
        o.headers.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn a_record_keeps_its_data_bytes_and_carries_its_stamps_in_headers() {
        let o = record("orders", &KeyChoice::Tag, &rec(7, Some("eu"), Some("t1")));
        assert_eq!(&o.value[..], br#"{"a":{"b":"k1"}}"#);
        assert_eq!(o.key.as_deref(), Some(&b"t1"[..]));
        assert_eq!(
            o.headers,
            vec![
                ("topics.topic", b"orders".to_vec()),
                ("topics.seq", b"7".to_vec()),
                ("topics.ts", b"1700000000123".to_vec()),
                ("topics.node", b"eu".to_vec()),
                ("topics.tag", b"t1".to_vec()),
            ]
        );
        let bare = record("orders", &KeyChoice::None, &rec(8, None, None));
        assert_eq!(names(&bare), ["topics.topic", "topics.seq", "topics.ts"]);
        assert_eq!(bare.key, None);
    }

    #[test]
    fn a_gap_marker_names_its_range_and_reason() {
        let m = gap_marker("orders", 11, 40, "cap");
        assert_eq!(m.key, None);
        assert_eq!(
            names(&m),
            [
                "topics.topic",
                "topics.gap.from",
                "topics.gap.to",
                "topics.gap.reason"
            ]
        );
        assert_eq!(m.headers[2].1, b"40");
        let v: serde_json::Value = serde_json::from_slice(&m.value).unwrap();
        assert_eq!(v["topics_gap"]["from"], 11);
        assert_eq!(v["topics_gap"]["reason"], "cap");
    }
}
