//! The data directory through the real binary: one server per directory however its files are
//! tampered with, and files the server did not write are never removed by it.

use crate::harness::{records, run_to_exit, Server, TempDir};
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn deleting_files_does_not_let_a_second_server_onto_a_locked_directory() {
    let first = Server::start();
    first.write("t", records(3));
    for entry in std::fs::read_dir(first.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let (status, _, stderr) = run_to_exit(first.command());
    assert!(!status.success(), "second server exited {status}");
    assert!(
        stderr.contains("is locked by another topics process"),
        "stderr: {stderr}"
    );
    first.write("t", records(2));
    assert_eq!(
        first.state("t")["head_seq"],
        5,
        "the first server keeps working"
    );
}

/// Names a person or another tool might leave in each directory, including ones that look
/// almost like the server's own files (extensions it uses, names it would parse loosely).
const FOREIGN: [&str; 11] = [
    "notes.txt",
    "segments/notes.txt",
    "segments/notes.seg",
    "segments/notes.seg.tmp",
    "snapshots/README",
    "snapshots/notes.tmp",
    "snapshots/7.snap",
    "wal/foo.bak",
    "wal/1-0-0.wal",
    "wal/0000000001-00-000000.wal.orig",
    "LOCK",
];

const CHURN: &str = "[storage]\nsegment_seal_records = 40\nsnapshot_wal_bytes = 4096\n\
                     snapshot_check_interval_ms = 20\n";

/// Server-written files (by extension) in `dir`.
fn own_files(dir: &Path, ext: &str) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(ext) && n.len() > 20)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn checkpoints_and_restarts_leave_files_they_did_not_write_alone() {
    let tmp = TempDir::new();
    let data = tmp.path().join("data");
    for name in FOREIGN {
        let path = data.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("left here by hand: {name}")).unwrap();
    }
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, CHURN).unwrap();
    let mut s = Server::start_in(&data, &[], Some(config));
    s.create("t", json!({ "durability": "disk", "cap_records": 60 }));
    let dirs = ["wal", "snapshots", "segments"].map(|d| data.join(d));
    let exts = [".wal", ".snap", ".seg"];
    let mut seen: [HashSet<String>; 3] = Default::default();
    let removed = |seen: &[HashSet<String>; 3]| {
        (0..3).all(|i| seen[i].difference(&own_files(&dirs[i], exts[i])).count() > 0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // Churn until the server has removed some of its own files in every directory: cap
    // eviction frees segments, and checkpoints prune snapshots and WAL files.
    while !removed(&seen) {
        assert!(
            Instant::now() < deadline,
            "no garbage collection in every directory"
        );
        s.write("t", records(40));
        for i in 0..3 {
            seen[i].extend(own_files(&dirs[i], exts[i]));
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    s.restart();
    s.write("t", records(1));
    s.restart();
    for name in FOREIGN {
        let text = std::fs::read_to_string(data.join(name))
            .unwrap_or_else(|e| panic!("{name} is gone after checkpoints and restarts: {e}"));
        assert_eq!(text, format!("left here by hand: {name}"));
    }
    let logs = s.logs().join("\n");
    for dir in ["WAL", "snapshot", "segment"] {
        let warning = format!("ignoring unexpected file in the {dir} directory");
        assert!(logs.contains(&warning), "no warning: {warning}");
    }
}
