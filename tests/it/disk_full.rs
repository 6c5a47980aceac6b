//! A full disk through the real binary, on a small tmpfs the test mounts (as root; skipped
//! with a printed reason otherwise — CI runs as root): durable writes answer `507
//! insufficient_storage` with `Retry-After` while it is full, reads and `ephemeral` writes go
//! on, writes resume by themselves once space is freed, and every acknowledged record is there
//! after a restart and after `kill -9`.

use crate::harness::{assert_error, written_seqs, Server, TempDir};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs of `mib` MiB mounted for the life of the value.
struct Tmpfs {
    path: PathBuf,
    _parent: TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            println!("disk_full: skipped: mounting a tmpfs needs root");
            return None;
        }
        let parent = TempDir::new();
        let path = parent.path().join("fs");
        std::fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                path,
                _parent: parent,
            }),
            Ok(o) => {
                println!(
                    "disk_full: skipped: mount failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                None
            }
            Err(e) => {
                println!("disk_full: skipped: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fill the file system holding `dir` with one file until it is full; returns that file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xabu8; 64 << 10];
    for _ in 0..100_000 {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // Fill the last partial pages too.
    while f.write_all(&[1u8; 512]).is_ok() {}
    path
}

fn batch(i: usize) -> Value {
    Value::Array(
        (0..10)
            .map(|j| json!({"data": format!("{i}-{j}-{}", "x".repeat(200))}))
            .collect(),
    )
}

/// Write batches to `topic` until one answers 507; returns the acknowledged seqs.
fn write_until_full(s: &Server, topic: &str) -> Vec<u64> {
    let mut acked = Vec::new();
    for i in 0..20_000 {
        let r = s.post(
            &format!("/v0/topics/{topic}"),
            &json!({"records": batch(i)}),
        );
        if r.status == 507 {
            assert_error(&r, 507, "insufficient_storage");
            assert_eq!(r.header("retry-after"), Some("5"));
            return acked;
        }
        acked.extend(written_seqs(&r.expect(200)));
    }
    panic!("the disk never filled");
}

fn all_seqs(s: &Server, topic: &str) -> Vec<u64> {
    s.read_all(topic)
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect()
}

/// The stored seqs are exactly the acknowledged ones (reports only the difference).
fn assert_exactly(s: &Server, topic: &str, acked: &[u64], when: &str) {
    let got = all_seqs(s, topic);
    let missing: Vec<_> = acked.iter().filter(|q| !got.contains(q)).collect();
    let extra: Vec<_> = got.iter().filter(|q| !acked.contains(q)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{when}: missing {missing:?}, extra {extra:?}"
    );
}

/// Small WAL files and frequent seals, so both run into the full disk.
const CONFIG: &str =
    "[storage]\nwal_shards = 1\nwal_file_bytes = 1048576\nsegment_seal_records = 500\n";

#[test]
fn a_full_disk_loses_nothing_acknowledged_and_heals_without_a_restart() {
    let Some(fs) = Tmpfs::mount(24) else {
        return;
    };
    let data = fs.path.join("data");
    let cfg = fs.path.join("config.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let mut s = Server::start_in(&data, &[], Some(cfg));
    s.create("d", json!({"durability": "disk"}));
    s.create("f", json!({"durability": "fsync"}));
    s.create("e", json!({"durability": "ephemeral"}));
    s.write("e", json!([{"data": 1}]));
    let filler = fill(&fs.path);
    let mut acked = write_until_full(&s, "d");
    assert_error(
        &s.post("/v0/topics/f", &json!({"records": batch(0)})),
        507,
        "insufficient_storage",
    );
    assert_exactly(&s, "d", &acked, "reads go on while the disk is full");
    let create = s.put("/v0/topics/late", &json!({"durability": "disk"}));
    assert_error(&create, 507, "insufficient_storage");
    assert_eq!(s.get("/v0/ready").expect(200)["detail"]["disk_full"], true);
    for i in 0..30 {
        // Ephemeral writes to an existing topic go on, new seq reservations included.
        s.write("e", batch(i));
    }
    for i in 0..30 {
        // Seals that find the disk full leave the records in RAM; nothing fails.
        assert_eq!(
            s.post("/v0/topics/d", &json!({"records": batch(i)})).status,
            507
        );
    }
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.post("/v0/topics/d", &json!({"records": batch(1)}));
        if r.status == 200 {
            acked.extend(written_seqs(&r.json()));
            break;
        }
        assert_eq!(r.status, 507, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "writes did not resume after space was freed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.get("/v0/ready").expect(200)["detail"]["disk_full"], false);
    s.write("f", batch(2));
    // kill -9 first: no final checkpoint can cover for frames the WAL failed to write.
    s.kill9();
    s.start_again();
    assert_exactly(&s, "d", &acked, "after kill -9");
    assert_eq!(
        s.read_all("f").len(),
        10,
        "the refused fsync write was not applied"
    );
    s.restart();
    assert_exactly(&s, "d", &acked, "after a clean restart");
}
