//! Replay rules over files the real WAL writer produced (sync marks, preallocation) and over
//! hand-made format-1 files: what is cut as a torn tail, what is refused as damage, and what
//! skipping damage reports.

use super::*;
use crate::storage::frame::{self, FileHeader, Frame, FILE_HEADER_LEN};
use crate::storage::fs::RealFs;
use crate::storage::health::StorageHealth;
use crate::storage::wal::{wal_file_name, Commit, Wal, WalOptions};
use std::sync::Arc;
use std::time::Duration;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("topics-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A format-1 file (no sync marks, no preallocation) holding Reserve frames.
fn v1_file(dir: &Path, boot: u32, shard: usize, index: u32, frames: &[u64]) -> PathBuf {
    let mut out = FileHeader {
        shard: shard as u16,
        boot,
    }
    .encode()
    .to_vec();
    out[8..10].copy_from_slice(&1u16.to_le_bytes());
    for &c in frames {
        frame::encode_reserve(&mut out, 1, c);
    }
    let p = dir.join(wal_file_name(boot, shard, index));
    std::fs::write(&p, out).unwrap();
    p
}

/// Run the real writer for one boot with one shard: each entry of `groups` is written (and,
/// with `Commit::Wait`, synced) as one group of Reserve frames; `file_bytes` small so files
/// rotate. Returns the shard's files in order.
fn boot_with(dir: &Path, boot: u32, groups: &[(&[u64], Commit)], file_bytes: u64) -> Vec<PathBuf> {
    let opts = WalOptions {
        dir: dir.to_path_buf(),
        shards: 1,
        boot,
        queue_frames: 1024,
        queue_bytes: 64 << 20,
        file_bytes,
        sync_interval: Duration::from_secs(3600),
        fs: Arc::new(RealFs),
        prev_boot: boot.saturating_sub(1),
    };
    let wal = Wal::start(opts, StorageHealth::new()).unwrap();
    for (ceilings, commit) in groups {
        let mut waits = Vec::new();
        for &c in *ceilings {
            let mut buf = Vec::new();
            frame::encode_reserve(&mut buf, 1, c);
            waits.extend(wal.submit(0, buf, *commit).unwrap());
        }
        for w in waits {
            w.blocking_recv().unwrap().unwrap();
        }
        // Let a group nobody waits for reach the file before the next one.
        std::thread::sleep(Duration::from_millis(5));
    }
    std::mem::forget(wal); // a kill -9: no Stop frame, no final sync
    std::thread::sleep(Duration::from_millis(20));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(&format!("{boot:010}-")))
        .collect();
    files.sort();
    files
}

const SIX_GROUPS: &[(&[u64], Commit)] = &[
    (&[1], Commit::Wait),
    (&[2], Commit::Wait),
    (&[3], Commit::Wait),
    (&[4], Commit::Wait),
    (&[5], Commit::Wait),
    (&[6], Commit::Wait),
];

struct Seen {
    ceilings: Vec<u64>,
    boot_ends: Vec<(u32, bool)>,
    gaps: Vec<u64>,
    /// Where each discontinuity came: (ceilings replayed before it, its shard).
    gap_at: Vec<(usize, Option<(usize, usize)>)>,
}

fn replay_dir(dir: &Path, skip_damage: bool) -> Result<(Seen, ReplaySummary), ReplayError> {
    let mut seen = Seen {
        ceilings: Vec::new(),
        boot_ends: Vec::new(),
        gaps: Vec::new(),
        gap_at: Vec::new(),
    };
    let opts = ReplayOptions { skip_damage };
    let s = replay(
        &RealFs,
        dir,
        None,
        &ReplayProgress::default(),
        opts,
        |r| match r {
            Replayed::Frame(Frame::Reserve { ceiling, .. }) => seen.ceilings.push(ceiling),
            Replayed::BootEnd { boot, clean } => seen.boot_ends.push((boot, clean)),
            Replayed::Discontinuity { max_records, shard } => {
                seen.gaps.push(max_records);
                seen.gap_at.push((seen.ceilings.len(), shard));
            }
            _ => {}
        },
    )?;
    Ok((seen, s))
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

/// Offset of the `n`th Reserve frame in a file.
fn reserve_offset(path: &Path, n: usize) -> usize {
    let buf = bytes::Bytes::from(std::fs::read(path).unwrap());
    let mut at = FILE_HEADER_LEN;
    let mut k = 0;
    while let Ok((f, next)) = frame::decode(&buf, at) {
        if matches!(f, Frame::Reserve { .. }) {
            if k == n {
                return at;
            }
            k += 1;
        }
        at = next;
    }
    panic!("no reserve frame {n}");
}

fn reserves_in(path: &Path) -> usize {
    let buf = bytes::Bytes::from(std::fs::read(path).unwrap());
    let mut at = FILE_HEADER_LEN;
    let mut n = 0;
    while let Ok((f, next)) = frame::decode(&buf, at) {
        n += usize::from(matches!(f, Frame::Reserve { .. }));
        at = next;
    }
    n
}

fn damaged(r: Result<(Seen, ReplaySummary), ReplayError>) -> Damage {
    match r {
        Err(ReplayError::Damaged(d)) => d,
        Err(e) => panic!("expected damage, got {e}"),
        Ok((s, _)) => panic!("expected damage, replayed {:?}", s.ceilings),
    }
}

#[test]
fn replays_boots_in_order_and_picks_next_boot() {
    let d = tmp("order");
    v1_file(&d, 2, 0, 0, &[3, 4]);
    v1_file(&d, 1, 0, 0, &[1, 2]);
    let (seen, s) = replay_dir(&d, false).unwrap();
    assert_eq!(seen.ceilings, vec![1, 2, 3, 4]);
    assert_eq!(s.next_boot, 3);
    assert_eq!(seen.boot_ends, vec![(1, false), (2, false)]);
}

#[test]
fn preallocated_files_end_at_their_zero_tail() {
    let d = tmp("zeros");
    let files = boot_with(
        &d,
        1,
        &[(&[1, 2], Commit::Wait), (&[3], Commit::Wait)],
        64 << 10,
    );
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().len(),
        64 << 10,
        "preallocated"
    );
    let (seen, s) = replay_dir(&d, false).unwrap();
    assert_eq!(seen.ceilings, vec![1, 2, 3]);
    assert_eq!(
        s.truncated_bytes, 0,
        "a zero tail is the end, not a torn frame"
    );
}

#[test]
fn a_byte_flip_before_the_synced_frontier_refuses_to_start() {
    let d = tmp("synced");
    let groups: &[(&[u64], Commit)] = &[
        (&[1], Commit::Wait),
        (&[2], Commit::Wait),
        (&[3], Commit::Wait),
    ];
    let files = boot_with(&d, 1, groups, 64 << 10);
    let at = reserve_offset(&files[0], 1);
    flip(&files[0], at + 12);
    let before = std::fs::read(&files[0]).unwrap();
    let dmg = damaged(replay_dir(&d, false));
    assert_eq!(dmg.offset as usize, at);
    assert_eq!(dmg.file, files[0]);
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        before,
        "nothing is cut away"
    );
}

#[test]
fn a_byte_flip_after_the_last_sync_is_a_torn_tail() {
    let d = tmp("unsynced");
    // The last group is never synced: it lies past the last sync mark.
    let groups: &[(&[u64], Commit)] = &[(&[1], Commit::Wait), (&[2, 3], Commit::Lazy)];
    let files = boot_with(&d, 1, groups, 64 << 10);
    flip(&files[0], reserve_offset(&files[0], 2) + 12);
    let (seen, s) = replay_dir(&d, false).unwrap();
    assert_eq!(seen.ceilings, vec![1, 2]);
    assert!(s.truncated_bytes > 0);
}

#[test]
fn torn_tail_is_cut_at_every_cut_point_of_unsynced_bytes() {
    let d = tmp("torn");
    let p = v1_file(&d, 1, 0, 0, &[10, 20, 30]);
    let full = std::fs::read(&p).unwrap();
    let frame_len = (full.len() - FILE_HEADER_LEN) / 3;
    for cut in 1..frame_len {
        std::fs::write(&p, &full[..full.len() - cut]).unwrap();
        let (seen, s) = replay_dir(&d, false).unwrap();
        assert_eq!(seen.ceilings, vec![10, 20], "cut {cut}");
        assert_eq!(s.truncated_bytes as usize, frame_len - cut);
    }
}

#[test]
fn damage_in_a_closed_file_refuses_to_start() {
    let d = tmp("closed");
    let p = v1_file(&d, 1, 0, 0, &[1, 2]);
    v1_file(&d, 1, 0, 1, &[3]);
    let len = std::fs::read(&p).unwrap().len();
    flip(&p, len - 1);
    assert!(damaged(replay_dir(&d, false)).what.contains("synced whole"));
}

#[test]
fn a_closed_file_cut_short_refuses_to_start() {
    let d = tmp("cutshort");
    // Tiny files rotate every other group, so the first files are closed.
    let files = boot_with(&d, 1, SIX_GROUPS, 160);
    assert!(files.len() >= 3, "{files:?}");
    let first = &files[1];
    // Zero everything from the first Reserve frame on: the end looks like a zero tail.
    let at = reserve_offset(first, 0);
    let mut b = std::fs::read(first).unwrap();
    b[at..].fill(0);
    std::fs::write(first, b).unwrap();
    assert!(damaged(replay_dir(&d, false)).what.contains("closed"));
}

#[test]
fn a_missing_middle_file_refuses_to_start() {
    let d = tmp("missing");
    let files = boot_with(&d, 1, SIX_GROUPS, 160);
    assert!(files.len() >= 3, "{files:?}");
    std::fs::remove_file(&files[1]).unwrap();
    let dmg = damaged(replay_dir(&d, false));
    assert!(dmg.what.contains("missing"), "{}", dmg.what);
}

#[test]
fn a_missing_boot_refuses_to_start() {
    let d = tmp("missingboot");
    boot_with(&d, 1, &[(&[1], Commit::Wait)], 64 << 10);
    let second = boot_with(&d, 2, &[(&[2], Commit::Wait)], 64 << 10);
    boot_with(&d, 3, &[(&[3], Commit::Wait)], 64 << 10);
    for f in second {
        std::fs::remove_file(f).unwrap();
    }
    let dmg = damaged(replay_dir(&d, false));
    assert!(dmg.what.contains("boot 2"), "{}", dmg.what);
}

#[test]
fn skipping_damage_resumes_after_it_and_reports_the_gap() {
    let d = tmp("skip");
    let groups: &[(&[u64], Commit)] = &[
        (&[1], Commit::Wait),
        (&[2], Commit::Wait),
        (&[3], Commit::Wait),
    ];
    let files = boot_with(&d, 1, groups, 64 << 10);
    flip(&files[0], reserve_offset(&files[0], 1) + 12);
    let (seen, s) = replay_dir(&d, true).unwrap();
    assert_eq!(
        seen.ceilings,
        vec![1, 3],
        "only the damaged frame is skipped"
    );
    assert_eq!(seen.gaps.len(), 1);
    assert_eq!(s.skipped_damage, 1);
}

#[test]
fn each_boot_may_end_torn() {
    let d = tmp("boots");
    let p = v1_file(&d, 1, 0, 0, &[1, 2]);
    v1_file(&d, 2, 0, 0, &[3]);
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len - 3).unwrap();
    let (seen, _) = replay_dir(&d, false).unwrap();
    assert_eq!(
        seen.ceilings,
        vec![1, 3],
        "boot 1 crashed mid-frame; boot 2 is intact"
    );
}

#[test]
fn file_torn_at_creation_is_removed() {
    let d = tmp("hdr");
    v1_file(&d, 1, 0, 0, &[1]);
    let short = d.join(wal_file_name(2, 0, 0));
    std::fs::write(&short, b"TOPIC").unwrap();
    // Preallocated but the header never landed: all zeros.
    let zeros = d.join(wal_file_name(2, 1, 0));
    std::fs::write(&zeros, vec![0u8; 4096]).unwrap();
    let (seen, s) = replay_dir(&d, false).unwrap();
    assert_eq!(seen.ceilings, vec![1]);
    assert!(!short.exists() && !zeros.exists());
    assert_eq!(s.next_boot, 3, "the removed file's boot is still consumed");
}

#[test]
fn a_clean_stop_marks_the_boot_clean() {
    let d = tmp("clean");
    let opts = WalOptions {
        dir: d.clone(),
        shards: 2,
        boot: 1,
        queue_frames: 16,
        queue_bytes: 1 << 20,
        file_bytes: 64 << 10,
        sync_interval: Duration::from_millis(5),
        fs: Arc::new(RealFs),
        prev_boot: 0,
    };
    let wal = Wal::start(opts, StorageHealth::new()).unwrap();
    assert!(wal.shutdown(), "nothing was left unwritten");
    boot_with(&d, 2, &[(&[1], Commit::Wait)], 64 << 10);
    let (seen, _) = replay_dir(&d, false).unwrap();
    assert_eq!(seen.boot_ends, vec![(1, true), (2, false)]);
}

#[test]
fn files_not_named_like_ours_are_never_replayed_or_removed() {
    let d = tmp("foreign");
    v1_file(&d, 1, 0, 0, &[1]);
    let foreign = [
        "1-0-0.wal",
        "9-0-0.wal",
        "0000000009-00-00000.wal",
        "foo.bak",
    ];
    for name in foreign {
        std::fs::write(d.join(name), b"TOPIC").unwrap();
    }
    let (seen, s) = replay_dir(&d, false).unwrap();
    assert_eq!((seen.ceilings, s.next_boot), (vec![1], 2));
    let everything = Barrier {
        boot: 99,
        start: vec![0],
    };
    assert_eq!(remove_before(&RealFs, &d, &everything), Ok(1));
    for name in foreign {
        assert!(d.join(name).exists(), "{name} was removed");
    }
}

#[test]
fn skipping_a_missing_file_reports_a_discontinuity_where_it_was() {
    let d = tmp("skipmissing");
    let files = boot_with(&d, 1, SIX_GROUPS, 160);
    let in_first = reserves_in(&files[0]);
    let in_second = reserves_in(&files[1]);
    assert!(in_second > 0, "the removed file held frames");
    std::fs::remove_file(&files[1]).unwrap();
    let (seen, s) = replay_dir(&d, true).unwrap();
    assert_eq!(s.skipped_damage, 1);
    assert_eq!(
        seen.gap_at,
        vec![(in_first, Some((0, 1)))],
        "one gap, right after the first file's frames"
    );
    assert_eq!(
        seen.ceilings.len(),
        6 - in_second,
        "the missing file's frames are gone"
    );
}

#[test]
fn skipping_a_missing_boot_reports_a_discontinuity_for_every_topic() {
    let d = tmp("skipboot");
    boot_with(&d, 1, &[(&[1], Commit::Wait)], 64 << 10);
    for f in boot_with(&d, 2, &[(&[2], Commit::Wait)], 64 << 10) {
        std::fs::remove_file(f).unwrap();
    }
    boot_with(&d, 3, &[(&[3], Commit::Wait)], 64 << 10);
    let (seen, _) = replay_dir(&d, true).unwrap();
    assert_eq!(seen.ceilings, vec![1, 3]);
    assert_eq!(
        seen.gap_at,
        vec![(1, None)],
        "between boot 1 and boot 3, for all topics"
    );
}
