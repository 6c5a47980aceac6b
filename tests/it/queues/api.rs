//! Claim, ack, nack and extend: bodies, errors and their order, responses, counters.

use super::{claim, counters, jobs, queue, seqs, settle};
use crate::harness::{assert_error, Server};
use serde_json::json;

#[test]
fn queue_endpoints_need_an_existing_queue_topic() {
    let s = Server::start();
    for op in ["claim", "ack", "nack", "extend"] {
        let body = json!({"node":"w","seqs":[],"lease_ms":1000});
        let path = format!("/v0/topics/nope/{op}");
        assert_error(&s.post(&path, &body), 404, "topic_not_found");
        s.write("log", json!([{"data":1}]));
        let e = assert_error(
            &s.post(&format!("/v0/topics/log/{op}"), &body),
            409,
            "not_a_queue",
        );
        assert_eq!(e["detail"], json!({"topic":"log"}));
    }
    // Never auto-created by a queue call.
    assert_eq!(s.get("/v0/topics/nope").status, 404);
}

#[test]
fn bodies_are_checked_before_the_topic() {
    let s = Server::start();
    queue(&s, "q", json!({}));
    let bad = |op: &str, body: &[u8]| {
        let r = s.send_raw_json("POST", &format!("/v0/topics/q/{op}"), body);
        assert_error(&r, 400, "invalid_request")
    };
    bad("claim", b"");
    bad("claim", br#"{"max":1}"#);
    bad("claim", br#"{"node":""}"#);
    bad(
        "claim",
        format!(r#"{{"node":"{}"}}"#, "n".repeat(129)).as_bytes(),
    );
    bad("claim", br#"{"node":"w","max":-1}"#);
    bad("ack", br#"{"node":"w"}"#);
    bad("ack", br#"{"seqs":[1]}"#);
    bad(
        "ack",
        br#"{"node":"w","seqs":[1,2],"lease_ids":["lease_1"]}"#,
    );
    bad("ack", br#"{"node":"w","seqs":[1],"lease_ids":["l1"]}"#);
    bad("extend", br#"{"node":"w","seqs":[1]}"#);
    // Body errors come before the topic lookup.
    let r = s.send_raw_json("POST", "/v0/topics/nope/claim", br#"{"node":""}"#);
    assert_error(&r, 400, "invalid_request");
    let many: Vec<u64> = (0..1001).collect();
    let r = s.post("/v0/topics/q/ack", &json!({"node":"w","seqs":many}));
    let e = assert_error(&r, 400, "batch_too_large");
    assert_eq!(e["detail"], json!({"seqs":1001,"max":1000}));
}

#[test]
fn claim_leases_in_seq_order_with_counted_lease_ids_and_the_contract_fields() {
    let s = Server::start();
    queue(&s, "q", json!({}));
    s.write(
        "q",
        json!([{"data":{"a":1},"tag":"t1","node":"prod","meta":{"m":1}},{"data":2}]),
    );
    let c = claim(&s, "q", json!({"node":"w","max":0}));
    assert_eq!(
        (c["count"].clone(), c["ready"].clone()),
        (json!(1), json!(1))
    );
    let job = &c["claimed"][0];
    let mut keys: Vec<&str> = job
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "$seq",
            "$tag",
            "$ts",
            "data",
            "deadline",
            "deliveries",
            "lease_id",
            "meta"
        ]
    );
    assert_eq!(
        (&job["lease_id"], &job["deliveries"]),
        (&json!("lease_1"), &json!(1))
    );
    assert_eq!(
        (&job["data"], &job["meta"], &job["$tag"]),
        (&json!({"a":1}), &json!({"m":1}), &json!("t1"))
    );
    let c = claim(&s, "q", json!({"node":"w","max":5}));
    let job = &c["claimed"][0];
    assert_eq!(
        (job["lease_id"].clone(), job.get("meta"), job.get("$tag")),
        (json!("lease_2"), None, None)
    );
    assert_eq!(c["ready"], 0);
    assert_eq!(claim(&s, "q", json!({"node":"w"}))["count"], 0);
    assert_eq!(
        counters(&s, "q"),
        json!({"ready":0,"in_flight":2,"dead_lettered":0})
    );
}

#[test]
fn lease_ms_is_clamped_and_defaults_to_the_topic() {
    let (s, _tmp) = crate::retention::clocked();
    queue(&s, "q", json!({"lease_ms": 5000}));
    jobs(&s, "q", 3);
    let now = s.get("/v0/topics/q").expect(200)["last_write_ts"]
        .as_i64()
        .unwrap();
    let d = |c: &serde_json::Value| c["claimed"][0]["deadline"].as_i64().unwrap() - now;
    assert_eq!(d(&claim(&s, "q", json!({"node":"w"}))), 5000);
    assert_eq!(d(&claim(&s, "q", json!({"node":"w","lease_ms":1}))), 100);
    assert_eq!(
        d(&claim(
            &s,
            "q",
            json!({"node":"w","lease_ms":999999999999u64})
        )),
        86_400_000
    );
}

#[test]
fn only_the_holder_with_a_live_matching_lease_acts_and_acks_delete() {
    let s = Server::start();
    queue(&s, "q", json!({}));
    jobs(&s, "q", 4);
    let c = claim(&s, "q", json!({"node":"w","max":4}));
    assert_eq!(seqs(&c), [1, 2, 3, 4]);
    // Another node, a stale lease id, an unknown seq: skipped.
    let a = settle(&s, "q", "ack", json!({"node":"x","seqs":[1]}));
    assert_eq!(
        (a["acked"].clone(), a["skipped"].clone()),
        (json!(0), json!([1]))
    );
    let a = settle(
        &s,
        "q",
        "ack",
        json!({"node":"w","seqs":[1,2,9],"lease_ids":["lease_7","","lease_1"]}),
    );
    assert_eq!(
        (a["acked"].clone(), a["skipped"].clone()),
        (json!(1), json!([1, 9]))
    );
    assert_eq!(
        (a["ready"].clone(), a["in_flight"].clone()),
        (json!(0), json!(3))
    );
    // The ack is the delete: seq 2 is gone from the topic.
    let seqs_now: Vec<u64> = s
        .read_all("q")
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs_now, [1, 3, 4]);
    // Acked twice: the second is skipped.
    let a = settle(&s, "q", "ack", json!({"node":"w","seqs":[2]}));
    assert_eq!(a["skipped"], json!([2]));
    let e = settle(
        &s,
        "q",
        "extend",
        json!({"node":"w","seqs":[3,2],"lease_ms":60000}),
    );
    assert_eq!(
        (e["extended"].clone(), e["skipped"].clone()),
        (json!(1), json!([2]))
    );
    assert!(e["deadlines"]["3"].as_i64().unwrap() > 0);
}

#[test]
fn a_nack_redelivers_at_once_or_after_its_delay_keeping_the_delivery_count() {
    let (s, _tmp) = crate::retention::clocked();
    queue(&s, "q", json!({}));
    jobs(&s, "q", 2);
    claim(&s, "q", json!({"node":"w","max":2}));
    let n = settle(&s, "q", "nack", json!({"node":"w","seqs":[1]}));
    assert_eq!(
        (
            n["nacked"].clone(),
            n["ready"].clone(),
            n["in_flight"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    let n = settle(
        &s,
        "q",
        "nack",
        json!({"node":"w","seqs":[2],"delay_ms":5000}),
    );
    assert_eq!(
        (n["ready"].clone(), n["in_flight"].clone()),
        (json!(1), json!(0)),
        "delayed: not ready"
    );
    let c = claim(&s, "q", json!({"node":"w","max":5}));
    assert_eq!(seqs(&c), [1]);
    assert_eq!(c["claimed"][0]["deliveries"], 2);
    crate::retention::advance(&s, 5000);
    let c = claim(&s, "q", json!({"node":"w","max":5}));
    assert_eq!(
        (seqs(&c), c["claimed"][0]["deliveries"].clone()),
        (vec![2], json!(2))
    );
}

#[test]
fn an_expired_lease_is_skipped_for_its_holder_and_claimable_again() {
    let (s, _tmp) = crate::retention::clocked();
    queue(&s, "q", json!({}));
    jobs(&s, "q", 1);
    claim(&s, "q", json!({"node":"a","lease_ms":1000}));
    crate::retention::advance(&s, 1000);
    assert_eq!(
        claim(&s, "q", json!({"node":"b"}))["count"],
        0,
        "deadline itself still valid"
    );
    crate::retention::advance(&s, 1);
    assert_eq!(counters(&s, "q")["in_flight"], 0);
    let a = settle(&s, "q", "ack", json!({"node":"a","seqs":[1]}));
    assert_eq!(
        a["skipped"],
        json!([1]),
        "acting after the deadline is skipped"
    );
    let c = claim(&s, "q", json!({"node":"b"}));
    assert_eq!(
        (seqs(&c), c["claimed"][0]["deliveries"].clone()),
        (vec![1], json!(2))
    );
}

/// `/v0/metrics` reports each queue's oldest unsettled lease age (beyond the contract).
#[test]
fn metrics_report_the_oldest_lease_age_of_a_queue() {
    let (s, _tmp) = crate::retention::clocked();
    queue(&s, "q", json!({"lease_ms": 60000}));
    jobs(&s, "q", 2);
    claim(&s, "q", json!({"node":"w"}));
    crate::retention::advance(&s, 700);
    let text = s.get("/v0/metrics").text();
    assert!(
        text.contains("topics_topic_queue_oldest_lease_ms{topic=\"q\"} 700\n"),
        "{text}"
    );
}

/// `claim_jitter_ms` (API.md §13): claims arriving within the window of the first are served
/// together, jobs dealt out round-robin, each claimer up to its own `max`.
#[test]
fn claims_within_the_jitter_window_form_one_round_robin_cohort() {
    let s = Server::start();
    queue(&s, "q", json!({"claim_jitter_ms": 1500}));
    jobs(&s, "q", 6);
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| claim(&s, "q", json!({"node":"a","max":2})));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let b = sc.spawn(|| claim(&s, "q", json!({"node":"b","max":3})));
        (a.join().unwrap(), b.join().unwrap())
    });
    // Dealt one at a time: a 1, b 2, a 3, b 4, b 5 (a is full after two).
    assert_eq!((seqs(&a), seqs(&b)), (vec![1, 3], vec![2, 4, 5]));
    assert_eq!(
        (a["ready"].clone(), b["ready"].clone()),
        (json!(1), json!(1))
    );
}
