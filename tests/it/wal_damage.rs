//! Media damage in the WAL, through the real binary: a byte flipped in bytes a completed
//! fdatasync once covered, or a WAL file missing from the sequence, makes the server refuse
//! to start, name the file and offset, and change nothing on disk; `--skip-wal-damage`
//! starts anyway, reports the lost seqs in-band and never issues a seq twice. `topics verify`
//! names the same file and offset, calls a torn tail a note, and never changes a file.

use crate::harness::{self, files_under, verify, wal, Server};
use serde_json::{json, Value};

/// Small WAL files: a killed server's current files keep their preallocation, which verify
/// and the next start read whole (at the default 64 MiB, seconds in a debug build).
const SMALL_WAL: Option<&str> = Some("[storage]\nwal_file_bytes = 65536\n");

/// An `fsync` topic written in `batches` acknowledged batches of 3 records, then killed.
fn killed_fsync_server(batches: usize, config: Option<&str>) -> Server {
    let mut s = Server::start_with(&[], config);
    s.create("t", json!({"durability": "fsync"}));
    for i in 0..batches {
        let recs: Vec<Value> = (0..3).map(|j| json!({"data": i * 3 + j})).collect();
        s.write("t", Value::Array(recs));
    }
    s.kill9();
    s
}

/// Start on the damaged dir; it must exit non-zero. Returns its stderr.
fn refused(s: &Server) -> String {
    let (status, _, stderr) = harness::run_to_exit(s.command());
    assert!(
        !status.success(),
        "started on damaged WAL; stderr: {stderr}"
    );
    assert!(stderr.contains("refusing to start"), "{stderr}");
    stderr
}

#[test]
fn a_flip_in_the_middle_of_the_newest_wal_file_refuses_and_changes_nothing() {
    let s = killed_fsync_server(30, None);
    let file = wal::busiest_file(s.data_dir());
    let mid = wal::appends(&file)[15];
    wal::flip_byte(&file, mid.offset + mid.len / 2);
    let before = files_under(s.data_dir());
    let err = refused(&s);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name), "names the file: {err}");
    assert!(
        err.contains(&format!("offset {}", mid.offset)),
        "names the offset: {err}"
    );
    assert!(err.contains("\"t\": seqs 46..=48"), "names the seqs: {err}");
    assert!(files_under(s.data_dir()) == before, "nothing is truncated");
}

#[test]
fn flips_at_every_kind_of_position_refuse() {
    // (what, offset within the frame) for the first, a middle and the last synced frame.
    let positions = [("length", 0usize), ("crc", 5), ("kind", 8), ("body", 20)];
    for pick in [0usize, 5, 9] {
        for (what, within) in positions {
            let s = killed_fsync_server(10, None);
            let file = wal::busiest_file(s.data_dir());
            let f = wal::appends(&file)[pick];
            wal::flip_byte(&file, f.offset + within);
            let err = refused(&s);
            assert!(err.contains("WAL damage"), "frame {pick}, {what}: {err}");
        }
    }
    let s = killed_fsync_server(2, None);
    wal::flip_byte(&wal::busiest_file(s.data_dir()), 3);
    assert!(refused(&s).contains("bad file header"));
}

#[test]
fn skipping_a_deleted_middle_wal_file_reports_its_seqs_as_damaged() {
    let mut s = killed_fsync_server(
        120,
        Some("[storage]\nwal_shards = 1\nwal_file_bytes = 4096\n"),
    );
    let files = wal::files(s.data_dir());
    assert!(files.len() >= 4, "{files:?}");
    let gone = &files[files.len() / 2];
    let first_gone = wal::appends(gone).len();
    assert!(first_gone > 0, "the deleted file held records");
    std::fs::remove_file(gone).unwrap();
    s.add_arg("--skip-wal-damage");
    s.start_again();
    let mut seqs = Vec::new();
    let mut tombstones = Vec::new();
    let mut from = 0;
    loop {
        let d = s.diff("t", json!({"from_seq": from, "limit": 1000}));
        if !d["tombstone"].is_null() {
            tombstones.push(d["tombstone"].clone());
        }
        seqs.extend(harness::seqs_of(&d));
        from = d["next_from_seq"].as_u64().unwrap();
        if d["caught_up"] == true {
            break;
        }
    }
    assert_eq!(tombstones.len(), 1, "{tombstones:?}");
    let (a, b) = (
        tombstones[0]["gap_from"].as_u64().unwrap(),
        tombstones[0]["gap_to"].as_u64().unwrap(),
    );
    assert_eq!(tombstones[0]["reason"], "damaged");
    let missing: Vec<u64> = (1..=360).filter(|q| !seqs.contains(q)).collect();
    assert_eq!(
        missing,
        (a..=b).collect::<Vec<_>>(),
        "exactly the deleted file's seqs"
    );
    assert_eq!(seqs.last(), Some(&360), "records after the gap are kept");
}

#[test]
fn a_deleted_middle_wal_file_refuses_to_start() {
    let s = killed_fsync_server(
        120,
        Some("[storage]\nwal_shards = 1\nwal_file_bytes = 4096\n"),
    );
    let files = wal::files(s.data_dir());
    assert!(files.len() >= 4, "{files:?}");
    let gone = &files[files.len() / 2];
    std::fs::remove_file(gone).unwrap();
    let err = refused(&s);
    assert!(err.contains("missing"), "{err}");
    assert!(
        err.contains(&*gone.file_name().unwrap().to_string_lossy()),
        "{err}"
    );
}

#[test]
fn skipping_damage_reports_the_lost_seqs_and_never_reuses_one() {
    let mut s = killed_fsync_server(30, None);
    let file = wal::busiest_file(s.data_dir());
    let mid = wal::appends(&file)[15];
    wal::flip_byte(&file, mid.offset + mid.len / 2);
    s.add_arg("--skip-wal-damage");
    s.start_again();
    let first = s.diff("t", json!({"from_seq": 0, "limit": 1000}));
    assert_eq!(harness::seqs_of(&first), (1..=45).collect::<Vec<_>>());
    let next = s.diff("t", json!({"from_seq": 45, "limit": 1000}));
    let t = &next["tombstone"];
    assert_eq!(
        (t["gap_from"].as_u64(), t["reason"].as_str()),
        (Some(46), Some("damaged")),
        "{next}"
    );
    assert!(t["gap_to"].as_u64().unwrap() >= 48, "{next}");
    let after = harness::seqs_of(&next);
    assert_eq!(
        after.first(),
        Some(&49),
        "records after the damage are kept: {next}"
    );
    let w = s.write("t", json!([{"data": "new"}]));
    assert!(
        w["first_seq"].as_u64().unwrap() > 90,
        "no seq reissued: {w}"
    );
}

#[test]
fn verify_names_the_file_and_offset_of_a_flip_in_synced_wal_bytes_and_changes_nothing() {
    for pick in [0usize, 15, 29] {
        let s = killed_fsync_server(30, SMALL_WAL);
        let (code, out) = verify(s.data_dir());
        assert_eq!(code, 0, "clean before the flip: {out}");
        let file = wal::busiest_file(s.data_dir());
        let f = wal::appends(&file)[pick];
        wal::flip_byte(&file, f.offset + f.len / 2);
        let before = files_under(s.data_dir());
        let (code, out) = verify(s.data_dir());
        assert_eq!(code, 1, "Append frame {pick}: {out}");
        let at = format!("{}: offset {}: ", file.display(), f.offset);
        assert!(out.contains(&at), "Append frame {pick}: names {at}: {out}");
        assert!(files_under(s.data_dir()) == before, "verify changed files");
    }
}

#[test]
fn verify_calls_a_torn_wal_tail_a_note_exits_0_and_changes_nothing() {
    // Cut inside the last Append frame's header, and inside its body.
    for within in [5usize, 40] {
        let mut s = killed_fsync_server(10, SMALL_WAL);
        let file = wal::busiest_file(s.data_dir());
        let last = *wal::appends(&file).last().unwrap();
        assert!(last.len > within + 8, "{last:?}");
        wal::cut(&file, last.offset + within);
        let before = files_under(s.data_dir());
        let (code, out) = verify(s.data_dir());
        assert_eq!(code, 0, "cut {within} bytes in: {out}");
        let note = format!("{}: offset {}: note: ", file.display(), last.offset);
        assert!(out.contains(&note), "names {note}: {out}");
        assert!(
            out.contains("torn tail") && out.contains(": clean"),
            "{out}"
        );
        assert!(files_under(s.data_dir()) == before, "verify cut the tail");
        // The server agrees: it cuts the same tail and keeps every batch before it.
        s.start_again();
        let seqs = harness::seqs_of(&s.diff("t", json!({ "from_seq": 0, "limit": 1000 })));
        assert_eq!(seqs, (1..=27).collect::<Vec<u64>>());
    }
}
