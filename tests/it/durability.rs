//! Durability classes, crash recovery and restarts (API.md §3): kill -9 and SIGTERM of the
//! real binary, torn WAL tails, and the data-dir lock.

use crate::harness::{self, *};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A batch with node, tag and meta so recovery has to preserve every record field.
fn rich_batch(i: usize, n: usize) -> Value {
    let recs: Vec<Value> = (0..n)
        .map(|j| json!({"data": {"batch": i, "j": j, "s": "é\"\\\n"}, "tag": format!("tag-{i}-{j}"), "meta": {"i": i}}))
        .collect();
    json!({"node": format!("node-{i}"), "records": recs})
}

fn write_rich_batches(s: &Server, topic: &str, batches: usize, per_batch: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    for i in 0..batches {
        let w = s.write_body(topic, rich_batch(i, per_batch));
        seqs.extend(written_seqs(&w));
    }
    seqs
}

fn first_seq_of_next_write(s: &Server, topic: &str) -> u64 {
    s.write(topic, json!([{"data": "after"}]))["first_seq"]
        .as_u64()
        .unwrap()
}

// ---- fsync ----

#[test]
fn fsync_acked_writes_survive_kill_9_exactly() {
    let mut s = Server::start();
    s.create("t", json!({"durability": "fsync", "priority": 3}));
    let seqs = write_rich_batches(&s, "t", 10, 3);
    assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
    let before = s.read_all("t");
    let state_before = s.state("t");
    s.crash_restart();
    assert_eq!(
        s.read_all("t"),
        before,
        "every acked fsync record, byte-identical fields"
    );
    let st = s.state("t");
    assert_eq!(
        st["head_seq"], 30,
        "fsync reserves nothing ahead: head_seq is the highest recovered seq"
    );
    assert_eq!(st["count"], 30);
    assert_eq!(st["bytes"], state_before["bytes"]);
    assert_eq!(st["earliest_seq"], 1);
    assert_eq!(st["config"], state_before["config"]);
    assert_eq!(first_seq_of_next_write(&s, "t"), 31);
}

#[test]
fn fsync_concurrent_acked_writes_all_survive_kill_9() {
    let mut s = Server::start();
    s.create("t", json!({"durable": true}));
    let acked: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let s = &s;
                scope.spawn(move || {
                    let mut seqs = Vec::new();
                    for i in 0..15 {
                        let body = s.write("t", json!([{"data": [w, i, 0]}, {"data": [w, i, 1]}]));
                        seqs.extend(written_seqs(&body));
                    }
                    seqs
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let before = s.read_all("t");
    s.crash_restart();
    let after = s.read_all("t");
    let recovered: Vec<u64> = after.iter().map(|r| r["$seq"].as_u64().unwrap()).collect();
    for seq in &acked {
        assert!(
            recovered.contains(seq),
            "acked fsync seq {seq} lost after kill -9"
        );
    }
    assert_eq!(after, before);
    assert_eq!(s.state("t")["head_seq"], 120);
}

// ---- disk ----

#[test]
fn disk_survives_sigterm_with_the_same_head_seq_and_no_holes() {
    let mut s = Server::start();
    s.create("t", json!({"durability": "disk"}));
    write_rich_batches(&s, "t", 5, 4);
    let before = s.read_all("t");
    s.restart();
    assert_eq!(s.read_all("t"), before);
    let st = s.state("t");
    assert_eq!(
        st["head_seq"], 20,
        "graceful restart records the exact head_seq"
    );
    assert_eq!(st["count"], 20);
    assert_eq!(
        first_seq_of_next_write(&s, "t"),
        21,
        "no reserved-seq hole after a graceful restart"
    );
}

#[test]
fn disk_seqs_stay_contiguous_across_repeated_graceful_restarts() {
    let mut s = Server::start();
    for round in 0..3 {
        let w = s.write("t", records(2));
        assert_eq!(w["first_seq"], 2 * round + 1, "round {round}: {w}");
        s.restart();
    }
    assert_eq!(seqs_of(&s.diff("t", json!({}))), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn disk_after_kill_9_keeps_a_prefix_and_never_reissues_a_seq() {
    let mut s = Server::start();
    s.create("t", json!({}));
    let seqs = write_rich_batches(&s, "t", 6, 5);
    let before = s.read_all("t");
    let max_issued = *seqs.last().unwrap();
    s.crash_restart();
    let after = s.read_all("t");
    assert!(after.len() <= before.len());
    assert_eq!(
        after[..],
        before[..after.len()],
        "recovered records are a prefix (only the un-synced tail may go)"
    );
    let head = s.state("t")["head_seq"].as_u64().unwrap();
    assert!(
        head >= max_issued,
        "head_seq {head} must resume at or above every issued seq ({max_issued})"
    );
    let next = first_seq_of_next_write(&s, "t");
    assert!(
        next > max_issued,
        "seq {next} re-issued (max issued before crash {max_issued})"
    );
    assert_eq!(next, head + 1);
}

// ---- memory ----

#[test]
fn memory_class_never_reissues_seqs_after_kill_9_and_keeps_its_config() {
    let mut s = Server::start();
    s.create("t", json!({"durability": "memory", "ttl_ms": 123456}));
    s.write("t", records(7));
    let before = s.read_all("t");
    s.crash_restart();
    let st = s.state("t");
    assert_eq!(
        st["config"],
        config_with(json!({"durability": "memory", "ttl_ms": 123456}))
    );
    for rec in s.read_all("t") {
        let seq = rec["$seq"].as_u64().unwrap() as usize;
        assert_eq!(
            rec,
            before[seq - 1],
            "a recovered memory record must be the one written"
        );
    }
    assert!(st["head_seq"].as_u64().unwrap() >= 7);
    assert!(first_seq_of_next_write(&s, "t") > 7);
}

#[test]
fn memory_class_never_reissues_seqs_after_sigterm() {
    let mut s = Server::start();
    s.create("t", json!({"durability": "memory"}));
    s.write("t", records(3));
    s.restart();
    assert!(s.state("t")["head_seq"].as_u64().unwrap() >= 3);
    assert!(first_seq_of_next_write(&s, "t") > 3);
}

// ---- ephemeral ----

fn ephemeral_restart_case(crash: bool) {
    let mut s = Server::start();
    let cfg =
        json!({"durability": "ephemeral", "priority": 9, "dedupe_node": false, "cap_records": 50});
    s.create("t", cfg.clone());
    for _ in 0..3 {
        s.write("t", records(2));
    }
    if crash {
        s.crash_restart();
    } else {
        s.restart();
    }
    let st = s.state("t");
    assert_eq!(
        st["config"],
        config_with(cfg),
        "ephemeral topics keep their config"
    );
    assert_eq!(st["count"], 0, "ephemeral records are lost by design");
    assert_eq!(st["bytes"], 0);
    let head = st["head_seq"].as_u64().unwrap();
    assert!(
        head >= 6,
        "head_seq {head} below a seq issued before the restart"
    );
    assert_eq!(
        st["earliest_seq"].as_u64(),
        Some(head + 1),
        "no live records"
    );
    let d = s.diff("t", json!({}));
    assert_eq!(d["records"], json!([]));
    assert_eq!(
        d["caught_up"], true,
        "a reader from 0 catches up over lost seqs: {d}"
    );
    assert_eq!(d["next_from_seq"].as_u64(), Some(head));
    let next = first_seq_of_next_write(&s, "t");
    assert!(next > 6, "seq {next} re-issued after restart");
    assert_eq!(next, head + 1);
}

#[test]
fn ephemeral_restarts_empty_with_config_and_higher_seqs_after_sigterm() {
    ephemeral_restart_case(false);
}

#[test]
fn ephemeral_restarts_empty_with_config_and_higher_seqs_after_kill_9() {
    ephemeral_restart_case(true);
}

#[test]
fn ephemeral_seqs_stay_above_every_issued_seq_across_many_writes_and_crashes() {
    // More seqs than one reservation window (256) between crashes.
    let mut s = Server::start();
    s.create("t", json!({"durability": "ephemeral"}));
    let mut max_issued = 0;
    for _ in 0..2 {
        let w = s.write("t", records(600));
        let first = w["first_seq"].as_u64().unwrap();
        assert!(
            first > max_issued,
            "seq {first} re-issued (max before {max_issued})"
        );
        max_issued = w["last_seq"].as_u64().unwrap();
        s.crash_restart();
    }
    assert!(first_seq_of_next_write(&s, "t") > max_issued);
}

// ---- definitions ----

#[test]
fn topic_configs_of_every_class_survive_kill_9_right_after_the_ack() {
    let mut s = Server::start();
    let configs = [
        (
            "e",
            json!({"durability": "ephemeral", "priority": -4, "auto_create": false}),
        ),
        ("m", json!({"durability": "memory", "lease_ms": 5000})),
        ("d", json!({"ttl_ms": 999, "dead_letter": "d.dlq"})),
        (
            "f",
            json!({"durable": true, "cap_bytes": 4096, "discard": "reject"}),
        ),
    ];
    let mut want = Vec::new();
    for (name, cfg) in &configs {
        want.push((name, s.create(name, cfg.clone())["config"].clone()));
    }
    // A replacement right before the crash must win too.
    let replaced = s
        .put(
            "/v0/topics/d",
            &json!({"durability": "fsync", "idempotency_window_ms": 5}),
        )
        .expect(200);
    want[2].1 = replaced["config"].clone();
    s.crash_restart();
    for (name, cfg) in &want {
        assert_eq!(
            s.state(name)["config"],
            *cfg,
            "config of {name} after kill -9"
        );
    }
    assert_eq!(s.get("/v0/ready").expect(200)["topics"], 4);
}

#[test]
fn topic_created_by_write_survives_restart_with_inline_config() {
    let mut s = Server::start();
    s.write_body(
        "t",
        json!({"config": {"durability": "fsync", "priority": 2}, "records": [{"data": 1}]}),
    );
    s.crash_restart();
    let st = s.state("t");
    assert_eq!(
        st["config"],
        config_with(json!({"durability": "fsync", "durable": true, "priority": 2}))
    );
    assert_eq!(st["head_seq"], 1);
}

#[test]
fn topic_delete_survives_kill_9() {
    let mut s = Server::start();
    s.create("f", json!({"durable": true}));
    s.write("f", records(3));
    s.create("d", json!({}));
    s.write("d", records(3));
    s.create("keep", json!({}));
    for t in ["f", "d"] {
        assert_eq!(
            s.delete(&format!("/v0/topics/{t}")).expect(200)["deleted"],
            true
        );
    }
    s.crash_restart();
    for t in ["f", "d"] {
        assert_error(&s.get(&format!("/v0/topics/{t}")), 404, "topic_not_found");
    }
    let list = s.get("/v0/topics").expect(200);
    assert_eq!(list["topics"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["topics"][0]["topic"], "keep");
    // A later create starts a new instance at seq 1.
    assert_eq!(s.write("f", records(1))["first_seq"], 1);
}

#[test]
fn topic_delete_survives_sigterm() {
    let mut s = Server::start();
    s.write("t", records(3));
    s.delete("/v0/topics/t").expect(200);
    s.restart();
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
    assert_eq!(s.get("/v0/ready").expect(200)["topics"], 0);
}

#[test]
fn recreated_topic_recovers_only_its_new_instance_after_kill_9() {
    let mut s = Server::start();
    s.create("t", json!({"durable": true}));
    s.write(
        "t",
        json!([{"data": "old1"}, {"data": "old2"}, {"data": "old3"}]),
    );
    s.delete("/v0/topics/t").expect(200);
    s.create("t", json!({"durable": true, "priority": 1}));
    assert_eq!(
        s.write("t", json!([{"data": "new1"}, {"data": "new2"}]))["seqs"],
        json!([1, 2])
    );
    s.crash_restart();
    let recs = s.read_all("t");
    let data: Vec<&Value> = recs.iter().map(|r| &r["data"]).collect();
    assert_eq!(
        data,
        [&json!("new1"), &json!("new2")],
        "old instance must not resurface"
    );
    let st = s.state("t");
    assert_eq!(st["head_seq"], 2);
    assert_eq!(st["config"]["priority"], 1);
}

// ---- torn WAL tail ----

/// The WAL file that holds the topic's frames (only one topic is written).
fn topic_wal_file(dir: &Path) -> PathBuf {
    harness::wal::busiest_file(dir)
}

/// Four small fsync batches then one ~1.5 KB batch; returns the records before the last batch.
fn torn_tail_fixture() -> (Server, Vec<Value>) {
    let s = Server::start();
    s.create("t", json!({"durability": "fsync"}));
    write_rich_batches(&s, "t", 4, 3);
    let kept = s.read_all("t");
    assert_eq!(kept.len(), 12);
    let last: Vec<Value> = (0..3)
        .map(|j| json!({"data": format!("{j}{}", "L".repeat(500)), "tag": "last"}))
        .collect();
    assert_eq!(
        s.write("t", Value::Array(last))["seqs"],
        json!([13, 14, 15])
    );
    (s, kept)
}

/// Cut the file `k` bytes before the end of its last Append frame (a crash mid-write of
/// that frame: what followed it never reached the file either).
fn truncate_tail(file: &Path, k: u64) {
    let last = *harness::wal::appends(file).last().expect("an Append frame");
    assert!(
        last.len as u64 > k + 8,
        "last frame {last:?} is smaller than the cut"
    );
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.set_len((last.offset + last.len) as u64 - k).unwrap();
    f.sync_all().unwrap();
}

fn assert_recovered_without_last_batch(s: &Server, kept: &[Value]) {
    assert_eq!(
        s.read_all("t"),
        kept,
        "every batch before the torn frame is kept, the torn one is gone"
    );
    let st = s.state("t");
    assert_eq!(
        st["head_seq"], 12,
        "fsync head_seq is the highest recovered seq"
    );
    assert_eq!(st["count"], 12);
}

#[test]
fn wal_cut_a_few_bytes_into_the_last_frame_drops_only_that_batch() {
    let (mut s, kept) = torn_tail_fixture();
    s.kill9();
    truncate_tail(&topic_wal_file(s.data_dir()), 7);
    s.start_again();
    assert_recovered_without_last_batch(&s, &kept);
    assert_eq!(first_seq_of_next_write(&s, "t"), 13);
}

#[test]
fn wal_cut_mid_frame_drops_only_that_batch() {
    let (mut s, kept) = torn_tail_fixture();
    s.kill9();
    truncate_tail(&topic_wal_file(s.data_dir()), 800);
    s.start_again();
    assert_recovered_without_last_batch(&s, &kept);
    assert_eq!(first_seq_of_next_write(&s, "t"), 13);
}

#[test]
fn writes_after_torn_tail_recovery_survive_another_crash() {
    let (mut s, mut kept) = torn_tail_fixture();
    s.kill9();
    truncate_tail(&topic_wal_file(s.data_dir()), 11);
    s.start_again();
    assert_recovered_without_last_batch(&s, &kept);
    let w = s.write_body("t", rich_batch(99, 2));
    assert_eq!(w["seqs"], json!([13, 14]));
    kept = s.read_all("t");
    s.crash_restart();
    assert_eq!(
        s.read_all("t"),
        kept,
        "recovery after a torn tail must not hide later frames"
    );
    assert_eq!(s.state("t")["head_seq"], 14);
    s.restart();
    assert_eq!(s.read_all("t"), kept);
}

#[test]
fn garbage_after_the_last_frame_is_ignored_and_every_batch_kept() {
    let (mut s, _) = torn_tail_fixture();
    let all = s.read_all("t");
    s.kill9();
    let file = topic_wal_file(s.data_dir());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend(std::iter::repeat_n(0xA5u8, 64));
    std::fs::write(&file, bytes).unwrap();
    s.start_again();
    assert_eq!(s.read_all("t"), all);
    assert_eq!(s.state("t")["head_seq"], 15);
    assert_eq!(first_seq_of_next_write(&s, "t"), 16);
}

// ---- process lifecycle ----

#[test]
fn sigterm_exits_with_status_zero() {
    let mut s = Server::start();
    s.write("t", records(2));
    let status = s.sigterm();
    assert!(status.success(), "graceful exit status {status}");
}

#[test]
fn sigterm_waits_for_an_in_flight_long_poll_or_ends_it_cleanly() {
    let mut s = Server::start_with(&[], Some("[server]\ndrain_timeout_ms = 2000\n"));
    s.write("t", records(1));
    let poll = spawn_long_poll(s.addr, 1000);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let start = std::time::Instant::now();
    let status = s.sigterm();
    assert!(status.success(), "graceful exit status {status}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "drain bounded"
    );
    // The in-flight request completed with a full response (never a reset mid-response).
    let resp = poll
        .join()
        .expect("in-flight long-poll got a complete response");
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn second_server_on_the_same_data_dir_refuses_to_start() {
    let s = Server::start();
    s.write("t", records(1));
    let start = std::time::Instant::now();
    let (status, _out, err) = run_to_exit(s.command());
    assert!(
        !status.success(),
        "second server on a locked data dir must exit non-zero"
    );
    assert!(
        err.to_lowercase().contains("locked"),
        "stderr must say `locked`: {err}"
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "refusal must be quick"
    );
    // The first server is unaffected.
    assert_eq!(s.write("t", records(1))["seqs"], json!([2]));
    assert_eq!(s.get("/v0/ready").status, 200);
}

#[test]
fn lock_is_released_on_exit_so_a_new_server_can_start() {
    let mut s = Server::start();
    s.write("t", records(1));
    s.restart();
    s.crash_restart();
    assert_eq!(s.state("t")["head_seq"], 1);
}

#[test]
fn sigint_is_a_graceful_shutdown_too() {
    let mut s = Server::start();
    s.write("t", records(3));
    let pid = s.pid().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = s.wait_exit();
    assert!(status.success(), "SIGINT exit status {status}");
    s.start_again();
    assert_eq!(s.state("t")["head_seq"], 3);
    assert_eq!(first_seq_of_next_write(&s, "t"), 4);
}

fn wal_bytes(dir: &Path) -> u64 {
    harness::wal::written_bytes(dir)
}

#[test]
fn ephemeral_records_never_reach_the_wal() {
    let s = Server::start();
    s.create("e", json!({"durability": "ephemeral"}));
    s.write("e", json!([{"data": 0}]));
    let before = wal_bytes(s.data_dir());
    let big: Value = Value::Array(
        (0..200)
            .map(|_| json!({"data": "e".repeat(5000)}))
            .collect(),
    );
    for _ in 0..2 {
        s.write("e", big.clone()); // 2 MB of records
    }
    let grown = wal_bytes(s.data_dir()) - before;
    assert!(
        grown < 64 * 1024,
        "ephemeral writes grew the WAL by {grown} bytes"
    );
    // An fsync topic with the same data does reach it (synced before the ack).
    s.create("d", json!({"durability": "fsync"}));
    s.write("d", big);
    assert!(
        wal_bytes(s.data_dir()) - before > 1_000_000,
        "disk records are in <data-dir>/wal/*.wal"
    );
}

#[test]
fn mixed_classes_on_one_server_each_keep_their_guarantee_after_kill_9() {
    let mut s = Server::start();
    let classes = ["ephemeral", "memory", "disk", "fsync"];
    for (i, class) in classes.iter().enumerate() {
        for k in 0..3 {
            s.create(
                &format!("{class}-{k}"),
                json!({"durability": class, "priority": i}),
            );
        }
    }
    // Interleave writes across all twelve topics (and so across WAL shards).
    for round in 0..5 {
        for class in classes {
            for k in 0..3 {
                s.write(
                    &format!("{class}-{k}"),
                    json!([{"data": [round, k]}, {"data": round}]),
                );
            }
        }
    }
    let fsync_before: Vec<Vec<Value>> = (0..3).map(|k| s.read_all(&format!("fsync-{k}"))).collect();
    s.crash_restart();
    assert_eq!(s.get("/v0/ready").expect(200)["topics"], 12);
    for (i, class) in classes.iter().enumerate() {
        for k in 0..3 {
            let topic = format!("{class}-{k}");
            let st = s.state(&topic);
            assert_eq!(st["config"]["durability"], *class, "{topic}");
            assert_eq!(st["config"]["priority"], i, "{topic}");
            assert!(st["head_seq"].as_u64().unwrap() >= 10, "{topic}: {st}");
            assert!(
                first_seq_of_next_write(&s, &topic) > 10,
                "{topic} re-issued a seq"
            );
        }
    }
    for (k, before) in fsync_before.iter().enumerate() {
        let after = s.read_all(&format!("fsync-{k}"));
        assert_eq!(after[..10], before[..], "fsync-{k}");
    }
}

// ---- under load ----

/// Writers hammer `t` (each request one 3-record batch) until their requests start failing; the
/// test signals the server mid-stream. Returns every acknowledged (seq, data) pair.
fn acked_writes_racing(s: &mut Server, signal: &str) -> Vec<(u64, Value)> {
    let addr = s.addr;
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Records whose ack the writers have *received* (the server's head can run ahead of it).
    let received = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let stop = &stop;
                let received = &received;
                scope.spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..100_000 {
                        let recs: Vec<Value> = (0..3).map(|j| json!({"data": [w, i, j]})).collect();
                        let body = serde_json::to_vec(&json!({"records": recs})).unwrap();
                        let headers = [("Content-Type", "application/json")];
                        match crate::harness::http::try_request(
                            addr,
                            "POST",
                            "/v0/topics/t",
                            &headers,
                            &body,
                        ) {
                            Ok(r) if r.status == 200 => {
                                let b = r.json();
                                for (j, seq) in b["seqs"].as_array().unwrap().iter().enumerate() {
                                    acked.push((seq.as_u64().unwrap(), recs[j]["data"].clone()));
                                }
                                received.fetch_add(recs.len(), std::sync::atomic::Ordering::SeqCst);
                            }
                            Ok(r) => assert!(
                                r.status >= 500 || r.status == 429,
                                "unexpected {}: {}",
                                r.status,
                                r.text()
                            ),
                            Err(_) if stop.load(std::sync::atomic::Ordering::SeqCst) => break,
                            Err(e) => panic!("write failed before the signal: {e}"),
                        }
                    }
                    acked
                })
            })
            .collect();
        // Let the writers get going, then signal.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while received.load(std::sync::atomic::Ordering::SeqCst) < 150 {
            assert!(
                std::time::Instant::now() < deadline,
                "writers made no progress"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if signal == "KILL" {
            s.kill9();
        } else {
            let status = s.sigterm();
            assert!(status.success(), "SIGTERM under load: exit {status}");
        }
        writers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn assert_all_acked_present(s: &Server, acked: &[(u64, Value)]) {
    let recs = s.read_all("t");
    let by_seq: std::collections::HashMap<u64, &Value> = recs
        .iter()
        .map(|r| (r["$seq"].as_u64().unwrap(), &r["data"]))
        .collect();
    for (seq, data) in acked {
        assert_eq!(
            by_seq.get(seq).copied(),
            Some(data),
            "acked seq {seq} lost or changed"
        );
    }
    let max_acked = acked.iter().map(|(s, _)| *s).max().unwrap_or(0);
    assert!(
        first_seq_of_next_write(s, "t") > max_acked,
        "a seq was re-issued"
    );
}

#[test]
fn disk_acked_writes_all_survive_sigterm_under_load() {
    let mut s = Server::start();
    s.create("t", json!({"durability": "disk"}));
    let acked = acked_writes_racing(&mut s, "TERM");
    assert!(acked.len() >= 150);
    s.start_again();
    assert_all_acked_present(&s, &acked);
}

#[test]
fn fsync_acked_writes_all_survive_kill_9_under_load() {
    let mut s = Server::start();
    s.create("t", json!({"durability": "fsync"}));
    let acked = acked_writes_racing(&mut s, "KILL");
    assert!(acked.len() >= 150);
    s.start_again();
    assert_all_acked_present(&s, &acked);
    let head = s.state("t")["head_seq"].as_u64().unwrap();
    let max_acked = acked.iter().map(|(s, _)| *s).max().unwrap();
    assert!(head >= max_acked);
}

// ---- many small WAL files, segments and snapshots ----

const SMALL_STORAGE: &str = "[storage]
wal_file_bytes = 4096
segment_seal_records = 7
snapshot_wal_bytes = 8192
snapshot_check_interval_ms = 20
";

#[test]
fn small_wal_files_segments_and_snapshots_recover_everything() {
    let mut s = Server::start_with(&[], Some(SMALL_STORAGE));
    s.create("f", json!({"durability": "fsync"}));
    s.create("d", json!({"durability": "disk"}));
    for i in 0..40 {
        s.write_body("f", rich_batch(i, 3));
        s.write_body("d", rich_batch(i, 2));
    }
    let (f, d) = (s.read_all("f"), s.read_all("d"));
    assert_eq!((f.len(), d.len()), (120, 80));
    // Reads across many segments agree with a paged walk.
    let mut paged = Vec::new();
    let mut from = 0;
    loop {
        let page = s.diff(
            "f",
            json!({"from_seq": from, "limit": 5, "include_tags": true}),
        );
        paged.extend(page["records"].as_array().unwrap().iter().cloned());
        from = page["next_from_seq"].as_u64().unwrap();
        if page["caught_up"] == true {
            break;
        }
    }
    assert_eq!(paged, f);
    s.crash_restart();
    assert_eq!(s.read_all("f"), f, "fsync topic after kill -9");
    for i in 40..50 {
        s.write_body("f", rich_batch(i, 3));
    }
    let f2 = s.read_all("f");
    s.restart();
    assert_eq!(s.read_all("f"), f2, "fsync topic after SIGTERM");
    let d_after = s.read_all("d");
    assert_eq!(d_after[..], d[..d_after.len()], "disk topic keeps a prefix");
    assert_eq!(first_seq_of_next_write(&s, "f"), 151);
}

#[test]
fn odd_but_valid_names_survive_kill_9_byte_exact() {
    let mut s = Server::start();
    let long = "n".repeat(255);
    let names = [
        "a..b",
        "A",
        "a",
        "CON",
        "wal",
        "LOCK",
        "tenant1:orders:v2",
        "x-_.:9",
        long.as_str(),
    ];
    for (i, name) in names.iter().enumerate() {
        s.create(name, json!({"durable": true}));
        s.write(name, json!([{"data": i}]));
    }
    s.crash_restart();
    for (i, name) in names.iter().enumerate() {
        let d = s.diff(name, json!({}));
        assert_eq!(d["records"][0]["data"], i, "{name}");
        assert_eq!(d["head_seq"], 1, "{name}");
    }
    let list = s.get("/v0/topics").expect(200);
    let mut want: Vec<&str> = names.to_vec();
    want.sort();
    let got: Vec<&str> = list["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn class_change_to_fsync_makes_later_writes_survive_kill_9() {
    let mut s = Server::start();
    s.create("t", json!({"durability": "ephemeral"}));
    s.write("t", records(3));
    s.put("/v0/topics/t", &json!({"durability": "fsync"}))
        .expect(200);
    let w = s.write("t", json!([{"data": "kept1"}, {"data": "kept2"}]));
    let seqs = written_seqs(&w);
    assert!(seqs[0] > 3);
    s.crash_restart();
    let recs = s.read_all("t");
    for (seq, data) in seqs.iter().zip(["kept1", "kept2"]) {
        assert!(
            recs.iter().any(|r| r["$seq"] == *seq && r["data"] == data),
            "fsync write {seq} lost after the class change: {recs:?}"
        );
    }
    assert_eq!(s.state("t")["config"]["durability"], "fsync");
    assert!(first_seq_of_next_write(&s, "t") > seqs[1]);
}

#[test]
fn sigterm_answers_a_parked_long_poll_at_once() {
    let mut s = Server::start();
    s.write("t", records(1));
    let poll = spawn_long_poll(s.addr, 30000);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let start = std::time::Instant::now();
    assert!(s.sigterm().success());
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "shutdown must not wait out the long-poll (took {:?})",
        start.elapsed()
    );
    let resp = poll.join().expect("long-poll answered");
    let body = resp.expect(200);
    assert_eq!(
        (
            body["records"].as_array().map(Vec::len),
            body["caught_up"].as_bool()
        ),
        (Some(0), Some(true))
    );
}

/// A diff long-poll on `t` from seq 1 in its own thread.
fn spawn_long_poll(
    addr: std::net::SocketAddr,
    wait_ms: u64,
) -> std::thread::JoinHandle<crate::harness::http::Response> {
    std::thread::spawn(move || {
        let body = format!(r#"{{"from_seq":1,"wait_ms":{wait_ms}}}"#);
        crate::harness::http::request(
            addr,
            "POST",
            "/v0/topics/t/diff",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    })
}
