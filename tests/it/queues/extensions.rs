//! Extensions beyond the contract, off by default: a retry backoff for expired leases and
//! plain nacks, and the last nack `reason` in a dead-letter copy.

use super::{claim, counters, jobs, queue, seqs, settle};
use crate::harness::{assert_error, Server};
use crate::retention::{advance, clocked};
use serde_json::json;

#[test]
fn retry_backoff_is_absent_unless_set_and_checked_when_set() {
    let s = Server::start();
    queue(&s, "plain", json!({}));
    let cfg = &s.get("/v0/topics/plain").expect(200)["config"];
    assert!(cfg.get("retry_backoff").is_none(), "{cfg}");
    queue(
        &s,
        "q",
        json!({"retry_backoff": {"base_ms": 100, "max_ms": 1000}}),
    );
    let cfg = &s.get("/v0/topics/q").expect(200)["config"];
    assert_eq!(
        cfg["retry_backoff"],
        json!({"base_ms": 100, "max_ms": 1000})
    );
    for bad in [
        json!({"base_ms": 0, "max_ms": 1}),
        json!({"base_ms": 5, "max_ms": 1}),
        json!({"base_ms": 1}),
    ] {
        let r = s.put(
            "/v0/topics/b",
            &json!({"type":"queue","retry_backoff": bad}),
        );
        assert_error(&r, 400, "invalid_request");
    }
}

/// A plain nack backs off: hidden for the backoff, then behind the fresh work that waited.
#[test]
fn a_nacked_job_backs_off_and_never_jumps_ahead_of_fresh_work() {
    let (s, _tmp) = clocked();
    queue(
        &s,
        "q",
        json!({"retry_backoff": {"base_ms": 1000, "max_ms": 1000}}),
    );
    jobs(&s, "q", 1);
    claim(&s, "q", json!({"node":"w"}));
    settle(&s, "q", "nack", json!({"node":"w","seqs":[1]}));
    assert_eq!(
        claim(&s, "q", json!({"node":"w"}))["count"],
        0,
        "hidden while backing off"
    );
    assert_eq!(counters(&s, "q")["ready"], 0);
    jobs(&s, "q", 2); // seqs 2 and 3: fresh work
    advance(&s, 1000);
    let order: Vec<u64> = (0..3)
        .flat_map(|_| seqs(&claim(&s, "q", json!({"node":"w"}))))
        .collect();
    assert_eq!(order, [2, 3, 1]);
    // A nack with delay_ms keeps its own delay and ordering.
    settle(
        &s,
        "q",
        "nack",
        json!({"node":"w","seqs":[2],"delay_ms":10}),
    );
    advance(&s, 10);
    assert_eq!(seqs(&claim(&s, "q", json!({"node":"w"}))), [2]);
}

#[test]
fn an_expired_lease_backs_off_too() {
    let (s, _tmp) = clocked();
    queue(
        &s,
        "q",
        json!({"retry_backoff": {"base_ms": 4000, "max_ms": 4000}}),
    );
    jobs(&s, "q", 1);
    claim(&s, "q", json!({"node":"w","lease_ms":1000}));
    advance(&s, 1001);
    assert_eq!(claim(&s, "q", json!({"node":"x"}))["count"], 0);
    advance(&s, 4000);
    let c = claim(&s, "q", json!({"node":"x"}));
    assert_eq!(
        (seqs(&c), c["claimed"][0]["deliveries"].clone()),
        (vec![1], json!(2))
    );
}

#[test]
fn the_last_nack_reason_goes_into_the_dead_letter_copy() {
    let s = Server::start();
    queue(&s, "q", json!({"max_deliveries": 1, "dead_letter": "dead"}));
    jobs(&s, "q", 1);
    claim(&s, "q", json!({"node":"w"}));
    let long = "r".repeat(257);
    let r = s.post(
        "/v0/topics/q/nack",
        &json!({"node":"w","seqs":[1],"reason":long}),
    );
    assert_error(&r, 400, "invalid_request");
    settle(
        &s,
        "q",
        "nack",
        json!({"node":"w","seqs":[1],"reason":"smtp 550 mailbox unavailable"}),
    );
    assert_eq!(claim(&s, "q", json!({"node":"w"}))["count"], 0);
    let dead = s.read_all("dead");
    assert_eq!(
        dead[0]["meta"]["$dead_letter_reason"],
        "smtp 550 mailbox unavailable"
    );
    assert_eq!(dead[0]["meta"]["$dead_letter_deliveries"], "1");
}

/// One poison job among many good ones, 10 workers: every good job is done, and the poison
/// job is delivered at most `max_deliveries` times before it is dead-lettered. (Throughput
/// with and without the poison job is measured in `benches/`, not asserted here.)
#[test]
fn a_poison_job_is_dead_lettered_after_max_deliveries_and_starves_nothing() {
    const GOOD: usize = 1000;
    let s = Server::start();
    let backoff = json!({"base_ms": 10, "max_ms": 50});
    queue(
        &s,
        "q",
        json!({"max_deliveries": 5, "dead_letter": "dead", "retry_backoff": backoff}),
    );
    s.write("q", json!([{"data":"poison"}]));
    jobs(&s, "q", GOOD);
    let poison_deliveries = std::sync::atomic::AtomicU64::new(0);
    let done = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|sc| {
        for w in 0..10 {
            let (s, pd, done) = (&s, &poison_deliveries, &done);
            sc.spawn(move || {
                let node = format!("w{w}");
                let mut idle = 0;
                while idle < 50 {
                    let c = claim(s, "q", json!({"node": node, "max": 5}));
                    let jobs = c["claimed"].as_array().unwrap().clone();
                    if jobs.is_empty() {
                        idle += 1;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                    idle = 0;
                    let (mut ok, mut bad) = (vec![], vec![]);
                    for j in &jobs {
                        match j["data"] == "poison" {
                            true => bad.push(j["$seq"].clone()),
                            false => ok.push(j["$seq"].clone()),
                        }
                    }
                    use std::sync::atomic::Ordering::Relaxed;
                    pd.fetch_add(bad.len() as u64, Relaxed);
                    done.fetch_add(ok.len() as u64, Relaxed);
                    settle(s, "q", "ack", json!({"node": node, "seqs": ok}));
                    settle(
                        s,
                        "q",
                        "nack",
                        json!({"node": node, "seqs": bad, "reason": "poison"}),
                    );
                }
            });
        }
    });
    assert_eq!(done.into_inner(), GOOD as u64);
    assert_eq!(poison_deliveries.into_inner(), 5);
    assert_eq!(
        counters(&s, "q"),
        json!({"ready":0,"in_flight":0,"dead_lettered":1})
    );
    assert_eq!(s.read_all("dead")[0]["data"], "poison");
}
