use super::*;
use crate::model::record::Record;
use crate::storage::frame::{self, FileHeader, SegmentRef, FILE_HEADER_LEN};
use crate::storage::fs::RealFs;
use crate::storage::wal::wal_file_name;
use std::sync::Arc;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("topics-verify-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A format-1 WAL file (no sync marks) of `frames` Reserve frames under `data_dir/wal`.
fn wal_file(data_dir: &Path, boot: u32, index: u32, frames: usize) -> PathBuf {
    let dir = crate::storage::wal_dir(data_dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = FileHeader { shard: 0, boot }.encode().to_vec();
    out[8..10].copy_from_slice(&1u16.to_le_bytes());
    for c in 0..frames {
        frame::encode_reserve(&mut out, 1, c as u64);
    }
    let p = dir.join(wal_file_name(boot, 0, index));
    std::fs::write(&p, out).unwrap();
    p
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

/// One frame of `encode_reserve` is 8 (header) + 1 + 8 + 8 bytes.
const RESERVE_FRAME: usize = 25;

#[test]
fn wal_damage_before_the_tail_is_damage_and_a_torn_tail_a_note() {
    let d = tmp("wal");
    let first = wal_file(&d, 1, 0, 3);
    let last = wal_file(&d, 1, 1, 3);
    assert!(verify_wal(&d).is_empty(), "clean");
    flip(&last, FILE_HEADER_LEN + 2 * RESERVE_FRAME + 12);
    let found = verify_wal(&d);
    let at = |p: &Problem| (p.file.clone(), p.offset, p.severity);
    assert_eq!(
        found.iter().map(at).collect::<Vec<_>>(),
        [(
            last.clone(),
            (FILE_HEADER_LEN + 2 * RESERVE_FRAME) as u64,
            Severity::Note
        )],
        "a torn tail, named where the next start cuts it"
    );
    let before = std::fs::read(&last).unwrap();
    let torn = crate::storage::wal_dir(&d).join(wal_file_name(2, 0, 0));
    std::fs::write(&torn, [b'T'; 5]).unwrap();
    let found = verify_wal(&d);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        at(&found[1]),
        (torn.clone(), 0, Severity::Note),
        "torn at creation"
    );
    std::fs::remove_file(&torn).unwrap();
    flip(&first, FILE_HEADER_LEN + RESERVE_FRAME + 12);
    let found = verify_wal(&d);
    assert_eq!(
        found.iter().map(at).collect::<Vec<_>>(),
        [(
            first,
            (FILE_HEADER_LEN + RESERVE_FRAME) as u64,
            Severity::Damage
        )]
    );
    assert_eq!(
        std::fs::read(&last).unwrap(),
        before,
        "verify changes nothing"
    );
}

fn records(n: u64) -> Vec<Record> {
    (1..=n)
        .map(|seq| Record {
            seq,
            ts: 1,
            node: None,
            tag: Some(Arc::from("t")),
            data: Bytes::from_static(b"12"),
            meta: None,
            hops: 0,
        })
        .collect()
}

#[test]
fn segments_report_each_damaged_record_and_a_damaged_index() {
    let d = tmp("seg");
    let dir = segment::dir(&d);
    let a = segment::write(&RealFs, &dir, 1, 1, &records(3)).unwrap();
    assert_eq!(verify_segments(&d).problems, vec![]);
    assert_eq!(
        (verify_segments(&d).files, verify_segments(&d).items),
        (1, 3)
    );
    let len = std::fs::read(&a).unwrap().len();
    flip(&a, len - 8 - 30); // in the tag table
    let whats: Vec<_> = verify_segments(&d)
        .problems
        .into_iter()
        .map(|p| p.what)
        .collect();
    assert_eq!(whats, ["tag table crc mismatch", "footer crc mismatch"]);
    flip(&a, len - 8 - 30);
    flip(&a, 48 + 3 * 32 + 5); // record 1's data
    let whats: Vec<_> = verify_segments(&d)
        .problems
        .into_iter()
        .map(|p| p.what)
        .collect();
    assert_eq!(
        whats,
        ["footer crc mismatch", "record crc mismatch (record seq 1)"]
    );
}

fn write_snapshot(d: &Path, n: u64, segments: &[SegmentRef]) -> PathBuf {
    let barrier = snapshot::Barrier {
        boot: 1,
        start: vec![0],
    };
    snapshot::write(&RealFs, &snapshot::dir(d), n, &barrier, (2, 1), |w| {
        let mut b = Vec::new();
        for s in segments {
            frame::encode_segment(&mut b, 1, s);
        }
        w.write_all(&b)
    })
    .unwrap()
}

#[test]
fn snapshots_report_bad_frames_no_valid_one_and_missing_segments() {
    let d = tmp("snap");
    let seg = SegmentRef {
        first_seq: 1,
        front_seq: 1,
        live_count: 3,
        live_bytes: 6,
        gen: 1,
        deleted: vec![],
    };
    let old = write_snapshot(&d, 1, &[]);
    let new = write_snapshot(&d, 2, std::slice::from_ref(&seg));
    let (c, newest) = verify_snapshots(&d);
    assert_eq!(newest, Some(2));
    assert_eq!(c.problems.len(), 1);
    assert!(c.problems[0].what.contains("missing"), "{:?}", c.problems);
    segment::write(&RealFs, &segment::dir(&d), 1, 1, &records(3)).unwrap();
    assert_eq!(verify_snapshots(&d).0.problems, vec![]);
    flip(&new, 40);
    let (c, newest) = verify_snapshots(&d);
    assert_eq!(
        (newest, c.problems.len(), c.problems[0].offset),
        (Some(1), 1, 32)
    );
    flip(&old, 3);
    let (c, newest) = verify_snapshots(&d);
    assert_eq!(newest, None);
    let wal = verify_wal(&d);
    let severities: Vec<_> = wal.iter().map(|p| p.severity).collect();
    assert_eq!(
        severities,
        [Severity::Note],
        "counted once, not again here: {wal:?}"
    );
    assert!(c
        .problems
        .last()
        .unwrap()
        .what
        .contains("no valid snapshot"));
}

#[test]
fn a_version_1_segment_is_checked_as_far_as_it_can_be_and_noted() {
    let d = tmp("v1");
    let dir = segment::dir(&d);
    std::fs::create_dir_all(&dir).unwrap();
    let v1 = include_bytes!("../segment/fixtures/v1.seg");
    std::fs::write(dir.join(segment::file_name(5, 3, 2)), v1).unwrap();
    let c = verify_segments(&d);
    assert_eq!((c.files, c.items), (1, 3));
    let severities: Vec<_> = c.problems.iter().map(|p| p.severity).collect();
    assert_eq!(severities, [Severity::Note]);
}
