//! Bit rot in sealed segments, through the real binary: ten records sealed into one segment
//! (three more stay hot), the server stopped, one byte flipped in each kind of place, the
//! server started again. A damaged record is never served; readers get a `corrupt`
//! tombstone for exactly the damaged seqs, every other record still arrives, readiness
//! counts the damage, and `topics verify` names the file.

use crate::harness::server::command;
use crate::harness::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const SEAL_10: &str = "[storage]\nsegment_seal_records = 10\n";

fn batch(seqs: std::ops::RangeInclusive<u64>) -> Value {
    seqs.map(|i| json!({ "data": { "i": i }, "tag": format!("t{}", i % 3) }))
        .collect()
}

/// A stopped server whose topic `t` holds seqs 1..=10 in one segment and 11..=13 hot.
fn sealed_and_stopped() -> (Server, PathBuf) {
    let mut s = Server::start_with(&[], Some(SEAL_10));
    s.create("t", json!({ "durability": "fsync" }));
    s.write("t", batch(1..=10));
    s.write("t", batch(11..=13));
    let segs = s.wait_for_segments(1);
    assert_eq!(segs.len(), 1, "one sealed segment: {segs:?}");
    // A clean stop swaps an in-flight segment in before its final snapshot.
    assert!(s.sigterm().success());
    (s, segs[0].clone())
}

/// Offsets in a v2 segment file (`docs/STORAGE.md`).
struct Layout {
    bytes: Vec<u8>,
}

impl Layout {
    fn of(path: &Path) -> Layout {
        Layout {
            bytes: std::fs::read(path).unwrap(),
        }
    }

    fn u32_at(&self, at: usize) -> usize {
        u32::from_le_bytes(self.bytes[at..at + 4].try_into().unwrap()) as usize
    }

    fn count(&self) -> usize {
        self.u32_at(12)
    }

    fn data_start(&self) -> usize {
        48 + 32 * self.count()
    }

    fn tags_start(&self) -> usize {
        self.data_start() + self.u32_at(24)
    }

    /// The last digit of record `i`'s data (`{"i":N}` ends its body): flipped, it is still
    /// valid JSON of the right size, so only the record's crc can tell.
    fn record_digit(&self, i: usize) -> usize {
        let entry = 48 + 32 * i;
        self.data_start() + self.u32_at(entry + 16) + self.u32_at(entry + 20) - 2
    }
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

/// Follow the cursor from 0 to the head: (records, tombstones, responses).
fn read_everything(s: &Server) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let (mut records, mut tombstones, mut responses) = (Vec::new(), Vec::new(), Vec::new());
    let mut from = 0;
    for _ in 0..20 {
        let d = s.diff("t", json!({ "from_seq": from, "limit": 1000 }));
        records.extend(d["records"].as_array().unwrap().iter().cloned());
        if !d["tombstone"].is_null() {
            tombstones.push(d["tombstone"].clone());
        }
        from = d["next_from_seq"].as_u64().unwrap();
        let done = d["caught_up"] == true;
        responses.push(d);
        if done {
            return (records, tombstones, responses);
        }
    }
    panic!("no catching up");
}

/// Every record delivered is intact, and the delivered seqs are exactly `expect`.
fn assert_delivered(records: &[Value], expect: impl Iterator<Item = u64>) {
    for r in records {
        assert_eq!(r["data"]["i"], r["$seq"], "record intact: {r}");
    }
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r["$seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, expect.collect::<Vec<_>>());
}

fn assert_corrupt(t: &Value, from: u64, to: u64) {
    assert_eq!(
        (&t["gap_from"], &t["gap_to"], &t["reason"]),
        (&json!(from), &json!(to), &json!("corrupt")),
        "{t}"
    );
    assert_eq!(t["missed_estimate"], to - from + 1);
    assert_eq!(t["head_seq"], 13);
}

fn damage_counts(s: &Server) -> (u64, u64) {
    let d = s.get("/v0/ready").expect(200)["detail"].clone();
    let n = |k: &str| d[k].as_u64().unwrap_or_else(|| panic!("{k} in {d}"));
    (n("corrupt_records"), n("corrupt_segments"))
}

/// Lines of the server's stderr containing `needle`, once at least one arrived (stderr is
/// drained by another thread, so a line may land just after the response that caused it).
fn log_lines(s: &Server, needle: &str) -> usize {
    let count = || s.logs().iter().filter(|l| l.contains(needle)).count();
    for _ in 0..200 {
        if count() > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    count()
}

fn assert_verify_names(dir: &Path, seg: &Path) {
    let (code, out) = verify(dir);
    assert_eq!(code, 1, "{out}");
    let name = seg.file_name().unwrap().to_string_lossy();
    assert!(out.contains(&*name), "verify names {name}: {out}");
}

/// One record's bytes damaged: exactly its seq is a tombstone, found when first read.
fn record_damage_case(i: usize) {
    let seq = i as u64 + 1;
    let (mut s, seg) = sealed_and_stopped();
    flip(&seg, Layout::of(&seg).record_digit(i));
    s.start_again();
    let (records, tombstones, responses) = read_everything(&s);
    assert_delivered(&records, (1..=13).filter(|&q| q != seq));
    assert_eq!(tombstones.len(), 1, "{tombstones:?}");
    assert_corrupt(&tombstones[0], seq, seq);
    if seq > 1 {
        // Records before the damage come first; the walk stops just before it.
        assert!(responses[0]["tombstone"].is_null());
        assert_eq!(responses[0]["next_from_seq"], seq - 1);
        assert_eq!(responses[0]["caught_up"], false);
    }
    assert_eq!(damage_counts(&s), (1, 1));
    read_everything(&s);
    assert_eq!(
        damage_counts(&s),
        (1, 1),
        "counted once, however often read"
    );
    assert_eq!(log_lines(&s, "failed their checksum"), 1, "logged once");
    assert!(s.sigterm().success());
    assert_verify_names(s.data_dir(), &seg);
    // The next start finds it again: the loss is never forgotten.
    s.start_again();
    let (records, tombstones, _) = read_everything(&s);
    assert_delivered(&records, (1..=13).filter(|&q| q != seq));
    assert_corrupt(&tombstones[0], seq, seq);
}

#[test]
fn a_damaged_first_record_is_a_corrupt_tombstone_and_the_rest_arrives() {
    record_damage_case(0);
}

#[test]
fn a_damaged_middle_record_stops_the_read_before_it_and_is_reported_next() {
    record_damage_case(4);
}

#[test]
fn a_damaged_last_sealed_record_is_reported_and_the_hot_records_follow() {
    record_damage_case(9);
}

/// Header, index or tag table damaged: the whole segment is one tombstone, from startup.
fn segment_damage_case(at: impl Fn(&Layout) -> usize) {
    let (mut s, seg) = sealed_and_stopped();
    flip(&seg, at(&Layout::of(&seg)));
    s.start_again();
    assert_eq!(damage_counts(&s), (10, 1), "counted at startup");
    let (records, tombstones, responses) = read_everything(&s);
    assert_delivered(&records, 11..=13);
    assert_eq!(tombstones.len(), 1);
    assert_corrupt(&tombstones[0], 1, 10);
    assert_eq!(
        responses.len(),
        1,
        "tombstone and the records after it in one response"
    );
    let d = s
        .post("/v0/topics/t/delete", &json!({ "match": "t1" }))
        .expect(200);
    assert_eq!(
        d["deleted"], 1,
        "tag deletes see only the intact hot records: {d}"
    );
    assert!(s.sigterm().success());
    assert_verify_names(s.data_dir(), &seg);
    s.start_again();
    let (records, tombstones, _) = read_everything(&s);
    assert_delivered(&records, [11, 12].into_iter());
    assert_corrupt(&tombstones[0], 1, 10);
}

#[test]
fn a_damaged_index_entry_makes_the_whole_segment_a_tombstone() {
    segment_damage_case(|_| 48 + 32 * 4 + 3);
}

#[test]
fn a_damaged_header_makes_the_whole_segment_a_tombstone() {
    segment_damage_case(|_| 13);
}

#[test]
fn a_damaged_tag_table_makes_the_whole_segment_a_tombstone() {
    segment_damage_case(|l| l.tags_start() + 2);
}

#[test]
fn a_damaged_footer_crc_serves_everything_and_only_verify_reports_it() {
    let (mut s, seg) = sealed_and_stopped();
    let len = std::fs::metadata(&seg).unwrap().len() as usize;
    flip(&seg, len - 8);
    s.start_again();
    let (records, tombstones, _) = read_everything(&s);
    assert_delivered(&records, 1..=13);
    assert!(tombstones.is_empty());
    assert_eq!(damage_counts(&s), (0, 0));
    assert!(s.sigterm().success());
    let (code, out) = verify(s.data_dir());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("footer crc mismatch"), "{out}");
}

#[test]
fn verify_exits_0_on_a_clean_data_dir_and_2_on_usage_errors() {
    let (s, _) = sealed_and_stopped();
    let (code, out) = verify(s.data_dir());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 segments (10 records)"), "{out}");
    assert!(out.contains("clean"), "{out}");
    let (code, out) = verify(&s.data_dir().join("no-such-dir"));
    assert_eq!(code, 2, "{out}");
    let mut cmd = command();
    cmd.arg("verify");
    let (status, _, err) = run_to_exit(cmd);
    assert_eq!(status.code(), Some(2), "{err}");
}
