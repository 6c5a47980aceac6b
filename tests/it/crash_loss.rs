//! Crash loss is signalled in-band: after `kill -9`, a reader of a `disk` or `memory` topic
//! that crosses the seqs which may have been acknowledged and lost (reserved ahead, never
//! read back) gets a `crash` tombstone, also after later checkpoints and restarts; an `fsync`
//! topic never needs one.

use crate::harness::{records, Server};
use serde_json::json;

/// Read `topic` from 0; returns its seqs and the tombstones it met as (from, to, reason).
fn read_with_tombstones(s: &Server, topic: &str) -> (Vec<u64>, Vec<(u64, u64, String)>) {
    let (mut seqs, mut gaps, mut from) = (Vec::new(), Vec::new(), 0);
    for _ in 0..1000 {
        let d = s.diff(topic, json!({"from_seq": from, "limit": 1000}));
        let t = &d["tombstone"];
        if !t.is_null() {
            let reason = t["reason"].as_str().unwrap().to_string();
            gaps.push((
                t["gap_from"].as_u64().unwrap(),
                t["gap_to"].as_u64().unwrap(),
                reason,
            ));
        }
        seqs.extend(
            d["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["$seq"].as_u64().unwrap()),
        );
        from = d["next_from_seq"].as_u64().unwrap();
        if d["caught_up"] == true {
            return (seqs, gaps);
        }
    }
    panic!("read never caught up");
}

#[test]
fn a_reader_crossing_what_a_crash_may_have_taken_gets_a_crash_tombstone() {
    let mut s = Server::start();
    for (topic, class) in [("d", "disk"), ("m", "memory"), ("f", "fsync")] {
        s.create(topic, json!({"durability": class}));
        s.write(topic, records(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(100)); // let the WAL write them
    s.kill9();
    s.start_again();
    for topic in ["d", "m"] {
        let head = s.state(topic)["head_seq"].as_u64().unwrap();
        assert!(head > 50, "{topic}: seqs were reserved ahead: head {head}");
        let (seqs, gaps) = read_with_tombstones(&s, topic);
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "{topic}");
        assert_eq!(gaps, vec![(51, head, "crash".to_string())], "{topic}");
        let w = s.write(topic, records(1));
        assert_eq!(
            w["first_seq"].as_u64(),
            Some(head + 1),
            "{topic}: no seq reissued"
        );
    }
    let (seqs, gaps) = read_with_tombstones(&s, "f");
    assert_eq!(
        (seqs.len(), gaps),
        (50, vec![]),
        "fsync topics need no crash tombstone"
    );
    // The range outlives the WAL it came from: checkpoints and clean restarts keep it.
    let head = s.state("d")["head_seq"].as_u64().unwrap();
    s.restart();
    s.restart();
    let (_, gaps) = read_with_tombstones(&s, "d");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(
        gaps[0].0 == 51 && gaps[0].1 < head && gaps[0].2 == "crash",
        "{gaps:?}"
    );
}

#[test]
fn a_clean_stop_leaves_no_crash_tombstone() {
    let mut s = Server::start();
    s.create("d", json!({"durability": "disk"}));
    s.write("d", records(20));
    s.restart();
    let (seqs, gaps) = read_with_tombstones(&s, "d");
    assert_eq!((seqs.len(), gaps), (20, vec![]));
}
