//! Records and the per-record write rules (API.md §5). A record's JSON arrives validated by
//! the parser and stays bytes from here on: compacted once, then stored, logged and spliced.

use super::json;
use bytes::Bytes;
use std::sync::Arc;

/// Levels a write body wraps around each record's `data` and `meta` (`{"records":[{"data":`):
/// the nesting limit of `json::limits` is about the stored values, not the request around them.
pub const RECORD_ENVELOPE_DEPTH: u32 = 3;

/// A committed record. `data`/`meta` are compact JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub ts: i64,
    pub node: Option<Arc<str>>,
    pub tag: Option<Arc<str>>,
    pub data: Bytes,
    pub meta: Option<Bytes>,
    /// Router hop count; internal, never on the wire.
    pub hops: u8,
}

impl Record {
    /// Retained bytes (API.md §2): compact `data` plus compact `meta`.
    pub fn payload_bytes(&self) -> u64 {
        (self.data.len() + self.meta.as_ref().map_or(0, Bytes::len)) as u64
    }
}

/// A validated record before a seq is assigned.
#[derive(Debug, Clone)]
pub struct RecordDraft {
    pub node: Option<Arc<str>>,
    pub tag: Option<Arc<str>>,
    pub data: Bytes,
    pub meta: Option<Bytes>,
    pub hops: u8,
}

impl RecordDraft {
    pub fn payload_bytes(&self) -> u64 {
        (self.data.len() + self.meta.as_ref().map_or(0, Bytes::len)) as u64
    }

    pub fn into_record(self, seq: u64, ts: i64) -> Record {
        Record {
            seq,
            ts,
            node: self.node,
            tag: self.tag,
            data: self.data,
            meta: self.meta,
            hops: self.hops,
        }
    }
}

/// Write-side limits (config `[limits]`).
#[derive(Debug, Clone)]
pub struct WriteLimits {
    pub max_batch_records: usize,
    pub max_record_bytes: usize,
    pub max_meta_bytes: usize,
    pub max_meta_keys: usize,
    pub max_tag_bytes: usize,
    pub max_node_bytes: usize,
    pub max_idempotency_key_bytes: usize,
}

/// Why a write's records were refused; each maps to one 400 code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    Invalid(String),
    BatchTooLarge {
        count: usize,
        max: usize,
    },
    RecordTooLarge {
        index: usize,
        bytes: usize,
        max: usize,
    },
}

/// One record as parsed from the request, borrowing raw JSON slices of the body.
pub struct RecordInput<'a> {
    pub data: &'a [u8],
    pub meta: Option<&'a [u8]>,
    pub tag: Option<&'a str>,
    pub node: Option<&'a str>,
}

impl WriteLimits {
    pub fn check_batch_len(&self, count: usize) -> Result<(), RecordError> {
        if count == 0 {
            return Err(RecordError::Invalid(
                "records must hold at least one record".into(),
            ));
        }
        if count > self.max_batch_records {
            return Err(RecordError::BatchTooLarge {
                count,
                max: self.max_batch_records,
            });
        }
        Ok(())
    }

    pub fn check_node(&self, node: &str, what: &str) -> Result<(), RecordError> {
        if node.len() > self.max_node_bytes {
            return Err(RecordError::Invalid(format!(
                "{what} is {} bytes; the limit is {}",
                node.len(),
                self.max_node_bytes
            )));
        }
        Ok(())
    }

    pub fn check_idempotency_key(&self, key: &str) -> Result<(), RecordError> {
        if key.len() > self.max_idempotency_key_bytes {
            return Err(RecordError::Invalid(format!(
                "idempotency_key is {} bytes; the limit is {}",
                key.len(),
                self.max_idempotency_key_bytes
            )));
        }
        Ok(())
    }

    /// Validate one record. `body` owns the bytes `input` borrows from, so unchanged slices
    /// are shared instead of copied; `default_node` is the batch-level `node`.
    pub fn draft(
        &self,
        index: usize,
        input: RecordInput<'_>,
        body: &Bytes,
        default_node: Option<&Arc<str>>,
    ) -> Result<RecordDraft, RecordError> {
        if let Some(tag) = input.tag {
            if tag.len() > self.max_tag_bytes {
                return Err(RecordError::Invalid(format!(
                    "records[{index}].tag is {} bytes; the limit is {}",
                    tag.len(),
                    self.max_tag_bytes
                )));
            }
        }
        if let Some(node) = input.node {
            self.check_node(node, &format!("records[{index}].node"))?;
        }
        let meta = match input.meta {
            Some(raw) => Some(self.meta_bytes(index, raw, body)?),
            None => None,
        };
        let data = share_compact(input.data, body);
        let bytes = data.len() + meta.as_ref().map_or(0, Bytes::len);
        if bytes > self.max_record_bytes {
            return Err(RecordError::RecordTooLarge {
                index,
                bytes,
                max: self.max_record_bytes,
            });
        }
        Ok(RecordDraft {
            node: input.node.map(Arc::from).or_else(|| default_node.cloned()),
            tag: input.tag.map(Arc::from),
            data,
            meta,
            hops: 0,
        })
    }

    fn meta_bytes(&self, index: usize, raw: &[u8], body: &Bytes) -> Result<Bytes, RecordError> {
        let meta = share_compact(raw, body);
        if meta.len() > self.max_meta_bytes {
            return Err(RecordError::Invalid(format!(
                "records[{index}].meta is {} bytes; the limit is {}",
                meta.len(),
                self.max_meta_bytes
            )));
        }
        if meta.first() == Some(&b'{') {
            let keys = count_object_keys(&meta);
            if keys > self.max_meta_keys {
                return Err(RecordError::Invalid(format!(
                    "records[{index}].meta has {keys} keys; the limit is {}",
                    self.max_meta_keys
                )));
            }
        }
        Ok(meta)
    }
}

/// Compact `raw`; when it already is compact and lies inside `body`, share `body`'s buffer.
fn share_compact(raw: &[u8], body: &Bytes) -> Bytes {
    match json::compact(raw) {
        std::borrow::Cow::Borrowed(b) => body.slice_ref(b),
        std::borrow::Cow::Owned(v) => Bytes::from(v),
    }
}

/// Number of top-level keys of a JSON object (duplicates counted), 0 if not an object.
fn count_object_keys(raw: &[u8]) -> usize {
    struct Counter;
    impl<'de> serde::de::Visitor<'de> for Counter {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {
                n += 1;
            }
            Ok(n)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    serde::Deserializer::deserialize_map(&mut de, Counter).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> WriteLimits {
        WriteLimits {
            max_batch_records: 3,
            max_record_bytes: 20,
            max_meta_bytes: 16,
            max_meta_keys: 2,
            max_tag_bytes: 4,
            max_node_bytes: 4,
            max_idempotency_key_bytes: 8,
        }
    }

    fn draft(
        data: &str,
        meta: Option<&str>,
        tag: Option<&str>,
    ) -> Result<RecordDraft, RecordError> {
        let body = Bytes::from(format!("{data}|{}", meta.unwrap_or("")));
        let d = &body[..data.len()];
        let m = meta.map(|m| &body[data.len() + 1..data.len() + 1 + m.len()]);
        let input = RecordInput {
            data: d,
            meta: m,
            tag,
            node: None,
        };
        limits().draft(0, input, &body, None)
    }

    #[test]
    fn compact_bytes_count_against_the_record_limit() {
        assert!(draft(r#"{"a":  1}"#, None, None).is_ok());
        let d = draft(r#"{ "a" : 1 }"#, None, None).unwrap();
        assert_eq!(&d.data[..], br#"{"a":1}"#);
        assert!(matches!(
            draft(r#""0123456789012345678901""#, None, None),
            Err(RecordError::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn meta_limits() {
        assert!(draft("1", Some(r#"{"a":1,"b":2}"#), None).is_ok());
        assert!(matches!(
            draft("1", Some(r#"{"a":1,"b":2,"c":3}"#), None),
            Err(RecordError::Invalid(_))
        ));
        assert!(matches!(
            draft("1", Some(r#""0123456789abcdef""#), None),
            Err(RecordError::Invalid(_))
        ));
    }

    #[test]
    fn tag_and_batch_limits() {
        assert!(draft("1", None, Some("abcd")).is_ok());
        assert!(draft("1", None, Some("abcde")).is_err());
        assert!(limits().check_batch_len(0).is_err());
        assert_eq!(
            limits().check_batch_len(4),
            Err(RecordError::BatchTooLarge { count: 4, max: 3 })
        );
    }

    #[test]
    fn unchanged_data_shares_the_body_buffer() {
        let body = Bytes::from_static(br#"{"x":1}"#);
        let input = RecordInput {
            data: &body[..],
            meta: None,
            tag: None,
            node: None,
        };
        let d = limits().draft(0, input, &body, None).unwrap();
        assert_eq!(d.data.as_ptr(), body.as_ptr());
    }
}
