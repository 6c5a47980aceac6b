//! Permanent deletes through HTTP (API.md §7): silent, point-in-time, by prefix and by tag,
//! durable across kill -9, never a tombstone, never affecting later writes.

use crate::harness::{assert_error, records, seqs_of, Server};
use serde_json::{json, Value};

fn tagged(tags: &[&str]) -> Value {
    Value::Array(
        tags.iter()
            .enumerate()
            .map(|(i, t)| json!({ "data": i, "tag": t }))
            .collect(),
    )
}

fn delete(s: &Server, topic: &str, body: Value) -> Value {
    s.post(&format!("/v0/topics/{topic}/delete"), &body)
        .expect(200)
}

#[test]
fn before_seq_deletes_the_prefix_silently() {
    let s = Server::start();
    s.write("t", records(5));
    let r = delete(&s, "t", json!({ "before_seq": 3 }));
    assert_eq!(r["deleted"], 2);
    assert_eq!(
        (
            r["earliest_seq"].as_u64(),
            r["head_seq"].as_u64(),
            r["count"].as_u64()
        ),
        (Some(3), Some(5), Some(3))
    );
    let d = s.diff("t", json!({ "from_seq": 0 }));
    assert_eq!(d["tombstone"], Value::Null, "a delete is never a tombstone");
    assert_eq!(seqs_of(&d), vec![3, 4, 5]);
    assert_eq!(d["earliest_seq"], 3);
}

#[test]
fn tag_eq_glob_and_bare_string_predicates() {
    let s = Server::start();
    s.write(
        "t",
        tagged(&["cust-1:a", "cust-1:b", "cust-2:a", "cust-1", "x"]),
    );
    s.write("t", records(1)); // untagged, seq 6
    assert_eq!(
        delete(&s, "t", json!({ "match": ["tag", "Eq", "cust-1"] }))["deleted"],
        1
    );
    assert_eq!(
        delete(&s, "t", json!({ "match": ["tag", "Glob", "cust-1:*"] }))["deleted"],
        2
    );
    assert_eq!(delete(&s, "t", json!({ "match": "x" }))["deleted"], 1);
    assert_eq!(
        delete(&s, "t", json!({ "match": "*" }))["deleted"],
        1,
        "untagged never matches"
    );
    assert_eq!(seqs_of(&s.diff("t", json!({}))), vec![6]);
}

#[test]
fn before_seq_and_match_combine_with_and() {
    let s = Server::start();
    s.write("t", tagged(&["a", "b", "a", "a"]));
    let r = delete(&s, "t", json!({ "before_seq": 4, "match": "a" }));
    assert_eq!(r["deleted"], 2);
    assert_eq!(seqs_of(&s.diff("t", json!({}))), vec![2, 4]);
    assert_eq!(r["earliest_seq"], 2);
}

#[test]
fn delete_is_point_in_time_and_later_writes_are_untouched() {
    let s = Server::start();
    s.write("t", tagged(&["a"]));
    delete(&s, "t", json!({ "match": "a", "before_seq": 1000 }));
    s.write("t", tagged(&["a"]));
    assert_eq!(seqs_of(&s.diff("t", json!({}))), vec![2]);
}

#[test]
fn cursor_inside_deleted_range_reads_silently() {
    let s = Server::start();
    s.write("t", records(6));
    delete(&s, "t", json!({ "before_seq": 5 }));
    let d = s.diff("t", json!({ "from_seq": 2 }));
    assert_eq!(d["tombstone"], Value::Null);
    assert_eq!(seqs_of(&d), vec![5, 6]);
}

#[test]
fn deletes_survive_kill9_for_fsync_and_sigterm_for_disk() {
    let mut s = Server::start();
    let setup = |s: &Server, t: &str, class: &str| {
        s.create(t, json!({ "durability": class }));
        s.write(t, tagged(&["k", "keep", "k", "keep"]));
        delete(s, t, json!({ "match": "k" }));
        delete(s, t, json!({ "before_seq": 3 }));
    };
    // fsync: acknowledged deletes are durable, so even kill -9 cannot resurrect records.
    setup(&s, "f", "fsync");
    s.crash_restart();
    assert_eq!(seqs_of(&s.diff("f", json!({}))), vec![4]);
    // disk: a kill may lose the un-synced tail; a graceful stop loses nothing.
    setup(&s, "d", "disk");
    s.restart();
    for t in ["f", "d"] {
        let d = s.diff(t, json!({ "from_seq": 0 }));
        assert_eq!(seqs_of(&d), vec![4], "{t}");
        assert_eq!(
            d["tombstone"],
            Value::Null,
            "{t}: deletes never move E, even after restart"
        );
        assert_eq!(s.state(t)["count"], 1);
    }
}

#[test]
fn delete_errors() {
    let s = Server::start();
    s.write("t", records(1));
    assert_error(
        &s.post("/v0/topics/t/delete", &json!({})),
        400,
        "invalid_request",
    );
    for bad in [
        json!(["tag", "Glob", "a"]),
        json!(["tag", "eq", "a"]),
        json!(["tag", "Eq"]),
        json!(7),
    ] {
        assert_error(
            &s.post("/v0/topics/t/delete", &json!({ "match": bad })),
            400,
            "invalid_request",
        );
    }
    assert_error(
        &s.post("/v0/topics/t/delete", &json!({ "before_seq": -1 })),
        400,
        "invalid_request",
    );
    assert_error(
        &s.post("/v0/topics/nope/delete", &json!({ "before_seq": 1 })),
        404,
        "topic_not_found",
    );
    let r = s.req("POST", "/v0/topics/t/delete", &[], br#"{"before_seq":1}"#);
    assert_error(&r, 415, "unsupported_media_type");
}
