//! Hostile input through HTTP: random bytes, random JSON of the wrong shape, deep nesting,
//! huge numbers and bad UTF-8 on every body-taking endpoint. Every answer is a 2xx or a 4xx
//! with the canonical error body, and the server keeps serving.

use crate::harness::{assert_error, data_of, Server};
use proptest::prelude::*;
use serde_json::Value;

const ENDPOINTS: [(&str, &str); 4] = [
    ("POST", "/v0/topics/h"),
    ("POST", "/v0/topics/h/diff"),
    ("POST", "/v0/topics/h/delete"),
    ("PUT", "/v0/topics/h"),
];

fn check(s: &Server, method: &str, path: &str, body: &[u8]) {
    let r = s.req(method, path, &[("Content-Type", "application/json")], body);
    assert!(
        r.status < 500 && r.status >= 200,
        "{method} {path}: {} {}",
        r.status,
        r.text()
    );
    if r.status >= 400 {
        let v: Value = serde_json::from_slice(&r.body).expect("error body is JSON");
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{v}"
        );
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("records".to_string()),
                    Just("data".to_string()),
                    Just("from_seq".to_string()),
                    Just("limit".to_string()),
                    Just("match".to_string()),
                    Just("before_seq".to_string()),
                    Just("ttl_ms".to_string()),
                    Just("node".to_string()),
                    "[a-z_]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn random_bodies_never_break_the_server() {
    let s = Server::start();
    s.write("h", serde_json::json!([{ "data": 1, "tag": "t" }]));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 150,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(
                prop::collection::vec(any::<u8>(), 0..64),
                arb_json(),
                0..ENDPOINTS.len(),
            ),
            |(bytes, json, e)| {
                let (method, path) = ENDPOINTS[e];
                check(&s, method, path, &bytes);
                check(&s, method, path, &serde_json::to_vec(&json).unwrap());
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(s.get("/v0/health").status, 200);
}

#[test]
fn pathological_json_gets_a_4xx() {
    let s = Server::start();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies: Vec<Vec<u8>> = vec![
        format!(r#"{{"records":[{{"data":{deep}}}]}}"#).into_bytes(),
        format!(r#"{{"from_seq":{deep}}}"#).into_bytes(),
        br#"{"from_seq":1e400}"#.to_vec(),
        br#"{"from_seq":184467440737095516160}"#.to_vec(),
        br#"{"records":[{"data":"\ud800"}]}"#.to_vec(),
        b"{\"records\":[{\"data\":\"\xff\xfe\"}]}".to_vec(),
        br#"{"records":[{"data":1}]} trailing"#.to_vec(),
        br#"{"records":[{"data":1}],"records":[]}"#.to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
    ];
    for body in &bodies {
        for (method, path) in ENDPOINTS {
            check(&s, method, path, body);
        }
    }
    assert_eq!(s.get("/v0/health").status, 200);
}

/// The write shortcut takes a plain topic segment; a percent-escaped one (`h%2Dx` is `h-x`)
/// goes through the router. Both must apply the same rules.
const WRITE_PATHS: [&str; 2] = ["/v0/topics/h-x", "/v0/topics/h%2Dx"];

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"k":"#.repeat(depth), "}".repeat(depth))
}

fn write_raw(s: &Server, path: &str, record: &str) -> crate::harness::http::Response {
    s.send_raw_json(
        "POST",
        path,
        format!(r#"{{"records":[{record}]}}"#).as_bytes(),
    )
}

/// A 400 `invalid_request` whose `detail.limit` names the JSON rule that was broken.
#[track_caller]
fn assert_refused(resp: &crate::harness::http::Response, limit: &str) {
    let err = assert_error(resp, 400, "invalid_request");
    assert_eq!(err["detail"]["limit"], limit, "{err}");
}

#[test]
fn record_data_and_meta_nest_128_levels_but_not_129() {
    let s = Server::start();
    s.create("h-x", serde_json::json!({}));
    for path in WRITE_PATHS {
        for value in [nested(128), nested_objects(128)] {
            write_raw(&s, path, &format!(r#"{{"data":{value}}}"#)).expect(200);
            write_raw(&s, path, &format!(r#"{{"data":1,"meta":{value}}}"#)).expect(200);
        }
        for value in [nested(129), nested_objects(129)] {
            let data = format!(r#"{{"data":{value}}}"#);
            assert_refused(&write_raw(&s, path, &data), "json_depth");
            let meta = format!(r#"{{"data":1,"meta":{value}}}"#);
            assert_refused(&write_raw(&s, path, &meta), "json_depth");
        }
    }
    // Read as text: the response wraps each record in three more levels, past the 127 that
    // serde_json (this test's own parser) accepts by default.
    let resp = s.send_raw_json("POST", "/v0/topics/h-x/diff", br#"{"include_meta":true}"#);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let text = resp.text();
    assert_eq!(
        text.matches(r#""$seq""#).count(),
        8,
        "only the accepted writes"
    );
    assert!(text.contains(&nested(128)) && text.contains(&nested_objects(128)));
}

/// A number literal of exactly `chars` characters.
fn number(chars: usize) -> String {
    format!("-1.{}e+5", "0".repeat(chars - 6))
}

#[test]
fn number_literals_of_100_chars_are_stored_and_101_refused() {
    let s = Server::start();
    s.create("h-x", serde_json::json!({}));
    for path in WRITE_PATHS {
        write_raw(&s, path, &format!(r#"{{"data":[{}]}}"#, number(100))).expect(200);
        let meta = format!(r#"{{"data":1,"meta":{{"n":{}}}}}"#, number(100));
        write_raw(&s, path, &meta).expect(200);
        let data = format!(r#"{{"data":[{}]}}"#, number(101));
        assert_refused(&write_raw(&s, path, &data), "json_number_chars");
        let meta = format!(r#"{{"data":1,"meta":{{"n":{}}}}}"#, number(101));
        assert_refused(&write_raw(&s, path, &meta), "json_number_chars");
    }
    let d = s.diff("h-x", serde_json::json!({ "include_meta": true }));
    assert_eq!(d["records"].as_array().map(Vec::len), Some(4));
    // Other bodies: a long literal is refused by the limit, not by the field's type.
    let diff = format!(r#"{{"from_seq":{}}}"#, "1".repeat(101));
    assert_refused(
        &s.send_raw_json("POST", "/v0/topics/h-x/diff", diff.as_bytes()),
        "json_number_chars",
    );
}

#[test]
fn lone_surrogates_are_refused_on_every_body_path() {
    let s = Server::start();
    s.create("h-x", serde_json::json!({}));
    for path in WRITE_PATHS {
        for record in [
            r#"{"data":"\ud800"}"#,
            r#"{"data":{"\udfff":1}}"#,
            r#"{"data":["x\ud83dy"]}"#,
            r#"{"data":1,"meta":{"m":"\udc00"}}"#,
        ] {
            assert_refused(&write_raw(&s, path, record), "json_lone_surrogate");
        }
        // A field the write ignores is checked too: nothing the server accepts holds one.
        let body = br#"{"records":[{"data":1}],"extra":"\ud800"}"#;
        assert_refused(&s.send_raw_json("POST", path, body), "json_lone_surrogate");
        write_raw(&s, path, r#"{"data":"\ud83d\ude00"}"#).expect(200);
    }
    for (method, path, body) in [
        ("PUT", "/v0/topics/h-x", r#"{"dead_letter":"\ud800"}"#),
        ("PUT", "/v0/topics/new", r#"{"ttl_ms":0,"note":"\ud800"}"#),
        ("POST", "/v0/topics/h-x/diff", r#"{"node":"\udbff"}"#),
        (
            "POST",
            "/v0/topics/h-x/delete",
            r#"{"match":["tag","Eq","\ud800"]}"#,
        ),
    ] {
        let resp = s.send_raw_json(method, path, body.as_bytes());
        assert_refused(&resp, "json_lone_surrogate");
    }
    assert_error(&s.get("/v0/topics/new"), 404, "topic_not_found");
    let d = s.diff("h-x", serde_json::json!({}));
    let data = data_of(&d);
    assert_eq!(
        data,
        [&Value::from("😀"), &Value::from("😀")],
        "only the pairs were stored"
    );
}
