//! Liveness and readiness probes (API.md §8, API.md §8) and their root aliases.

use crate::harness::*;
use serde_json::json;

#[test]
fn health_and_healthz_report_ok_version_and_uptime() {
    let s = Server::start();
    let mut last_uptime = 0;
    for path in ["/v0/health", "/healthz", "/v0/health"] {
        let resp = s.get(path);
        let body = resp.expect(200);
        assert!(resp.is_json(), "{path}");
        assert_eq!(body["status"], "ok", "{path}: {body}");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"), "{path}: {body}");
        let uptime = body["uptime_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("{path}: uptime_ms: {body}"));
        assert!(uptime >= last_uptime, "uptime_ms must not go backwards");
        assert!(uptime < 600_000, "uptime of a fresh server: {uptime}");
        last_uptime = uptime;
        assert!(
            body.get("performance").is_none(),
            "probes carry no performance: {body}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    let later = s.get("/healthz").expect(200)["uptime_ms"].as_u64().unwrap();
    assert!(
        later >= last_uptime + 20,
        "uptime_ms advances: {later} vs {last_uptime}"
    );
}

#[test]
fn ready_and_readyz_report_ready_with_topic_count() {
    let s = Server::start();
    for path in ["/v0/ready", "/readyz"] {
        let body = s.get(path).expect(200);
        assert_eq!(
            body,
            json!({"status": "ready", "wal_replay_complete": true, "topics": 0,
                   "detail": {"corrupt_records": 0, "corrupt_segments": 0, "disk_full": false}}),
            "{path}"
        );
    }
    s.create("a", json!({}));
    s.write("b", records(1));
    s.create("c", json!({"durability": "ephemeral"}));
    for path in ["/v0/ready", "/readyz"] {
        let body = s.get(path).expect(200);
        assert_eq!(body["status"], "ready");
        assert_eq!(body["wal_replay_complete"], true);
        assert_eq!(body["topics"], 3, "{path}: {body}");
        assert!(body.get("performance").is_none());
    }
    s.delete("/v0/topics/a").expect(200);
    assert_eq!(s.get("/readyz").expect(200)["topics"], 2);
}

#[test]
fn probes_ignore_query_strings_and_authorization_headers() {
    let s = Server::start();
    s.get("/healthz?x=1").expect(200);
    let resp = s.req(
        "GET",
        "/v0/ready",
        &[("Authorization", "Bearer nonsense")],
        b"",
    );
    assert_eq!(resp.expect(200)["status"], "ready");
}

#[test]
fn ready_topic_count_survives_restart() {
    let mut s = Server::start();
    s.create("a", json!({"durability": "ephemeral"}));
    s.create("b", json!({"durability": "fsync"}));
    s.restart();
    assert_eq!(s.get("/v0/ready").expect(200)["topics"], 2);
}

/// SIGHUP neither kills the server nor stops it serving; SIGTERM afterwards still drains
/// and exits 0.
#[test]
fn sighup_is_ignored_and_logged() {
    let mut s = Server::start();
    s.write("t", serde_json::json!([{"data": 1}]));
    let pid = s.pid().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    let t0 = std::time::Instant::now();
    while !s.logs().iter().any(|l| l.contains("SIGHUP ignored")) {
        assert!(t0.elapsed().as_secs() < 5, "no SIGHUP log line");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(s.read_all("t").len(), 1);
    assert!(s.sigterm().success());
}

/// One access-log line per request with its id (the client's X-Request-Id when given, echoed
/// in the response), `?token=` values redacted; `server.access_log = false` turns it off.
#[test]
fn every_request_gets_an_id_and_an_access_log_line() {
    let s = Server::start();
    let r = s.req("GET", "/v0/topics", &[("X-Request-Id", "req-42")], b"");
    assert_eq!(r.header("x-request-id"), Some("req-42"));
    let made_up = s.get("/v0/health");
    let id = made_up.header("x-request-id").expect("an id").to_string();
    s.get("/v0/watch/wid_nope?token=sekrit-value&x=1");
    let t0 = std::time::Instant::now();
    let line = |needle: &str| {
        s.logs()
            .into_iter()
            .find(|l| l.contains(" access: ") && l.contains(needle))
    };
    while line(&id).is_none() || line("wid_nope").is_none() {
        assert!(
            t0.elapsed().as_secs() < 5,
            "no access lines: {:?}",
            s.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let l = line("req-42").expect("the line of the first request");
    assert!(
        l.contains("/v0/topics") && l.contains("200") && l.contains("bytes="),
        "{l}"
    );
    let w = line("wid_nope").unwrap();
    assert!(w.contains("token=REDACTED") && w.contains("404"), "{w}");
    assert!(s.logs().iter().all(|l| !l.contains("sekrit-value")));

    let quiet = Server::start_with(&[], Some("[server]\naccess_log = false\n"));
    let r = quiet.get("/v0/topics");
    assert!(r.header("x-request-id").is_some(), "ids stay on");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        quiet.logs().iter().all(|l| !l.contains(" access: ")),
        "{:?}",
        quiet.logs()
    );
}
