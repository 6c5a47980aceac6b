//! The exactly-once stamp (API.md §12), pure: the `_topics_router` object a copy's `meta`
//! carries, how it goes into the original `meta`, and how a dest record's stamp is read back.
//!
//! The key names the source record for good: router name, the source topic's id (ids are
//! never reused, so a recreated topic never collides) and epoch, and the source seq. Splicing
//! keeps the original keys in their order and bytes; only `_topics_router` is put first.

use super::super::json::object_pairs;
use bytes::Bytes;

/// Objects with this many keys or more are wrapped instead of extended.
pub const MAX_SPLICE_KEYS: usize = 64;

const KEY: &str = "_topics_router";
const ORIGINAL: &str = "_topics_original_meta";

/// Where a router's copies come from; one per router and source incarnation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub router: String,
    pub source_topic: String,
    pub source_topic_id: u64,
    /// Incarnation of the source topic. Topic ids are never reused, so every id names one
    /// incarnation and this is always 1; it is kept so the key has the contract's shape.
    pub source_epoch: u64,
}

impl Stamp {
    /// `router:<router>:<source_topic_id>:<source_epoch>:` — every key of this stamp.
    pub fn key_prefix(&self) -> String {
        format!(
            "router:{}:{}:{}:",
            self.router, self.source_topic_id, self.source_epoch
        )
    }

    pub fn key(&self, source_seq: u64) -> String {
        format!("{}{source_seq}", self.key_prefix())
    }

    fn object(&self, source_seq: u64) -> String {
        serde_json::json!({
            "idempotency_key": self.key(source_seq),
            "router": self.router,
            "source_topic": self.source_topic,
            "source_topic_id": self.source_topic_id,
            "source_epoch": self.source_epoch,
            "source_seq": source_seq,
        })
        .to_string()
    }

    /// The copy's `meta`: the original with `_topics_router` inserted (an object with fewer
    /// than 64 keys, or one already holding the key, whose value is replaced), else
    /// `{"_topics_router":…, "_topics_original_meta":<original>}`. No `meta` counts as an
    /// empty object.
    pub fn meta(&self, source_seq: u64, original: Option<&[u8]>) -> Bytes {
        let stamp = self.object(source_seq);
        let mut out = format!("{{\"{KEY}\":{stamp}");
        match original {
            None => {}
            Some(raw) => match object_pairs(raw) {
                Some(pairs)
                    if pairs.len() < MAX_SPLICE_KEYS || pairs.iter().any(|p| p.0 == KEY) =>
                {
                    for (k, v) in pairs.iter().filter(|p| p.0 != KEY) {
                        out.push(',');
                        out.push_str(&serde_json::Value::from(k.as_str()).to_string());
                        out.push(':');
                        out.push_str(v.get());
                    }
                }
                _ => {
                    out.push_str(&format!(",\"{ORIGINAL}\":"));
                    out.push_str(&String::from_utf8_lossy(raw));
                }
            },
        }
        out.push('}');
        Bytes::from(out)
    }
}

/// The source seq of a dest record's stamp whose key starts with `prefix`, if it has one.
pub fn stamped_seq(meta: &[u8], prefix: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "_topics_router")]
        stamp: Option<Inner>,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        idempotency_key: Option<String>,
    }
    // Cheap test first: most dest records are not copies of this router.
    if !meta.windows(KEY.len()).any(|w| w == KEY.as_bytes()) {
        return None;
    }
    let probe: Probe = serde_json::from_slice(meta).ok()?;
    probe
        .stamp?
        .idempotency_key?
        .strip_prefix(prefix)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn stamp() -> Stamp {
        Stamp {
            router: "a->b".into(),
            source_topic: "a".into(),
            source_topic_id: 7,
            source_epoch: 1,
        }
    }

    fn meta(original: Option<&str>) -> Value {
        let out = stamp().meta(42, original.map(str::as_bytes));
        serde_json::from_slice(&out).expect("valid JSON")
    }

    fn expected_stamp() -> Value {
        json!({"idempotency_key":"router:a->b:7:1:42","router":"a->b","source_topic":"a",
               "source_topic_id":7,"source_epoch":1,"source_seq":42})
    }

    #[test]
    fn no_meta_becomes_the_stamp_alone() {
        assert_eq!(meta(None), json!({ "_topics_router": expected_stamp() }));
    }

    #[test]
    fn an_object_gets_the_key_and_keeps_its_own_keys_in_order() {
        let out = stamp().meta(42, Some(br#"{"z":1,"a":{"x":[1,2]}}"#));
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.ends_with(r#","z":1,"a":{"x":[1,2]}}"#), "{text}");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["_topics_router"], expected_stamp());
    }

    #[test]
    fn an_existing_stamp_is_replaced_even_in_a_large_object() {
        let mut obj = serde_json::Map::new();
        for i in 0..70 {
            obj.insert(format!("k{i}"), json!(i));
        }
        obj.insert("_topics_router".into(), json!({"idempotency_key":"old"}));
        let raw = Value::Object(obj).to_string();
        let v = meta(Some(&raw));
        assert_eq!(v["_topics_router"], expected_stamp());
        assert_eq!(v.as_object().unwrap().len(), 71);
        assert!(v.get("_topics_original_meta").is_none());
    }

    #[test]
    fn non_objects_and_objects_of_64_keys_are_wrapped() {
        assert_eq!(
            meta(Some("[1,2]")),
            json!({"_topics_router": expected_stamp(), "_topics_original_meta": [1,2]})
        );
        let mut obj = serde_json::Map::new();
        for i in 0..64 {
            obj.insert(format!("k{i}"), json!(i));
        }
        let raw = Value::Object(obj.clone()).to_string();
        assert_eq!(
            meta(Some(&raw)),
            json!({"_topics_router": expected_stamp(), "_topics_original_meta": obj})
        );
        obj.remove("k0");
        let v = meta(Some(&Value::Object(obj).to_string()));
        assert_eq!(v.as_object().unwrap().len(), 64);
    }

    #[test]
    fn a_stamp_is_read_back_only_under_its_own_prefix() {
        let s = stamp();
        let out = s.meta(42, Some(br#"{"a":1}"#));
        assert_eq!(stamped_seq(&out, &s.key_prefix()), Some(42));
        let other = Stamp {
            source_topic_id: 8,
            ..stamp()
        };
        assert_eq!(stamped_seq(&out, &other.key_prefix()), None);
        assert_eq!(stamped_seq(br#"{"a":1}"#, &s.key_prefix()), None);
        assert_eq!(
            stamped_seq(br#"{"_topics_router":5}"#, &s.key_prefix()),
            None
        );
    }
}
