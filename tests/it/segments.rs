//! Sealed segments through the real binary: history far beyond the hot budget reads back
//! record for record across many clean and kill -9 restarts, and heap memory stays bounded.

use crate::harness::Server;
use serde_json::{json, Value};

const SMALL_HOT: &str = "[storage]\nsegment_seal_records = 300\nsnapshot_wal_bytes = 65536\nsnapshot_check_interval_ms = 50\n";

fn batch(start: u64, n: u64) -> Value {
    Value::Array(
        (start..start + n)
            .map(|i| json!({ "data": { "i": i }, "tag": format!("t{}", i % 7) }))
            .collect(),
    )
}

/// Every record, in order, with its data. `disk` topics may have seq holes after a crash
/// (reserved, never-acked seqs), so only `fsync` topics must be contiguous.
fn check_all(s: &Server, topic: &str, expected: u64, contiguous: bool) {
    let got = s.read_all(topic);
    assert_eq!(got.len() as u64, expected, "{topic}: record count");
    let mut last = 0;
    for (k, r) in got.iter().enumerate() {
        let seq = r["$seq"].as_u64().unwrap();
        assert!(seq > last, "{topic}: seqs strictly increase");
        if contiguous {
            assert_eq!(seq, k as u64 + 1, "{topic}: contiguous seqs");
        }
        last = seq;
        assert_eq!(r["data"]["i"], k as u64, "{topic}: data of seq {}", k + 1);
        assert_eq!(r["$tag"], format!("t{}", k % 7));
    }
}

#[test]
fn history_beyond_the_hot_budget_survives_many_restarts() {
    let mut s = Server::start_with(&[], Some(SMALL_HOT));
    s.create("f", json!({ "durability": "fsync" }));
    s.create("d", json!({ "durability": "disk" }));
    let (mut n, mut nd) = (0u64, 0u64);
    for round in 0..6 {
        let graceful = round % 2 == 1;
        for _ in 0..4 {
            s.write("f", batch(n, 250));
            n += 250;
            // `disk` may lose its un-synced tail to kill -9: write it only before clean stops.
            if graceful {
                s.write("d", batch(nd, 250));
                nd += 250;
            }
        }
        s.wait_for_segments(1); // records were sealed
        if graceful {
            s.restart();
            check_all(&s, "f", n, true);
            check_all(&s, "d", nd, false);
        } else {
            s.crash_restart();
            check_all(&s, "f", n, true);
            check_all(&s, "d", nd, false);
        }
    }
    assert_eq!(s.state("f")["count"], n);
}

#[test]
fn deletes_and_eviction_reach_sealed_records_and_survive_restart() {
    let mut s = Server::start_with(&[], Some(SMALL_HOT));
    s.create("t", json!({ "durability": "fsync" }));
    for k in 0..4 {
        s.write("t", batch(k * 250, 250));
    }
    let r = s
        .post("/v0/topics/t/delete", &json!({ "match": "t3" }))
        .expect(200);
    assert_eq!(r["deleted"], 143, "every 7th of 1000, sealed or hot");
    s.create("t", json!({ "durability": "fsync", "cap_records": 100 }));
    s.crash_restart();
    let d = s.diff("t", json!({ "from_seq": 0, "limit": 1000 }));
    // Seq 900 was deleted, not evicted, so the floor is the highest *evicted* seq: 899.
    assert_eq!(d["tombstone"]["gap_to"], 899);
    let seqs: Vec<u64> = d["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.iter().all(|&q| q > 900 && (q - 1) % 7 != 3),
        "{seqs:?}"
    );
    assert_eq!(seqs.len(), 100 - 14);
}

fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn heap_stays_bounded_while_history_grows() {
    let s = Server::start_with(&[], Some("[storage]\nsegment_seal_records = 2000\n"));
    s.create("m", json!({ "durability": "disk" }));
    let pad = "x".repeat(200);
    let body = |i: u64| {
        Value::Array(
            (0..1000)
                .map(|k| json!({ "data": { "p": pad, "i": i * 1000 + k } }))
                .collect(),
        )
    };
    for i in 0..60 {
        s.write("m", body(i));
    }
    let early = rss_anon_kib(s.pid());
    for i in 60..300 {
        s.write("m", body(i));
    }
    let late = rss_anon_kib(s.pid());
    // 240k more records of ~220 bytes = ~50 MiB of payload went to segments, not the heap.
    assert!(
        late < early + 16 * 1024,
        "heap grew from {early} KiB to {late} KiB"
    );
    assert_eq!(s.state("m")["count"], 300_000);
}

/// Many topics, each below its own seal triggers: the shared hot budget makes them seal
/// anyway once their sum passes it, and every record still reads back.
#[test]
fn the_hot_budget_across_topics_seals_topics_below_their_own_triggers() {
    let per_topic_only =
        "[storage]\nsegment_seal_records = 0\nsegment_seal_bytes = 0\nhot_budget_bytes = 0\n";
    let budgeted =
        "[storage]\nsegment_seal_records = 0\nsegment_seal_bytes = 0\nhot_budget_bytes = 65536\n";
    for (config, expect_sealed) in [(per_topic_only, false), (budgeted, true)] {
        let s = Server::start_with(&[], Some(config));
        // 6 topics x 200 records of ~120 payload bytes: ~24 KiB each, ~140 KiB in all.
        for t in 0..6 {
            let topic = format!("b{t}");
            s.create(&topic, json!({ "durability": "disk" }));
            for k in 0..4 {
                let mut b = batch(k * 50, 50);
                for r in b.as_array_mut().unwrap() {
                    r["data"]["pad"] = json!("x".repeat(100));
                }
                s.write(&topic, b);
            }
        }
        if expect_sealed {
            s.wait_for_segments(1);
        } else {
            assert!(s.segment_files().is_empty(), "config: {config}");
        }
        for t in 0..6 {
            check_all(&s, &format!("b{t}"), 200, true);
        }
    }
}
