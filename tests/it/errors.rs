//! Error surface (API.md §1, API.md §1, API.md §1): routing 404/405, media type 415, parse/type 400,
//! bad names, 413 — all with the canonical `{"error":{"code","message",...}}` body.

use crate::harness::*;
use serde_json::json;

const JSON: (&str, &str) = ("Content-Type", "application/json");

// ---- routing ----

#[test]
fn unknown_routes_are_404_not_found() {
    let s = Server::start();
    s.create("t", json!({}));
    // `GET /` is the web console (tests/it/console.rs).
    for (method, path) in [
        ("GET", "/index.html"),
        ("GET", "/nope"),
        ("GET", "/v0"),
        ("GET", "/v0/nope"),
        ("GET", "/v1/topics"),
        ("POST", "/v0/topics/t/bogus"),
        ("GET", "/v0/topics/t/diff/extra"),
        ("GET", "/v0/topics/t/bogus/deeper"),
        ("PATCH", "/v0/nope"),
        ("DELETE", "/nope"),
    ] {
        let resp = s.req(method, path, &[JSON], b"{}");
        assert_error(&resp, 404, "not_found");
    }
}

#[test]
fn wrong_method_on_known_path_is_405_method_not_allowed() {
    let s = Server::start();
    s.create("t", json!({}));
    for (method, path) in [
        ("PATCH", "/v0/topics/t"),
        ("POST", "/v0/topics"),
        ("DELETE", "/v0/topics"),
        ("PUT", "/v0/topics"),
        ("GET", "/v0/topics/t/diff"),
        ("PUT", "/v0/topics/t/diff"),
        ("DELETE", "/v0/topics/t/diff"),
        ("POST", "/v0/health"),
        ("DELETE", "/v0/ready"),
        ("POST", "/healthz"),
        ("PUT", "/readyz"),
    ] {
        let resp = s.req(method, path, &[JSON], b"{}");
        assert_error(&resp, 405, "method_not_allowed");
    }
    // Nothing was changed by the rejected requests.
    assert_eq!(s.state("t")["head_seq"], 0);
}

// ---- media type and empty bodies (API.md §1) ----

#[test]
fn body_without_json_content_type_is_415() {
    let s = Server::start();
    s.create("t", json!({}));
    let rec = br#"{"records":[{"data":1}]}"#;
    for headers in [
        vec![],
        vec![("Content-Type", "text/plain")],
        vec![("Content-Type", "application/x-www-form-urlencoded")],
    ] {
        assert_error(
            &s.req("POST", "/v0/topics/t", &headers, rec),
            415,
            "unsupported_media_type",
        );
        assert_error(
            &s.req("PUT", "/v0/topics/t", &headers, b"{}"),
            415,
            "unsupported_media_type",
        );
        assert_error(
            &s.req("POST", "/v0/topics/t/diff", &headers, b"{}"),
            415,
            "unsupported_media_type",
        );
    }
    assert_eq!(s.state("t")["head_seq"], 0, "a 415 write appends nothing");
    assert_eq!(s.state("t")["config"], default_config());
}

#[test]
fn json_content_type_with_parameters_is_accepted() {
    let s = Server::start();
    let ct = ("Content-Type", "application/json; charset=utf-8");
    s.req("PUT", "/v0/topics/t", &[ct], b"{}").expect(201);
    s.req(
        "POST",
        "/v0/topics/t",
        &[ct],
        br#"{"records":[{"data":1}]}"#,
    )
    .expect(200);
    let d = s.req("POST", "/v0/topics/t/diff", &[ct], b"{}").expect(200);
    assert_eq!(seqs_of(&d), vec![1]);
}

#[test]
fn empty_body_means_empty_object_only_for_put_topic_and_diff() {
    let s = Server::start();
    // PUT and diff: empty body is `{}`, with or without a JSON content type.
    s.req("PUT", "/v0/topics/a", &[], b"").expect(201);
    s.req("PUT", "/v0/topics/b", &[JSON], b"").expect(201);
    s.req("POST", "/v0/topics/a/diff", &[], b"").expect(200);
    s.req("POST", "/v0/topics/a/diff", &[JSON], b"").expect(200);
    // Write: an empty body is parsed normally: 415 without a JSON type, else 400.
    assert_error(
        &s.req("POST", "/v0/topics/a", &[], b""),
        415,
        "unsupported_media_type",
    );
    assert_error(
        &s.req("POST", "/v0/topics/a", &[JSON], b""),
        400,
        "invalid_request",
    );
    assert_eq!(s.state("a")["head_seq"], 0);
}

// ---- parse errors ----

#[test]
fn malformed_json_is_400_invalid_request_everywhere() {
    let s = Server::start();
    s.create("t", json!({}));
    let bodies: [&[u8]; 8] = [
        b"{",
        b"{\"records\":",
        b"{} x",
        b"{}{}",
        b"{'a':1}",
        b"{\"records\":[{\"data\":\"\xff\"}]}",
        b"\xef\xbb\xbf\xff{}",
        b"{\"a\":1,}",
    ];
    for body in bodies {
        let shown = String::from_utf8_lossy(body);
        for (method, path) in [
            ("PUT", "/v0/topics/t"),
            ("POST", "/v0/topics/t"),
            ("POST", "/v0/topics/t/diff"),
        ] {
            let resp = s.req(method, path, &[JSON], body);
            assert_eq!(
                resp.status,
                400,
                "{method} {path} {shown:?}: {}",
                resp.text()
            );
            assert_error(&resp, 400, "invalid_request");
        }
    }
    assert_eq!(s.state("t")["head_seq"], 0);
}

#[test]
fn non_object_top_level_json_is_400() {
    let s = Server::start();
    s.create("t", json!({}));
    for body in ["null", "\"s\"", "1", "[]", "[{\"data\":1}]", "true"] {
        for (method, path) in [
            ("PUT", "/v0/topics/t"),
            ("POST", "/v0/topics/t"),
            ("POST", "/v0/topics/t/diff"),
        ] {
            let resp = s.req(method, path, &[JSON], body.as_bytes());
            assert_eq!(resp.status, 400, "{method} {path} {body}: {}", resp.text());
            assert_error(&resp, 400, "invalid_request");
        }
    }
}

#[test]
fn wrong_field_types_in_topic_config_are_400() {
    let s = Server::start();
    s.create("t", json!({"priority": 1}));
    for cfg in [
        json!({"ttl_ms": "1"}),
        json!({"ttl_ms": -1}),
        json!({"ttl_ms": 1.5}),
        json!({"ttl_ms": 18446744073709551616.0f64}),
        json!({"cap_records": true}),
        json!({"durable": "yes"}),
        json!({"durable": 1}),
        json!({"durability": "FSYNC"}),
        json!({"durability": 3}),
        json!({"type": "Log"}),
        json!({"discard": "newest"}),
        json!({"priority": 1.5}),
        json!({"priority": "high"}),
        json!({"priority": 2147483648u64}),
        json!({"priority": -2147483649i64}),
        json!({"auto_create": "false"}),
        json!({"dead_letter": 5}),
        json!({"lease_ms": -100}),
    ] {
        let resp = s.put("/v0/topics/t", &cfg);
        assert_eq!(resp.status, 400, "{cfg}: {}", resp.text());
        assert_error(&resp, 400, "invalid_request");
    }
    assert_eq!(
        s.state("t")["config"],
        config_with(json!({"priority": 1})),
        "rejected PUTs change nothing"
    );
}

#[test]
fn u64_fields_accept_the_full_range_and_reject_beyond() {
    let s = Server::start();
    let max = json!({"ttl_ms": u64::MAX});
    assert_eq!(
        s.put("/v0/topics/t", &max).expect(201)["config"]["ttl_ms"],
        u64::MAX
    );
    let over = br#"{"ttl_ms":18446744073709551616}"#;
    assert_error(
        &s.send_raw_json("PUT", "/v0/topics/t", over),
        400,
        "invalid_request",
    );
    let priority_edges = json!({"priority": i32::MIN});
    assert_eq!(
        s.put("/v0/topics/t", &priority_edges).expect(200)["config"]["priority"],
        i32::MIN
    );
}

#[test]
fn wrong_field_types_in_diff_are_400() {
    let s = Server::start();
    s.write("t", records(2));
    for raw in [
        r#"{"from_seq":-1}"#,
        r#"{"from_seq":1.5}"#,
        r#"{"from_seq":"1"}"#,
        r#"{"from_seq":18446744073709551616}"#,
        r#"{"limit":-1}"#,
        r#"{"limit":2.5}"#,
        r#"{"limit":4294967296}"#,
        r#"{"wait_ms":-5}"#,
        r#"{"wait_ms":0.5}"#,
        r#"{"wait_ms":4294967296}"#,
        r#"{"max_batch_bytes":-1}"#,
        r#"{"include_tags":"true"}"#,
        r#"{"include_meta":1}"#,
        r#"{"node":5}"#,
        r#"{"node":[1]}"#,
        r#"{"node":{"a":1}}"#,
    ] {
        let resp = s.send_raw_json("POST", "/v0/topics/t/diff", raw.as_bytes());
        assert_eq!(resp.status, 400, "{raw}: {}", resp.text());
        assert_error(&resp, 400, "invalid_request");
    }
}

#[test]
fn diff_ignores_unknown_fields() {
    let s = Server::start();
    s.write("t", records(2));
    let d = s.diff("t", json!({"from_seq": 1, "colour": "blue", "cursor": "x"}));
    assert_eq!(seqs_of(&d), vec![2]);
}

// ---- names ----

#[test]
fn bad_topic_names_on_put_are_400_invalid_request_not_routing_errors() {
    let s = Server::start();
    let long = "x".repeat(256);
    for name in [
        "a%2Fb", // decoded `/` is a name byte, not a path separator
        "a%2fb",
        "a%20b",  // space
        "%C3%A9", // non-ASCII
        "caf%C3%A9",
        "a%3Eb",   // `>` is a router-only byte
        "a%252Fb", // decoded once: `a%2Fb` contains `%`
        "-a",
        "_a",
        ".a",
        ":a",
        "a*",
        "a%00b",
        long.as_str(),
    ] {
        let resp = s.req("PUT", &format!("/v0/topics/{name}"), &[], b"");
        assert_eq!(resp.status, 400, "PUT {name}: {}", resp.text());
        assert_error(&resp, 400, "invalid_request");
    }
    assert_eq!(s.get("/v0/topics").expect(200)["topics"], json!([]));
}

// ---- 413 ----

#[test]
fn oversized_body_is_413_payload_too_large_and_applies_nothing() {
    let s = Server::start_with(&[], Some("[limits]\nmax_body_bytes = 1000\n"));
    let big = serde_json::to_vec(&json!({"records": [{"data": "x".repeat(2000)}]})).unwrap();
    assert_error(
        &s.send_raw_json("POST", "/v0/topics/t", &big),
        413,
        "payload_too_large",
    );
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
    let big_cfg = serde_json::to_vec(&json!({"dead_letter": "x".repeat(2000)})).unwrap();
    assert_error(
        &s.send_raw_json("PUT", "/v0/topics/t", &big_cfg),
        413,
        "payload_too_large",
    );
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
    s.write("t", records(1));
    let big_diff = serde_json::to_vec(&json!({"node": "n".repeat(2000)})).unwrap();
    assert_error(
        &s.send_raw_json("POST", "/v0/topics/t/diff", &big_diff),
        413,
        "payload_too_large",
    );
    assert_error(
        &s.send_raw_json("POST", "/v0/topics/t", &big),
        413,
        "payload_too_large",
    );
    assert_eq!(s.state("t")["head_seq"], 1);
}

#[test]
fn body_of_exactly_max_body_bytes_is_accepted() {
    let s = Server::start_with(&[], Some("[limits]\nmax_body_bytes = 1000\n"));
    let prefix = br#"{"records":[{"data":""#;
    let suffix = br#""}]}"#;
    let mut body = prefix.to_vec();
    body.extend(std::iter::repeat_n(
        b'x',
        1000 - prefix.len() - suffix.len(),
    ));
    body.extend_from_slice(suffix);
    assert_eq!(body.len(), 1000);
    s.send_raw_json("POST", "/v0/topics/t", &body).expect(201);
    body.insert(prefix.len(), b'x');
    assert_error(
        &s.send_raw_json("POST", "/v0/topics/t", &body),
        413,
        "payload_too_large",
    );
}

#[test]
fn large_oversized_body_gets_a_413_response_not_a_reset() {
    let s = Server::start_with(&[], Some("[limits]\nmax_body_bytes = 1000\n"));
    // Far larger than socket buffers: the server must read and discard the rest.
    let big = serde_json::to_vec(&json!({"records": [{"data": "x".repeat(4 << 20)}]})).unwrap();
    assert_error(
        &s.send_raw_json("POST", "/v0/topics/t", &big),
        413,
        "payload_too_large",
    );
    // The server is still healthy afterwards.
    s.write("t", records(1));
}

#[test]
fn default_max_body_bytes_is_64_mib() {
    let s = Server::start();
    // 65 MiB of JSON whitespace around a valid body: over the default limit.
    let mut body = vec![b' '; 65 << 20];
    body.extend_from_slice(br#"{"records":[{"data":1}]}"#);
    assert_error(
        &s.send_raw_json("POST", "/v0/topics/t", &body),
        413,
        "payload_too_large",
    );
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
}

// ---- content types of responses ----

#[test]
fn success_and_error_responses_are_application_json() {
    let s = Server::start();
    for resp in [
        s.req("PUT", "/v0/topics/t", &[], b""),
        s.get("/v0/topics/t"),
        s.get("/v0/topics"),
        s.post("/v0/topics/t", &json!({"records": [{"data": 1}]})),
        s.post("/v0/topics/t/diff", &json!({})),
        s.delete("/v0/topics/t"),
        s.get("/v0/health"),
        s.get("/v0/ready"),
        s.get("/v0/nope"),
        s.req("PATCH", "/v0/topics/t", &[], b""),
    ] {
        assert!(
            resp.is_json(),
            "status {} content-type {:?}",
            resp.status,
            resp.header("content-type")
        );
        resp.json();
    }
}

#[test]
fn lookups_of_undecodable_names_are_not_found_not_bad_requests() {
    let s = Server::start();
    assert_error(&s.get("/v0/topics/%FF"), 404, "topic_not_found");
    let r = s.req("POST", "/v0/topics/%FF/diff", &[], b"");
    assert_error(&r, 404, "topic_not_found");
    assert_eq!(s.delete("/v0/topics/%FF").expect(200)["deleted"], false);
    assert_error(
        &s.put("/v0/topics/%FF", &serde_json::json!({})),
        400,
        "invalid_request",
    );
}

#[test]
fn create_false_on_absent_topic_is_404_even_with_a_bad_inline_config() {
    let s = Server::start();
    let body = serde_json::json!({ "create": false, "config": { "dead_letter": "bad name" },
        "records": [{ "data": 1 }] });
    assert_error(&s.post("/v0/topics/absent", &body), 404, "topic_not_found");
}

/// Writes reach the server by two paths (a hand-matched shortcut for plain names, axum's router
/// for percent-escaped ones): both validate names alike and address the same topic.
#[test]
fn writes_with_plain_and_escaped_names_validate_and_land_alike() {
    let s = Server::start();
    let one = json!({"records": [{"data": 1}]});
    for name in [
        "-a", "_a", ".a", ":a", "a*", "a%20b", "a%2Fb", "%C3%A9", "a%3Eb",
    ] {
        let resp = s.post(&format!("/v0/topics/{name}"), &one);
        assert_error(&resp, 400, "invalid_request");
    }
    assert_eq!(s.get("/v0/topics").expect(200)["topics"], json!([]));
    let first = s.post("/v0/topics/a%2Eb", &one).expect(201);
    assert_eq!(first["topic"], "a.b");
    let second = s.post("/v0/topics/a.b", &one).expect(200);
    assert_eq!(second["seqs"], json!([2]));
    assert_eq!(s.get("/v0/topics/a%2Eb").expect(200)["count"], 2);
}
