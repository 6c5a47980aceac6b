//! The document against a running server: every documented operation, called with its own
//! examples (path and query parameters, request body), is served (not the router's 404/405)
//! and answers a documented status whose body matches the documented schema; a set of
//! error cases answers the documented errors; the document is served byte for byte without
//! a key.

use super::schema::Validator;
use super::{document, operations, resolved, Operation};
use crate::harness::http::Response;
use crate::harness::sse::{Item, SseStream};
use crate::harness::{query_escape, records, Server};
use serde_json::{json, Value};
use std::time::Duration;

/// What the checker needs of an answer: a plain response, or an event stream's first events.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    /// Events of a `text/event-stream` as `{event, data, id?}`, the shape its schema describes.
    events: Vec<Value>,
}

impl From<Response> for Answer {
    fn from(r: Response) -> Answer {
        Answer {
            status: r.status,
            content_type: r.header("content-type").unwrap_or_default().to_string(),
            body: r.body,
            events: Vec::new(),
        }
    }
}

/// Does `a` match a documented response of `op`: its status, its content type, and (strictly)
/// the schema of that media type?
fn check(doc: &Value, op: &Operation, a: &Answer) -> Result<(), String> {
    let name = format!("{} {}", op.method.to_ascii_uppercase(), op.path);
    let text = String::from_utf8_lossy(&a.body);
    let documented = op.op["responses"]
        .get(a.status.to_string())
        .ok_or_else(|| format!("{name}: status {} is not documented; body {text}", a.status))?;
    let essence = a
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let media = resolved(doc, documented)["content"]
        .get(&essence)
        .ok_or_else(|| {
            format!(
                "{name}: {} with undocumented content type {essence:?}",
                a.status
            )
        })?;
    let instances = match essence.as_str() {
        "application/json" => vec![serde_json::from_slice(&a.body)
            .map_err(|e| format!("{name}: {} body is not JSON ({e}): {text}", a.status))?],
        // The schema of an event stream describes each of its events.
        "text/event-stream" => a.events.clone(),
        _ => vec![Value::String(text.to_string())],
    };
    let v = Validator::new(doc, true);
    let errs: Vec<String> = instances
        .iter()
        .flat_map(|i| v.validate(&media["schema"], i))
        .collect();
    match errs.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{name} {}: {}\nbody: {text}",
            a.status,
            errs.join("; ")
        )),
    }
}

/// The concrete path and query of `op`, from its parameters' examples (`wid` overridden).
fn target(op: &Operation, wid: &str) -> String {
    let mut path = op.path.to_string();
    let mut query = Vec::new();
    for p in &op.params {
        let name = p["name"].as_str().expect("parameter name");
        let example = p["example"].as_str().map(str::to_string);
        match p["in"].as_str() {
            Some("path") => {
                let v = if name == "wid" {
                    Some(wid.to_string())
                } else {
                    example
                };
                let v = v
                    .unwrap_or_else(|| panic!("{}: path parameter {name} has no example", op.path));
                path = path.replace(&format!("{{{name}}}"), &query_escape(&v));
            }
            Some("query") if p["required"] == true => {
                let v = example
                    .unwrap_or_else(|| panic!("{}: required {name} has no example", op.path));
                query.push(format!("{name}={}", query_escape(&v)));
            }
            _ => {}
        }
    }
    match query.is_empty() {
        true => path,
        false => format!("{path}?{}", query.join("&")),
    }
}

/// The first example of the JSON request body, if the operation takes one.
fn body_example<'d>(op: &Operation<'d>) -> Option<&'d Value> {
    let media = op
        .op
        .get("requestBody")?
        .get("content")?
        .get("application/json")?;
    media
        .get("example")
        .or_else(|| media["examples"].as_object()?.values().next()?.get("value"))
}

fn streams(op: &Operation) -> bool {
    op.op["responses"]["200"]["content"]
        .get("text/event-stream")
        .is_some()
}

/// Call `op` as its examples describe; an event stream is opened, its first item read, and
/// closed.
fn call(s: &Server, op: &Operation, wid: &str) -> Answer {
    let path = target(op, wid);
    let method = op.method.to_ascii_uppercase();
    if streams(op) {
        return open_stream(s, &path, "text/event-stream");
    }
    match body_example(op) {
        Some(b) => s.send_json(&method, &path, b).into(),
        None => s.req(&method, &path, &[], b"").into(),
    }
}

fn open_stream(s: &Server, path: &str, accept: &str) -> Answer {
    let mut sse = SseStream::open(s.addr, path, &[("Accept", accept)]);
    let content_type = sse.header("content-type").unwrap_or_default().to_string();
    let status = sse.status;
    if status != 200 {
        let body = serde_json::to_vec(&sse.error_json()).unwrap();
        let events = Vec::new();
        return Answer {
            status,
            content_type,
            body,
            events,
        };
    }
    let first = sse.next(Duration::from_secs(10));
    assert_eq!(
        first,
        Ok(Item::Retry(2000)),
        "{path}: the stream opens with its retry"
    );
    // The events the fixtures make due at once (caught-up, jobs), within a bounded wait.
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while events.len() < 3 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match sse.next(left) {
            Ok(Item::Event { event, data, id }) => {
                let mut e = json!({ "event": event, "data": data });
                if let Some(id) = id {
                    e["id"] = json!(id);
                }
                events.push(e);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(!events.is_empty(), "{path}: no event within 2 s");
    let body = Vec::new();
    Answer {
        status,
        content_type,
        body,
        events,
    }
}

/// The topics, queue, router, sink (with the `kafka` feature) and watch session the examples
/// name (`orders`, `emails`, `payments->ledger`, `orders-to-kafka`); returns the session's `wid`.
fn fixtures(s: &Server) -> String {
    s.create("orders", json!({}));
    s.write("orders", records(3));
    s.create("emails", json!({"type": "queue"}));
    s.write("emails", records(3));
    let router = json!({"source": "payments", "dest": "ledger"});
    s.put("/v0/routers/payments-%3Eledger", &router).expect(201);
    s.write("payments", records(2));
    if cfg!(feature = "kafka") {
        // No broker is needed for the sink's answers (it reports `retrying`).
        let sink = json!({"source": "orders", "bootstrap_servers": "127.0.0.1:9",
            "kafka_topic": "orders", "guarantee": "exactly_once"});
        s.put("/v0/sinks/orders-to-kafka", &sink).expect(201);
    }
    s.watch_all(&["orders".to_string()])
}

#[test]
fn every_documented_operation_is_served_and_answers_its_examples_as_documented() {
    let doc = document();
    let s = Server::start();
    let wid = fixtures(&s);
    // What the router itself answers for a path it does not know and a method it does not
    // serve: a documented operation must never get these.
    let no_route = s.get("/v0/no-such-route");
    assert_eq!(no_route.status, 404);
    let no_method = s.req("PATCH", "/v0/topics", &[], b"");
    assert_eq!(no_method.status, 405);
    let mut ops = operations(&doc);
    ops.retain(super::in_this_build);
    // Deletes last, so the other operations find what their examples name.
    ops.sort_by_key(|o| o.method == "delete");
    let mut failures = Vec::new();
    for op in &ops {
        let a = call(&s, op, &wid);
        let name = format!("{} {}", op.method.to_ascii_uppercase(), target(op, &wid));
        assert!(
            !(a.status == 404 && a.body == no_route.body) && a.status != 405,
            "{name} is documented but not served: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        if !(200..300).contains(&a.status) {
            failures.push(format!(
                "{name}: {} {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            ));
        }
        if let Err(e) = check(&doc, op, &a) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The operation whose path template matches `path` (query stripped).
fn find<'d>(ops: &'d [Operation<'d>], method: &str, path: &str) -> &'d Operation<'d> {
    let path = path.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.split('/').collect();
    ops.iter()
        .find(|o| {
            let t: Vec<&str> = o.path.split('/').collect();
            o.method.eq_ignore_ascii_case(method)
                && t.len() == segs.len()
                && t.iter()
                    .zip(&segs)
                    .all(|(t, s)| t == s || t.starts_with('{'))
        })
        .unwrap_or_else(|| panic!("no documented operation for {method} {path}"))
}

/// A request, the status and error code it must get, and the check against the document.
fn expect(doc: &Value, ops: &[Operation], method: &str, path: &str, a: Answer, want: (u16, &str)) {
    let text = String::from_utf8_lossy(&a.body).to_string();
    assert_eq!(a.status, want.0, "{method} {path}: {text}");
    if !want.1.is_empty() {
        let body: Value = serde_json::from_slice(&a.body).unwrap_or_default();
        assert_eq!(body["error"]["code"], want.1, "{method} {path}: {text}");
    }
    if let Err(e) = check(doc, find(ops, method, path), &a) {
        panic!("{e}");
    }
}

/// How a request of the error-case table is sent.
enum Send {
    Empty,
    Json(Value),
    /// Raw bytes with this `Content-Type`.
    Raw(&'static str, Vec<u8>),
    /// No body, with this `Accept`.
    Accept(&'static str),
    /// An event-stream GET with this `Accept`.
    Stream(&'static str),
}

fn send(s: &Server, method: &str, path: &str, how: Send) -> Answer {
    match how {
        Send::Empty => s.req(method, path, &[], b"").into(),
        Send::Json(b) => s.send_json(method, path, &b).into(),
        Send::Raw(ct, b) => s.req(method, path, &[("Content-Type", ct)], &b).into(),
        Send::Accept(a) => s.req(method, path, &[("Accept", a)], b"").into(),
        Send::Stream(accept) => open_stream(s, path, accept),
    }
}

#[test]
fn answers_off_the_happy_path_match_the_documented_responses() {
    let doc = document();
    let ops = operations(&doc);
    let s = Server::start_with(&[], Some("[limits]\nmax_body_bytes = 65536\n"));
    fixtures(&s);
    s.create("full", json!({"cap_records": 1, "discard": "reject"}));
    s.write("full", records(1));
    s.create("capped", json!({"cap_records": 2}));
    s.write("capped", records(5));
    let deep = format!(
        "{{\"records\":[{{\"data\":{}1{}}}]}}",
        "[".repeat(129),
        "]".repeat(129)
    );
    use Send::*;
    let cases: Vec<(&str, &str, Send, (u16, &str))> = vec![
        ("GET", "/v0/topics/absent", Empty, (404, "topic_not_found")),
        ("GET", "/v0/topics/emails", Empty, (200, "")),
        ("GET", "/v0/topics?page_size=1", Empty, (200, "")),
        (
            "GET",
            "/v0/topics?cursor=%25%25",
            Empty,
            (400, "invalid_request"),
        ),
        (
            "PUT",
            "/v0/topics/bad%20name",
            Json(json!({})),
            (400, "invalid_request"),
        ),
        ("PUT", "/v0/topics/fresh", Empty, (201, "")),
        (
            "PUT",
            "/v0/topics/orders",
            Json(json!({"type": "queue"})),
            (409, "topic_exists_incompatible"),
        ),
        (
            "PUT",
            "/v0/topics/q2",
            Json(json!({"type": "queue", "retry_backoff": {"base_ms": 10, "max_ms": 100}})),
            (201, ""),
        ),
        (
            "DELETE",
            "/v0/topics/orders?if_empty=true",
            Empty,
            (409, "topic_not_empty"),
        ),
        ("DELETE", "/v0/topics/never", Empty, (200, "")),
        (
            "POST",
            "/v0/topics/orders",
            Raw("text/plain", b"{}".to_vec()),
            (415, "unsupported_media_type"),
        ),
        (
            "POST",
            "/v0/topics/orders",
            Json(json!({"records": []})),
            (400, "invalid_request"),
        ),
        (
            "POST",
            "/v0/topics/orders",
            Raw("application/json", deep.clone().into_bytes()),
            (400, "invalid_request"),
        ),
        (
            "POST",
            "/v0/topics/orders",
            Raw("application/json", vec![b' '; 70_000]),
            (413, "payload_too_large"),
        ),
        (
            "POST",
            "/v0/topics/absent",
            Json(json!({"records": [{"data": 1}], "create": false})),
            (404, "topic_not_found"),
        ),
        (
            "POST",
            "/v0/topics/full",
            Json(json!({"records": [{"data": 2}]})),
            (422, "topic_full"),
        ),
        (
            "POST",
            "/v0/topics/new1?return_seqs=false",
            Json(json!({"records": [{"data": 1, "tag": "t", "meta": {"m": 1}}]})),
            (201, ""),
        ),
        (
            "POST",
            "/v0/topics/new1",
            Json(json!({"records": [{"data": 1}], "idempotency_key": "k"})),
            (200, ""),
        ),
        (
            "POST",
            "/v0/topics/new1",
            Json(json!({"records": [{"data": 1}], "idempotency_key": "k"})),
            (200, ""),
        ),
        (
            "POST",
            "/v0/topics/capped/diff",
            Json(json!({"include_tags": true})),
            (200, ""),
        ),
        (
            "POST",
            "/v0/topics/new1/diff",
            Json(json!({"include_tags": true, "node": ["x", "y"]})),
            (200, ""),
        ),
        (
            "POST",
            "/v0/topics/absent/diff",
            Empty,
            (404, "topic_not_found"),
        ),
        (
            "POST",
            "/v0/topics/orders/delete",
            Json(json!({})),
            (400, "invalid_request"),
        ),
        (
            "POST",
            "/v0/topics/orders/claim",
            Json(json!({"node": "w"})),
            (409, "not_a_queue"),
        ),
        (
            "POST",
            "/v0/topics/emails/claim",
            Json(json!({"node": "w", "max": 2})),
            (200, ""),
        ),
        (
            "POST",
            "/v0/topics/emails/extend",
            Json(json!({"node": "w", "seqs": [1, 2], "lease_ms": 1000})),
            (200, ""),
        ),
        (
            "POST",
            "/v0/topics/emails/nack",
            Json(json!({"node": "w", "seqs": [2]})),
            (200, ""),
        ),
        (
            "POST",
            "/v0/topics/emails/ack",
            Json(json!({"node": "w", "seqs": (0..1001).collect::<Vec<_>>()})),
            (400, "batch_too_large"),
        ),
        (
            "POST",
            "/v0/topics/emails/ack",
            Json(json!({"node": ""})),
            (400, "invalid_request"),
        ),
        (
            "POST",
            "/v0/topics/absent/nack",
            Json(json!({"node": "w", "seqs": []})),
            (404, "topic_not_found"),
        ),
        (
            "GET",
            "/v0/topics/emails/work?node=w",
            Stream("application/json"),
            (406, "not_acceptable"),
        ),
        (
            "GET",
            "/v0/topics/emails/work",
            Stream("*/*"),
            (400, "invalid_request"),
        ),
        (
            "GET",
            "/v0/topics/orders/work?node=w",
            Stream("*/*"),
            (409, "not_a_queue"),
        ),
        (
            "PUT",
            "/v0/routers/ledger-%3Epayments",
            Json(json!({"source": "ledger", "dest": "payments"})),
            (409, "router_cycle"),
        ),
        (
            "PUT",
            "/v0/routers/x-%3Eledger",
            Json(json!({"source": "x", "dest": "ledger"})),
            (409, "topic_exists_incompatible"),
        ),
        (
            "PUT",
            "/v0/routers/a-%3Eb",
            Json(
                json!({"source": "a", "dest": "b", "filter": ["tag", "Eq", "v"], "guarantee": "exactly_once"}),
            ),
            (201, ""),
        ),
        (
            "PUT",
            "/v0/routers/c-%3Ed",
            Json(json!({"source": "c", "dest": "d", "create_dest": false})),
            (404, "topic_not_found"),
        ),
        (
            "PUT",
            "/v0/routers/c-%3Ed",
            Json(json!({"source": "c", "dest": 1})),
            (400, "invalid_request"),
        ),
        (
            "GET",
            "/v0/routers/absent",
            Empty,
            (404, "router_not_found"),
        ),
        ("GET", "/v0/routers?page_size=1", Empty, (200, "")),
        ("DELETE", "/v0/routers/absent", Empty, (200, "")),
        (
            "POST",
            "/v0/watch",
            Json(json!({"topics": {"absent": {}}})),
            (404, "topic_not_found"),
        ),
        (
            "POST",
            "/v0/watch",
            Json(json!({"topics": {}})),
            (400, "invalid_request"),
        ),
        (
            "POST",
            "/v0/watch?lenient=true",
            Json(json!({"topics": {"absent": {}, "orders": {"tail": true}}})),
            (200, ""),
        ),
        (
            "GET",
            "/v0/watch/wid_nope",
            Stream("text/event-stream"),
            (404, "not_found"),
        ),
        ("GET", "/v0/metrics", Accept("application/json"), (200, "")),
    ];
    for (method, path, how, want) in cases {
        let answer = send(&s, method, path, how);
        expect(&doc, &ops, method, path, answer, want);
    }
}

#[test]
fn the_document_is_served_without_a_key_and_matches_the_source() {
    let doc = document();
    let ops = operations(&doc);
    let s = Server::start_with_keys("all-key,ro-key:read");
    let served = s.get("/v0/openapi.json");
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    assert_eq!(
        served.json(),
        doc,
        "the binary serves src/http/openapi.json"
    );
    expect(
        &doc,
        &ops,
        "GET",
        "/v0/openapi.json",
        served.into(),
        (200, ""),
    );
    // Only the exact GET is open: the path is otherwise an ordinary unknown route.
    let post = s.req("POST", "/v0/openapi.json", &[], b"");
    assert_eq!(post.status, 401, "{}", post.text());
    let cases = [
        ("GET", "/v0/topics", None, (401, "unauthorized")),
        (
            "PUT",
            "/v0/topics/t",
            Some("Bearer ro-key"),
            (403, "forbidden"),
        ),
        ("GET", "/v0/metrics", None, (401, "unauthorized")),
        ("GET", "/v0/health", None, (200, "")),
    ];
    for (method, path, key, want) in cases {
        let headers: Vec<(&str, &str)> = key.map(|k| ("Authorization", k)).into_iter().collect();
        let a = s.req(method, path, &headers, b"").into();
        expect(&doc, &ops, method, path, a, want);
    }
}
