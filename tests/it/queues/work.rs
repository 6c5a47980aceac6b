//! `GET /v0/topics/:topic/work`: job frames up to `max`, refills as jobs are acked, and the
//! release of every lease of a connection the moment the client goes away.

use super::{claim, counters, jobs, queue, settle};
use crate::harness::sse::SseStream;
use crate::harness::{assert_error, Server};
use serde_json::json;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

#[test]
fn work_streams_jobs_up_to_max_and_refills_after_acks() {
    let s = Server::start();
    queue(&s, "q", json!({}));
    jobs(&s, "q", 5);
    let mut w = SseStream::open(s.addr, "/v0/topics/q/work?node=w&max=2", &[]);
    assert_eq!(w.status, 200);
    assert_eq!(w.header("content-type"), Some("text/event-stream"));
    let mut got = Vec::new();
    for _ in 0..2 {
        let (event, data, id) = w.next_event(T).unwrap();
        assert_eq!(event, "job");
        assert_eq!(id, data["$seq"].to_string());
        assert_eq!(
            (&data["topic"], &data["deliveries"]),
            (&json!("q"), &json!(1))
        );
        got.push(data["$seq"].as_u64().unwrap());
    }
    assert_eq!(got, [1, 2]);
    assert!(
        w.next_event(Duration::from_millis(600)).is_err(),
        "no third job while 2 are held"
    );
    settle(&s, "q", "ack", json!({"node":"w","seqs":[1]}));
    let (_, data, _) = w.next_event(T).unwrap();
    assert_eq!(data["$seq"], 3);
    // A POST claim by another node gets what the stream does not hold.
    assert_eq!(claim(&s, "q", json!({"node":"x","max":5}))["count"], 2);
}

#[test]
fn work_checks_accept_node_topic_and_type_in_order() {
    let s = Server::start();
    s.write("log", json!([{"data":1}]));
    let open = |path: &str, accept: &str| SseStream::open(s.addr, path, &[("Accept", accept)]);
    assert_eq!(open("/v0/topics/nope/work", "application/json").status, 406);
    let e = open("/v0/topics/nope/work", "text/event-stream").error_json();
    assert_eq!(e["error"]["code"], "invalid_request");
    assert_eq!(open("/v0/topics/nope/work?node=w", "*/*").status, 404);
    let e = open("/v0/topics/log/work?node=w", "*/*").error_json();
    assert_eq!(e["error"]["code"], "not_a_queue");
    assert_error(&s.get("/v0/topics/log/work?node=w"), 409, "not_a_queue");
}

/// A worker holding 50 leases disappears without a word: its leases are claimable again
/// within a second, long before `lease_ms`.
#[test]
fn a_vanished_work_client_releases_its_leases_at_once() {
    let s = Server::start();
    queue(&s, "q", json!({"lease_ms": 600000}));
    jobs(&s, "q", 60);
    let mut w = SseStream::open(s.addr, "/v0/topics/q/work?node=w&max=50", &[]);
    for _ in 0..50 {
        w.next_event(T).unwrap();
    }
    assert_eq!(counters(&s, "q")["in_flight"], 50);
    drop(w); // the socket closes; the stream was idle
    let t0 = Instant::now();
    loop {
        if counters(&s, "q")["in_flight"] == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "leases still held after 1 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let c = claim(&s, "q", json!({"node":"x","max":100}));
    assert_eq!(c["count"], 60);
}

#[test]
fn shutdown_ends_a_work_stream_with_its_error_frame() {
    let mut s = Server::start();
    queue(&s, "q", json!({}));
    let mut w = SseStream::open(s.addr, "/v0/topics/q/work?node=w", &[]);
    std::thread::sleep(Duration::from_millis(200));
    let pid = s.pid();
    unsafe_sigterm(pid);
    let (event, data, _) = w.next_event(T).unwrap();
    assert_eq!(
        (event.as_str(), &data["code"]),
        ("error", &json!("server_shutting_down"))
    );
    assert_eq!(data["topic"], "q");
    s.wait_exit();
}

fn unsafe_sigterm(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
