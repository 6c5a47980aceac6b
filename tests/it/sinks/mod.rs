//! Kafka sinks (API.md §15, feature `kafka`): the endpoints and their checks, forwarding order
//! and headers, `exactly_once` and `at_least_once` across repeated kill -9, a broker outage and
//! recovery, and the gap marker for records the source lost before they were forwarded. Kafka
//! is librdkafka's mock cluster in a process of its own (`topics-kafka-mock`); the test reads
//! it back with an rdkafka consumer.

mod api;
mod at_least_once;
mod exactly_once;
mod forwarding;
mod outage;

pub mod kafka;

use crate::harness::Server;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub fn path(name: &str) -> String {
    format!("/v0/sinks/{name}")
}

/// A sink body for `source` → `kafka_topic` on `bootstrap`, with test-friendly timeouts, plus
/// `extra` fields.
pub fn sink_body(source: &str, bootstrap: &str, kafka_topic: &str, extra: Value) -> Value {
    let mut b = json!({"source": source, "bootstrap_servers": bootstrap,
        "kafka_topic": kafka_topic, "progress_replication": 1, "linger_ms": 0,
        "properties": {"message.timeout.ms": "3000", "socket.connection.setup.timeout.ms": "2000"}});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        b[k] = v;
    }
    b
}

/// Poll GET of sink `name` until `cond` holds (bounded); returns the last body.
pub fn wait_sink(s: &Server, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = s.get(&path(name)).expect(200);
        if cond(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "sink never {what}: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until the sink has forwarded everything its source holds.
pub fn caught_up(s: &Server, name: &str) -> Value {
    wait_sink(s, name, "caught up", |b| {
        b["lag"] == 0 && b["state"] == "running" && b["cursor"].as_u64() > Some(0)
    })
}
