//! Damaged snapshots, through the real binary. With two snapshots on disk, one byte of the
//! newest is flipped at each kind of position, or the file is cut short: the server warns
//! naming the skipped file, starts from the previous snapshot plus its WAL tail, holds every
//! acknowledged `fsync` record with its data and issues no seq twice. With both snapshots
//! damaged it refuses to start and changes nothing. `topics verify` exits 1 naming the
//! damaged file each time, changes nothing either, and exits 0 on a clean directory.

use crate::harness::{self, files_under, verify, wal, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KIND_RECORDS: u8 = 8;
const KIND_SNAPSHOT_END: u8 = 10;

/// A checkpoint every few KiB of WAL (as in `checkpoints.rs`), and small WAL files: a killed
/// server's current files keep their preallocation, which verify and the next start read
/// whole (at the default 64 MiB, seconds in a debug build).
const FAST: &str = "[storage]\nwal_file_bytes = 65536\nsnapshot_wal_bytes = 4096\nsnapshot_check_interval_ms = 20\n";

/// Batch `i`: three records with nested data, a tag and meta, so "identical" covers them all.
fn batch(i: usize) -> Value {
    let recs: Vec<Value> = (0..3)
        .map(|j| json!({"data": {"batch": i, "j": j, "s": "é\"\\"}, "tag": format!("b{i}"), "meta": {"j": j}}))
        .collect();
    json!({ "records": recs })
}

/// Write batches `range` to the `fsync` topic `t`; returns the acknowledged seqs.
fn write_batches(s: &Server, range: std::ops::Range<usize>) -> Vec<u64> {
    range
        .flat_map(|i| harness::written_seqs(&s.write_body("t", batch(i))))
        .collect()
}

/// The `.snap` files of a data dir, oldest first.
fn snapshots(data_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data_dir.join("snapshots"))
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|x| x == "snap"));
    out.sort();
    out
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The number in a snapshot file's name.
fn number_of(path: &Path) -> u64 {
    name_of(path).trim_end_matches(".snap").parse().unwrap()
}

/// What the tests acknowledged: every record as read back before the stop, and their seqs
/// as the writes returned them.
struct Acked {
    records: Vec<Value>,
    seqs: Vec<u64>,
}

impl Acked {
    fn read(s: &Server, seqs: Vec<u64>) -> Acked {
        let records = s.read_all("t");
        assert_eq!(harness::seqs_of(&json!({ "records": records })), seqs);
        Acked { records, seqs }
    }

    fn max_seq(&self) -> u64 {
        *self.seqs.last().unwrap()
    }
}

/// Two boots of an `fsync` topic, each ended by SIGTERM. A clean stop writes a final
/// snapshot, so snapshot 1 holds boot 1's records and snapshot 2 (the newest) all of them;
/// boot 2's records exist besides only in its WAL files, the tail after snapshot 1's
/// barrier. Damaging snapshot 2 therefore leaves a fallback that must replay a whole boot.
fn two_clean_stops() -> (Server, Acked) {
    let mut s = Server::start();
    s.create("t", json!({ "durability": "fsync" }));
    let mut seqs = write_batches(&s, 0..4);
    assert!(s.sigterm().success());
    s.start_again();
    seqs.extend(write_batches(&s, 4..10));
    let acked = Acked::read(&s, seqs);
    assert!(s.sigterm().success());
    let names: Vec<String> = snapshots(s.data_dir()).iter().map(|p| name_of(p)).collect();
    assert_eq!(
        names,
        ["00000000000000000001.snap", "00000000000000000002.snap"]
    );
    (s, acked)
}

/// Offsets in a snapshot file (docs/STORAGE.md, "Snapshots"): a header of 24 bytes, one
/// u32 per WAL shard and a crc32, then frames of `len u32, crc u32, body`.
struct Layout {
    bytes: Vec<u8>,
}

impl Layout {
    fn of(path: &Path) -> Layout {
        Layout {
            bytes: std::fs::read(path).unwrap(),
        }
    }

    fn shards(&self) -> usize {
        u16::from_le_bytes([self.bytes[10], self.bytes[11]]) as usize
    }

    /// Where the header crc starts.
    fn header_crc(&self) -> usize {
        24 + 4 * self.shards()
    }

    fn frames(&self) -> Vec<wal::FrameAt> {
        let frames = wal::frames_in(&self.bytes, self.header_crc() + 4);
        let end = frames.last().expect("frames");
        assert_eq!(end.offset + end.len, self.bytes.len(), "walked every frame");
        assert_eq!(end.kind, KIND_SNAPSHOT_END);
        frames
    }

    /// The frame holding the records: neither the first (Config) nor the last (SnapshotEnd).
    fn records_frame(&self) -> wal::FrameAt {
        let frames = self.frames();
        let i = frames
            .iter()
            .position(|f| f.kind == KIND_RECORDS)
            .expect("a Records frame");
        assert!(0 < i && i + 1 < frames.len(), "a middle frame: {frames:?}");
        frames[i]
    }
}

/// How a snapshot file is damaged.
enum Damage {
    /// XOR one byte at the offset the layout gives.
    Flip(fn(&Layout) -> usize),
    /// Keep only the first bytes (the length the layout gives).
    Cut(fn(&Layout) -> usize),
}

fn damage(path: &Path, how: &Damage) {
    let layout = Layout::of(path);
    match how {
        Damage::Flip(at) => wal::flip_byte(path, at(&layout)),
        Damage::Cut(len) => std::fs::write(path, &layout.bytes[..len(&layout)]).unwrap(),
    }
}

/// `topics verify` on a damaged dir: exit 1, every damaged file named, nothing changed.
fn assert_verify_names(data_dir: &Path, damaged: &[&Path]) -> String {
    let before = files_under(data_dir);
    let (code, out) = verify(data_dir);
    assert_eq!(code, 1, "{out}");
    for file in damaged {
        assert!(
            out.contains(&name_of(file)),
            "names {}: {out}",
            file.display()
        );
    }
    assert!(files_under(data_dir) == before, "verify changed files");
    out
}

/// Stderr lines (of every start so far) that contain `needle`.
fn log_lines(s: &Server, needle: &str) -> Vec<String> {
    s.logs()
        .into_iter()
        .filter(|l| l.contains(needle))
        .collect()
}

/// Start on a dir whose newest snapshot is damaged and check the fallback: a WARN naming
/// the file, recovery from the previous snapshot, every acknowledged record back as it
/// was, the next seq after the highest acknowledged one.
fn assert_falls_back(s: &mut Server, acked: &Acked, newest: &Path, previous: u64) {
    s.start_again();
    let warned = log_lines(s, &name_of(newest));
    assert!(
        warned.iter().any(|l| l.contains("WARN")),
        "a WARN names the skipped snapshot: {:?}",
        s.logs()
    );
    let replay = log_lines(s, "WAL replay complete");
    let replay = replay.last().expect("replay log line");
    assert!(
        replay.contains(&format!("snapshot={previous} ")),
        "started from snapshot {previous}: {replay}"
    );
    assert_eq!(s.read_all("t"), acked.records, "every acknowledged record");
    let w = s.write("t", json!([{ "data": "next" }]));
    assert_eq!(
        w["first_seq"].as_u64(),
        Some(acked.max_seq() + 1),
        "the next seq follows the highest acknowledged one: {w}"
    );
}

/// The newest of two snapshots damaged after a clean stop. SIGTERM, because its final
/// snapshot is the one a clean restart relies on alone (it replays no WAL frames); falling
/// back from it must bring the whole last boot back out of the WAL.
fn newest_damaged_case(how: Damage) {
    let (mut s, acked) = two_clean_stops();
    let newest = snapshots(s.data_dir()).pop().unwrap();
    let clean = verify(s.data_dir());
    assert_eq!(clean.0, 0, "verify passes the clean dir: {}", clean.1);
    damage(&newest, &how);
    let out = assert_verify_names(s.data_dir(), &[&newest]);
    assert!(out.contains("newest valid: 1"), "{out}");
    assert_falls_back(&mut s, &acked, &newest, 1);
    // The next checkpoint takes the damaged snapshot's number and replaces it.
    assert!(s.sigterm().success());
    let (code, out) = verify(s.data_dir());
    assert_eq!(code, 0, "clean after the next checkpoint: {out}");
}

#[test]
fn a_flipped_magic_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Flip(|_| 3));
}

#[test]
fn a_flipped_version_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Flip(|_| 8));
}

#[test]
fn a_flipped_snapshot_number_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Flip(|_| 12));
}

#[test]
fn a_flipped_barrier_boot_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Flip(|_| 20));
}

#[test]
fn a_flipped_barrier_file_index_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Flip(|l| l.header_crc() - 4));
}

#[test]
fn a_flipped_header_crc_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Flip(|l| l.header_crc() + 1));
}

#[test]
fn a_flipped_first_frame_length_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Flip(|l| l.frames()[0].offset));
}

#[test]
fn a_flipped_middle_frame_crc_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Flip(|l| l.records_frame().offset + 5));
}

#[test]
fn a_flipped_byte_of_record_data_falls_back_to_the_previous_snapshot() {
    // Two bytes before the frame's end: inside the last record's meta JSON.
    newest_damaged_case(Damage::Flip(|l| {
        let f = l.records_frame();
        f.offset + f.len - 2
    }));
}

#[test]
fn a_flipped_end_frame_falls_back_to_the_previous_snapshot() {
    // The SnapshotEnd body: kind, topic id, then next_topic_id.
    newest_damaged_case(Damage::Flip(|l| l.frames().last().unwrap().offset + 8 + 9));
}

#[test]
fn a_snapshot_cut_inside_a_frame_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Cut(|l| {
        let f = l.records_frame();
        f.offset + f.len / 2
    }));
}

#[test]
fn a_snapshot_without_its_end_frame_falls_back_to_the_previous_snapshot() {
    newest_damaged_case(Damage::Cut(|l| l.frames().last().unwrap().offset));
}

/// Periodic checkpoints, then kill -9: the newest snapshot is a periodic one, WAL files
/// before the older kept one are gone, and the last boot ended without a final snapshot or
/// its Stop frames. kill -9, because a crash is when a torn snapshot would be found, and the
/// fallback must replay everything after the previous barrier, the crashed boot included.
#[test]
fn a_torn_newest_periodic_snapshot_after_kill9_falls_back_to_the_previous_one() {
    let mut s = Server::start_with(&[], Some(FAST));
    s.create("t", json!({ "durability": "fsync" }));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seqs = Vec::new();
    for i in 0.. {
        let numbers: Vec<u64> = snapshots(s.data_dir())
            .iter()
            .map(|p| number_of(p))
            .collect();
        if numbers.len() >= 2 && numbers.last() >= Some(&4) {
            break;
        }
        assert!(Instant::now() < deadline, "no periodic checkpoints");
        seqs.extend(write_batches(&s, i..i + 1));
        std::thread::sleep(Duration::from_millis(10));
    }
    seqs.extend(write_batches(&s, 1000..1002));
    let acked = Acked::read(&s, seqs);
    s.kill9();
    let first_files = wal::files(s.data_dir())
        .into_iter()
        .filter(|p| name_of(p).ends_with("-000000.wal"))
        .count();
    assert_eq!(first_files, 0, "checkpoints deleted the oldest WAL files");
    let mut all = snapshots(s.data_dir());
    let newest = all.pop().unwrap();
    let previous = number_of(all.last().unwrap());
    damage(&newest, &Damage::Cut(|l| l.bytes.len() * 2 / 3));
    assert_verify_names(s.data_dir(), &[&newest]);
    assert_falls_back(&mut s, &acked, &newest, previous);
}

/// Both snapshots damaged: the WAL before them is gone, so any start would lose state.
#[test]
fn with_both_snapshots_damaged_the_server_refuses_to_start_and_changes_nothing() {
    let (s, _) = two_clean_stops();
    let both = snapshots(s.data_dir());
    let middle = Damage::Flip(|l| {
        let f = l.records_frame();
        f.offset + f.len / 2
    });
    for snap in &both {
        damage(snap, &middle);
    }
    let before = files_under(s.data_dir());
    let (status, _, stderr) = harness::run_to_exit(s.command());
    assert!(
        !status.success(),
        "started without a valid snapshot: {stderr}"
    );
    assert!(stderr.contains("no valid snapshot"), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    for snap in &both {
        assert!(stderr.contains(&name_of(snap)), "names {snap:?}: {stderr}");
    }
    assert!(
        files_under(s.data_dir()) == before,
        "the refusal changed files"
    );
    let out = assert_verify_names(s.data_dir(), &[&both[0], &both[1]]);
    assert!(
        out.contains("no valid snapshot: the server refuses"),
        "{out}"
    );
    assert!(
        out.contains("note: not checked: no valid snapshot"),
        "{out}"
    );
    assert!(out.contains("newest valid: none"), "{out}");
    assert!(
        out.contains(": 3 problems"),
        "each damaged file and the verdict: {out}"
    );
}
