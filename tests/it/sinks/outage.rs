//! Kafka away: the sink retries with backoff and reports `retrying` with the error (GET and
//! metrics) while writes to its source go on; back, it catches up with nothing lost. Records
//! its source evicts meanwhile become one gap marker with their exact range.

use super::kafka::{read_all, Mock};
use super::{path, sink_body, wait_sink};
use crate::harness::{config_with, Server};
use serde_json::{json, Value};

fn metrics_text(s: &Server) -> String {
    s.get("/v0/metrics").text()
}

#[test]
fn an_outage_shows_as_retrying_and_recovery_catches_up_with_nothing_lost() {
    let mut mock = Mock::start();
    mock.create("out", 1);
    let s = Server::start();
    s.put(
        &path("o"),
        &sink_body("src", &mock.bootstrap, "out", json!({})),
    )
    .expect(201);
    s.write(
        "src",
        Value::Array((1..=10).map(|i| json!({"data": i})).collect()),
    );
    wait_sink(&s, "o", "at seq 10", |b| b["cursor"] == 10);
    mock.down();
    for i in 11..=30 {
        s.write("src", json!([{ "data": i }])); // never held up by the sink
    }
    let down = wait_sink(&s, "o", "retrying", |b| b["state"] == "retrying");
    assert!(
        down["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{down}"
    );
    assert_eq!(down["cursor"], 10);
    assert_eq!(down["lag"], 20);
    let text = metrics_text(&s);
    assert!(
        text.contains("topics_sink_state{sink=\"o\",state=\"retrying\"} 1"),
        "{text}"
    );
    assert!(text.contains("topics_sink_lag{sink=\"o\"} 20"), "{text}");
    mock.up();
    let up = wait_sink(&s, "o", "caught up", |b| {
        b["cursor"] == 30 && b["state"] == "running"
    });
    assert_eq!(up["last_error"], Value::Null);
    assert_eq!(up["lag"], 0);
    let recs = read_all(&mock.bootstrap, "out", 1, 30);
    let seqs: Vec<u64> = recs.iter().filter_map(|r| r.seq()).collect();
    let mut firsts = seqs.clone();
    firsts.dedup(); // at_least_once may repeat a run after a failed batch
    let mut seen = std::collections::BTreeSet::new();
    let in_order: Vec<u64> = seqs.iter().copied().filter(|q| seen.insert(*q)).collect();
    assert_eq!(
        in_order,
        (1..=30).collect::<Vec<u64>>(),
        "every seq, first copies in order"
    );
    assert!(metrics_text(&s).contains("topics_sink_state{sink=\"o\",state=\"running\"} 1"));
}

#[test]
fn records_evicted_before_forwarding_become_one_gap_marker_with_their_range() {
    let mut mock = Mock::start();
    mock.create("gaps", 1);
    mock.create("prog", 1); // the mock cluster has no CreateTopics
    let s = Server::start();
    s.create("small", config_with(json!({"cap_records": 5})));
    let extra = json!({"guarantee": "exactly_once", "progress_topic": "prog"});
    s.put(
        &path("g"),
        &sink_body("small", &mock.bootstrap, "gaps", extra),
    )
    .expect(201);
    s.write("small", json!([{"data": 1}, {"data": 2}, {"data": 3}]));
    wait_sink(&s, "g", "at seq 3", |b| b["cursor"] == 3);
    mock.down();
    for i in 4..=15 {
        s.write("small", json!([{ "data": i }]));
    }
    wait_sink(&s, "g", "retrying", |b| b["state"] == "retrying");
    mock.up();
    let got = wait_sink(&s, "g", "caught up", |b| {
        b["cursor"] == 15 && b["state"] == "running"
    });
    assert_eq!(got["gap_markers_total"], 1);
    assert_eq!(got["forwarded_total"], 8);
    let recs = read_all(&mock.bootstrap, "gaps", 1, 9);
    let shape: Vec<String> = recs
        .iter()
        .map(|r| match r.seq() {
            Some(q) => q.to_string(),
            None => format!(
                "gap {}..{} {}",
                r.headers["topics.gap.from"],
                r.headers["topics.gap.to"],
                r.headers["topics.gap.reason"]
            ),
        })
        .collect();
    assert_eq!(
        shape,
        ["1", "2", "3", "gap 4..10 cap", "11", "12", "13", "14", "15"]
    );
    assert_eq!(recs[3].json()["topics_gap"]["to"], 10);
    assert!(metrics_text(&s).contains("topics_sink_gap_markers_total{sink=\"g\"} 1"));
}
