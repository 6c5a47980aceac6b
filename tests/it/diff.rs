//! Cursor reads (API.md §6): from_seq, limit, byte budget, node filter, tags/meta, watermarks,
//! long-poll. Retention is not exercised here, so the tombstone is always null.

use crate::harness::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn fixture_5() -> Server {
    let s = Server::start();
    s.write("t", records(5));
    s
}

#[test]
fn empty_body_means_defaults_and_returns_every_record() {
    let s = fixture_5();
    let resp = s.req("POST", "/v0/topics/t/diff", &[], b"");
    let d = resp.expect(200);
    assert!(resp.is_json());
    assert_eq!(seqs_of(&d), vec![1, 2, 3, 4, 5]);
    let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    for k in [
        "caught_up",
        "earliest_seq",
        "head_seq",
        "lag",
        "next_from_seq",
        "performance",
        "records",
        "tombstone",
        "topic",
    ] {
        assert!(keys.contains(&k), "diff response lacks {k}: {d}");
    }
    assert_eq!(d["topic"], "t");
    assert_eq!(d["next_from_seq"], 5);
    assert_eq!(d["head_seq"], 5);
    assert_eq!(d["earliest_seq"], 1);
    assert_eq!(d["caught_up"], true);
    assert_eq!(d["lag"], 0);
    assert_eq!(d["tombstone"], Value::Null);
    assert_performance(&d);
    assert_eq!(d["performance"]["records_scanned"], 5);
}

#[test]
fn diff_of_never_written_topic_is_empty_and_caught_up() {
    let s = Server::start();
    s.create("t", json!({}));
    let d = s.diff("t", json!({}));
    assert_eq!(d["records"], json!([]));
    assert_eq!(d["next_from_seq"], 0);
    assert_eq!(d["head_seq"], 0);
    assert_eq!(d["earliest_seq"], 1);
    assert_eq!(d["caught_up"], true);
    assert_eq!(d["lag"], 0);
    assert_eq!(d["tombstone"], Value::Null);
}

#[test]
fn from_seq_returns_records_strictly_after_it() {
    let s = fixture_5();
    assert_eq!(
        seqs_of(&s.diff("t", json!({"from_seq": 0}))),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(seqs_of(&s.diff("t", json!({"from_seq": 2}))), vec![3, 4, 5]);
    assert_eq!(seqs_of(&s.diff("t", json!({"from_seq": 4}))), vec![5]);
    let tail = s.diff("t", json!({"from_seq": 5}));
    assert_eq!(tail["records"], json!([]));
    assert_eq!(tail["next_from_seq"], 5, "scan start when nothing examined");
    assert_eq!(tail["caught_up"], true);
    assert_eq!(tail["lag"], 0);
}

#[test]
fn limit_sets_next_from_seq_caught_up_and_lag() {
    let s = fixture_5();
    let d = s.diff("t", json!({"limit": 2}));
    assert_eq!(seqs_of(&d), vec![1, 2]);
    assert_eq!(d["next_from_seq"], 2);
    assert_eq!(d["caught_up"], false);
    assert_eq!(d["lag"], 3);
    assert_eq!(d["head_seq"], 5);
    let d = s.diff("t", json!({"from_seq": 2, "limit": 2}));
    assert_eq!(seqs_of(&d), vec![3, 4]);
    assert_eq!(
        (d["next_from_seq"].as_u64(), d["lag"].as_u64()),
        (Some(4), Some(1))
    );
    let d = s.diff("t", json!({"from_seq": 4, "limit": 2}));
    assert_eq!(seqs_of(&d), vec![5]);
    assert_eq!(d["caught_up"], true);
    assert_eq!(d["lag"], 0);
}

#[test]
fn limit_defaults_to_256_zero_means_256_and_is_clamped_to_1000() {
    let s = Server::start();
    s.write("t", records(1100));
    let d = s.diff("t", json!({}));
    assert_eq!(d["records"].as_array().unwrap().len(), 256);
    assert_eq!(d["next_from_seq"], 256);
    assert_eq!(d["caught_up"], false);
    assert_eq!(d["lag"], 1100 - 256);
    assert_eq!(
        s.diff("t", json!({"limit": 0}))["records"]
            .as_array()
            .unwrap()
            .len(),
        256
    );
    let d = s.diff("t", json!({"limit": 5000}));
    assert_eq!(d["records"].as_array().unwrap().len(), 1000);
    assert_eq!(d["next_from_seq"], 1000);
    assert_eq!(
        s.diff("t", json!({"limit": 1000}))["records"]
            .as_array()
            .unwrap()
            .len(),
        1000
    );
    assert_eq!(
        s.diff("t", json!({"limit": 7}))["records"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
}

#[test]
fn configured_diff_limit_max_clamps_limit() {
    let s = Server::start_with(
        &[],
        Some("[read]\ndiff_limit_max = 10\ndiff_limit_default = 10\n"),
    );
    s.write("t", records(30));
    assert_eq!(
        s.diff("t", json!({"limit": 50}))["records"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        s.diff("t", json!({"limit": 4}))["records"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

fn kilobyte_records(n: usize) -> Value {
    // Each record's payload is 1000 bytes (998 x plus quotes).
    Value::Array((0..n).map(|_| json!({"data": "x".repeat(998)})).collect())
}

#[test]
fn max_batch_bytes_stops_before_exceeding_the_budget() {
    let s = Server::start();
    s.write("t", kilobyte_records(5));
    let d = s.diff("t", json!({"max_batch_bytes": 2500}));
    assert_eq!(
        seqs_of(&d),
        vec![1, 2],
        "third record would exceed 2500 bytes"
    );
    assert_eq!(
        d["next_from_seq"], 2,
        "stop without passing the record that did not fit"
    );
    assert_eq!(d["caught_up"], false);
    assert_eq!(d["lag"], 3);
    let d = s.diff("t", json!({"from_seq": 2, "max_batch_bytes": 2500}));
    assert_eq!(seqs_of(&d), vec![3, 4]);
}

#[test]
fn max_batch_bytes_always_returns_at_least_one_record() {
    let s = Server::start();
    s.write("t", kilobyte_records(3));
    for budget in [1, 999] {
        let d = s.diff("t", json!({"max_batch_bytes": budget}));
        assert_eq!(seqs_of(&d), vec![1], "budget {budget}");
        assert_eq!(d["next_from_seq"], 1);
        assert_eq!(d["caught_up"], false);
    }
    let d = s.diff("t", json!({"from_seq": 2, "max_batch_bytes": 1}));
    assert_eq!(seqs_of(&d), vec![3]);
    assert_eq!(d["caught_up"], true);
}

#[test]
fn max_batch_bytes_zero_or_absent_means_1_mib() {
    let s = Server::start();
    let big: Value = Value::Array(
        (0..600)
            .map(|_| json!({"data": "y".repeat(1998)}))
            .collect(),
    );
    s.write("t", big); // 600 × 2000 payload bytes = 1.2 MB
    for body in [
        json!({"limit": 1000}),
        json!({"limit": 1000, "max_batch_bytes": 0}),
    ] {
        let d = s.diff("t", body.clone());
        let n = d["records"].as_array().unwrap().len();
        // 1 MiB / 2000 = 524.3; per-record overhead may lower it a little.
        assert!(
            (450..=524).contains(&n),
            "{body}: {n} records for a 1 MiB budget"
        );
        assert_eq!(d["next_from_seq"], n as u64);
        assert_eq!(d["caught_up"], false);
    }
}

#[test]
fn max_batch_bytes_is_clamped_to_8_mib() {
    let s = Server::start();
    let big: Value = Value::Array(
        (0..1000)
            .map(|_| json!({"data": "z".repeat(9998)}))
            .collect(),
    );
    s.write("t", big); // 1000 × 10000 payload bytes = 10 MB
    let d = s.diff("t", json!({"limit": 1000, "max_batch_bytes": 100u64 << 20}));
    let n = d["records"].as_array().unwrap().len();
    // 8 MiB / 10000 = 838.9
    assert!((800..=838).contains(&n), "{n} records for an 8 MiB clamp");
    assert_eq!(d["caught_up"], false);
}

/// seq1 node a, seq2 node b, seq3 no node, seq4 node a (batch default), seq5 node A.
fn node_fixture(config: Value) -> Server {
    let s = Server::start();
    s.create("t", config);
    s.write(
        "t",
        json!([{"data": 1, "node": "a"}, {"data": 2, "node": "b"}, {"data": 3}]),
    );
    s.write_body("t", json!({"node": "a", "records": [{"data": 4}]}));
    s.write("t", json!([{"data": 5, "node": "A"}]));
    s
}

#[test]
fn node_filter_skips_matching_records_but_advances_the_cursor() {
    let s = node_fixture(json!({}));
    let d = s.diff("t", json!({"node": "a"}));
    assert_eq!(seqs_of(&d), vec![2, 3, 5], "byte-exact: `A` is not `a`");
    assert_eq!(d["next_from_seq"], 5);
    assert_eq!(d["caught_up"], true);
    assert_eq!(
        d["tombstone"],
        Value::Null,
        "node filtering never produces a tombstone"
    );
    assert_eq!(
        d["performance"]["records_scanned"], 5,
        "delivered + skipped"
    );
    let d = s.diff("t", json!({"node": ["a", "b"]}));
    assert_eq!(seqs_of(&d), vec![3, 5]);
    let d = s.diff("t", json!({"node": []}));
    assert_eq!(seqs_of(&d), vec![1, 2, 3, 4, 5]);
    let d = s.diff("t", json!({"node": "zzz"}));
    assert_eq!(seqs_of(&d), vec![1, 2, 3, 4, 5]);
}

#[test]
fn node_filtered_records_do_not_count_toward_limit() {
    let s = node_fixture(json!({}));
    let d = s.diff("t", json!({"node": "a", "limit": 2}));
    assert_eq!(seqs_of(&d), vec![2, 3]);
    assert_eq!(d["next_from_seq"], 3);
    assert_eq!(d["performance"]["records_scanned"], 3);
    assert_eq!(d["caught_up"], false);
    assert_eq!(d["lag"], 2);
    let d = s.diff("t", json!({"node": "a", "from_seq": 3, "limit": 2}));
    assert_eq!(seqs_of(&d), vec![5]);
}

#[test]
fn fully_filtered_range_returns_no_records_but_reaches_the_head() {
    let s = node_fixture(json!({}));
    let d = s.diff("t", json!({"node": ["a", "A"], "from_seq": 3}));
    assert_eq!(d["records"], json!([]));
    assert_eq!(d["next_from_seq"], 5);
    assert_eq!(d["caught_up"], true);
    assert_eq!(d["lag"], 0);
    assert_eq!(d["tombstone"], Value::Null);
}

#[test]
fn dedupe_node_false_disables_node_filtering() {
    let s = node_fixture(json!({"dedupe_node": false}));
    let d = s.diff("t", json!({"node": ["a", "b"]}));
    assert_eq!(seqs_of(&d), vec![1, 2, 3, 4, 5]);
}

#[test]
fn include_tags_adds_tag_and_include_meta_false_drops_meta() {
    let s = Server::start();
    s.write(
        "t",
        json!([{"data": 1, "tag": "t1", "meta": {"m": 1}}, {"data": 2}]),
    );
    let d = s.diff("t", json!({}));
    assert!(
        d["records"][0].get("$tag").is_none(),
        "tags only when asked: {d}"
    );
    assert_eq!(
        d["records"][0]["meta"],
        json!({"m": 1}),
        "meta included by default"
    );
    let d = s.diff("t", json!({"include_tags": true}));
    assert_eq!(d["records"][0]["$tag"], "t1");
    assert!(d["records"][1].get("$tag").is_none());
    let d = s.diff("t", json!({"include_tags": true, "include_meta": false}));
    assert_eq!(d["records"][0]["$tag"], "t1");
    assert!(d["records"][0].get("meta").is_none(), "{d}");
    assert_eq!(d["records"][0]["data"], 1);
}

#[test]
fn records_carry_seq_ts_and_data() {
    let s = Server::start();
    let before = now_ms();
    s.write("t", json!([{"data": {"order_id": 9001, "total": 42.5}}]));
    let d = s.diff("t", json!({}));
    let r = &d["records"][0];
    assert_eq!(r["$seq"], 1);
    assert_eq!(r["data"], json!({"order_id": 9001, "total": 42.5}));
    let ts = r["$ts"].as_i64().unwrap();
    assert!(ts >= before - 1000 && ts <= now_ms() + 1000);
    assert!(r.get("$type").is_none(), "no $type key exists");
}

#[test]
fn diff_is_read_only() {
    let s = fixture_5();
    let before = s.state("t");
    s.diff("t", json!({"from_seq": 1, "limit": 2, "node": "x"}));
    let after = s.state("t");
    for k in ["head_seq", "earliest_seq", "next_seq", "count", "bytes"] {
        assert_eq!(before[k], after[k], "{k}");
    }
}

#[test]
fn diff_on_absent_topic_is_404_and_never_creates() {
    let s = Server::start();
    let err = assert_error(
        &s.post("/v0/topics/nope/diff", &json!({})),
        404,
        "topic_not_found",
    );
    assert_eq!(err["detail"], json!({"topic": "nope"}));
    assert_error(
        &s.req("POST", "/v0/topics/nope/diff", &[], b""),
        404,
        "topic_not_found",
    );
    assert_error(
        &s.post("/v0/topics/nope/diff", &json!({"wait_ms": 200})),
        404,
        "topic_not_found",
    );
    assert_error(&s.get("/v0/topics/nope"), 404, "topic_not_found");
}

// ---- long-poll ----

#[test]
fn long_poll_is_woken_by_a_concurrent_write_well_before_wait_ms() {
    let s = fixture_5();
    std::thread::scope(|scope| {
        let start = Instant::now();
        let poll = scope.spawn(|| {
            s.post(
                "/v0/topics/t/diff",
                &json!({"from_seq": 5, "wait_ms": 20000}),
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        let w = s.write("t", json!([{"data": "late"}]));
        assert_eq!(w["seqs"], json!([6]));
        let d = poll.join().unwrap().expect(200);
        let elapsed = start.elapsed();
        assert!(
            elapsed < Duration::from_secs(10),
            "long-poll not woken by the write: {elapsed:?}"
        );
        assert_eq!(seqs_of(&d), vec![6]);
        assert_eq!(d["records"][0]["data"], "late");
        assert_eq!(d["next_from_seq"], 6);
        assert_eq!(d["caught_up"], true);
        assert_eq!(d["head_seq"], 6);
    });
}

#[test]
fn long_poll_on_empty_topic_is_woken_by_first_write() {
    let s = Server::start();
    s.create("t", json!({}));
    std::thread::scope(|scope| {
        let start = Instant::now();
        let poll = scope.spawn(|| s.post("/v0/topics/t/diff", &json!({"wait_ms": 20000})));
        std::thread::sleep(Duration::from_millis(300));
        s.write("t", records(2));
        let d = poll.join().unwrap().expect(200);
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(seqs_of(&d), vec![1, 2]);
    });
}

#[test]
fn long_poll_times_out_with_the_empty_first_result() {
    let s = fixture_5();
    s.create("other", json!({}));
    std::thread::scope(|scope| {
        let start = Instant::now();
        let poll =
            scope.spawn(|| s.post("/v0/topics/t/diff", &json!({"from_seq": 5, "wait_ms": 800})));
        std::thread::sleep(Duration::from_millis(150));
        s.write("other", records(1)); // another topic's append must not end the wait
        let d = poll.join().unwrap().expect(200);
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(700),
            "returned before wait_ms: {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(8),
            "long-poll overslept: {elapsed:?}"
        );
        assert_eq!(d["records"], json!([]));
        assert_eq!(d["next_from_seq"], 5);
        assert_eq!(d["caught_up"], true);
        assert_eq!(d["tombstone"], Value::Null);
        assert_eq!(d["lag"], 0);
    });
}

#[test]
fn long_poll_returns_at_once_when_records_are_available() {
    let s = fixture_5();
    let start = Instant::now();
    let d = s.diff("t", json!({"from_seq": 3, "wait_ms": 20000}));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "must not wait when records exist"
    );
    assert_eq!(seqs_of(&d), vec![4, 5]);
}

#[test]
fn long_poll_waits_when_every_remaining_record_is_filtered() {
    let s = node_fixture(json!({}));
    std::thread::scope(|scope| {
        let start = Instant::now();
        // From 3, seqs 4 and 5 are filtered: no records, caught up → the poll waits.
        let body = json!({"node": ["a", "A"], "from_seq": 3, "wait_ms": 20000});
        let s = &s;
        let poll = scope.spawn(move || s.post("/v0/topics/t/diff", &body));
        std::thread::sleep(Duration::from_millis(300));
        s.write("t", json!([{"data": 6, "node": "c"}]));
        let d = poll.join().unwrap().expect(200);
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(250),
            "did not wait: {elapsed:?}: {d}"
        );
        assert!(elapsed < Duration::from_secs(10), "not woken: {elapsed:?}");
        assert_eq!(seqs_of(&d), vec![6], "re-read once from the same cursor");
        assert_eq!(d["next_from_seq"], 6);
    });
}

#[test]
fn wait_ms_is_clamped_to_configured_wait_ms_max() {
    let s = Server::start_with(&[], Some("[read]\nwait_ms_max = 300\n"));
    s.write("t", records(1));
    let start = Instant::now();
    let d = s.diff("t", json!({"from_seq": 1, "wait_ms": 25000}));
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "waited {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "wait_ms not clamped to 300 ms: {elapsed:?}"
    );
    assert_eq!(d["records"], json!([]));
    assert_eq!(d["caught_up"], true);
}

#[test]
fn many_concurrent_long_polls_are_all_woken() {
    let s = fixture_5();
    std::thread::scope(|scope| {
        let start = Instant::now();
        let polls: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    s.post(
                        "/v0/topics/t/diff",
                        &json!({"from_seq": 5, "wait_ms": 20000}),
                    )
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        s.write("t", records(1));
        for p in polls {
            assert_eq!(seqs_of(&p.join().unwrap().expect(200)), vec![6]);
        }
        assert!(start.elapsed() < Duration::from_secs(10));
    });
}

// ---- model-based ----

/// Expected diff of `model` (one `Option<node>` per seq, seq = index + 1) per API.md §6 without
/// retention: (delivered seqs, next_from_seq, records_scanned).
fn model_diff(
    model: &[Option<usize>],
    from: u64,
    limit: usize,
    skip: &[usize],
) -> (Vec<u64>, u64, u64) {
    let limit = if limit == 0 { 256 } else { limit.min(1000) };
    let (mut taken, mut next, mut scanned) = (Vec::new(), from, 0);
    for seq in from + 1..=model.len() as u64 {
        if taken.len() == limit {
            break;
        }
        scanned += 1;
        next = seq;
        let filtered = model[seq as usize - 1].is_some_and(|n| skip.contains(&n));
        if !filtered {
            taken.push(seq);
        }
    }
    (taken, next, scanned)
}

#[test]
fn random_writes_and_reads_match_a_reference_model() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let s = Server::start();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        max_shrink_iters: 40,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::cell::Cell::new(0);
    let batches = prop::collection::vec(
        prop::collection::vec(prop::option::of(0usize..3), 1..12),
        1..6,
    );
    let reads = prop::collection::vec(
        (
            0u64..1000,
            0usize..15,
            prop::collection::vec(0usize..3, 0..3),
        ),
        1..6,
    );
    runner
        .run(&(batches, reads), |(batches, reads)| {
            case.set(case.get() + 1);
            let topic = format!("m{}", case.get());
            let mut model: Vec<Option<usize>> = Vec::new();
            for batch in &batches {
                let recs: Vec<Value> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, node)| match node {
                        Some(n) => json!({"data": i, "node": format!("n{n}")}),
                        None => json!({"data": i}),
                    })
                    .collect();
                let w = s.write(&topic, Value::Array(recs));
                prop_assert_eq!(w["first_seq"].as_u64(), Some(model.len() as u64 + 1));
                model.extend(batch.iter().copied());
            }
            let head = model.len() as u64;
            for (from_raw, limit, skip) in reads {
                let from = from_raw % (head + 1);
                let nodes: Vec<String> = skip.iter().map(|n| format!("n{n}")).collect();
                let d = s.diff(
                    &topic,
                    json!({"from_seq": from, "limit": limit, "node": nodes}),
                );
                let (want, next, scanned) = model_diff(&model, from, limit, &skip);
                prop_assert_eq!(
                    seqs_of(&d),
                    want,
                    "from {} limit {} skip {:?}",
                    from,
                    limit,
                    skip
                );
                prop_assert_eq!(d["next_from_seq"].as_u64(), Some(next));
                prop_assert_eq!(d["caught_up"].as_bool(), Some(next == head));
                prop_assert_eq!(d["lag"].as_u64(), Some(head - next));
                prop_assert_eq!(d["head_seq"].as_u64(), Some(head));
                prop_assert_eq!(d["performance"]["records_scanned"].as_u64(), Some(scanned));
                prop_assert_eq!(&d["tombstone"], &Value::Null);
            }
            Ok(())
        })
        .unwrap();
}

// ---- API.md §6 step 1: cursor above the head ----

#[test]
fn cursor_above_head_of_recreated_topic_gets_recreated_tombstone_and_reads_from_start() {
    let s = Server::start();
    s.write("t", records(5));
    s.delete("/v0/topics/t").expect(200);
    s.write("t", records(2));
    let d = s.diff("t", json!({"from_seq": 5}));
    assert_eq!(
        d["tombstone"],
        json!({"gap_from": 1, "gap_to": 2, "reason": "recreated", "missed_estimate": 2,
               "earliest_seq": 1, "head_seq": 2})
    );
    assert_eq!(
        seqs_of(&d),
        vec![1, 2],
        "scan restarts after earliest_seq − 1"
    );
    assert_eq!(d["next_from_seq"], 2);
    assert_eq!(d["caught_up"], true);
}

#[test]
fn cursor_above_head_of_empty_topic_gets_recreated_tombstone_without_waiting() {
    let s = Server::start();
    s.write("t", records(3));
    s.delete("/v0/topics/t").expect(200);
    s.create("t", json!({}));
    let start = Instant::now();
    let d = s.diff("t", json!({"from_seq": 3, "wait_ms": 20000}));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a tombstone answer never long-polls"
    );
    assert_eq!(
        d["tombstone"],
        json!({"gap_from": 1, "gap_to": 0, "reason": "recreated", "missed_estimate": 1,
               "earliest_seq": 1, "head_seq": 0})
    );
    assert_eq!(d["records"], json!([]));
    assert_eq!(d["next_from_seq"], 0);
    assert_eq!(d["caught_up"], true);
}
