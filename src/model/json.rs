//! Byte-level helpers for JSON that has already been validated by the parser. Records are kept
//! as raw bytes; these functions avoid ever building a `Value` for them. `limits` is the one
//! check that runs before the parser: the nesting, number and surrogate rules.

pub mod limits;
pub mod records;

use std::borrow::Cow;

/// The top-level pairs of a JSON object in their order, or `None` when `raw` is not one.
pub fn object_pairs(raw: &[u8]) -> Option<Vec<(String, Box<serde_json::value::RawValue>)>> {
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde_json::value::RawValue;
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, Box<RawValue>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(pair) = map.next_entry::<String, Box<RawValue>>()? {
                out.push(pair);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    de.deserialize_map(Pairs).ok()
}

/// Strip insignificant whitespace from valid JSON text. Returns the input unchanged (borrowed)
/// when it is already compact, which is the common case for machine-written bodies.
pub fn compact(raw: &[u8]) -> Cow<'_, [u8]> {
    if !any_whitespace(raw) || !has_outside_whitespace(raw) {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !is_ws(b) {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
    Cow::Owned(out)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Branch-free over the whole slice, so it vectorizes: the cheap test that settles most
/// records before the string-aware scan.
fn any_whitespace(raw: &[u8]) -> bool {
    raw.iter().fold(false, |seen, &b| seen | is_ws(b))
}

fn has_outside_whitespace(raw: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if is_ws(b) {
            return true;
        }
    }
    false
}

/// Append `s` as a JSON string literal (with quotes and escapes) to `out`.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // Most names need no escaping (JSON escapes only controls, `"` and `\\`): copy them as
    // they are; otherwise serde_json's escaping (writing to a Vec cannot fail).
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Append a duration in milliseconds as a decimal with microsecond resolution (`1.234`):
/// the `performance` fields, on every response, without general float formatting.
pub fn push_millis(out: &mut Vec<u8>, ms: f64) {
    let us = if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0).round() as u64
    } else {
        0
    };
    push_u64(out, us / 1000);
    let frac = us % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// Append an unsigned integer in decimal.
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Append a signed integer in decimal.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compact_strips_whitespace_outside_strings_only() {
        let raw = br#" { "a" : [1, 2],	"b":"x y \" z" } "#;
        assert_eq!(&*compact(raw), br#"{"a":[1,2],"b":"x y \" z"}"#);
        assert!(matches!(compact(b"{\"a\":1}"), Cow::Borrowed(_)));
    }

    #[test]
    fn compact_handles_escaped_backslash_before_quote() {
        let raw = br#"["a\\", "b"]"#;
        assert_eq!(&*compact(raw), br#"["a\\","b"]"#);
    }

    #[test]
    fn strings_render_like_serde() {
        for s in [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "ctl\u{1}\n",
            "ünï/cødé",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn millis_render_as_fixed_three_decimals() {
        for (ms, text) in [
            (0.0, "0.000"),
            (0.0004, "0.000"),
            (0.0126, "0.013"),
            (1.5, "1.500"),
            (12345.678, "12345.678"),
            (-3.0, "0.000"),
            (f64::NAN, "0.000"),
        ] {
            let mut out = Vec::new();
            push_millis(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), text);
            assert!(serde_json::from_str::<f64>(text).is_ok());
        }
    }

    #[test]
    fn integers_render_like_std() {
        for v in [0u64, 1, 9, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
        for v in [0i64, -1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            push_i64(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
    }

    proptest! {
        #[test]
        fn compact_equals_serde_reserialization(v in arb_json()) {
            let pretty = serde_json::to_vec_pretty(&v).unwrap();
            let compact_ref = serde_json::to_vec(&v).unwrap();
            prop_assert_eq!(compact(&pretty).into_owned(), compact_ref);
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[ -~\\\\\"\\t\\n]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z \\\"]{0,5}", inner, 0..5)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
