//! `topics backup DEST`: into a directory a server starts on, into a `.tar` file `topics
//! verify` accepts, while writes go on; never overwriting, never leaving a `DEST` behind when
//! the server cannot be reached or refuses.

use super::{cli, run};
use crate::harness::{Server, TempDir};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SMALL_SEGMENTS: &str = "[storage]\nsegment_seal_records = 100\n";

#[test]
fn backup_into_a_directory_and_a_tar_while_writes_go_on() {
    let s = Server::start_with(&[], Some(SMALL_SEGMENTS));
    s.create("orders", json!({ "durability": "fsync" }));
    let first: Vec<serde_json::Value> = (0..500).map(|i| json!({ "data": i })).collect();
    s.write("orders", json!(first));
    let acked_head = s.state("orders")["head_seq"].as_u64().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (addr, stop) = (s.addr, stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let body = json!({ "records": [{ "data": "later" }] }).to_string();
                crate::harness::http::request(
                    addr,
                    "POST",
                    "/v0/topics/orders",
                    &[],
                    body.as_bytes(),
                );
            }
        })
    };
    let tmp = TempDir::new();
    let dir = tmp.path().join("copy");
    let tar = tmp.path().join("copy.tar");
    let (st, _, err) = run(cli(&s, &["backup", dir.to_str().unwrap()]));
    assert!(st.success(), "backup into a directory: {err}");
    assert!(err.contains("verified clean"), "{err}");
    let (st, _, err) = run(cli(&s, &["backup", tar.to_str().unwrap()]));
    assert!(st.success(), "backup into a tar: {err}");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(!tmp.path().join("copy.partial").exists());
    assert!(!tmp.path().join("copy.tar.partial").exists());

    let mut verify = crate::harness::server::command();
    verify.arg("verify").arg(&tar);
    let (st, out, err) = crate::harness::server::run_to_exit(verify);
    assert!(st.success(), "verify the tar: {out}{err}");

    let restored = Server::start_in(&dir, &[], None);
    let records = restored.read_all("orders");
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.len() as u64 >= acked_head,
        "{} < {acked_head}",
        seqs.len()
    );
    for (i, r) in records.iter().take(500).enumerate() {
        assert_eq!(r["$seq"], json!(i as u64 + 1));
        assert_eq!(r["data"], json!(i), "seq {}", i + 1);
    }
    assert!(records[500..].iter().all(|r| r["data"] == "later"));
}

#[test]
fn a_backup_never_overwrites_and_leaves_nothing_when_it_fails() {
    let s = Server::start_with_keys("adm:admin,rw:rw");
    let tmp = TempDir::new();
    let dest = tmp.path().join("b.tar");

    // Without an admin key: refused, nothing written.
    let mut denied = cli(&s, &["backup", dest.to_str().unwrap()]);
    denied.env("TOPICS_TOKEN", "rw");
    let (st, _, err) = run(denied);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("forbidden"), "{err}");
    assert!(!dest.exists() && !tmp.path().join("b.tar.partial").exists());

    // With it: written.
    let mut ok = cli(&s, &["backup", dest.to_str().unwrap()]);
    ok.env("TOPICS_TOKEN", "adm");
    let (st, _, err) = run(ok);
    assert!(st.success(), "{err}");
    let len = std::fs::metadata(&dest).unwrap().len();

    // A second backup to the same place is a usage error and leaves the first alone.
    let mut again = cli(&s, &["backup", dest.to_str().unwrap()]);
    again.env("TOPICS_TOKEN", "adm");
    let (st, _, err) = run(again);
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("never overwrites"), "{err}");
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), len);

    // No server: exit 1, no directory.
    let gone = tmp.path().join("nowhere");
    let mut cmd = crate::harness::server::command();
    cmd.args([
        "backup",
        gone.to_str().unwrap(),
        "--url",
        "http://127.0.0.1:9",
    ]);
    let (st, _, err) = run(cmd);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(!gone.exists() && !tmp.path().join("nowhere.partial").exists());
}
