//! The writer on a disk that fills in the middle of a group's write.

use super::*;
use crate::storage::fs::fault::FaultFs;
use crate::storage::fs::RealFs;
use crate::storage::recovery::{replay, ReplayProgress, Replayed};
use std::path::{Path, PathBuf};

/// Bytes of a sync mark.
const MARK_BYTES: usize = 38;

fn reserve(ceiling: u64) -> Vec<u8> {
    let mut b = Vec::new();
    frame::encode_reserve(&mut b, 1, ceiling);
    b
}

fn start(dir: &Path, fs: Arc<dyn Fs>) -> Wal {
    let opts = WalOptions {
        dir: dir.to_path_buf(),
        shards: 1,
        boot: 1,
        queue_frames: 16,
        queue_bytes: 1 << 20,
        file_bytes: 1 << 16,
        sync_interval: Duration::from_secs(3600),
        fs,
        prev_boot: 0,
    };
    Wal::start(opts, StorageHealth::new()).unwrap()
}

/// A WAL on a file system without preallocation (appends need space of their own) whose
/// writer is held in the fdatasync of a first frame, so the frames submitted next queue up
/// behind it and go out as one group. Returns the dir, the fs, the WAL and the first frame's
/// sync receiver.
fn held_after_first_sync(tag: &str) -> (PathBuf, Arc<FaultFs>, Wal, oneshot::Receiver<SyncResult>) {
    let dir = std::env::temp_dir().join(format!("topics-wal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let fs = Arc::new(FaultFs::new(usize::MAX).without_preallocation());
    let wal = start(&dir, fs.clone());
    fs.hold_next_sync();
    let first = wal.submit(0, reserve(1), Commit::Wait).unwrap().unwrap();
    fs.wait_sync_held();
    (dir, fs, wal, first)
}

/// The ceilings of every Reserve frame a start on `dir` would replay.
fn replayed_ceilings(dir: &Path) -> Vec<u64> {
    let mut ceilings = Vec::new();
    let progress = ReplayProgress::default();
    replay(&RealFs, dir, None, &progress, Default::default(), |r| {
        if let Replayed::Frame(frame::Frame::Reserve { ceiling, .. }) = r {
            ceilings.push(ceiling);
        }
    })
    .unwrap();
    ceilings
}

/// A group is written with one `write`; when the disk fills in its middle, the frames before
/// that point reached the file whole. A frame whose submitter is answered "no space" must not
/// be among them after all: a `kill -9` right then would replay a write that was refused.
/// (Without preallocation, where appends need space of their own.)
#[test]
fn a_frame_answered_no_space_is_never_replayed_even_if_part_of_its_group_landed() {
    let (dir, fs, wal, first) = held_after_first_sync("enospc");
    let (held, refused, cut) = (reserve(2), reserve(3), reserve(4));
    // Room for the sync mark after the held sync, two whole frames and 5 bytes of the third.
    fs.set_space(Some((MARK_BYTES + held.len() + refused.len() + 5) as u64));
    wal.submit(0, held, Commit::Soon).unwrap();
    let answer = wal.submit(0, refused, Commit::Wait).unwrap().unwrap();
    wal.submit(0, cut, Commit::Soon).unwrap();
    fs.release_sync();
    first.blocking_recv().unwrap().unwrap();
    let e = answer.blocking_recv().unwrap().unwrap_err();
    assert!(e.is_no_space(), "{e}");
    // A kill -9 now: the files stay as they are.
    fs.power_off_now();
    let ceilings = replayed_ceilings(&dir);
    assert!(ceilings.contains(&1), "{ceilings:?}");
    assert!(
        !ceilings.contains(&3),
        "the refused frame replays: {ceilings:?}"
    );
    wal.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Once space is back, a file the disk filled in is closed (closing mark, synced) and a new
/// one started, then the closed one is shrunk. With an EIO at that shrink (storage poisoned,
/// the process stops) the closed file keeps whatever lies past its closing mark: it must be
/// nothing, or replay refuses the file as damaged — so what the short write left there must
/// have been cut off already.
#[test]
fn a_closed_file_ends_at_its_closing_mark_even_after_a_short_write() {
    let (dir, fs, wal, first) = held_after_first_sync("short");
    // Four frames nobody waits for go out as one group; the disk fills 60 bytes into it, more
    // than a closing mark covers.
    fs.set_space(Some((MARK_BYTES + 60) as u64));
    for c in 2..6 {
        wal.submit(0, reserve(c), Commit::Soon).unwrap();
    }
    fs.release_sync();
    first.blocking_recv().unwrap().unwrap();
    while !wal.health().is_full() {
        std::thread::sleep(Duration::from_millis(5));
    }
    fs.inject_eio(crate::storage::fs::fault::EioAt::Shrink);
    fs.set_space(None);
    while !wal.health().is_poisoned() {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !fs.eio_pending(),
        "the retry closed the file and failed to shrink it"
    );
    wal.shutdown();
    // The held frames never reached a file (storage failed first); what did replays, and the
    // closed file is not mistaken for a damaged one.
    assert_eq!(replayed_ceilings(&dir), vec![1]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bucket bounds are inclusive (`le`), slower syncs land in `+Inf`, and the cumulative view
/// ends with the count.
#[test]
fn fsync_histogram_buckets_are_inclusive_and_cumulative() {
    let stats = WalStats::default();
    for us in [0, 50, 51, 100_000, 100_001] {
        stats.record_fsync(us);
    }
    assert_eq!(stats.fsyncs.load(Ordering::Relaxed), 5);
    assert_eq!(stats.fsync_micros_total.load(Ordering::Relaxed), 200_102);
    assert_eq!(stats.fsync_cumulative(), [2, 3, 3, 3, 3, 3, 3, 3, 4, 5]);
}

/// Every sync of a `Wait` frame is timed into the histogram.
#[test]
fn a_waited_frame_is_counted_in_the_fsync_histogram() {
    let dir = std::env::temp_dir().join(format!("topics-wal-hist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let wal = start(&dir, Arc::new(RealFs));
    let rx = wal.submit(0, reserve(1), Commit::Wait).unwrap().unwrap();
    rx.blocking_recv().unwrap().unwrap();
    let stats = wal.stats();
    assert!(stats.fsyncs.load(Ordering::Relaxed) >= 1);
    assert_eq!(
        stats.fsync_cumulative()[FSYNC_BUCKETS_US.len()],
        stats.fsyncs.load(Ordering::Relaxed)
    );
    assert!(stats.frames.load(Ordering::Relaxed) >= 1);
    wal.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
