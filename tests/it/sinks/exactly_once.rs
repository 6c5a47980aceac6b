//! `exactly_once` across repeated kill -9 of the server while a writer keeps writing and the
//! sink is mid-batch: a `read_committed` reader sees every source seq once, in order.
//!
//! The mock cluster shows records of aborted or open transactions to `read_committed`
//! readers too (it keeps no transaction markers). The reader here therefore keeps only the
//! records inside the offset ranges that committed progress records name, which is what a
//! broker's transaction markers do; a sink that resumed anywhere but after its last committed
//! batch would show a duplicate or a missing seq in that view.

use super::kafka::{read_all, KRecord, Mock};
use super::{path, sink_body, wait_sink};
use crate::harness::http::try_request;
use crate::harness::{config_with, Server, TempDir};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Writes batches of 10 records to whichever server address is current, keeping the seqs
/// of every acknowledged write.
pub(super) struct Writer {
    addr: Arc<Mutex<Option<SocketAddr>>>,
    acked: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(addr: SocketAddr) -> Writer {
        let mut w = Writer {
            addr: Arc::new(Mutex::new(Some(addr))),
            acked: Arc::default(),
            stop: Arc::default(),
            thread: None,
        };
        let (a, acked, stop) = (w.addr.clone(), w.acked.clone(), w.stop.clone());
        w.thread = Some(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                let Some(addr) = *a.lock().unwrap() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let recs: Vec<Value> = (0..10).map(|i| json!({"data": n + i})).collect();
                let body = json!({"records": recs}).to_string();
                let headers = [("Content-Type", "application/json")];
                match try_request(addr, "POST", "/v0/topics/src", &headers, body.as_bytes()) {
                    Ok(r) if r.status == 200 => {
                        n += 10;
                        acked
                            .lock()
                            .unwrap()
                            .extend(crate::harness::written_seqs(&r.json()));
                    }
                    _ => std::thread::sleep(Duration::from_millis(10)),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
        w
    }

    fn point_at(&self, addr: Option<SocketAddr>) {
        *self.addr.lock().unwrap() = addr;
    }

    /// `kill -9` the server and start it again on its data dir; the writer pauses meanwhile.
    pub(super) fn across_a_crash(&self, s: &mut Server) {
        self.point_at(None);
        s.kill9();
        s.start_again();
        self.point_at(Some(s.addr));
    }

    /// Stop writing (after a last 300 ms) and wait until sink `sink` has forwarded everything
    /// the source holds; the acknowledged seqs, at least `min` of them.
    pub(super) fn finish_and_catch_up(mut self, s: &Server, sink: &str, min: usize) -> Vec<u64> {
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        assert!(
            acked.len() > min,
            "only {} acknowledged writes",
            acked.len()
        );
        let head = s.state("src")["head_seq"].as_u64().unwrap();
        wait_sink(s, sink, "caught up", |b| {
            b["cursor"] == head && b["state"] == "running"
        });
        acked
    }
}

/// The data records inside the offset ranges of committed progress records of sink `name`.
fn committed_view(data: &[KRecord], progress: &[KRecord], name: &str) -> Vec<KRecord> {
    let ranges: Vec<(i64, i64)> = progress
        .iter()
        .filter(|p| p.key.as_deref() == Some(name.as_bytes()))
        .filter_map(|p| {
            let r = &p.json()["offsets"]["0"];
            Some((r[0].as_i64()?, r[1].as_i64()?))
        })
        .collect();
    data.iter()
        .filter(|r| ranges.iter().any(|&(f, l)| f <= r.offset && r.offset <= l))
        .cloned()
        .collect()
}

/// In the committed view: record seqs strictly increase (no duplicate, seq order), every
/// acknowledged and every retained source seq is there, and no gap marker covers a record.
/// Returns the record seqs.
fn assert_each_seq_once_in_order(view: &[KRecord], acked: &[u64], source: &[u64]) -> Vec<u64> {
    let seqs: Vec<u64> = view.iter().filter_map(KRecord::seq).collect();
    let dups_or_disorder: Vec<_> = seqs.windows(2).filter(|w| w[0] >= w[1]).collect();
    assert!(
        dups_or_disorder.is_empty(),
        "not strictly increasing: {dups_or_disorder:?}"
    );
    let have: BTreeSet<u64> = seqs.iter().copied().collect();
    let lost: Vec<_> = acked.iter().filter(|q| !have.contains(q)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged seqs missing in Kafka: {lost:?}"
    );
    let missing: Vec<_> = source.iter().filter(|q| !have.contains(q)).collect();
    assert!(
        missing.is_empty(),
        "source seqs missing in Kafka: {missing:?}"
    );
    // Markers (for seqs a crash skipped) never cover a forwarded seq.
    for m in view.iter().filter(|r| r.seq().is_none()) {
        let from: u64 = m.headers["topics.gap.from"].parse().unwrap();
        let to: u64 = m.headers["topics.gap.to"].parse().unwrap();
        let covered = have.range(from..=to).next();
        assert!(covered.is_none(), "marker {from}..={to} over a record");
    }
    seqs
}

/// The sink's `forwarded_total` (GET).
fn forwarded(s: &Server) -> u64 {
    s.get(&path("e")).expect(200)["forwarded_total"]
        .as_u64()
        .unwrap()
}

#[test]
fn kill9_mid_batch_repeatedly_never_duplicates_or_loses_a_seq() {
    let mut mock = Mock::start();
    mock.create("eos", 1);
    mock.create("prog", 1); // the mock cluster has no CreateTopics
    let tmp = TempDir::new();
    let dir = tmp.path().join("data");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    // Each batch waits 300 ms between its records' delivery and its progress record, so a
    // kill during forwarding almost always leaves delivered records without a commit.
    let mut s = Server::start_raw(&args, &[("TOPICS_TEST_SINK_STALL_MS", "300")], &dir);
    s.create("src", config_with(json!({"durability": "fsync"})));
    let extra = json!({"guarantee": "exactly_once", "progress_topic": "prog",
        "batch_max_records": 200});
    s.put(&path("e"), &sink_body("src", &mock.bootstrap, "eos", extra))
        .expect(201);
    let writer = Writer::start(s.addr);
    for round in 0..4u64 {
        // Kill only once this incarnation committed a batch: it is connected and, with the
        // writer ahead of it, inside its next transaction.
        let before = forwarded(&s);
        wait_sink(&s, "e", "forwarding", |b| {
            b["forwarded_total"].as_u64() > Some(before)
        });
        std::thread::sleep(Duration::from_millis(60 + 50 * round));
        writer.across_a_crash(&mut s);
    }
    let acked = writer.finish_and_catch_up(&s, "e", 200);
    let raw = read_all(&mock.bootstrap, "eos", 1, acked.len());
    let progress = read_all(&mock.bootstrap, "prog", 1, 1);
    let view = committed_view(&raw, &progress, "e");
    let source: Vec<u64> = s
        .read_all("src")
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect();
    let seqs = assert_each_seq_once_in_order(&view, &acked, &source);
    let final_state = s.get(&path("e")).expect(200);
    assert_eq!(
        final_state["forwarded_total"],
        seqs.len() as u64,
        "counters ride in the progress"
    );
    let uncommitted = raw.len() - view.len();
    eprintln!(
        "kill -9 x4: {} acknowledged, {} committed records, {uncommitted} delivered but never \
         committed (aborted on a real broker)",
        acked.len(),
        seqs.len(),
    );
    assert!(uncommitted > 0, "no kill landed inside a transaction");
}
