//! Forwarding: every record, and every later write, reaches Kafka in seq order with its
//! stamps in headers and its `data` as the value; keys per the definition; `exactly_once`
//! commits a progress record with each batch.

use super::kafka::{read_all, Mock};
use super::{caught_up, path, sink_body, wait_sink};
use crate::harness::Server;
use serde_json::{json, Value};

fn seqs(recs: &[super::kafka::KRecord]) -> Vec<u64> {
    recs.iter().filter_map(|r| r.seq()).collect()
}

#[test]
fn history_then_later_writes_arrive_in_seq_order_with_stamps_in_headers() {
    let mut mock = Mock::start();
    mock.create("orders-out", 1);
    let s = Server::start();
    s.write_body(
        "orders",
        json!({"node": "eu-1", "records": [{"data": {"n": 1, "s": "x"}, "tag": "t1"},
            {"data": "two"}]}),
    );
    let body = sink_body("orders", &mock.bootstrap, "orders-out", json!({}));
    let put = s.put(&path("s1"), &body).expect(201);
    assert_eq!(put["created"], true);
    assert_eq!(put["guarantee"], "at_least_once");
    caught_up(&s, "s1");
    let later: Vec<Value> = (3..=40).map(|i| json!({"data": {"n": i}})).collect();
    s.write("orders", Value::Array(later));
    let got = wait_sink(&s, "s1", "at seq 40", |b| {
        b["cursor"] == 40 && b["lag"] == 0
    });
    assert_eq!(got["forwarded_total"], 40);
    assert_eq!(got["state"], "running");
    assert_eq!(got["last_error"], Value::Null);
    let recs = read_all(&mock.bootstrap, "orders-out", 1, 40);
    assert_eq!(
        seqs(&recs),
        (1..=40).collect::<Vec<u64>>(),
        "order, no gap, no duplicate"
    );
    let first = &recs[0];
    assert_eq!(first.json(), json!({"n": 1, "s": "x"}));
    assert_eq!(first.headers["topics.topic"], "orders");
    assert_eq!(first.headers["topics.node"], "eu-1");
    assert_eq!(first.headers["topics.tag"], "t1");
    let ts: i64 = first.headers["topics.ts"].parse().unwrap();
    let source = s.read_all("orders");
    assert_eq!(source[0]["$ts"], ts);
    assert_eq!(recs[1].json(), json!("two"));
    assert!(!recs[1].headers.contains_key("topics.tag"));
    assert_eq!(recs[39].json(), json!({"n": 40}));
    assert!(recs.iter().all(|r| r.key.is_none() && r.partition == 0));
}

#[test]
fn keys_come_from_a_data_field_and_equal_keys_keep_their_order() {
    let mut mock = Mock::start();
    mock.create("keyed", 3);
    let s = Server::start();
    let body = sink_body(
        "src",
        &mock.bootstrap,
        "keyed",
        json!({"key": {"field": "who.id"}}),
    );
    s.put(&path("k"), &body).expect(201);
    let recs: Vec<Value> = (0..30)
        .map(|i| json!({"data": {"who": {"id": format!("c{}", i % 4)}, "i": i}}))
        .collect();
    s.write("src", Value::Array(recs));
    wait_sink(&s, "k", "at seq 30", |b| b["cursor"] == 30);
    let got = read_all(&mock.bootstrap, "keyed", 3, 30);
    assert_eq!(got.len(), 30);
    for c in 0..4 {
        let key = format!("c{c}").into_bytes();
        let mine: Vec<_> = got
            .iter()
            .filter(|r| r.key.as_ref() == Some(&key))
            .collect();
        assert!(mine.windows(2).all(|w| w[0].partition == w[1].partition));
        let order: Vec<u64> = mine.iter().filter_map(|r| r.seq()).collect();
        let want: Vec<u64> = (0..30u64).filter(|i| i % 4 == c).map(|i| i + 1).collect();
        assert_eq!(order, want, "key c{c}");
    }
}

#[test]
fn exactly_once_commits_each_batch_with_a_progress_record() {
    let mut mock = Mock::start();
    mock.create("eos-out", 1);
    mock.create("prog", 1); // the mock cluster has no CreateTopics
    let s = Server::start();
    let extra = json!({"guarantee": "exactly_once", "progress_topic": "prog",
        "batch_max_records": 10});
    let put = s.put(
        &path("e"),
        &sink_body("src", &mock.bootstrap, "eos-out", extra),
    );
    let put = put.expect(201);
    let epoch = put["epoch"].as_u64().unwrap();
    let data: Vec<Value> = (1..=25).map(|i| json!({"data": i})).collect();
    s.write("src", Value::Array(data));
    wait_sink(&s, "e", "at seq 25", |b| b["cursor"] == 25);
    let recs = read_all(&mock.bootstrap, "eos-out", 1, 25);
    assert_eq!(seqs(&recs), (1..=25).collect::<Vec<u64>>());
    let progress = read_all(&mock.bootstrap, "prog", 1, 3);
    let last = progress.last().unwrap();
    assert_eq!(last.key.as_deref(), Some(&b"e"[..]));
    let v = last.json();
    assert_eq!(
        (v["sink"].clone(), v["source"].clone()),
        (json!("e"), json!("src"))
    );
    assert_eq!(v["last_seq"], 25);
    assert_eq!(v["epoch"], epoch);
    assert_eq!(v["offsets"]["0"][1], 24, "the last record's offset");
    assert!(progress.len() >= 3, "at most 10 records per transaction");
}

#[test]
fn a_deleted_source_stops_the_sink_and_a_recreated_one_starts_over() {
    let mut mock = Mock::start();
    mock.create("re", 1);
    let s = Server::start();
    s.put(
        &path("r"),
        &sink_body("src", &mock.bootstrap, "re", json!({})),
    )
    .expect(201);
    s.write("src", json!([{"data": "a"}, {"data": "b"}, {"data": "c"}]));
    wait_sink(&s, "r", "at seq 3", |b| b["cursor"] == 3);
    s.delete("/v0/topics/src").expect(200);
    let stopped = wait_sink(&s, "r", "stopped", |b| b["state"] == "stopped");
    assert!(stopped["last_error"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    s.create("src", json!({}));
    s.write("src", json!([{"data": "new-1"}, {"data": "new-2"}]));
    let got = wait_sink(&s, "r", "restarted", |b| {
        b["cursor"] == 2 && b["state"] == "running" && b["forwarded_total"] == 5
    });
    assert_eq!(got["lag"], 0);
    let recs = read_all(&mock.bootstrap, "re", 1, 5);
    let data: Vec<Value> = recs.iter().map(|r| r.json()).collect();
    assert_eq!(
        data,
        [
            json!("a"),
            json!("b"),
            json!("c"),
            json!("new-1"),
            json!("new-2")
        ]
    );
    assert_eq!(seqs(&recs), [1, 2, 3, 1, 2]);
}
