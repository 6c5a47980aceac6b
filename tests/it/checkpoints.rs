//! Checkpoints through the real binary: periodic snapshots bound the WAL, a graceful stop
//! writes a final snapshot so the next start replays almost nothing, and kill -9 at any point
//! loses no acknowledged fsync write.

use crate::harness::{records, seqs_of, Server};
use serde_json::json;
use std::time::{Duration, Instant};

const FAST: &str = "[storage]\nsnapshot_wal_bytes = 4096\nsnapshot_check_interval_ms = 20\n";

fn count(dir: &std::path::Path, ext: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == ext))
                .count()
        })
        .unwrap_or(0)
}

/// Highest snapshot number on disk (0 if none).
fn newest_snapshot(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".snap")?.parse().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[test]
fn periodic_checkpoints_bound_the_wal_and_survive_kill9() {
    let mut s = Server::start_with(&[], Some(FAST));
    s.create("t", json!({ "durability": "fsync" }));
    let wal = s.data_dir().join("wal");
    let snaps = s.data_dir().join("snapshots");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut written = 0u64;
    while newest_snapshot(&snaps) < 4 {
        assert!(
            Instant::now() < deadline,
            "no periodic checkpoints happened"
        );
        s.write("t", records(20));
        written += 20;
        std::thread::sleep(Duration::from_millis(25));
    }
    // Pruning follows the new snapshot's rename: it may still be under way right now.
    let pruned_by = Instant::now() + Duration::from_secs(5);
    while count(&snaps, "snap") > 2 {
        assert!(Instant::now() < pruned_by, "old snapshots are pruned");
        std::thread::sleep(Duration::from_millis(10));
    }
    s.write("t", records(5));
    written += 5;
    s.crash_restart();
    let got = s.read_all("t");
    assert_eq!(
        got.len() as u64,
        written,
        "every acknowledged fsync record is back"
    );
    assert!(count(&snaps, "snap") <= 2);
    // Two shards × a handful of files at most: files before the older kept snapshot are gone.
    assert!(
        count(&wal, "wal") < 20,
        "WAL files are deleted after checkpoints ({})",
        count(&wal, "wal")
    );
}

#[test]
fn graceful_stop_writes_a_final_snapshot_and_the_restart_replays_nothing() {
    let mut s = Server::start();
    s.create("t", json!({ "durability": "disk", "cap_records": 50 }));
    s.write("t", records(120));
    let before = s.diff("t", json!({ "from_seq": 0, "limit": 1000 }));
    s.restart();
    let line = s
        .logs()
        .into_iter()
        .rev()
        .find(|l| l.contains("WAL replay complete"))
        .expect("replay log line");
    assert!(
        line.contains("frames=0"),
        "replayed frames after a clean stop: {line}"
    );
    assert!(
        !line.contains("snapshot=0"),
        "started from a snapshot: {line}"
    );
    let after = s.diff("t", json!({ "from_seq": 0, "limit": 1000 }));
    assert_eq!(seqs_of(&after), seqs_of(&before));
    assert_eq!(after["tombstone"], before["tombstone"]);
    assert_eq!(s.state("t")["head_seq"], 120);
    s.write("t", records(1));
    assert_eq!(
        s.state("t")["head_seq"],
        121,
        "no reserved-seq hole after a clean stop"
    );
}
