//! `topics tail`: records exactly as the server sends them, `--from` starts after a seq,
//! `--follow` prints later writes (long-poll or watch), and a tombstone is one `gap:` line on
//! stderr with its exact range (exit 3 with `--fail-on-gap`).

use super::{cli, json_lines, run, seqs, Running};
use crate::harness::{records, Server};
use serde_json::json;
use std::time::Duration;

#[test]
fn tail_prints_the_history_or_what_follows_from() {
    let s = Server::start();
    s.write(
        "t",
        json!([{"data": {"a": 1}, "meta": {"m": true}}, {"data": 2}, {"data": [3]}]),
    );
    let (status, out, err) = run(cli(&s, &["tail", "t"]));
    assert!(status.success(), "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines, s.read_all("t"), "records as the diff answers them");
    let (status, out, err) = run(cli(&s, &["tail", "t", "--from", "1", "--limit", "1"]));
    assert!(status.success(), "{err}");
    assert_eq!(seqs(&json_lines(&out)), vec![2, 3]);
    assert!(err.is_empty(), "no gap, nothing on stderr: {err}");
}

#[test]
fn tail_of_a_missing_topic_fails_with_the_servers_error() {
    let s = Server::start();
    let (status, out, err) = run(cli(&s, &["tail", "nope"]));
    assert_eq!(status.code(), Some(1));
    assert!(out.is_empty());
    assert!(
        err.contains("error: topic_not_found: no topic named \"nope\""),
        "{err}"
    );
}

fn follow_prints_only_later_writes(extra: &[&str]) {
    let s = Server::start();
    s.write("t", records(3));
    let mut args = vec!["tail", "t", "--follow"];
    args.extend_from_slice(extra);
    let tail = Running::spawn(cli(&s, &args));
    // The follower starts at the head it reads first (a GET of the topic's state).
    super::eventually(
        "the follower read the head",
        Duration::from_secs(10),
        || {
            s.logs()
                .iter()
                .any(|l| l.contains("path=/v0/topics/t?touch=false"))
        },
    );
    s.write("t", json!([{"data": "later"}]));
    let lines = tail.wait_stdout(1, Duration::from_secs(10));
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!((v["$seq"].as_u64(), &v["data"]), (Some(4), &json!("later")));
    s.write("t", json!([{"data": "again"}]));
    let lines = tail.wait_stdout(2, Duration::from_secs(10));
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn tail_follow_prints_a_later_write_by_long_poll() {
    follow_prints_only_later_writes(&["--wait-ms", "2000"]);
}

#[test]
fn tail_follow_prints_a_later_write_over_watch() {
    follow_prints_only_later_writes(&["--watch"]);
}

#[test]
fn tail_reports_a_cap_eviction_past_its_cursor_as_an_exact_gap() {
    let s = Server::start();
    s.create("t", json!({"cap_records": 3}));
    s.write("t", records(10));
    let (status, out, err) = run(cli(&s, &["tail", "t", "--from", "2"]));
    assert!(status.success(), "{err}");
    assert_eq!(err.trim(), "gap: seqs 3..=7 lost (cap)");
    assert_eq!(
        seqs(&json_lines(&out)),
        vec![8, 9, 10],
        "the cursor moves past the gap"
    );

    let (status, out, err) = run(cli(&s, &["tail", "t", "--from", "2", "--fail-on-gap"]));
    assert_eq!(status.code(), Some(3), "{err}");
    assert_eq!(err.trim(), "gap: seqs 3..=7 lost (cap)");
    assert!(out.is_empty(), "nothing after the gap is printed: {out}");
}

#[test]
fn tail_follow_fails_on_a_gap_that_opens_while_following() {
    let s = Server::start();
    s.create("t", json!({"cap_records": 3}));
    s.write("t", records(10));
    let mut tail = Running::spawn(cli(
        &s,
        &[
            "tail",
            "t",
            "-f",
            "--from",
            "10",
            "--fail-on-gap",
            "--wait-ms",
            "5000",
        ],
    ));
    std::thread::sleep(Duration::from_millis(300));
    // Ten more records: the cap keeps 18..=20, so 11..=17 go before the follower reads them.
    s.write("t", records(10));
    let status = tail.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(3), "{:?}", tail.stderr());
    assert_eq!(
        tail.stderr(),
        vec!["gap: seqs 11..=17 lost (cap)".to_string()]
    );
    assert!(tail.stdout().is_empty());
}
