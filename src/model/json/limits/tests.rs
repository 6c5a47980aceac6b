use super::*;
use proptest::prelude::*;

/// `depth` copies of `open` around a `1`, then `depth` copies of `close`.
fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

fn number(chars: usize) -> String {
    format!("-1.{}e+5", "0".repeat(chars.saturating_sub(6)))
}

#[test]
fn depth_128_passes_and_129_is_refused() {
    // (opener, closer, levels each pair adds)
    for (open, close, levels) in [("[", "]", 1), ("{\"k\":", "}", 1), ("[{\"k\":", "}]", 2)] {
        let ok = nested(MAX_DEPTH as usize / levels, open, close);
        assert_eq!(check(ok.as_bytes(), 0), Ok(()), "{open}");
        let deep = format!("[{ok}]");
        assert!(
            matches!(
                check(deep.as_bytes(), 0),
                Err(LimitError::TooDeep { max: 128, .. })
            ),
            "{open}"
        );
    }
}

#[test]
fn the_envelope_levels_do_not_count_against_the_value() {
    let data = nested(128, "[", "]");
    let body = format!(r#"{{"records":[{{"data":{data}}}]}}"#);
    assert_eq!(check(body.as_bytes(), 3), Ok(()));
    assert!(check(body.as_bytes(), 2).is_err());
    let deeper = format!(r#"{{"records":[{{"data":[{data}]}}]}}"#);
    assert!(check(deeper.as_bytes(), 3).is_err());
}

#[test]
fn siblings_do_not_add_up_to_depth() {
    let one = nested(128, "[", "]");
    let many = format!("[{}]", vec![nested(127, "[", "]"); 50].join(","));
    assert_eq!(check(one.as_bytes(), 0), Ok(()));
    assert_eq!(check(many.as_bytes(), 0), Ok(()));
}

#[test]
fn brackets_and_digits_inside_strings_do_not_count() {
    let s = format!(
        r#"{{"a":"{}{}","b":"\"[[[{}"}}"#,
        "[".repeat(500),
        "1".repeat(500),
        "\u{7b}".repeat(300) // opening braces, escaped to keep this file balanced for tools
    );
    assert_eq!(check(s.as_bytes(), 0), Ok(()));
    // An escaped backslash ends its escape: the quote after it closes the string.
    let s = format!(r#"["\\",{}]"#, nested(200, "[", "]"));
    assert!(check(s.as_bytes(), 0).is_err());
}

#[test]
fn number_of_100_chars_passes_and_101_is_refused() {
    for len in [1, 99, 100] {
        let n = number(len);
        assert_eq!(n.len(), len.max(6));
        assert_eq!(check(n.as_bytes(), 0), Ok(()), "{len}");
        assert_eq!(check(format!("[{n},{n}]").as_bytes(), 0), Ok(()));
    }
    for text in [
        number(101),
        "1".repeat(101),
        format!(r#"{{"k":[true,{}]}}"#, "9".repeat(100_000)),
    ] {
        assert!(
            matches!(
                check(text.as_bytes(), 0),
                Err(LimitError::NumberTooLong { max: 100, .. })
            ),
            "{}",
            &text[..20]
        );
    }
}

#[test]
fn surrogate_pairs_pass_and_lone_surrogates_are_refused() {
    for ok in [
        r#""\ud83d\ude00""#,
        r#""\uD83D\uDE00""#,
        r#""\u00e9\u20ac\uffff""#,
        r#""\\ud800""#, // an escaped backslash, then plain text
        r#"{"\ud83d\ude00":1}"#,
    ] {
        assert_eq!(check(ok.as_bytes(), 0), Ok(()), "{ok}");
    }
    for lone in [
        r#""\ud800""#,
        r#""\udc00""#,
        r#""\uDBFF""#,
        r#""x\ud800y""#,
        r#""\ud800\u0041""#,
        r#""\ud800\n""#,
        r#""\udc00\ud800""#,
        r#"{"\ud800":1}"#,
        r#"["ok","\\\ud800"]"#,
        r#""\ud800"#,
    ] {
        assert!(
            matches!(
                check(lone.as_bytes(), 0),
                Err(LimitError::LoneSurrogate { .. })
            ),
            "{lone}"
        );
    }
}

#[test]
fn quotes_and_backslashes_are_found_at_every_chunk_position() {
    for pad in 0..20 {
        let filler = "a".repeat(pad);
        let closed = format!(r#"["{filler}",{}]"#, nested(200, "[", "]"));
        assert!(check(closed.as_bytes(), 0).is_err(), "pad {pad}");
        let escaped = format!(r#"["{filler}\ud800"]"#);
        assert!(check(escaped.as_bytes(), 0).is_err(), "pad {pad}");
        let quoted = format!(r#"["{filler}\"]]]]{}"]"#, "]".repeat(pad));
        assert_eq!(check(quoted.as_bytes(), 0), Ok(()), "pad {pad}");
    }
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(raw in prop::collection::vec(any::<u8>(), 0..300), env in 0u32..4) {
        let _ = check(&raw, env);
    }

    #[test]
    fn agrees_with_a_nesting_count_of_parsed_json(v in arb_json()) {
        let text = serde_json::to_string(&v).unwrap();
        let depth = depth_of(&v);
        prop_assert_eq!(check(text.as_bytes(), 0).is_ok(), depth <= MAX_DEPTH);
    }
}

fn depth_of(v: &serde_json::Value) -> u32 {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// Values nested around the limit, with strings that hold brackets, quotes and escapes.
fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[\\[\\]{}\"\\\\a\u{e9}\u{1F600}]{0,8}".prop_map(serde_json::Value::from),
    ];
    (leaf, 120usize..136, any::<bool>()).prop_map(|(leaf, depth, objects)| {
        (0..depth).fold(leaf, |inner, i| {
            if objects && i % 2 == 0 {
                serde_json::json!({ "k\"[": inner })
            } else {
                serde_json::json!([inner, "]"])
            }
        })
    })
}
