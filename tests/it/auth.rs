//! Bearer API keys, scopes and prefix allowlists (API.md §1) through the real binary: 401
//! vs 403 and their order, scopes per route, allowlists on paths, bodies and listings,
//! watch streams bound to their creating key, `?token=` on the SSE GETs only, startup rules.

use crate::harness::sse::SseStream;
use crate::harness::{assert_error, server::run_to_exit, Server, TempDir};
use serde_json::{json, Value};

const KEYS: &str = "all-key,ro-key:read,w-key:write,rw-key:rw,del-key:delete,adm-key:admin,\
                    t1-key::tenant1:|shared.";

struct Authed {
    s: Server,
    _tmp: TempDir,
}

fn start(extra_config: &str) -> Authed {
    let tmp = TempDir::new();
    let dir = tmp.path().join("data");
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, extra_config).unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ];
    let s = Server::start_raw(&args, &[("TOPICS_API_KEYS", KEYS)], &dir);
    Authed { s, _tmp: tmp }
}

/// One record written to `topic` with `key`; expects 2xx.
fn write_one(s: &Server, key: Option<&str>, topic: &str) -> Value {
    let rec = json!({"records":[{"data":1}]});
    ok(call(
        s,
        key,
        "POST",
        &format!("/v0/topics/{topic}"),
        Some(rec),
    ))
}

/// `call` and check the status.
fn expect(
    s: &Server,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) {
    let r = call(s, key, method, path, body);
    assert_eq!(r.status, status, "{method} {path}: {}", r.text());
}

/// A 2xx answer (a write that creates its topic answers 201).
fn ok(r: crate::harness::http::Response) -> Value {
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
    r.json()
}

fn call(
    s: &Server,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> crate::harness::http::Response {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    s.req(method, path, &headers, bytes.as_bytes())
}

#[test]
fn requests_without_a_valid_bearer_key_get_401_and_probes_stay_open() {
    let a = start("");
    let s = &a.s;
    assert_error(
        &call(s, None, "GET", "/v0/topics", None),
        401,
        "unauthorized",
    );
    assert_error(
        &call(s, Some("nope"), "GET", "/v0/topics", None),
        401,
        "unauthorized",
    );
    let basic = s.req(
        "GET",
        "/v0/topics",
        &[("Authorization", "Basic YWxsLWtleTo=")],
        b"",
    );
    assert_error(&basic, 401, "unauthorized");
    // Unknown routes too: 401 comes before 404.
    assert_error(&call(s, None, "GET", "/v0/nope", None), 401, "unauthorized");
    expect(s, Some("all-key"), "GET", "/v0/nope", None, 404);
    // The write shortcut is behind the same check.
    let w = call(
        s,
        None,
        "POST",
        "/v0/topics/t",
        Some(json!({"records":[{"data":1}]})),
    );
    assert_error(&w, 401, "unauthorized");
    for probe in ["/v0/health", "/healthz", "/v0/ready", "/readyz"] {
        assert_eq!(s.get(probe).status, 200, "{probe}");
    }
    assert_eq!(
        call(s, Some(" all-key "), "GET", "/v0/topics", None).status,
        200,
        "trimmed"
    );
    // No line of the log holds a secret.
    assert!(s
        .logs()
        .iter()
        .all(|l| !l.contains("all-key") && !l.contains("tenant1:|")));
}

#[test]
fn probe_auth_puts_the_probes_behind_any_valid_key() {
    let a = start("[auth]\nprobe_auth = true\n");
    assert_error(&a.s.get("/healthz"), 401, "unauthorized");
    let t0 = std::time::Instant::now();
    while call(&a.s, Some("ro-key"), "GET", "/readyz", None).status != 200 {
        assert!(t0.elapsed().as_secs() < 10, "not ready with a key");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn each_route_needs_its_scope_and_403_comes_before_the_handler() {
    let a = start("");
    let s = &a.s;
    let rec = json!({"records":[{"data":1}]});
    write_one(s, Some("w-key"), "t");
    assert_error(
        &call(s, Some("ro-key"), "POST", "/v0/topics/t", Some(rec)),
        403,
        "forbidden",
    );
    assert_eq!(
        call(
            s,
            Some("ro-key"),
            "POST",
            "/v0/topics/t/diff",
            Some(json!({}))
        )
        .status,
        200
    );
    assert_error(
        &call(
            s,
            Some("w-key"),
            "POST",
            "/v0/topics/t/diff",
            Some(json!({})),
        ),
        403,
        "forbidden",
    );
    // 403 before the handler's 404.
    assert_error(
        &call(s, Some("w-key"), "GET", "/v0/topics/missing", None),
        403,
        "forbidden",
    );
    assert_error(
        &call(s, Some("ro-key"), "PUT", "/v0/topics/x", Some(json!({}))),
        403,
        "forbidden",
    );
    expect(
        s,
        Some("adm-key"),
        "PUT",
        "/v0/topics/x",
        Some(json!({})),
        201,
    );
    assert_error(
        &call(s, Some("rw-key"), "DELETE", "/v0/topics/x", None),
        403,
        "forbidden",
    );
    expect(s, Some("del-key"), "DELETE", "/v0/topics/x", None, 200);
    // Queues: claim needs read and write, ack write.
    call(
        s,
        Some("adm-key"),
        "PUT",
        "/v0/topics/q",
        Some(json!({"type":"queue"})),
    )
    .expect(201);
    let claim = json!({"node":"w"});
    assert_error(
        &call(
            s,
            Some("w-key"),
            "POST",
            "/v0/topics/q/claim",
            Some(claim.clone()),
        ),
        403,
        "forbidden",
    );
    expect(
        s,
        Some("rw-key"),
        "POST",
        "/v0/topics/q/claim",
        Some(claim),
        200,
    );
    // Routers: PUT needs admin.
    let r = json!({"source":"a","dest":"b"});
    assert_error(
        &call(s, Some("rw-key"), "PUT", "/v0/routers/r", Some(r.clone())),
        403,
        "forbidden",
    );
    expect(s, Some("adm-key"), "PUT", "/v0/routers/r", Some(r), 201);
}

#[test]
fn a_write_that_would_create_a_topic_with_a_config_needs_admin() {
    let a = start("");
    let s = &a.s;
    let body = json!({"config":{"durability":"fsync"},"records":[{"data":1}]});
    let r = call(
        s,
        Some("w-key"),
        "POST",
        "/v0/topics/new",
        Some(body.clone()),
    );
    assert_eq!(
        assert_error(&r, 403, "forbidden")["detail"],
        json!({"topic":"new"})
    );
    assert_eq!(
        call(s, Some("all-key"), "GET", "/v0/topics/new", None).status,
        404,
        "nothing created"
    );
    ok(call(
        s,
        Some("all-key"),
        "POST",
        "/v0/topics/new",
        Some(body.clone()),
    ));
    // Once the topic exists, the same write needs only write.
    expect(s, Some("w-key"), "POST", "/v0/topics/new", Some(body), 200);
}

#[test]
fn prefix_allowlists_apply_to_paths_bodies_and_listings() {
    let a = start("");
    let s = &a.s;
    let k = Some("t1-key");
    let rec = json!({"records":[{"data":1}]});
    write_one(s, k, "tenant1:a");
    write_one(s, k, "shared.x");
    let r = call(s, k, "POST", "/v0/topics/tenant2:a", Some(rec.clone()));
    assert_eq!(
        assert_error(&r, 403, "forbidden")["detail"],
        json!({"topic":"tenant2:a"})
    );
    write_one(s, Some("all-key"), "other");
    let names: Vec<Value> = call(s, k, "GET", "/v0/topics", None).expect(200)["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].clone())
        .collect();
    assert_eq!(names, [json!("shared.x"), json!("tenant1:a")]);
    // Watch bodies: every topic checked.
    let w = json!({"topics":{"tenant1:a":{},"other":{}}});
    let e = assert_error(&call(s, k, "POST", "/v0/watch", Some(w)), 403, "forbidden");
    assert_eq!(e["detail"], json!({"topic":"other"}));
    // Routers: source and dest on PUT; listing shows only routers wholly inside.
    let r = json!({"source":"tenant1:a","dest":"other"});
    let e = assert_error(
        &call(s, k, "PUT", "/v0/routers/tenant1:r", Some(r)),
        403,
        "forbidden",
    );
    assert_eq!(e["detail"], json!({"topic":"other"}));
    call(
        s,
        k,
        "PUT",
        "/v0/routers/tenant1:r",
        Some(json!({"source":"tenant1:a","dest":"tenant1:b"})),
    )
    .expect(201);
    call(
        s,
        Some("all-key"),
        "PUT",
        "/v0/routers/tenant1:x",
        Some(json!({"source":"other","dest":"tenant1:c"})),
    )
    .expect(201);
    let listed: Vec<Value> = call(s, k, "GET", "/v0/routers", None).expect(200)["routers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["router"].clone())
        .collect();
    assert_eq!(listed, [json!("tenant1:r")]);
    assert_error(
        &call(s, k, "GET", "/v0/routers/tenant1:x", None),
        403,
        "forbidden",
    );
    assert_error(
        &call(s, k, "DELETE", "/v0/routers/tenant1:x", None),
        403,
        "forbidden",
    );
    // A queue's dead-letter topic must be allowed too.
    let q = json!({"type":"queue","dead_letter":"elsewhere"});
    assert_error(
        &call(s, k, "PUT", "/v0/topics/tenant1:q", Some(q)),
        403,
        "forbidden",
    );
}

#[test]
fn a_watch_stream_opens_only_with_its_creating_key_header_or_token() {
    let a = start("");
    let s = &a.s;
    write_one(s, Some("all-key"), "t");
    let wid = call(
        s,
        Some("ro-key"),
        "POST",
        "/v0/watch",
        Some(json!({"topics":{"t":{}}})),
    )
    .expect(200)["wid"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v0/watch/{wid}");
    assert_eq!(SseStream::open(s.addr, &path, &[]).status, 401);
    assert_eq!(
        SseStream::open(s.addr, &path, &[("Authorization", "Bearer all-key")]).status,
        401,
        "another valid key"
    );
    let mut ok = SseStream::open(s.addr, &format!("{path}?token=ro-key"), &[]);
    assert_eq!(ok.status, 200);
    let (event, _, _) = ok.next_event(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(event, "record");
    assert_eq!(
        SseStream::open(s.addr, &path, &[("Authorization", "Bearer ro-key")]).status,
        200
    );
    // ?token= counts only on the SSE GETs.
    assert_error(&s.get("/v0/topics?token=all-key"), 401, "unauthorized");
    call(
        s,
        Some("adm-key"),
        "PUT",
        "/v0/topics/q",
        Some(json!({"type":"queue"})),
    )
    .expect(201);
    assert_eq!(
        SseStream::open(s.addr, "/v0/topics/q/work?node=w&token=rw-key", &[]).status,
        200
    );
}

#[test]
fn startup_refuses_unknown_scopes_and_unauthenticated_public_binds() {
    let tmp = TempDir::new();
    let dir = tmp.path().join("d");
    let mut cmd = crate::harness::server::command();
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ])
    .env("TOPICS_API_KEYS", "k:read+fly");
    let (status, _, err) = run_to_exit(cmd);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("unknown scope"), "{err}");
    let mut cmd = crate::harness::server::command();
    cmd.args(["--listen", "0.0.0.0:0", "--data-dir", dir.to_str().unwrap()]);
    let (status, _, err) = run_to_exit(cmd);
    assert!(
        !status.success() && err.contains("without authentication"),
        "{err}"
    );
}

/// Per-key caps (API.md §10): concurrent requests per key (SSE GETs excluded) and open streams per
/// key (a watch stream counts for its session's creator) answer 429 with Retry-After 1.
#[test]
fn per_key_request_and_stream_caps_answer_429() {
    let a = start("[limits]\nmax_inflight_per_key = 1\nmax_sse_connections_per_key = 1\n");
    let s = &a.s;
    write_one(s, Some("all-key"), "t");
    std::thread::scope(|sc| {
        // One long-poll holds all-key's only request slot for a while.
        let held = sc.spawn(|| {
            call(
                s,
                Some("all-key"),
                "POST",
                "/v0/topics/t/diff",
                Some(json!({"from_seq":1,"wait_ms":1500})),
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(400));
        let r = call(s, Some("all-key"), "GET", "/v0/topics", None);
        assert_error(&r, 429, "throttled");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(
            call(s, Some("ro-key"), "GET", "/v0/topics", None).status,
            200,
            "other keys pass"
        );
        assert_eq!(held.join().unwrap().status, 200);
    });
    assert_eq!(
        call(s, Some("all-key"), "GET", "/v0/topics", None).status,
        200,
        "slot freed"
    );
    // Streams: the second stream of a key is refused; the request slot is not taken by them.
    let wid = ok(call(
        s,
        Some("ro-key"),
        "POST",
        "/v0/watch",
        Some(json!({"topics":{"t":{}}})),
    ))["wid"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v0/watch/{wid}?token=ro-key");
    let first = SseStream::open(s.addr, &path, &[]);
    assert_eq!(first.status, 200);
    assert_eq!(SseStream::open(s.addr, &path, &[]).status, 429);
    expect(s, Some("ro-key"), "GET", "/v0/topics", None, 200);
    drop(first);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        SseStream::open(s.addr, &path, &[]).status,
        200,
        "slot freed when the stream ended"
    );
    // Each refusal is counted by its cap in /v0/metrics.
    let text = call(s, Some("all-key"), "GET", "/v0/metrics", None).text();
    for cap in ["max_inflight_per_key", "max_sse_connections_per_key"] {
        let line = format!("topics_http_throttled_total{{limit=\"{cap}\"}} 1\n");
        assert!(text.contains(&line), "{line} in {text}");
    }
}

/// A prefix-limited key sees per-topic metric series of its own names only.
#[test]
fn metrics_per_topic_series_follow_the_key_prefixes() {
    let a = start("");
    let s = &a.s;
    write_one(s, Some("all-key"), "tenant1:a");
    write_one(s, Some("all-key"), "other");
    let all = call(s, Some("all-key"), "GET", "/v0/metrics", None).text();
    assert!(all.contains("topic=\"other\"") && all.contains("topic=\"tenant1:a\""));
    let mine = call(s, Some("t1-key"), "GET", "/v0/metrics", None).text();
    assert!(
        mine.contains("topic=\"tenant1:a\"") && !mine.contains("topic=\"other\""),
        "{mine}"
    );
}
