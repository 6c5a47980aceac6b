//! `guarantee:"exactly_once"` (API.md §12): the stamp every copy carries, a live stamped
//! copy standing in for the append, and no duplicate destination append across repeated
//! kill -9 in the middle of forwarding.

use super::{drive, path, put_router};
use crate::harness::{config_with, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const EXACTLY: &str = "exactly_once";

fn stamp_of(rec: &Value) -> &Value {
    &rec["meta"]["_topics_router"]
}

fn source_seq(rec: &Value) -> u64 {
    stamp_of(rec)["source_seq"]
        .as_u64()
        .expect("a stamped copy")
}

#[test]
fn every_copy_carries_the_stamp_around_its_original_meta() {
    let s = Server::start();
    let body = json!({"source":"src","dest":"dst","guarantee":EXACTLY});
    let put = put_router(&s, "r", body).expect(201);
    assert_eq!(put["guarantee"], EXACTLY);
    let many: serde_json::Map<String, Value> =
        (0..64).map(|i| (format!("k{i}"), json!(i))).collect();
    s.write(
        "src",
        json!([
            {"data": 0},
            {"data": 1, "meta": {"z": 1, "a": [2]}},
            {"data": 2, "meta": [1, 2]},
            {"data": 3, "meta": many},
        ]),
    );
    assert_eq!(drive(&s, "r")["forwarded_total"], 4);
    let copies = s.read_all("dst");
    assert_eq!(copies.len(), 4);
    let id = stamp_of(&copies[0])["source_topic_id"].as_u64().unwrap();
    for (i, c) in copies.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(
            *stamp_of(c),
            json!({"idempotency_key": format!("router:r:{id}:1:{seq}"), "router": "r",
                   "source_topic": "src", "source_topic_id": id, "source_epoch": 1,
                   "source_seq": seq}),
        );
    }
    assert_eq!(copies[0]["meta"].as_object().unwrap().len(), 1);
    assert_eq!(copies[1]["meta"]["z"], 1);
    assert_eq!(copies[1]["meta"]["a"], json!([2]));
    assert_eq!(copies[2]["meta"]["_topics_original_meta"], json!([1, 2]));
    assert_eq!(
        copies[3]["meta"]["_topics_original_meta"],
        Value::Object(many)
    );
    assert_eq!(s.get(&path("r")).expect(200)["guarantee"], EXACTLY);
}

/// A live dest record holding a copy's key stands in for that copy: nothing is appended,
/// the record still counts as forwarded. Deleting the record removes the evidence.
#[test]
fn a_live_stamped_record_in_the_dest_is_not_appended_again() {
    let mut s = Server::start();
    put_router(
        &s,
        "r",
        json!({"source":"src","dest":"dst","guarantee":EXACTLY}),
    )
    .expect(201);
    s.write("src", json!([{"data": "first"}]));
    drive(&s, "r");
    let first = s.read_all("dst").remove(0);
    let id = stamp_of(&first)["source_topic_id"].as_u64().unwrap();
    // Records carrying the keys of source seqs 2 and 3, written straight to the dest.
    let stamped = |seq: u64| {
        json!({"data": format!("planted {seq}"), "tag": format!("planted-{seq}"),
               "meta": {"_topics_router": {"idempotency_key": format!("router:r:{id}:1:{seq}")}}})
    };
    s.write("dst", json!([stamped(2), stamped(3)]));
    // The one for seq 3 is deleted again: its copy must be appended after all.
    let del = s.post("/v0/topics/dst/delete", &json!({"match": "planted-3"}));
    assert_eq!(del.expect(200)["deleted"], 1);
    // A restart makes the router look at the dest past its logged position.
    s.restart();
    s.write(
        "src",
        json!([{"data": "second"}, {"data": "third"}, {"data": "fourth"}]),
    );
    assert_eq!(drive(&s, "r")["forwarded_total"], 4);
    let data: Vec<Value> = s
        .read_all("dst")
        .iter()
        .map(|r| r["data"].clone())
        .collect();
    assert_eq!(data, ["first", "planted 2", "third", "fourth"]);
}

/// Kills the server repeatedly while the router forwards a backlog; the dest never holds
/// two copies of one source record, and every source record is in it once.
#[test]
fn kill9_mid_forward_never_duplicates_a_copy() {
    let fast = "[storage]\nsnapshot_wal_bytes = 65536\nsnapshot_check_interval_ms = 20\n";
    let mut s = Server::start_with(&[], Some(fast));
    s.create("dst", config_with(json!({"durability":"fsync"})));
    put_router(
        &s,
        "r",
        json!({"source":"src","dest":"dst","guarantee":EXACTLY}),
    )
    .expect(201);
    let mut n = 0;
    for round in 0..6 {
        for _ in 0..40 {
            let batch: Vec<Value> = (0..25).map(|i| json!({"data": n + i})).collect();
            s.write("src", Value::Array(batch));
            n += 25;
        }
        if round % 2 == 1 {
            drive(&s, "r"); // caught up: the kill lands after the last batch
        }
        s.crash_restart();
    }
    drive(&s, "r");
    let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
    for c in s.read_all("dst") {
        *copies.entry(source_seq(&c)).or_default() += 1;
    }
    let dups: Vec<_> = copies.iter().filter(|(_, &k)| k > 1).collect();
    assert!(
        dups.is_empty(),
        "duplicate copies (source seq, count): {dups:?}"
    );
    let sources: BTreeSet<u64> = s
        .read_all("src")
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect();
    let copied: BTreeSet<u64> = copies.keys().copied().collect();
    // Every live source record has its copy (no gap). A copy of a record the source no longer
    // holds is possible: the source is `disk`, so a kill can take a record the router had
    // already copied into the `fsync` dest; the source reports it as a `crash` tombstone.
    let missing: Vec<_> = sources.difference(&copied).collect();
    assert!(
        missing.is_empty(),
        "source records without a copy: {missing:?}"
    );
    let extra: Vec<u64> = copied.difference(&sources).copied().collect();
    for seq in &extra {
        let d = s.diff("src", json!({"from_seq": seq - 1, "limit": 1}));
        let t = &d["tombstone"];
        assert_eq!(
            t["reason"], "crash",
            "copy of seq {seq} the source lost without a crash: {d}"
        );
        assert!(t["gap_from"].as_u64().unwrap() <= *seq && *seq <= t["gap_to"].as_u64().unwrap());
    }
    assert!(
        sources.len() > n as usize / 2,
        "{} of {n} source records",
        sources.len()
    );
}
