//! Hostile input through HTTP: random bytes, random JSON of the wrong shape, deep nesting,
//! huge numbers and bad UTF-8 on every body-taking endpoint. Every answer is a 2xx or a 4xx
//! with the canonical error body, and the server keeps serving.

use crate::harness::Server;
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
