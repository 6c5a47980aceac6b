//! Online backup (OPERATIONS.md "Backup, verify, restore"): `POST /v0/backup` streams a tar
//! archive while writes go on; the archive, unpacked, starts as a server holding every record
//! acknowledged before the backup began, with nothing torn or invented, and `topics verify`
//! passes on it — and fails on a damaged copy. Pins keep the files a slow backup still has to
//! send even while checkpoints make them garbage.

use crate::harness::http::{assert_error, connect};
use crate::harness::server::verify;
use crate::harness::{Server, TempDir};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Small segments and frequent checkpoints, so a backup spans many files and races GC.
const BUSY: &str = r#"
[storage]
segment_seal_records = 200
snapshot_check_interval_ms = 50
snapshot_max_interval_ms = 100
"#;

/// Acknowledged writes per topic: seq → data, and when each batch's answer arrived.
type Acked = Arc<Mutex<BTreeMap<String, Vec<(Instant, u64, Value)>>>>;

/// Writes batches of 20 records to each topic until `stop`, noting every acknowledged seq.
fn writer(addr: std::net::SocketAddr, topics: Vec<String>, stop: Arc<AtomicBool>, acked: Acked) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for t in &topics {
            let records: Vec<Value> = (0..20)
                .map(|i| json!({ "data": { "n": n + i, "pad": "x".repeat(150) } }))
                .collect();
            let resp = crate::harness::http::request(
                addr,
                "POST",
                &format!("/v0/topics/{t}"),
                &[("content-type", "application/json")],
                json!({ "records": records }).to_string().as_bytes(),
            );
            assert_eq!(resp.status, 200, "{}", resp.text());
            let at = Instant::now();
            let body = resp.json();
            let seqs = body["seqs"].as_array().expect("seqs").clone();
            let mut a = acked.lock().unwrap();
            for (i, s) in seqs.iter().enumerate() {
                let data = records[i]["data"].clone();
                a.entry(t.clone())
                    .or_default()
                    .push((at, s.as_u64().unwrap(), data));
            }
        }
        n += 20;
    }
}

/// `topics verify PATH`: (exit code, output).
fn verify_path(path: &Path) -> (i32, String) {
    let mut cmd = crate::harness::server::command();
    cmd.arg("verify").arg(path);
    let (status, out, err) = crate::harness::server::run_to_exit(cmd);
    (status.code().unwrap_or(-1), format!("{out}{err}"))
}

/// Unpack a backup archive into a new directory.
fn unpack(archive: &[u8], dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    topics::backup::tar::extract(archive, dest).expect("a whole archive");
}

fn post_backup(s: &Server) -> crate::harness::http::Response {
    s.req("POST", "/v0/backup", &[], b"")
}

#[test]
fn a_backup_under_concurrent_writes_restores_everything_acknowledged_before_it_began() {
    let s = Server::start_with(&[], Some(BUSY));
    let topics: Vec<String> = ["d", "f", "m"].iter().map(|t| t.to_string()).collect();
    for (t, class) in topics.iter().zip(["disk", "fsync", "memory"]) {
        s.create(t, json!({ "durability": class }));
    }
    s.create("queue", json!({ "durability": "disk" }));
    s.write("queue", json!([{ "data": 1 }, { "data": 2 }]));
    // Records deleted before the backup stay deleted in the copy.
    s.write("f", json!([{ "data": "gone-1" }, { "data": "gone-2" }]));
    s.post("/v0/topics/f/delete", &json!({ "before_seq": 3 }))
        .expect(200);

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let w = {
        let (addr, topics, stop, acked) = (s.addr, topics.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || writer(addr, topics, stop, acked))
    };
    s.wait_for_segments(3);
    let began = Instant::now();
    let resp = post_backup(&s);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/x-tar"));

    let tmp = TempDir::new();
    let copy = tmp.path().join("copy");
    unpack(&resp.body, &copy);
    let (code, out) = verify(&copy);
    assert_eq!(code, 0, "verify on the copy: {out}");

    let restored = Server::start_in(&copy, &[], None);
    let acked = acked.lock().unwrap();
    for t in &topics {
        let original: BTreeMap<u64, Value> = s
            .read_all(t)
            .into_iter()
            .map(|r| (r["$seq"].as_u64().unwrap(), r["data"].clone()))
            .collect();
        let copied: BTreeMap<u64, Value> = restored
            .read_all(t)
            .into_iter()
            .map(|r| (r["$seq"].as_u64().unwrap(), r["data"].clone()))
            .collect();
        let before: Vec<&(Instant, u64, Value)> =
            acked[t].iter().filter(|(at, _, _)| *at < began).collect();
        assert!(before.len() > 100, "{t}: too few writes before the backup");
        for (_, seq, data) in &before {
            assert_eq!(
                copied.get(seq),
                Some(data),
                "{t}: acknowledged seq {seq} missing"
            );
        }
        for (seq, data) in &copied {
            assert_eq!(
                original.get(seq),
                Some(data),
                "{t}: seq {seq} invented or torn"
            );
        }
        // A copy is a clean stop at the barrier: no crash gap for the seqs it never held.
        let d = restored.diff(t, json!({ "from_seq": 0, "limit": 10 }));
        assert!(d["tombstone"].is_null(), "{t}: {d}");
        let class = restored.state(t)["config"]["durability"].clone();
        assert_eq!(
            class,
            s.state(t)["config"]["durability"],
            "{t}: config kept"
        );
    }
    let f: Vec<Value> = restored.read_all("f");
    assert!(f
        .iter()
        .all(|r| r["data"] != "gone-1" && r["data"] != "gone-2"));
    // The restored server takes writes after everything it holds.
    let head = restored.state("d")["head_seq"].as_u64().unwrap();
    let seqs = restored.write("d", json!([{ "data": "after" }]))["seqs"].clone();
    assert!(seqs[0].as_u64().unwrap() > head, "{seqs} after head {head}");
}

#[test]
fn verify_fails_on_a_damaged_or_incomplete_copy() {
    let s = Server::start_with(&[], Some(BUSY));
    s.create("t", json!({ "durability": "disk" }));
    for _ in 0..5 {
        let records: Vec<Value> = (0..200).map(|i| json!({ "data": i })).collect();
        s.write("t", json!(records));
    }
    settled_segments(&s, 2);
    let resp = post_backup(&s);
    assert_eq!(resp.status, 200);
    let tmp = TempDir::new();

    let clean = tmp.path().join("clean");
    unpack(&resp.body, &clean);
    assert_eq!(verify(&clean).0, 0, "{}", verify(&clean).1);

    // One flipped byte inside a segment's records.
    let flipped = tmp.path().join("flipped");
    unpack(&resp.body, &flipped);
    let seg = std::fs::read_dir(flipped.join("segments"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();
    let (code, out) = verify(&flipped);
    assert_eq!(code, 1, "a flipped byte must fail verify: {out}");

    // A segment the snapshot refers to, missing.
    let missing = tmp.path().join("missing");
    unpack(&resp.body, &missing);
    let seg = std::fs::read_dir(missing.join("segments"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(seg).unwrap();
    let (code, out) = verify(&missing);
    assert_eq!(code, 1, "a missing segment must fail verify: {out}");

    // The archive itself: `topics verify FILE` unpacks it and checks every checksum; a cut
    // archive fails.
    let whole = tmp.path().join("whole.tar");
    std::fs::write(&whole, &resp.body).unwrap();
    let (code, out) = verify_path(&whole);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("unpacked whole"), "{out}");
    let short = tmp.path().join("short.tar");
    std::fs::write(&short, &resp.body[..resp.body.len() / 2]).unwrap();
    let (code, out) = verify_path(&short);
    assert_eq!(code, 1, "a cut archive must fail verify: {out}");
    assert!(out.contains("incomplete"), "{out}");

    // A cut transfer is refused when unpacking.
    let cut = tmp.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    let e = topics::backup::tar::extract(&resp.body[..resp.body.len() - 700], &cut).unwrap_err();
    assert!(e.to_string().contains("incomplete"), "{e}");
}

/// Wait until at least `min` segment files exist and no seal is adding more (their count is
/// steady for 300 ms): seals run in the background and may cover several writes at once.
fn settled_segments(s: &Server, min: usize) {
    let mut last = s.wait_for_segments(min).len();
    let mut steady_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    while steady_since.elapsed() < Duration::from_millis(300) {
        assert!(Instant::now() < deadline, "seals never settled");
        std::thread::sleep(Duration::from_millis(20));
        let now = s.segment_files().len();
        if now != last {
            (last, steady_since) = (now, Instant::now());
        }
    }
}

/// Read a raw HTTP/1.1 response with a chunked body from `stream` to its end.
fn dechunk(raw: &[u8]) -> (String, Vec<u8>) {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = &raw[split + 4..];
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("the response was cut off before its last chunk: the backup stream failed");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            return (head, body);
        }
        assert!(
            rest.len() >= size + 2,
            "the response was cut off inside a chunk"
        );
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[test]
fn a_slow_backup_keeps_the_files_it_still_has_to_send_while_checkpoints_collect_them() {
    let s = Server::start_with(&[], Some(BUSY));
    s.create("t", json!({ "durability": "disk" }));
    let pad = "y".repeat(900);
    for _ in 0..40 {
        let records: Vec<Value> = (0..500).map(|i| json!({ "data": [i, pad] })).collect();
        s.write("t", json!(records));
    }
    let head = s.state("t")["head_seq"].as_u64().unwrap();
    settled_segments(&s, 10);
    // Start the backup, take only its first bytes, then make every segment garbage and let
    // several checkpoints run before reading on.
    let mut conn = connect(s.addr);
    let req = format!(
        "POST /v0/backup HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        s.addr
    );
    conn.write_all(req.as_bytes()).unwrap();
    let mut first = vec![0u8; 4096];
    let mut raw = Vec::new();
    let n = conn.read(&mut first).unwrap();
    raw.extend_from_slice(&first[..n]);
    s.post("/v0/topics/t/delete", &json!({ "before_seq": head + 1 }))
        .expect(200);
    let checkpoints = |s: &Server| {
        s.logs()
            .iter()
            .filter(|l| l.contains("checkpoint written"))
            .count()
    };
    let before = checkpoints(&s);
    let deadline = Instant::now() + Duration::from_secs(20);
    while checkpoints(&s) < before + 3 {
        assert!(Instant::now() < deadline, "checkpoints did not run");
        s.write("t", json!([{ "data": "tick" }]));
        std::thread::sleep(Duration::from_millis(60));
    }
    conn.read_to_end(&mut raw).unwrap();
    let (head_text, body) = dechunk(&raw);
    assert!(head_text.starts_with("HTTP/1.1 200"), "{head_text}");
    let tmp = TempDir::new();
    let copy = tmp.path().join("copy");
    unpack(&body, &copy);
    assert_eq!(verify(&copy).0, 0, "{}", verify(&copy).1);
    let restored = Server::start_in(&copy, &[], None);
    let records = restored.read_all("t");
    assert_eq!(
        records.len() as u64,
        head,
        "every record the backup began with"
    );
    // Once the backup is over, GC takes the files back.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.segment_files().is_empty() {
        assert!(Instant::now() < deadline, "pinned segments never collected");
        s.write("t", json!([{ "data": "tick" }]));
        std::thread::sleep(Duration::from_millis(60));
    }
}

#[test]
fn a_backup_needs_an_admin_key_without_a_name_prefix() {
    let s = Server::start_with_keys("adm:admin,wr:rw,pre:admin:tenant1.");
    let r = s.req("POST", "/v0/backup", &[], b"");
    assert_error(&r, 401, "unauthorized");
    let r = s.req("POST", "/v0/backup", &[("authorization", "Bearer wr")], b"");
    assert_error(&r, 403, "forbidden");
    let r = s.req(
        "POST",
        "/v0/backup",
        &[("authorization", "Bearer pre")],
        b"",
    );
    assert_error(&r, 403, "forbidden");
    let r = s.req(
        "POST",
        "/v0/backup",
        &[("authorization", "Bearer adm")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.req("GET", "/v0/backup", &[("authorization", "Bearer adm")], b"");
    assert_error(&r, 405, "method_not_allowed");
}

#[test]
fn a_backup_whose_checkpoint_fails_answers_500_and_keeps_what_was_acknowledged() {
    let tmp = TempDir::new();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let args = ["--data-dir", data.to_str().unwrap()];
    // The first rename (the backup checkpoint's snapshot) fails: storage is poisoned.
    let mut s = Server::start_raw(&args, &[("TOPICS_TEST_FAIL_RENAME_AFTER", "0")], &data);
    s.create("f", json!({ "durability": "fsync" }));
    s.write("f", json!([{ "data": 1 }, { "data": 2 }]));
    let r = s.req("POST", "/v0/backup", &[], b"");
    let body = assert_error(&r, 500, "internal");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("checkpoint"), "{body}");
    // Poisoned storage stops the server (non-zero); a restart has every acknowledged record.
    assert!(!s.wait_exit().success());
    let s = Server::start_in(&data, &[], None);
    assert_eq!(s.read_all("f").len(), 2);
}
