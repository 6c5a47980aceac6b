//! Idempotent writes (API.md §5) and node loop-prevention (API.md §6 `node`, `dedupe_node`).

use crate::harness::{records, seqs_of, Server};
use crate::retention::{advance, clocked};
use serde_json::json;

#[test]
fn same_key_returns_the_original_result_without_appending() {
    let s = Server::start();
    let body = json!({ "idempotency_key": "k1", "records": records(2) });
    let first = s.write_body("t", body.clone());
    assert_eq!(first["deduped"], false);
    s.write("t", records(1));
    let r = s.post("/v0/topics/t", &body);
    assert_eq!(r.status, 200);
    let again = r.json();
    assert_eq!(again["deduped"], true);
    assert_eq!(again["created"], false);
    for k in ["first_seq", "last_seq", "seqs", "head_seq"] {
        assert_eq!(again[k], first[k], "{k}");
    }
    assert_eq!(
        again["performance"].as_object().unwrap().len(),
        1,
        "only server_total_ms"
    );
    assert_eq!(s.state("t")["head_seq"], 3);
}

#[test]
fn header_key_is_used_when_the_body_has_none() {
    let s = Server::start();
    let body = serde_json::to_vec(&json!({ "records": records(1) })).unwrap();
    let h = [
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "hk"),
    ];
    let a = s.req("POST", "/v0/topics/t", &h, &body).json();
    let b = s.req("POST", "/v0/topics/t", &h, &body).json();
    assert_eq!(
        (a["deduped"].as_bool(), b["deduped"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(b["first_seq"], a["first_seq"]);
}

#[test]
fn keys_expire_after_the_window() {
    let (s, _tmp) = clocked();
    s.create("t", json!({ "idempotency_window_ms": 1000 }));
    let body = json!({ "idempotency_key": "k", "records": records(1) });
    s.write_body("t", body.clone());
    advance(&s, 1000);
    assert_eq!(
        s.write_body("t", body.clone())["deduped"],
        true,
        "age == window still matches"
    );
    advance(&s, 1);
    let r = s.write_body("t", body);
    assert_eq!(
        (r["deduped"].as_bool(), r["first_seq"].as_u64()),
        (Some(false), Some(2))
    );
}

#[test]
fn keys_survive_kill9_for_durable_classes() {
    let mut s = Server::start();
    for class in ["memory", "disk", "fsync"] {
        s.create(class, json!({ "durability": class }));
        s.write_body(
            class,
            json!({ "idempotency_key": "k", "records": records(3) }),
        );
    }
    s.restart();
    s.crash_restart();
    for class in ["memory", "disk", "fsync"] {
        let r = s.write_body(
            class,
            json!({ "idempotency_key": "k", "records": records(3) }),
        );
        assert_eq!(r["deduped"], true, "{class}");
        assert_eq!(r["seqs"], json!([1, 2, 3]), "{class}");
    }
}

#[test]
fn concurrent_same_key_writes_append_once() {
    let s = Server::start();
    s.create("t", json!({ "durability": "fsync" }));
    let body = json!({ "idempotency_key": "race", "records": records(1) });
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| s.write_body("t", body.clone())))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r["deduped"] == false).count(), 1);
    assert!(results.iter().all(|r| r["first_seq"] == 1));
    assert_eq!(s.state("t")["head_seq"], 1);
}

#[test]
fn node_filter_skips_own_records_unless_dedupe_node_is_off() {
    let s = Server::start();
    s.write_body("t", json!({ "node": "eu-1", "records": records(2) }));
    s.write_body("t", json!({ "node": "us-2", "records": records(1) }));
    s.write("t", json!([{ "data": 0, "node": "eu-1" }]));
    let d = s.diff("t", json!({ "node": "eu-1" }));
    assert_eq!(seqs_of(&d), vec![3]);
    assert_eq!(
        (d["next_from_seq"].as_u64(), d["caught_up"].as_bool()),
        (Some(4), Some(true))
    );
    s.create("t", json!({ "dedupe_node": false }));
    assert_eq!(
        seqs_of(&s.diff("t", json!({ "node": "eu-1" }))),
        vec![1, 2, 3, 4]
    );
}

#[test]
fn recreated_topic_gives_stale_readers_a_recreated_tombstone() {
    let s = Server::start();
    s.write("t", records(5));
    s.delete("/v0/topics/t").expect(200);
    s.write("t", records(2));
    let d = s.diff("t", json!({ "from_seq": 5 }));
    assert_eq!(
        d["tombstone"],
        json!({ "gap_from": 1, "gap_to": 2, "reason": "recreated",
        "missed_estimate": 2, "earliest_seq": 1, "head_seq": 2 })
    );
    assert_eq!(seqs_of(&d), vec![1, 2]);
}
