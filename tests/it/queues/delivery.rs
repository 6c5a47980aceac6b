//! Dead-lettering after `max_deliveries`, and many competing workers draining one queue.

use super::{claim, counters, jobs, queue, seqs, settle};
use crate::harness::Server;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

#[test]
fn a_job_over_max_deliveries_moves_to_the_dead_letter_topic_with_its_metadata() {
    let s = Server::start();
    queue(
        &s,
        "q",
        json!({"max_deliveries": 2, "dead_letter": "q.dead"}),
    );
    s.write(
        "q",
        json!([{"data":"poison","tag":"p","node":"n1","meta":{"trace":"t"}},{"data":"ok"}]),
    );
    for _ in 0..2 {
        let c = claim(&s, "q", json!({"node":"w"}));
        assert_eq!(seqs(&c), [1]);
        settle(&s, "q", "nack", json!({"node":"w","seqs":[1]}));
    }
    // The third delivery would exceed 2: the job is dead-lettered and the claim goes on.
    let c = claim(&s, "q", json!({"node":"w"}));
    assert_eq!(seqs(&c), [2]);
    assert_eq!(
        counters(&s, "q"),
        json!({"ready":0,"in_flight":1,"dead_lettered":1})
    );
    let dead = s.read_all("q.dead");
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(
        (&d["data"], &d["$tag"], &d["$node"]),
        (&json!("poison"), &json!("p"), &json!("n1"))
    );
    assert_eq!(
        d["meta"],
        json!({"trace":"t","$dead_letter_from":"q","$dead_letter_deliveries":"2",
               "$dead_letter_src_seq":"1"})
    );
    let left: Vec<u64> = s
        .read_all("q")
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect();
    assert_eq!(left, [2], "the job left the queue");
}

#[test]
fn without_a_dead_letter_topic_a_job_is_redelivered_for_ever() {
    let s = Server::start();
    queue(&s, "q", json!({"max_deliveries": 1}));
    jobs(&s, "q", 1);
    for d in 1..=3 {
        let c = claim(&s, "q", json!({"node":"w"}));
        assert_eq!(c["claimed"][0]["deliveries"], d);
        settle(&s, "q", "nack", json!({"node":"w","seqs":[1]}));
    }
}

/// Workers claim, ack and sometimes nack concurrently: every job is acked exactly once, and
/// no seq is ever held by two workers at once (leases are long, so none expires).
#[test]
fn competing_workers_drain_every_job_exactly_once_and_never_share_a_lease() {
    const JOBS: usize = 3000;
    const WORKERS: usize = 12;
    let s = Server::start();
    queue(&s, "q", json!({"lease_ms": 600000}));
    jobs(&s, "q", JOBS);
    let holder: Mutex<HashMap<u64, usize>> = Mutex::new(HashMap::new());
    let acked: Mutex<HashMap<u64, usize>> = Mutex::new(HashMap::new());
    std::thread::scope(|sc| {
        for w in 0..WORKERS {
            let (s, holder, acked) = (&s, &holder, &acked);
            sc.spawn(move || {
                let node = format!("w{w}");
                let mut round = 0;
                loop {
                    round += 1;
                    let c = claim(s, "q", json!({"node": node, "max": 10}));
                    let got = seqs(&c);
                    if got.is_empty() {
                        break;
                    }
                    for &q in &got {
                        let prev = holder.lock().unwrap().insert(q, w);
                        assert!(
                            prev.is_none(),
                            "seq {q} leased to {w} while {prev:?} holds it"
                        );
                    }
                    // Every third round gives the first job back instead of acking it.
                    let (back, done) = match round % 3 {
                        0 => got.split_at(1),
                        _ => got.split_at(0),
                    };
                    for &q in back.iter().chain(done) {
                        holder.lock().unwrap().remove(&q);
                    }
                    if !back.is_empty() {
                        settle(s, "q", "nack", json!({"node": node, "seqs": back}));
                    }
                    let a = settle(s, "q", "ack", json!({"node": node, "seqs": done}));
                    assert_eq!(a["skipped"], json!([]), "{a}");
                    let mut acked = acked.lock().unwrap();
                    for &q in done {
                        *acked.entry(q).or_default() += 1;
                    }
                }
            });
        }
    });
    let acked = acked.into_inner().unwrap();
    assert_eq!(acked.len(), JOBS, "every job acked");
    assert!(acked.values().all(|&n| n == 1), "a job acked twice");
    assert_eq!(s.read_all("q"), Vec::<Value>::new());
    assert_eq!(
        counters(&s, "q"),
        json!({"ready":0,"in_flight":0,"dead_lettered":0})
    );
}

/// A claim refused for back-pressure (`429`: the WAL queue is full, so the leases could not
/// be logged) delivered nothing, so it must not count a delivery: with a tiny WAL queue and
/// many workers, no job that every worker acks is ever dead-lettered.
#[test]
fn refused_claims_count_no_delivery_and_dead_letter_nothing() {
    let s = Server::start_with(&[], Some("[storage]\nwal_queue_frames = 2\n"));
    let post = |path: &str, body: Value| loop {
        let r = s.post(path, &body);
        match r.status {
            200 | 201 => return r.json(),
            429 => std::thread::sleep(std::time::Duration::from_millis(1)),
            other => panic!("{path}: {other} {}", r.text()),
        }
    };
    s.put(
        "/v0/topics/q",
        &json!({"type":"queue","max_deliveries":1,"dead_letter":"dead","leases_durable":true}),
    )
    .expect(201);
    for i in 0..40 {
        let batch: Vec<Value> = (0..25).map(|j| json!({"data": i * 25 + j})).collect();
        post("/v0/topics/q", json!({"records": batch}));
    }
    std::thread::scope(|sc| {
        for w in 0..8 {
            let post = &post;
            sc.spawn(move || loop {
                let node = format!("w{w}");
                let c = post("/v0/topics/q/claim", json!({"node": node, "max": 1}));
                let got = seqs(&c);
                if got.is_empty() {
                    break;
                }
                post("/v0/topics/q/ack", json!({"node": node, "seqs": got}));
            });
        }
    });
    assert_eq!(counters(&s, "q")["dead_lettered"], 0);
    assert_eq!(s.state("q")["count"], 0);
}
