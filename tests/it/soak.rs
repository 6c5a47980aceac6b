//! kill -9 soak: concurrent writers on an `fsync` and a `disk` topic (with tag deletes running
//! and records being sealed and checkpointed), killed at varying points — sometimes again
//! during recovery — then restarted and checked against an oracle:
//! - `fsync`: every acknowledged record present with identical data, except records an
//!   acknowledged delete removed;
//! - `disk`: the present records are exactly a prefix (by seq) of the acknowledged ones — a
//!   kill may only take a not-yet-written tail — and every acknowledged seq a kill took lies
//!   inside a `crash` tombstone a reader crossing it is given;
//! - nothing invented, no duplicates, seqs strictly increasing, no seq reissued.
//!
//! `cargo test` runs 3 cycles; `TOPICS_SOAK_CYCLES=500 cargo test --release --test it soak` the
//! long run (docs/RELIABILITY.md has its figures).

use crate::harness::{http, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CONFIG: &str = "[storage]\nsegment_seal_records = 2000\nsnapshot_wal_bytes = 262144\nsnapshot_check_interval_ms = 50\n";

#[derive(Default)]
struct Oracle {
    /// seq → data of acknowledged writes, per topic.
    f: BTreeMap<u64, Value>,
    d: BTreeMap<u64, Value>,
    /// Highest head reported by an acknowledged delete of tag "del" on `f`.
    deleted_upto: u64,
    /// Seqs of `f` records tagged "del".
    f_del: BTreeSet<u64>,
    attempted: BTreeSet<String>,
    /// `disk` records a kill took (an un-written tail each time).
    d_lost: u64,
    /// A delete got no answer this cycle (the kill hit it): it may or may not have happened.
    delete_in_doubt: bool,
    /// Seqs up to these were verified in an earlier cycle.
    checked_f: u64,
    checked_d: u64,
}

fn post(addr: std::net::SocketAddr, path: &str, body: &Value) -> Option<Value> {
    let bytes = serde_json::to_vec(body).unwrap();
    match http::try_request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &bytes,
    ) {
        Ok(r) if r.status == 200 || r.status == 201 => Some(r.json()),
        Ok(r) => {
            assert!(
                r.status >= 500 || r.status == 429,
                "unexpected {}: {}",
                r.status,
                r.text()
            );
            None
        }
        Err(_) => None,
    }
}

/// One cycle of load until `stop`; returns acknowledged writes and deletes.
fn load(addr: std::net::SocketAddr, cycle: u64, stop: &AtomicBool, o: &std::sync::Mutex<Oracle>) {
    std::thread::scope(|sc| {
        for w in 0..3u64 {
            sc.spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let topic = if i % 2 == 0 { "f" } else { "d" };
                    let id = format!("{cycle}-{w}-{i}");
                    let tag = if i % 3 == 0 { "del" } else { "keep" };
                    let recs: Vec<Value> = (0..5)
                        .map(|k| json!({ "data": format!("{id}-{k}"), "tag": tag }))
                        .collect();
                    o.lock()
                        .unwrap()
                        .attempted
                        .extend((0..5).map(|k| format!("{id}-{k}")));
                    let Some(r) = post(
                        addr,
                        &format!("/v0/topics/{topic}"),
                        &json!({ "records": recs }),
                    ) else {
                        continue;
                    };
                    let mut o = o.lock().unwrap();
                    for (k, seq) in r["seqs"].as_array().unwrap().iter().enumerate() {
                        let seq = seq.as_u64().unwrap();
                        let data = json!(format!("{id}-{k}"));
                        if topic == "f" {
                            o.f.insert(seq, data);
                            if tag == "del" {
                                o.f_del.insert(seq);
                            }
                        } else {
                            o.d.insert(seq, data);
                        }
                    }
                }
            });
        }
        sc.spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(15));
                match post(addr, "/v0/topics/f/delete", &json!({ "match": "del" })) {
                    Some(r) => {
                        let mut o = o.lock().unwrap();
                        o.deleted_upto = o.deleted_upto.max(r["head_seq"].as_u64().unwrap());
                    }
                    None => o.lock().unwrap().delete_in_doubt = true,
                }
            }
        });
    });
}

/// Stored records with seq > `after`.
fn stored(s: &Server, topic: &str, after: u64) -> BTreeMap<u64, Value> {
    stored_and_lost(s, topic, after).0
}

/// Stored records with seq > `after`, and the `crash` tombstones crossed on the way.
fn stored_and_lost(s: &Server, topic: &str, after: u64) -> (BTreeMap<u64, Value>, Vec<(u64, u64)>) {
    let mut out = BTreeMap::new();
    let mut lost = Vec::new();
    let mut from = after;
    loop {
        let d = s.diff(topic, json!({ "from_seq": from, "limit": 1000 }));
        let t = &d["tombstone"];
        if t["reason"] == "crash" {
            lost.push((
                t["gap_from"].as_u64().unwrap(),
                t["gap_to"].as_u64().unwrap(),
            ));
        }
        for r in d["records"].as_array().unwrap() {
            let seq = r["$seq"].as_u64().unwrap();
            assert!(seq > from, "{topic}: seq {seq} out of order");
            assert!(
                out.insert(seq, r["data"].clone()).is_none(),
                "{topic}: duplicate seq {seq}"
            );
        }
        from = d["next_from_seq"].as_u64().unwrap();
        if d["caught_up"] == true {
            return (out, lost);
        }
    }
}

/// Check the oracle; returns the `disk` seqs this kill took (they stay lost) and the "del"
/// records an unanswered delete took.
fn verify(s: &Server, o: &Oracle, cycle: u64, window: (u64, u64)) -> (Vec<u64>, Vec<u64>) {
    let f = stored(s, "f", window.0);
    // An unanswered delete may have removed any "del" record acknowledged before the kill.
    let maybe_upto = if o.delete_in_doubt {
        o.f.keys().last().copied().unwrap_or(0)
    } else {
        0
    };
    let mut doubtful_gone = Vec::new();
    for (seq, data) in o.f.range(window.0 + 1..) {
        let deleted = o.f_del.contains(seq) && *seq <= o.deleted_upto;
        if o.f_del.contains(seq) && *seq <= maybe_upto && !deleted {
            if !f.contains_key(seq) {
                doubtful_gone.push(*seq);
            }
            continue;
        }
        if deleted {
            assert!(
                !f.contains_key(seq),
                "cycle {cycle}: f seq {seq} was deleted but is back"
            );
        } else {
            assert_eq!(
                f.get(seq),
                Some(data),
                "cycle {cycle}: acked fsync seq {seq} lost or changed"
            );
        }
    }
    let (d, crash_ranges) = stored_and_lost(s, "d", window.1);
    let missing: Vec<u64> =
        o.d.range(window.1 + 1..)
            .map(|(k, _)| *k)
            .filter(|k| !d.contains_key(k))
            .collect();
    for seq in &missing {
        assert!(
            crash_ranges.iter().any(|(a, b)| (a..=b).contains(&seq)),
            "cycle {cycle}: acknowledged disk seq {seq} vanished without a crash tombstone \
             (tombstones crossed: {crash_ranges:?})"
        );
    }
    let last_present = d.keys().rev().find(|k| o.d.contains_key(k));
    if let (Some(first_missing), Some(last_present)) = (missing.first(), last_present) {
        assert!(
            first_missing > last_present,
            "cycle {cycle}: disk lost seq {first_missing} yet kept later seq {last_present}"
        );
    }
    for (seq, data) in &d {
        if let Some(acked) = o.d.get(seq) {
            assert_eq!(acked, data, "cycle {cycle}: disk seq {seq} changed");
        }
    }
    for (seq, data) in f.iter().chain(d.iter()) {
        assert!(
            o.attempted.contains(data.as_str().unwrap()),
            "cycle {cycle}: seq {seq} invented {data}"
        );
    }
    (missing, doubtful_gone)
}

#[test]
fn kill9_soak_never_loses_acked_fsync_writes_or_reissues_seqs() {
    let cycles: u64 = std::env::var("TOPICS_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut s = Server::start_with(&[], Some(CONFIG));
    s.create("f", json!({ "durability": "fsync" }));
    s.create("d", json!({ "durability": "disk" }));
    let o = std::sync::Mutex::new(Oracle::default());
    for cycle in 0..cycles {
        let stop = AtomicBool::new(false);
        let addr = s.addr;
        std::thread::scope(|sc| {
            sc.spawn(|| load(addr, cycle, &stop, &o));
            // Kill points spread over 20..300 ms of load.
            std::thread::sleep(Duration::from_millis(20 + (cycle * 37) % 280));
            s.kill9();
            stop.store(true, Ordering::SeqCst);
        });
        if cycle % 4 == 3 {
            // Kill again during recovery: spawn, give it a moment, kill before it is ready.
            let mut child = s
                .command()
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
            let _ = child.kill();
            let _ = child.wait();
        }
        s.start_again();
        let mut o = o.lock().unwrap();
        // Records checked in earlier cycles are re-checked every 25 cycles and at the end.
        // An unanswered delete can only have reached "del" records above the last
        // acknowledged delete's head (those below it are already gone), so then the `f`
        // window widens back to there, not to the start.
        let full = cycle % 25 == 24 || cycle + 1 == cycles;
        let window = if full {
            (0, 0)
        } else if o.delete_in_doubt {
            (o.checked_f.min(o.deleted_upto), o.checked_d)
        } else {
            (o.checked_f, o.checked_d)
        };
        let (lost, deleted) = verify(&s, &o, cycle, window);
        for seq in lost {
            o.d.remove(&seq);
            o.d_lost += 1;
        }
        for seq in deleted {
            o.f.remove(&seq);
        }
        o.delete_in_doubt = false;
        o.checked_f = o.f.keys().last().copied().unwrap_or(0);
        o.checked_d = o.d.keys().last().copied().unwrap_or(0);
        if cycle % 50 == 49 {
            eprintln!("soak: {} cycles done", cycle + 1);
        }
        // No seq is ever reissued: the next write lands above everything acknowledged.
        for topic in ["f", "d"] {
            let probe = format!("probe-{cycle}-{topic}");
            o.attempted.insert(probe.clone());
            let r = s.write(topic, json!([{ "data": probe, "tag": "keep" }]));
            let seq = r["first_seq"].as_u64().unwrap();
            let acked = if topic == "f" { &mut o.f } else { &mut o.d };
            let max = acked.keys().last().copied().unwrap_or(0);
            assert!(
                seq > max,
                "cycle {cycle}: {topic} reissued seq {seq} (acked up to {max})"
            );
            acked.insert(seq, json!(probe));
        }
    }
    let o = o.lock().unwrap();
    eprintln!(
        "soak: {cycles} kill -9 cycles; {} fsync records acked, none lost; {} disk records kept, {} lost as un-written tails",
        o.f.len(),
        o.d.len(),
        o.d_lost
    );
}
