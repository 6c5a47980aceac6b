//! Topic admin (`ls`, `stat`, `create`, `rm`), the key from `TOPICS_TOKEN`, a `429` waited
//! out by `write`, usage errors and every subcommand's help.

use super::{cli, run, run_with_stdin};
use crate::harness::{records, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn create_stat_ls_and_rm_manage_topics() {
    let s = Server::start();
    let (status, out, err) = run(cli(&s, &["create", "orders", "--class", "fsync"]));
    assert!(status.success(), "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            created["created"].as_bool(),
            &created["config"]["durability"]
        ),
        (Some(true), &json!("fsync"))
    );
    assert!(
        created.get("performance").is_none(),
        "timings are left out: {out}"
    );

    let (status, _, err) = run(cli(&s, &["create", "orders"]));
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("error: topic_exists:"), "{err}");
    assert_eq!(
        s.state("orders")["config"]["durability"],
        "fsync",
        "an existing topic is untouched"
    );

    let cfg = r#"{"max_deliveries":5,"dead_letter":"jobs.dead"}"#;
    let (status, _, err) = run(cli(&s, &["create", "jobs", "--queue", "--config", cfg]));
    assert!(status.success(), "{err}");
    let jobs = s.state("jobs");
    assert_eq!(
        (&jobs["type"], &jobs["config"]["max_deliveries"]),
        (&json!("queue"), &json!(5))
    );

    s.write("orders", records(2));
    let (status, out, _) = run(cli(&s, &["stat", "orders"]));
    assert!(status.success());
    let st: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (st["head_seq"].as_u64(), st["count"].as_u64()),
        (Some(2), Some(2))
    );

    let (status, out, _) = run(cli(&s, &["ls", "--json"]));
    assert!(status.success());
    let names: Vec<String> = super::json_lines(&out)
        .iter()
        .map(|t| t["topic"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["jobs", "orders"]);
    let (_, table, _) = run(cli(&s, &["ls"]));
    assert!(
        table.starts_with("TOPIC") && table.contains("orders"),
        "{table}"
    );

    let (status, _, err) = run(cli(&s, &["rm", "orders", "--if-empty"]));
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("error: topic_not_empty:"), "{err}");
    let (status, out, _) = run(cli(&s, &["rm", "orders"]));
    assert!(status.success());
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["deleted"],
        true
    );
    let (status, _, err) = run(cli(&s, &["stat", "orders"]));
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("error: topic_not_found:"), "{err}");
}

#[test]
fn usage_errors_exit_2_and_https_is_refused_with_the_way_out() {
    let s = Server::start();
    let (status, _, err) = run(cli(&s, &["ls", "--url", "https://example.com"]));
    assert_eq!(status.code(), Some(2));
    assert!(
        err.contains("https is not supported") && err.contains("SSH tunnel"),
        "{err}"
    );
    let (status, _, _) = run(cli(&s, &["tail"]));
    assert_eq!(
        status.code(),
        Some(2),
        "a missing TOPIC is a clap usage error"
    );
    let (status, _, err) = run(cli(&s, &["create", "t", "--config", "[1]"]));
    assert_eq!(status.code(), Some(2), "{err}");
}

#[test]
fn every_client_subcommand_has_help_with_an_example_and_the_connection_env_vars() {
    for sub in [
        "write", "tail", "watch", "work", "ls", "stat", "create", "rm",
    ] {
        let mut cmd = crate::harness::server::command();
        cmd.args([sub, "--help"]);
        let (status, out, err) = run(cmd);
        assert!(status.success(), "{sub} --help: {err}");
        assert!(
            out.contains("Example"),
            "{sub} --help has no example:\n{out}"
        );
        assert!(
            out.contains("TOPICS_URL") && out.contains("TOPICS_TOKEN"),
            "{sub}:\n{out}"
        );
    }
}

const AUTH: &str = "[auth]\napi_keys = [\"sekret\"]\n\n[limits]\nmax_inflight_per_key = 1\n";

#[test]
fn the_key_comes_from_topics_token() {
    let s = Server::start_with(&[], Some(AUTH));
    let (status, _, err) = run_with_stdin(cli(&s, &["write", "t"]), b"1\n");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("error: unauthorized:"), "{err}");
    let mut cmd = cli(&s, &["write", "t"]);
    cmd.env("TOPICS_TOKEN", "sekret");
    let (status, _, err) = run_with_stdin(cmd, b"1\n2\n");
    assert!(status.success(), "{err}");
    let mut cmd = cli(&s, &["tail", "t"]);
    cmd.env("TOPICS_TOKEN", "sekret");
    let (status, out, _) = run(cmd);
    assert!(status.success());
    assert_eq!(super::seqs(&super::json_lines(&out)), vec![1, 2]);
}

/// With one request per key allowed, a long-poll holding the slot makes the write's first
/// attempts `429 throttled`; the write waits `Retry-After` and gets through once it ends.
#[test]
fn write_waits_out_429_with_retry_after() {
    let s = Server::start_with(&[], Some(AUTH));
    let hdr = [
        ("Authorization", "Bearer sekret"),
        ("Content-Type", "application/json"),
    ];
    let put = s.req("PUT", "/v0/topics/held", &hdr, b"{}");
    assert_eq!(put.status, 201, "{}", put.text());
    let addr = s.addr;
    let holder = std::thread::spawn(move || {
        let body = br#"{"from_seq":0,"wait_ms":1500}"#;
        crate::harness::http::request(addr, "POST", "/v0/topics/held/diff", &hdr, body).status
    });
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let mut cmd = cli(&s, &["write", "t"]);
    cmd.env("TOPICS_TOKEN", "sekret");
    let (status, _, err) = run_with_stdin(cmd, b"{\"x\":1}\n");
    assert!(status.success(), "{err}");
    assert_eq!(holder.join().unwrap(), 200);
    assert!(
        err.contains("throttled") && err.contains("retrying in 1000 ms"),
        "{err}"
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let mut cmd = cli(&s, &["stat", "t"]);
    cmd.env("TOPICS_TOKEN", "sekret");
    let (_, out, _) = run(cmd);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["head_seq"], 1);
}
