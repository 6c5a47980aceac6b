//! Byte-level helpers for JSON that has already been validated by the parser. Records are kept
//! as raw bytes; these functions avoid ever building a `Value` for them.

use std::borrow::Cow;

/// Strip insignificant whitespace from valid JSON text. Returns the input unchanged (borrowed)
/// when it is already compact, which is the common case for machine-written bodies.
pub fn compact(raw: &[u8]) -> Cow<'_, [u8]> {
    if !has_outside_whitespace(raw) {
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
    // serde_json's escaping is correct and fast; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
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
