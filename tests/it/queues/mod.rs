//! Lease queues (API.md §13): every endpoint with its errors and check order, leases,
//! expiry on a manual clock, delayed nacks, dead-lettering, the `/work` push stream and its
//! release on disconnect, many competing workers, and lease state across kill -9.

mod api;
mod delivery;
mod extensions;
mod restart;
mod soak;
mod work;

use crate::harness::Server;
use serde_json::{json, Value};

/// Create a queue topic with extra config fields.
pub fn queue(s: &Server, name: &str, extra: Value) {
    let mut cfg = json!({"type": "queue"});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    s.put(&format!("/v0/topics/{name}"), &cfg).expect(201);
}

/// `n` jobs with data `0..n`, written in batches.
pub fn jobs(s: &Server, name: &str, n: usize) {
    for start in (0..n).step_by(1000) {
        let batch: Vec<Value> = (start..n.min(start + 1000))
            .map(|i| json!({"data": i}))
            .collect();
        s.write(name, Value::Array(batch));
    }
}

pub fn claim(s: &Server, q: &str, body: Value) -> Value {
    s.post(&format!("/v0/topics/{q}/claim"), &body).expect(200)
}

pub fn seqs(claim: &Value) -> Vec<u64> {
    claim["claimed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["$seq"].as_u64().unwrap())
        .collect()
}

/// ack / nack / extend; expects 200.
pub fn settle(s: &Server, q: &str, op: &str, body: Value) -> Value {
    s.post(&format!("/v0/topics/{q}/{op}"), &body).expect(200)
}

pub fn counters(s: &Server, q: &str) -> Value {
    s.get(&format!("/v0/topics/{q}?touch=false")).expect(200)["queue"].clone()
}
