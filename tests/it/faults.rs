//! Storage faults in the real binary, injected through the test-only `TOPICS_TEST_FAIL_*`
//! variables: a failed fdatasync or rename stops the process with a non-zero status (so
//! systemd's `Restart=on-failure` restarts it), promptly even with a long-poll parked, and
//! a restart on healthy storage recovers every acknowledged write.

use crate::harness::http::{request, try_request};
use crate::harness::{assert_error, records, Server, TempDir};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long after the failure the process may take to exit (it aims for well under 1 s).
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// One shard, so the fsync count does not depend on the machine's core count.
fn single_shard_config(dir: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, "[storage]\nwal_shards = 1\n").unwrap();
    path
}

/// A server on `data` with one fault-injection variable set.
fn start_faulty(data: &Path, config: &Path, var: &str, value: &str) -> Server {
    std::fs::create_dir_all(data).unwrap();
    let (data, config) = (data.to_str().unwrap(), config.to_str().unwrap());
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--config",
        config,
    ];
    Server::start_raw(&args, &[(var, value)], Path::new(data))
}

fn datas(records: &[Value]) -> Vec<Value> {
    records.iter().map(|r| r["data"].clone()).collect()
}

#[test]
fn a_failed_fsync_stops_the_process_non_zero_and_a_restart_recovers_every_ack() {
    let tmp = TempDir::new();
    let (data, config) = (tmp.path().join("data"), single_shard_config(tmp.path()));
    let mut s = start_faulty(&data, &config, "TOPICS_TEST_FAIL_FSYNC_AFTER", "30");
    s.create("t", json!({ "durability": "fsync" }));
    s.create("idle", json!({}));
    let addr = s.addr;
    let poll = std::thread::spawn(move || {
        let body = br#"{"from_seq":0,"wait_ms":30000}"#;
        let headers = [("Content-Type", "application/json")];
        try_request(addr, "POST", "/v0/topics/idle/diff", &headers, body)
    });
    let mut acked = Vec::new();
    let failed = (0..200)
        .map(|i| {
            (
                i,
                s.post("/v0/topics/t", &json!({ "records": [{ "data": i }] })),
            )
        })
        .find_map(|(i, r)| match r.status {
            200 => {
                acked.push(json!(i));
                None
            }
            _ => Some(r),
        })
        .expect("the injected fdatasync failure was reached");
    let failed_at = Instant::now();
    assert_error(&failed, 500, "internal");
    assert!(acked.len() >= 10, "writes succeeded before the fault");
    // Observable only in the moment before the listener closes.
    if let Ok(ready) = try_request(addr, "GET", "/v0/ready", &[], b"") {
        let err = assert_error(&ready, 503, "not_ready");
        assert!(err["detail"]["storage_error"].is_string(), "{err}");
    }
    let status = s.wait_exit();
    assert!(
        !status.success(),
        "exit status after a storage failure: {status}"
    );
    assert!(
        failed_at.elapsed() < EXIT_WITHIN,
        "took {:?}",
        failed_at.elapsed()
    );
    assert!(poll.join().is_ok(), "the parked long-poll was let go");
    let logs = s.logs().join("\n");
    assert!(logs.contains("WAL fdatasync failed"), "the cause is logged");
    for attempt in ["checkpoint written", "final checkpoint failed"] {
        assert!(
            !logs.contains(attempt),
            "no final checkpoint on failed storage"
        );
    }

    let s = Server::start_in(&data, &[], Some(config));
    let got = datas(&s.read_all("t"));
    assert_eq!(
        got[..acked.len()],
        acked[..],
        "every acknowledged write, in order"
    );
    assert!(
        got.len() <= acked.len() + 1,
        "at most the failed write besides: {got:?}"
    );
    let next = s.write("t", records(1));
    assert!(
        next["first_seq"].as_u64().unwrap() > acked.len() as u64,
        "no seq reissued"
    );
}

#[test]
fn a_sigterm_whose_final_checkpoint_fails_exits_non_zero() {
    let tmp = TempDir::new();
    let (data, config) = (tmp.path().join("data"), single_shard_config(tmp.path()));
    // No rename happens before the final checkpoint: no seal, no periodic snapshot yet.
    let mut s = start_faulty(&data, &config, "TOPICS_TEST_FAIL_RENAME_AFTER", "0");
    s.create("f", json!({ "durability": "fsync" }));
    s.create("d", json!({ "durability": "disk" }));
    s.write("f", records(5));
    s.write("d", records(7));
    let status = s.sigterm();
    assert!(
        !status.success(),
        "exit status after a failed final checkpoint: {status}"
    );
    let logs = s.logs().join("\n");
    assert!(
        logs.contains("final checkpoint failed"),
        "the reason is logged"
    );
    assert!(!logs.contains("stopped cleanly"));

    let s = Server::start_in(&data, &[], Some(config));
    assert_eq!(s.read_all("f").len(), 5);
    assert_eq!(s.read_all("d").len(), 7);
    let probe = request(s.addr, "GET", "/v0/ready", &[], b"");
    assert_eq!(probe.status, 200, "healthy again after the restart");
}
