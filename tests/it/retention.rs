//! Retention and tombstones through HTTP (API.md §2, API.md §2, API.md §6, API.md §6): TTL with a manual
//! server clock (no sleeps), cap eviction, `discard:"reject"`, floors across restarts.

use crate::harness::{assert_error, records, seqs_of, Server, TempDir};
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000_000;

/// A server whose clock only moves through `POST /v0/_test/clock`.
pub fn clocked() -> (Server, TempDir) {
    let tmp = TempDir::new();
    let dir = tmp.path().join("data");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    let server = Server::start_raw(&args, &[("TOPICS_TEST_CLOCK_MS", &T0.to_string())], &dir);
    (server, tmp)
}

pub fn advance(s: &Server, ms: i64) {
    s.post("/v0/_test/clock", &json!({ "advance_ms": ms }))
        .expect(200);
}

fn tombstone(d: &Value) -> &Value {
    &d["tombstone"]
}

#[test]
fn ttl_expiry_past_cursor_yields_ttl_tombstone() {
    let (s, _tmp) = clocked();
    s.create("t", json!({ "ttl_ms": 1000 }));
    s.write("t", records(3));
    advance(&s, 500);
    s.write("t", records(2));
    advance(&s, 600); // first three are now 1100 ms old: expired (strictly older than ttl)
    let d = s.diff("t", json!({ "from_seq": 0 }));
    let t = tombstone(&d);
    assert_eq!(
        (t["gap_from"].as_u64(), t["gap_to"].as_u64()),
        (Some(1), Some(3)),
        "{d}"
    );
    assert_eq!(t["reason"], "ttl");
    assert_eq!(t["missed_estimate"], 3);
    assert_eq!(t["earliest_seq"], 4);
    assert_eq!(seqs_of(&d), vec![4, 5]);
    let st = s.state("t");
    assert_eq!(
        (st["count"].as_u64(), st["earliest_seq"].as_u64()),
        (Some(2), Some(4))
    );
}

#[test]
fn ttl_boundary_is_strict() {
    let (s, _tmp) = clocked();
    s.create("t", json!({ "ttl_ms": 1000 }));
    s.write("t", records(1));
    advance(&s, 1000);
    assert_eq!(
        seqs_of(&s.diff("t", json!({}))),
        vec![1],
        "age == ttl is not expired"
    );
    advance(&s, 1);
    let d = s.diff("t", json!({}));
    assert!(seqs_of(&d).is_empty());
    assert_eq!(d["tombstone"]["reason"], "ttl");
}

#[test]
fn cap_records_eviction_tombstones_a_lagging_reader_only() {
    let s = Server::start();
    s.create("t", json!({ "cap_records": 3 }));
    s.write("t", records(5));
    let d = s.diff("t", json!({ "from_seq": 0 }));
    assert_eq!(
        d["tombstone"],
        json!({ "gap_from": 1, "gap_to": 2, "reason": "cap",
        "missed_estimate": 2, "earliest_seq": 3, "head_seq": 5 })
    );
    assert_eq!(seqs_of(&d), vec![3, 4, 5]);
    let d = s.diff("t", json!({ "from_seq": 2 }));
    assert_eq!(d["tombstone"], Value::Null, "a cursor at E-1 lost nothing");
}

#[test]
fn cap_bytes_evicts_oldest_until_within_budget() {
    let s = Server::start();
    s.create("t", json!({ "cap_bytes": 10 }));
    // Each record is `"xxx"` = 5 bytes of compact JSON.
    s.write(
        "t",
        json!([{ "data": "xxx" }, { "data": "xxx" }, { "data": "xxx" }]),
    );
    let st = s.state("t");
    assert_eq!(
        (st["count"].as_u64(), st["bytes"].as_u64()),
        (Some(2), Some(10))
    );
    let d = s.diff("t", json!({}));
    assert_eq!(d["tombstone"]["reason"], "cap");
    assert_eq!(seqs_of(&d), vec![2, 3]);
}

#[test]
fn tighter_config_applies_at_once() {
    let s = Server::start();
    s.create("t", json!({}));
    s.write("t", records(10));
    s.create("t", json!({ "cap_records": 4 }));
    let st = s.state("t");
    assert_eq!(
        (st["count"].as_u64(), st["earliest_seq"].as_u64()),
        (Some(4), Some(7))
    );
}

#[test]
fn reject_topic_refuses_overflow_and_oversized_writes() {
    let s = Server::start();
    s.create("t", json!({ "cap_records": 3, "discard": "reject" }));
    s.write("t", records(2));
    let r = s.post("/v0/topics/t", &json!({ "records": records(2) }));
    let err = assert_error(&r, 422, "topic_full");
    assert_eq!(
        err["detail"],
        json!({ "topic": "t", "cap_records": 3, "cap_bytes": 0, "head_seq": 2, "earliest_seq": 1 })
    );
    let r = s.post("/v0/topics/t", &json!({ "records": records(4) }));
    assert_error(&r, 400, "record_too_large");
    s.write("t", records(1));
    assert_eq!(
        s.state("t")["count"],
        3,
        "nothing was evicted: reject never discards"
    );
    let r = s
        .post("/v0/topics/t/delete", &json!({ "before_seq": 2 }))
        .expect(200);
    assert_eq!(r["deleted"], 1);
    s.write("t", records(1));
}

#[test]
fn reject_byte_cap_counts_compact_bytes() {
    let s = Server::start();
    s.create("t", json!({ "cap_bytes": 8, "discard": "reject" }));
    s.write("t", json!([{ "data": [1, 2] }])); // 5 bytes compact
    let r = s.post("/v0/topics/t", &json!({ "records": [{ "data": [1, 2] }] }));
    assert_error(&r, 422, "topic_full");
    let r = s.post(
        "/v0/topics/t",
        &json!({ "records": [{ "data": "123456789" }] }),
    );
    assert_error(&r, 400, "record_too_large");
}

#[test]
fn floors_and_evictions_survive_kill9() {
    let (mut s, _tmp) = clocked();
    s.create("t", json!({ "cap_records": 3, "durability": "fsync" }));
    s.write("t", records(6));
    let before = s.diff("t", json!({ "from_seq": 0 }));
    s.crash_restart();
    let after = s.diff("t", json!({ "from_seq": 0 }));
    assert_eq!(
        after["tombstone"], before["tombstone"],
        "E survives a crash"
    );
    assert_eq!(seqs_of(&after), vec![4, 5, 6]);
    assert_eq!(s.state("t")["earliest_seq"], 4);
}

#[test]
fn ttl_floor_survives_restart_even_if_ttl_is_loosened() {
    let (mut s, _tmp) = clocked();
    s.create("t", json!({ "ttl_ms": 100, "durability": "fsync" }));
    s.write("t", records(2));
    advance(&s, 200);
    s.write("t", records(1));
    assert_eq!(s.diff("t", json!({}))["tombstone"]["gap_to"], 2);
    s.create("t", json!({ "durability": "fsync" }));
    s.restart();
    let d = s.diff("t", json!({ "from_seq": 0 }));
    assert_eq!(seqs_of(&d), vec![3], "expired records stay expired");
    assert_eq!(d["tombstone"]["reason"], "ttl");
}

#[test]
fn mixed_reason_when_both_floors_reach_the_gap() {
    let (s, _tmp) = clocked();
    s.create("t", json!({ "ttl_ms": 100 }));
    s.write("t", records(2));
    advance(&s, 200);
    s.write("t", records(4)); // seqs 3..6; 1..2 expire on the next command
    assert_eq!(
        s.diff("t", json!({ "from_seq": 10 }))["tombstone"]["reason"],
        "recreated"
    );
    s.create("t", json!({ "ttl_ms": 100, "cap_records": 2 }));
    let d = s.diff("t", json!({ "from_seq": 0 }));
    assert_eq!(d["tombstone"]["reason"], "mixed", "{d}");
    assert_eq!(d["tombstone"]["gap_to"], 4);
    let d = s.diff("t", json!({ "from_seq": 2 }));
    assert_eq!(
        d["tombstone"]["reason"], "cap",
        "only the cap floor reaches past seq 3"
    );
}
