//! `topics export`: the whole retained history as NDJSON with `$seq`, `$ts`, `$node`, `$tag`,
//! `data` and `meta`; `--from` resumes after a seq; a tombstone is a `gap:` line on stderr and
//! the export goes on (exit 3 with `--fail-on-gap`).

use super::{cli, json_lines, run, seqs};
use crate::harness::{records, Server};
use serde_json::json;

#[test]
fn export_writes_every_record_with_its_stamps_and_resumes_after_a_seq() {
    let s = Server::start();
    s.write_body(
        "t",
        json!({"node": "eu-1", "records": [{"data": {"a": 1}, "tag": "k1", "meta": {"m": 1}},
            {"data": 2}]}),
    );
    s.write("t", records(5));
    let (status, out, err) = run(cli(&s, &["export", "t", "--limit", "2"]));
    assert!(status.success(), "{err}");
    let lines = json_lines(&out);
    let want = s.diff("t", json!({"include_tags": true, "limit": 1000}))["records"].clone();
    assert_eq!(json!(lines), want, "records as diff answers them with tags");
    assert_eq!(lines[0]["$node"], "eu-1");
    assert_eq!(lines[0]["$tag"], "k1");
    assert_eq!(lines[0]["meta"], json!({"m": 1}));
    assert!(lines[0]["$ts"].is_i64());
    assert_eq!(err.trim(), "export: 7 records; resume with --from 7");
    let (status, out, err) = run(cli(&s, &["export", "t", "--from", "4"]));
    assert!(status.success(), "{err}");
    assert_eq!(seqs(&json_lines(&out)), vec![5, 6, 7]);
    let (status, out, err) = run(cli(&s, &["export", "t", "--from", "7"]));
    assert!(status.success() && out.is_empty(), "{err}");
    assert_eq!(err.trim(), "export: 0 records");
}

#[test]
fn export_reports_a_gap_and_goes_on_or_stops_with_fail_on_gap() {
    let s = Server::start();
    s.create("t", json!({"cap_records": 3}));
    s.write("t", records(10));
    let (status, out, err) = run(cli(&s, &["export", "t"]));
    assert!(status.success(), "{err}");
    let err_lines: Vec<&str> = err.lines().collect();
    assert_eq!(err_lines[0], "gap: seqs 1..=7 lost (cap)");
    assert_eq!(seqs(&json_lines(&out)), vec![8, 9, 10]);
    let (status, out, err) = run(cli(&s, &["export", "t", "--fail-on-gap"]));
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.starts_with("gap: seqs 1..=7 lost (cap)"), "{err}");
    assert!(out.is_empty(), "{out}");
}

#[test]
fn export_of_a_missing_topic_fails_with_the_servers_error() {
    let s = Server::start();
    let (status, out, err) = run(cli(&s, &["export", "nope"]));
    assert_eq!(status.code(), Some(1));
    assert!(out.is_empty());
    assert!(err.contains("error: topic_not_found"), "{err}");
}
