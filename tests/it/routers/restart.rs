//! Router cursors across restarts: a graceful stop resumes with no gap and no duplicate; a
//! kill -9 resumes with no gap, duplicates only as one re-forwarded run (at-least-once), and
//! every dest seq a reader saw still names the same record.

use super::{data_of, drive, put_router};
use crate::harness::{config_with, records, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Checkpoints every few KiB, so restarts also recover router state from snapshots.
const FAST: &str = "[storage]\nsnapshot_wal_bytes = 4096\nsnapshot_check_interval_ms = 20\n";

fn ints(n: std::ops::Range<i64>) -> Vec<Value> {
    n.map(|i| json!(i)).collect()
}

#[test]
fn sigterm_restarts_resume_cursors_with_no_gap_and_no_duplicate() {
    let mut s = Server::start_with(&[], Some(FAST));
    put_router(&s, "r", json!({"source":"src","dest":"dst"})).expect(201);
    let mut n = 0;
    for round in 0..3 {
        for _ in 0..4 {
            s.write("src", json!([{"data": n}, {"data": n + 1}]));
            n += 2;
        }
        if round == 1 {
            // Leave records unforwarded-or-not as they fall: the stop persists the cursor.
            s.restart();
            continue;
        }
        drive(&s, "r");
        s.restart();
    }
    assert_eq!(drive(&s, "r")["forwarded_total"], n);
    assert_eq!(data_of(&s, "dst"), ints(0..n));
}

#[test]
fn a_re_put_after_restart_keeps_the_logged_cursor() {
    let mut s = Server::start();
    put_router(&s, "r", json!({"source":"src","dest":"dst"})).expect(201);
    s.write("src", records(3));
    drive(&s, "r");
    s.restart();
    put_router(&s, "r", json!({"source":"src","dest":"dst","filter":null})).expect(200);
    s.write("src", json!([{"data": 3}]));
    assert_eq!(drive(&s, "r")["forwarded_total"], 4);
    assert_eq!(data_of(&s, "dst"), ints(0..4));
}

/// Every value of `0..n` appears, in order, except that one suffix may start over earlier
/// (the run re-forwarded after a crash): `dst == s[..k] ++ s[j..]` with `j <= k`.
fn assert_no_gap_one_rewind(dst: &[Value], n: i64) {
    let vals: Vec<i64> = dst.iter().map(|v| v.as_i64().unwrap()).collect();
    let k = vals
        .windows(2)
        .position(|w| w[1] != w[0] + 1)
        .map_or(vals.len(), |i| i + 1);
    assert_eq!(
        vals[..k],
        (0..k as i64).collect::<Vec<_>>()[..],
        "prefix: {vals:?}"
    );
    let j = vals.get(k).copied().unwrap_or(k as i64);
    assert!(j <= k as i64, "a gap after {k}: {vals:?}");
    assert_eq!(
        vals[k..],
        (j..n).collect::<Vec<_>>()[..],
        "resumed run: {vals:?}"
    );
}

#[test]
fn kill9_resumes_with_no_gap_and_keeps_every_seen_dest_seq() {
    let mut s = Server::start_with(&[], Some(FAST));
    let fsync = config_with(json!({"durability":"fsync"}));
    s.create("src", fsync.clone());
    s.create("dst", fsync);
    put_router(&s, "r", json!({"source":"src","dest":"dst"})).expect(201);
    let mut n = 0;
    let mut seen: BTreeMap<u64, Value> = BTreeMap::new();
    for _ in 0..3 {
        for _ in 0..20 {
            s.write(
                "src",
                json!([{"data": n}, {"data": n + 1}, {"data": n + 2}]),
            );
            n += 3;
        }
        // Whatever a reader saw of the dest before the crash, with the seqs it saw.
        for r in s.read_all("dst") {
            seen.insert(r["$seq"].as_u64().unwrap(), r["data"].clone());
        }
        s.crash_restart();
        drive(&s, "r");
        let now: BTreeMap<u64, Value> = s
            .read_all("dst")
            .into_iter()
            .map(|r| (r["$seq"].as_u64().unwrap(), r["data"].clone()))
            .collect();
        for (seq, data) in &seen {
            assert_eq!(now.get(seq), Some(data), "dest seq {seq} changed meaning");
        }
    }
    assert_no_gap_one_rewind_per_crash(&data_of(&s, "dst"), n);
}

/// Like `assert_no_gap_one_rewind`, allowing one rewind per crash: every value appears, and
/// each value's first appearance is in order.
fn assert_no_gap_one_rewind_per_crash(dst: &[Value], n: i64) {
    let vals: Vec<i64> = dst.iter().map(|v| v.as_i64().unwrap()).collect();
    let mut next = 0;
    for &v in &vals {
        assert!(v <= next, "value {v} before {next}: a gap in {vals:?}");
        if v == next {
            next += 1;
        }
    }
    assert_eq!(next, n, "missing values from {next}: {vals:?}");
}

#[test]
fn the_one_rewind_check_can_fail() {
    // The helper itself: a gap and a skipped value are caught.
    let v = |xs: &[i64]| xs.iter().map(|&x| json!(x)).collect::<Vec<_>>();
    assert_no_gap_one_rewind(&v(&[0, 1, 2, 1, 2, 3]), 4);
    assert!(std::panic::catch_unwind(|| assert_no_gap_one_rewind(&v(&[0, 2, 3]), 4)).is_err());
    assert!(
        std::panic::catch_unwind(|| assert_no_gap_one_rewind_per_crash(&v(&[0, 1, 3]), 4)).is_err()
    );
}

/// The cursor frame follows each forwarded batch into the WAL (no checkpoint runs here), so
/// a router that had caught up before a kill -9 forwards nothing twice (at-least-once).
#[test]
fn kill9_after_the_router_caught_up_forwards_nothing_twice() {
    let mut s = Server::start();
    // An fsync dest has no crash range of its own, so its first tombstone is the holes'.
    s.create("dst", config_with(json!({"durability":"fsync"})));
    put_router(&s, "r", json!({"source":"src","dest":"dst"})).expect(201);
    for i in 0..5 {
        s.write("src", json!([{"data": 2 * i}, {"data": 2 * i + 1}]));
    }
    assert_eq!(drive(&s, "r")["forwarded_total"], 10);
    // The last cursor frame rides the next WAL group, well within this.
    std::thread::sleep(std::time::Duration::from_millis(100));
    s.crash_restart();
    // The source's unsynced reservation reads as a crash range; the router passes it on
    // as that many source-trim holes (accounted, API.md §12), and copies nothing twice.
    let crash = s.diff("src", json!({"from_seq": 10}))["tombstone"].clone();
    assert_eq!(crash["reason"], "crash", "{crash}");
    let holes = crash["gap_to"].as_u64().unwrap() - 10;
    assert_eq!(drive(&s, "r")["forwarded_total"], 10 + holes);
    assert_eq!(data_of(&s, "dst"), ints(0..10));
    let trim = s.diff("dst", json!({"from_seq": 10}))["tombstone"].clone();
    assert_eq!(
        (&trim["reason"], &trim["missed_estimate"]),
        (&json!("source_trim"), &json!(holes))
    );
}

/// Definitions and removals are synced before they are answered, so a kill -9 right after
/// the answer keeps them.
#[test]
fn an_answered_put_or_delete_survives_kill9() {
    let mut s = Server::start();
    put_router(&s, "keep", json!({"source":"a","dest":"b","filter":"x:*"})).expect(201);
    put_router(&s, "drop", json!({"source":"c","dest":"d"})).expect(201);
    assert_eq!(s.delete(&super::path("drop")).expect(200)["deleted"], true);
    s.crash_restart();
    assert_eq!(drive(&s, "keep")["filter"], json!(["tag", "Glob", "x:*"]));
    assert_eq!(s.get(&super::path("drop")).status, 404);
    // The re-created name is a new router starting at its source's head.
    s.write("c", records(2));
    put_router(&s, "drop", json!({"source":"c","dest":"d"})).expect(201);
    s.write("c", records(1));
    assert_eq!(drive(&s, "drop")["forwarded_total"], 1);
}
