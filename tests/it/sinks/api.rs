//! The sink endpoints: status codes, the canonical error body for bad fields and refused
//! properties, redaction, the re-point rule, listing, DELETE, the `admin` scope and the name
//! allowlist, and persistence of the definition across a restart.

use super::{path, sink_body};
use crate::harness::{assert_error, Server};
use serde_json::{json, Value};

/// No broker listens here: the sink stays `retrying`, which these tests do not need.
const NOWHERE: &str = "127.0.0.1:9";

#[test]
fn put_get_list_delete_and_a_restart_keep_the_definition() {
    let mut s = Server::start();
    let body = sink_body(
        "orders",
        NOWHERE,
        "orders-out",
        json!({"key": "tag", "properties": {"sasl.password": "hunter2",
            "security.protocol": "SASL_PLAINTEXT", "message.timeout.ms": "3000"}}),
    );
    let put = s.put(&path("s1"), &body).expect(201);
    for (k, want) in [
        ("sink", json!("s1")),
        ("source", json!("orders")),
        ("kafka_topic", json!("orders-out")),
        ("key", json!("tag")),
        ("guarantee", json!("at_least_once")),
        ("progress_topic", json!("__topics_sink_progress")),
        ("batch_max_records", json!(500)),
        ("from_seq", json!(0)),
        ("cursor", json!(0)),
    ] {
        assert_eq!(put[k], want, "{k}: {put}");
    }
    assert_eq!(put["properties"]["sasl.password"], "<redacted>");
    assert_eq!(put["properties"]["security.protocol"], "SASL_PLAINTEXT");
    assert!(
        s.state("orders")["head_seq"].is_u64(),
        "the source was created"
    );
    let again = s.put(&path("s1"), &body).expect(200);
    assert_eq!(again["created"], false);
    s.write("orders", json!([{"data": 1}, {"data": 2}]));
    let got = s.get(&path("s1")).expect(200);
    assert_eq!(got["lag"], 2);
    assert!(["running", "retrying"].contains(&got["state"].as_str().unwrap()));
    assert!(!got.to_string().contains("hunter2"), "{got}");
    let listed = s.get("/v0/sinks").expect(200);
    assert_eq!(listed["sinks"][0]["sink"], "s1");
    assert_eq!(listed["sinks"][0]["lag"], 2);
    s.restart();
    let got = s.get(&path("s1")).expect(200);
    assert_eq!(
        (got["kafka_topic"].clone(), got["key"].clone()),
        (json!("orders-out"), json!("tag"))
    );
    assert_eq!(got["properties"]["sasl.password"], "<redacted>");
    let del = s.delete(&path("s1")).expect(200);
    assert_eq!(del["deleted"], true);
    assert_error(&s.get(&path("s1")), 404, "sink_not_found");
    assert_eq!(s.delete(&path("s1")).expect(200)["deleted"], false);
    s.restart();
    assert_error(&s.get(&path("s1")), 404, "sink_not_found");
    assert!(!s.data_dir().join("sinks/s1.json").exists());
}

#[test]
fn bad_fields_and_refused_properties_get_the_canonical_400() {
    let s = Server::start();
    let good = sink_body("src", NOWHERE, "out", json!({}));
    let cases = [
        (json!({"kafka_topic": "no/slash"}), "kafka_topic"),
        (json!({"bootstrap_servers": 5}), "bootstrap_servers"),
        (json!({"guarantee": "maybe"}), "guarantee"),
        (json!({"key": 7}), "key"),
        (json!({"batch_max_records": 0}), "batch_max_records"),
        (
            json!({"properties": {"transactional.id": "mine"}}),
            "properties",
        ),
        (
            json!({"properties": {"enable.idempotence": "false"}}),
            "properties",
        ),
        (
            json!({"properties": {"isolation.level": "read_uncommitted"}}),
            "properties",
        ),
    ];
    for (extra, field) in cases {
        let mut b = good.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        let err = assert_error(&s.put(&path("s"), &b), 400, "invalid_request");
        assert_eq!(err["detail"]["field"], field, "{extra}");
    }
    let mut no_source = good.clone();
    no_source.as_object_mut().unwrap().remove("source");
    assert_error(&s.put(&path("s"), &no_source), 400, "invalid_request");
    assert_error(
        &s.put("/v0/sinks/bad%20name", &good),
        400,
        "invalid_request",
    );
    assert_error(&s.get(&path("none")), 404, "sink_not_found");
    assert_eq!(s.get("/v0/sinks").expect(200)["sinks"], json!([]));
}

#[test]
fn a_re_put_may_not_repoint_the_sink() {
    let s = Server::start();
    s.put(&path("s"), &sink_body("a", NOWHERE, "out", json!({})))
        .expect(201);
    for (extra, field) in [
        (json!({"source": "b"}), "source"),
        (json!({"kafka_topic": "other"}), "kafka_topic"),
        (json!({"guarantee": "exactly_once"}), "guarantee"),
    ] {
        let mut b = sink_body("a", NOWHERE, "out", json!({}));
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        let err = assert_error(&s.put(&path("s"), &b), 409, "topic_exists_incompatible");
        assert_eq!(err["detail"]["reason"], "sink_repoint_forbidden");
        assert_eq!(err["detail"]["field"], field);
        assert_eq!(err["detail"]["existing_source"], "a");
    }
    let relinger = sink_body("a", NOWHERE, "out", json!({"linger_ms": 50}));
    assert_eq!(s.put(&path("s"), &relinger).expect(200)["linger_ms"], 50);
}

const KEYS: &str = "adm-key:admin,rw-key:rw,t1-key:admin:tenant1:";

fn authed() -> Server {
    Server::start_with_keys(KEYS)
}

fn call(
    s: &Server,
    key: &str,
    method: &str,
    p: &str,
    body: Option<&Value>,
) -> crate::harness::http::Response {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("Authorization", auth.as_str())];
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    s.req(method, p, &headers, bytes.as_bytes())
}

#[test]
fn every_sink_route_needs_admin_and_the_allowlist_covers_name_and_source() {
    let s = authed();
    let body = sink_body("tenant1:src", NOWHERE, "out", json!({}));
    for (method, b) in [("PUT", Some(&body)), ("GET", None), ("DELETE", None)] {
        assert_error(
            &call(&s, "rw-key", method, "/v0/sinks/tenant1:s", b),
            403,
            "forbidden",
        );
    }
    assert_error(
        &call(&s, "rw-key", "GET", "/v0/sinks", None),
        403,
        "forbidden",
    );
    assert_error(&s.get("/v0/sinks"), 401, "unauthorized");
    let err = assert_error(
        &call(&s, "t1-key", "PUT", "/v0/sinks/other", Some(&body)),
        403,
        "forbidden",
    );
    assert_eq!(err["detail"]["sink"], "other");
    let foreign = sink_body("elsewhere", NOWHERE, "out", json!({}));
    let err = assert_error(
        &call(&s, "t1-key", "PUT", "/v0/sinks/tenant1:s", Some(&foreign)),
        403,
        "forbidden",
    );
    assert_eq!(err["detail"]["topic"], "elsewhere");
    call(&s, "t1-key", "PUT", "/v0/sinks/tenant1:s", Some(&body)).expect(201);
    call(&s, "adm-key", "PUT", "/v0/sinks/b", Some(&foreign)).expect(201);
    let mine = call(&s, "t1-key", "GET", "/v0/sinks", None).expect(200);
    let names: Vec<&Value> = mine["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["sink"])
        .collect();
    assert_eq!(names, [&json!("tenant1:s")]);
    assert_eq!(
        call(&s, "adm-key", "GET", "/v0/sinks", None).expect(200)["sinks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
