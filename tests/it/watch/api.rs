//! `POST /v0/watch` and `GET /v0/watch/:wid`: validation, check order, caps, headers,
//! reclamation.

use super::{open, watch, T};
use crate::harness::sse::{Item, SseStream};
use crate::harness::{assert_error, Server};
use serde_json::json;
use std::time::Duration;

#[test]
fn watch_post_resolves_cursors_and_answers_the_contract_shape() {
    let s = Server::start();
    s.write(
        "orders",
        json!([{ "data": 1 }, { "data": 2 }, { "data": 3 }]),
    );
    s.write("payments", json!([{ "data": 1 }]));
    let body = json!({ "topics": { "orders": { "from_seq": 1 }, "payments": { "tail": true, "from_seq": 0 } },
                       "consistency": "strong", "unknown_field": 1 });
    let r = watch(&s, body);
    let wid = r["wid"].as_str().unwrap();
    assert!(wid.starts_with("wid_") && wid.len() == 26, "{wid}");
    assert_eq!(r["stream_url"], format!("/v0/watch/{wid}"));
    assert_eq!(r["session_ttl_ms"], 300000);
    assert_eq!(
        r["topics"],
        json!({ "orders": { "from_seq": 1, "head_seq": 3, "earliest_seq": 1 },
                "payments": { "from_seq": 1, "head_seq": 1, "earliest_seq": 1 } })
    );
    assert!(r["performance"]["server_total_ms"].as_f64().is_some());
    let other = watch(&s, json!({ "topics": { "orders": {} } }));
    assert_ne!(other["wid"], r["wid"]);
}

#[test]
fn watch_post_rejects_bad_bodies_then_unknown_topics_unless_lenient() {
    let s = Server::start_with(&[], Some("[watch]\nmax_watch_topics = 2\n"));
    s.write("a", json!([{ "data": 1 }]));
    let no_type = s.req("POST", "/v0/watch", &[], br#"{"topics":{"a":{}}}"#);
    assert_error(&no_type, 415, "unsupported_media_type");
    for bad in [
        json!({}),
        json!({ "topics": {} }),
        json!({ "topics": { "a": {}, "b": {}, "c": {} } }),
        json!({ "topics": { "a": 1 } }),
        json!({ "topics": { "a": { "from_seq": -1 } } }),
        json!({ "topics": { "a": {} }, "consistency": "linear" }),
        json!({ "topics": { "a": {} }, "limit": 1.5 }),
    ] {
        assert_error(&s.post("/v0/watch", &bad), 400, "invalid_request");
    }
    // Too many topics is counted as sent, before lenient drops any.
    let three = json!({ "topics": { "a": {}, "x": {}, "y": {} } });
    assert_error(
        &s.post("/v0/watch?lenient=true", &three),
        400,
        "invalid_request",
    );
    let missing = json!({ "topics": { "a": {}, "nope": {} } });
    let err = assert_error(&s.post("/v0/watch", &missing), 404, "topic_not_found");
    assert_eq!(err["detail"], json!({ "topic": "nope" }));
    let r = s.post("/v0/watch?lenient=1", &missing).expect(200);
    assert_eq!(
        r["topics"],
        json!({ "a": { "from_seq": 0, "head_seq": 1, "earliest_seq": 1 } })
    );
}

#[test]
fn watch_session_cap_answers_429_after_topic_checks() {
    let s = Server::start_with(&[], Some("[limits]\nmax_watch_sessions = 1\n"));
    s.write("a", json!([{ "data": 1 }]));
    watch(&s, json!({ "topics": { "a": {} } }));
    let full = s.post("/v0/watch", &json!({ "topics": { "a": {} } }));
    let err = assert_error(&full, 429, "throttled");
    assert_eq!(full.header("retry-after"), Some("1"));
    assert_eq!(
        err["detail"],
        json!({ "limit": "max_watch_sessions", "max": 1 })
    );
    let missing = s.post("/v0/watch", &json!({ "topics": { "zz": {} } }));
    assert_error(&missing, 404, "topic_not_found");
}

#[test]
fn watch_get_checks_accept_then_wid_then_stream_cap() {
    let s = Server::start_with(&[], Some("[limits]\nmax_sse_connections = 1\n"));
    s.write("a", json!([{ "data": 1 }]));
    let wid = watch(&s, json!({ "topics": { "a": {} } }))["wid"]
        .as_str()
        .unwrap()
        .to_string();
    let json_only = [("Accept", "application/json")];
    let r = s.req("GET", "/v0/watch/wid_unknown", &json_only, b"");
    assert_error(&r, 406, "not_acceptable");
    assert_error(
        &s.req("GET", &format!("/v0/watch/{wid}"), &json_only, b""),
        406,
        "not_acceptable",
    );
    for unknown in [
        "/v0/watch/wid_unknown",
        "/v0/watch/%FF%00bad",
        "/v0/watch/x",
    ] {
        assert_error(&s.get(unknown), 404, "not_found");
    }
    assert_error(
        &s.req("POST", &format!("/v0/watch/{wid}"), &[], b""),
        405,
        "method_not_allowed",
    );
    // Accept absent, `*/*` and a list naming text/event-stream are all fine.
    let mut first = SseStream::open(s.addr, &format!("/v0/watch/{wid}"), &[]);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("text/event-stream"));
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert_eq!(first.header("x-accel-buffering"), Some("no"));
    assert_eq!(first.next(T), Ok(Item::Retry(2000)));
    let capped = s.req(
        "GET",
        &format!("/v0/watch/{wid}"),
        &[("Accept", "*/*")],
        b"",
    );
    assert_error(&capped, 429, "throttled");
    assert_eq!(capped.header("retry-after"), Some("1"));
    assert_error(&s.get("/v0/watch/wid_unknown"), 404, "not_found");
    drop(first);
    // The slot frees when the server notices the closed connection.
    let accept = [("Accept", "text/html, text/event-stream;q=0.9")];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sse = SseStream::open(s.addr, &format!("/v0/watch/{wid}"), &accept);
        if sse.status == 200 {
            break;
        }
        assert_eq!(sse.status, 429);
        assert_eq!(sse.error_json()["error"]["code"], "throttled");
        assert!(
            std::time::Instant::now() < deadline,
            "stream slot never freed"
        );
        s.write("a", json!([{ "data": 2 }])); // a write makes the old stream notice the close
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_watch_session_is_reclaimed_but_a_streaming_one_is_not() {
    let s = Server::start_with(&[], Some("[watch]\nsession_ttl_ms = 300\n"));
    s.write("a", json!([{ "data": 1 }]));
    let idle = watch(&s, json!({ "topics": { "a": {} } }));
    assert_eq!(idle["session_ttl_ms"], 300);
    let busy = watch(&s, json!({ "topics": { "a": {} } }));
    let mut stream = open(&s, busy["wid"].as_str().unwrap(), &[]);
    std::thread::sleep(Duration::from_millis(600));
    watch(&s, json!({ "topics": { "a": {} } })); // reclamation runs on POST
    let r = s.get(&format!("/v0/watch/{}", idle["wid"].as_str().unwrap()));
    assert_error(&r, 404, "not_found");
    s.write("a", json!([{ "data": 2 }]));
    let (event, _, _) = stream.next_event(T).unwrap();
    assert_eq!(event, "record", "the streaming session is alive");
}
