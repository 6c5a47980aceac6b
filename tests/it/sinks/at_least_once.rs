//! `at_least_once` across repeated kill -9 of the server while a writer keeps writing: the
//! cursor in the sink's file is saved only after Kafka acknowledged, so a restart may send a
//! run of records again but never skips one.

use super::exactly_once::Writer;
use super::kafka::{read_all, Mock};
use super::{path, sink_body};
use crate::harness::{config_with, Server};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn kill9_repeatedly_may_repeat_a_run_but_never_loses_a_seq() {
    let mut mock = Mock::start();
    mock.create("alo", 1);
    let mut s = Server::start();
    s.create("src", config_with(json!({"durability": "fsync"})));
    let extra = json!({"batch_max_records": 100});
    s.put(&path("a"), &sink_body("src", &mock.bootstrap, "alo", extra))
        .expect(201);
    let writer = Writer::start(s.addr);
    for round in 0..3u64 {
        std::thread::sleep(Duration::from_millis(400 + 100 * round));
        writer.across_a_crash(&mut s);
    }
    let acked = writer.finish_and_catch_up(&s, "a", 100);
    let recs = read_all(&mock.bootstrap, "alo", 1, acked.len());
    let seqs: Vec<u64> = recs.iter().filter_map(|r| r.seq()).collect();
    let mut seen = BTreeSet::new();
    let firsts: Vec<u64> = seqs.iter().copied().filter(|q| seen.insert(*q)).collect();
    let disorder: Vec<_> = firsts.windows(2).filter(|w| w[0] >= w[1]).collect();
    assert!(
        disorder.is_empty(),
        "first copies out of order: {disorder:?}"
    );
    let lost: Vec<_> = acked.iter().filter(|q| !seen.contains(q)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged seqs missing in Kafka: {lost:?}"
    );
    let repeats = seqs.len() - firsts.len();
    eprintln!(
        "kill -9 x3: {} acknowledged, {repeats} records sent twice",
        acked.len()
    );
}
