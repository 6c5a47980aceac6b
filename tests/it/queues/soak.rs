//! The drain: 50 workers against 20,000 jobs on an `fsync` queue with durable leases,
//! the server killed with `kill -9` twice in the middle and some workers vanishing while they
//! hold jobs. Afterwards no job is left, none was acked twice, every job was acked (or its
//! ack's answer was lost to a kill), and no two leases on one job ever overlapped in time.
//! Leases are short (5 s): a claim whose answer a kill swallowed leaves its jobs leased to a
//! worker that does not know it, until they expire.

use super::queue;
use crate::harness::http::{try_request, Response};
use crate::harness::{now_ms, Server};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const JOBS: u64 = 20_000;
const WORKERS: usize = 50;

struct Shared {
    addr: Mutex<SocketAddr>,
    /// Who holds each seq and until when, as the workers were told.
    holder: Mutex<HashMap<u64, (usize, i64)>>,
    acks: Mutex<HashMap<u64, u32>>,
    /// Seqs of an ack that had to be sent again: its first answer may have been lost.
    unsure: Mutex<HashSet<u64>>,
    acked: AtomicU64,
    done: AtomicBool,
}

impl Shared {
    /// POST until the server answers 200 (it may be restarting); whether it took retries.
    fn post(&self, path: &str, body: &Value) -> (Response, bool) {
        let h = [("Content-Type", "application/json")];
        let bytes = body.to_string();
        for attempt in 0..4000 {
            let addr = *self.addr.lock().unwrap();
            match try_request(addr, "POST", path, &h, bytes.as_bytes()) {
                Ok(r) if r.status == 200 => return (r, attempt > 0),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        panic!("{path}: no answer for 40 s");
    }

    /// Record the leases of a claim; panics if one overlaps another worker's lease.
    fn hold(&self, w: usize, jobs: &[Value]) {
        let now = now_ms();
        let mut holder = self.holder.lock().unwrap();
        for j in jobs {
            let (q, deadline) = (j["$seq"].as_u64().unwrap(), j["deadline"].as_i64().unwrap());
            let prev = holder.insert(q, (w, deadline));
            // 1 s of slack for the gap between the server's clock and this one.
            if let Some((other, until)) = prev.filter(|&(_, until)| until > now + 1000) {
                panic!("seq {q} leased to {w} while {other} holds it until {until} (now {now})");
            }
        }
    }
}

fn worker(sh: &Shared, w: usize, vanish_after: Option<u32>) {
    let node = format!("w{w}");
    let mut rounds = 0;
    while !sh.done.load(Ordering::Relaxed) {
        rounds += 1;
        let c = sh
            .post("/v0/topics/q/claim", &json!({"node": node, "max": 10}))
            .0
            .json();
        let jobs = c["claimed"].as_array().unwrap();
        if jobs.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        sh.hold(w, jobs);
        let got: Vec<u64> = jobs.iter().map(|j| j["$seq"].as_u64().unwrap()).collect();
        if vanish_after == Some(rounds) {
            // This worker dies holding its jobs: they come back when the leases expire.
            return;
        }
        let (a, retried) = sh.post("/v0/topics/q/ack", &json!({"node": node, "seqs": got}));
        let skipped: Vec<u64> = a.json()["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        if retried {
            sh.unsure.lock().unwrap().extend(got.iter().copied());
        }
        let mut acks = sh.acks.lock().unwrap();
        for q in got.iter().filter(|q| !skipped.contains(q)) {
            *acks.entry(*q).or_default() += 1;
            sh.acked.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn fifty_workers_drain_twenty_thousand_jobs_across_kill9_with_none_lost_or_doubled() {
    let mut s = Server::start();
    queue(
        &s,
        "q",
        json!({"durability":"fsync","leases_durable":true,"lease_ms":5000}),
    );
    for start in (0..JOBS).step_by(1000) {
        let batch: Vec<Value> = (start..start + 1000).map(|i| json!({"data": i})).collect();
        s.write("q", Value::Array(batch));
    }
    let sh = Shared {
        addr: Mutex::new(s.addr),
        holder: Mutex::new(HashMap::new()),
        acks: Mutex::new(HashMap::new()),
        unsure: Mutex::new(HashSet::new()),
        acked: AtomicU64::new(0),
        done: AtomicBool::new(false),
    };
    std::thread::scope(|sc| {
        for w in 0..WORKERS {
            let sh = &sh;
            // Every tenth worker vanishes on its third round, holding its jobs.
            let vanish = (w % 10 == 0).then_some(3);
            sc.spawn(move || worker(sh, w, vanish));
        }
        for at in [JOBS / 4, JOBS / 2] {
            while sh.acked.load(Ordering::Relaxed) < at {
                std::thread::sleep(Duration::from_millis(5));
            }
            s.kill9();
            s.start_again();
            *sh.addr.lock().unwrap() = s.addr;
        }
        // Done when the queue is empty (acks whose answer was lost are not counted above).
        while s.state("q")["count"] != 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        sh.done.store(true, Ordering::Relaxed);
    });
    let acks = sh.acks.into_inner().unwrap();
    let unsure = sh.unsure.into_inner().unwrap();
    let twice: Vec<_> = acks.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "acked twice: {twice:?}");
    let missing: Vec<u64> = (1..=JOBS)
        .filter(|q| !acks.contains_key(q) && !unsure.contains(q))
        .collect();
    assert!(missing.is_empty(), "gone without an ack: {missing:?}");
    assert_eq!(s.read_all("q"), Vec::<Value>::new(), "no job left");
}
