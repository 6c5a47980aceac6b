//! Lease state across restarts: acked jobs never come back, un-acked jobs are never lost,
//! delivery counters and (with `leases_durable`) leases survive `kill -9`; no seq is reissued
//! after a clean restart even when the acked jobs were the tail.

use super::{claim, counters, jobs, queue, seqs, settle};
use crate::harness::Server;
use serde_json::json;
use std::collections::BTreeSet;

fn live(s: &Server, q: &str) -> BTreeSet<u64> {
    s.read_all(q)
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn kill9_keeps_acks_jobs_durable_leases_and_delivery_counters() {
    let mut s = Server::start();
    queue(
        &s,
        "q",
        json!({"durability":"fsync","leases_durable":true,"lease_ms":600000}),
    );
    jobs(&s, "q", 100);
    let mut acked = BTreeSet::new();
    for round in 0..3 {
        let c = claim(&s, "q", json!({"node":"w","max":10}));
        let got = seqs(&c);
        let (ack, keep) = got.split_at(5);
        settle(&s, "q", "ack", json!({"node":"w","seqs":ack}));
        acked.extend(ack.iter().copied());
        // Half the rest back to the queue: counted deliveries, no lease.
        settle(&s, "q", "nack", json!({"node":"w","seqs":&keep[..2]}));
        s.crash_restart();
        let now = live(&s, "q");
        assert!(
            acked.is_disjoint(&now),
            "round {round}: an acked job came back"
        );
        assert_eq!(
            now.len(),
            100 - acked.len(),
            "round {round}: a job was lost"
        );
        // The kept leases survived (leases_durable): their holder can still ack them.
        let a = settle(&s, "q", "ack", json!({"node":"w","seqs":&keep[2..]}));
        assert_eq!(a["skipped"], json!([]), "round {round}: {a}");
        acked.extend(keep[2..].iter().copied());
    }
    // Nacked jobs keep their delivery count.
    let c = claim(&s, "q", json!({"node":"w","max":1}));
    assert_eq!(c["claimed"][0]["deliveries"], 2, "{c}");
    assert_eq!(counters(&s, "q")["in_flight"], 1);
}

/// Without `leases_durable` lease events are written but not synced: a crash may keep a
/// lease or lose it (then the job is claimable again); it never loses or repeats a job.
#[test]
fn without_durable_leases_a_crash_loses_no_job() {
    let mut s = Server::start();
    queue(&s, "q", json!({"durability":"fsync","lease_ms":600000}));
    jobs(&s, "q", 20);
    let got = seqs(&claim(&s, "q", json!({"node":"w","max":20})));
    settle(&s, "q", "ack", json!({"node":"w","seqs":&got[..10]}));
    s.crash_restart();
    let rest: BTreeSet<u64> = got[10..].iter().copied().collect();
    assert_eq!(live(&s, "q"), rest);
    let held = settle(&s, "q", "ack", json!({"node":"w","seqs":&got[10..]}))["acked"]
        .as_u64()
        .unwrap();
    let again: BTreeSet<u64> = seqs(&claim(&s, "q", json!({"node":"x","max":20})))
        .into_iter()
        .collect();
    assert_eq!(
        held as usize + again.len(),
        10,
        "each job either still leased or claimable"
    );
    assert!(again.is_subset(&rest));
}

#[test]
fn a_clean_restart_reissues_no_seq_after_acked_tail_jobs() {
    let mut s = Server::start();
    queue(&s, "q", json!({}));
    jobs(&s, "q", 5);
    let got = seqs(&claim(&s, "q", json!({"node":"w","max":5})));
    settle(&s, "q", "ack", json!({"node":"w","seqs":got}));
    s.restart();
    let w = s.write("q", json!([{"data":"next"}]));
    assert_eq!(w["first_seq"], 6);
}

#[test]
fn a_checkpoint_keeps_lease_state() {
    let fast = "[storage]\nsnapshot_wal_bytes = 4096\nsnapshot_check_interval_ms = 20\n";
    let mut s = Server::start_with(&[], Some(fast));
    queue(&s, "q", json!({"leases_durable":true,"lease_ms":600000}));
    jobs(&s, "q", 10);
    let got = seqs(&claim(&s, "q", json!({"node":"w","max":3})));
    settle(&s, "q", "nack", json!({"node":"w","seqs":[got[0]]}));
    // Enough other writes that checkpoints run and the WAL with the lease events is gone.
    for _ in 0..20 {
        s.write("other", json!([{"data": "x".repeat(500)}]));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.crash_restart();
    let a = settle(&s, "q", "ack", json!({"node":"w","seqs":&got[1..]}));
    assert_eq!(a["skipped"], json!([]), "{a}");
    let c = claim(&s, "q", json!({"node":"w","max":1}));
    assert_eq!(
        (seqs(&c), c["claimed"][0]["deliveries"].clone()),
        (vec![got[0]], json!(2))
    );
}

/// Dead-letter moves under repeated kill -9: every job ends up in the dead-letter topic
/// exactly once and nowhere else.
#[test]
fn kill9_during_dead_letter_moves_neither_loses_nor_doubles_a_job() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    const JOBS: u64 = 400;
    let mut s = Server::start();
    queue(
        &s,
        "q",
        json!({"durability":"fsync","max_deliveries":1,"dead_letter":"dead"}),
    );
    jobs(&s, "q", JOBS as usize);
    // One delivery each: the next claim of any job dead-letters it.
    let all = seqs(&claim(&s, "q", json!({"node":"w","max":1000})));
    settle(&s, "q", "nack", json!({"node":"w","seqs":all}));
    let addr = Arc::new(Mutex::new(s.addr));
    let stop = Arc::new(AtomicBool::new(false));
    let claimer = {
        let (addr, stop) = (addr.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let a = *addr.lock().unwrap();
                let body = br#"{"node":"w","max":7}"#;
                let h = [("Content-Type", "application/json")];
                let _ =
                    crate::harness::http::try_request(a, "POST", "/v0/topics/q/claim", &h, body);
            }
        })
    };
    for round in 0..6u64 {
        std::thread::sleep(std::time::Duration::from_millis(15 + 13 * round));
        s.kill9();
        s.start_again();
        *addr.lock().unwrap() = s.addr;
    }
    stop.store(true, Ordering::Relaxed);
    claimer.join().unwrap();
    while claim(&s, "q", json!({"node":"w","max":1000}))["count"] != 0 {}
    assert_eq!(live(&s, "q"), BTreeSet::new(), "every job left the queue");
    let mut copies = std::collections::BTreeMap::<String, u32>::new();
    for r in s.read_all("dead") {
        *copies
            .entry(
                r["meta"]["$dead_letter_src_seq"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
            .or_default() += 1;
    }
    let doubled: Vec<_> = copies.iter().filter(|(_, &n)| n > 1).collect();
    assert!(doubled.is_empty(), "dead-lettered twice: {doubled:?}");
    assert_eq!(copies.len() as u64, JOBS, "every job dead-lettered once");
}
