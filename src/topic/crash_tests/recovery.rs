//! A second power cut while recovering from the first: the first cut leaves a torn tail (a
//! prefix of the last write, or its later sectors without the earlier ones) for recovery to
//! cut; the second lands at every operation of that recovery and restart.

use super::workload::{verify, workload, Outcome};
use super::{start, sweep_all};
use crate::clock::ManualClock;
use crate::storage::frame::{self, Frame, WAL_MAGIC};
use crate::storage::fs::fault::{CutMode, FaultFs, Op};
use crate::topic::testkit::{temp_dir, Harness};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// True when `data` is exactly one sync mark.
fn is_sync_mark(data: &[u8]) -> bool {
    let buf = Bytes::copy_from_slice(data);
    matches!(frame::decode(&buf, 0), Ok((Frame::Sync { .. }, end)) if end == data.len())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().filter_map(Result::ok) {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// First cuts: the fdatasync right after a WAL append of frames (not a file header, not a
/// sync mark), so the power cut leaves part of them for recovery to cut off.
async fn first_cut_points() -> Vec<usize> {
    let probe = Arc::new(FaultFs::new(usize::MAX));
    let h = start(temp_dir("probe"), probe.clone()).unwrap();
    workload(&h).await;
    let _ = std::fs::remove_dir_all(h.crash().await);
    let log = probe.log();
    let holds_frames = |i: usize| {
        probe
            .appended(i)
            .is_some_and(|d| !d.starts_with(&WAL_MAGIC) && !is_sync_mark(&d))
    };
    let points: Vec<usize> = (0..log.len().saturating_sub(1))
        .filter(|&i| holds_frames(i) && log[i + 1].0 == Op::SyncData)
        .map(|i| i + 1)
        .collect();
    assert!(points.len() >= 3);
    let step = if sweep_all() {
        1
    } else {
        (points.len() / 6).max(1)
    };
    points.into_iter().step_by(step).collect()
}

/// Run the workload with the power cut at `first`: the directory it leaves, what was
/// acknowledged, and whether later sectors survived earlier ones somewhere.
async fn first_crash(first: usize, mode: CutMode) -> (PathBuf, Outcome, bool) {
    let dir = temp_dir("torn");
    let fs = Arc::new(FaultFs::with_mode(first, mode));
    let out = match start(dir.clone(), fs.clone()) {
        Ok(h) => {
            let out = workload(&h).await;
            h.crash().await;
            out
        }
        Err(_) => Outcome::default(),
    };
    let split = fs.power_cut().iter().any(|p| p.exists());
    (dir, out, split)
}

/// Cut the power at every operation of the recovery of `torn` in turn, each time checking
/// the start after it; returns the number of operations and whether recovery cut a tail.
async fn crash_every_recovery_step(torn: &Path, out: &Outcome) -> (usize, bool) {
    for second in 0.. {
        let dir = temp_dir("rerecover");
        copy_dir(torn, &dir);
        let fs = Arc::new(FaultFs::new(second));
        let finished =
            match Harness::try_start_with_fs(dir.clone(), ManualClock::new(1), fs.clone()) {
                Ok(h) => {
                    h.crash().await;
                    true
                }
                Err(_) => false,
            };
        fs.power_cut();
        let h = Harness::start(dir, ManualClock::new(1));
        verify(&h, out, second).await;
        let _ = std::fs::remove_dir_all(&h.dir);
        if finished && fs.ops() <= second {
            // The whole recovery ran before the cut: every point was covered.
            let truncated = fs.log().iter().any(|(op, _)| *op == Op::Truncate);
            return (second, truncated);
        }
    }
    unreachable!("a recovery has finitely many operations")
}

/// A second power cut while recovering from the first (torn WAL tails to cut, new WAL files
/// to create): whatever recovery step it hits, the next start still has every acknowledged
/// write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_recovery_loses_nothing_acknowledged() {
    let (mut tails_cut, mut split_tails_cut) = (0, 0);
    for (point, first) in first_cut_points().await.into_iter().enumerate() {
        let mode = if point.is_multiple_of(2) {
            CutMode::TornPrefix
        } else {
            CutMode::OutOfOrder
        };
        let (torn, out, split) = first_crash(first, mode).await;
        let (second, truncated) = crash_every_recovery_step(&torn, &out).await;
        tails_cut += usize::from(truncated);
        split_tails_cut += usize::from(truncated && split);
        eprintln!(
            "recovery crash sweep after cut {first} ({mode:?}): {second} cut points, torn \
             tail cut: {truncated}"
        );
        let _ = std::fs::remove_dir_all(&torn);
    }
    assert!(
        tails_cut > 0,
        "some first cut left a torn tail for recovery to cut"
    );
    assert!(
        split_tails_cut > 0,
        "some first cut left later sectors without earlier ones for recovery to cut"
    );
}
