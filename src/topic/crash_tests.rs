//! Crash-point sweeps over sealing, checkpoints (snapshot write, pruning, WAL and segment
//! collection), deletes and WAL rotation: the power is cut after the Nth file-system operation
//! of the seam, un-synced effects are rolled back (clean, a torn prefix, or later sectors
//! without earlier ones), and the restarted server must hold every acknowledged `fsync` write
//! with its data, no acknowledged-deleted record, nothing invented, and must never reissue a
//! seq. `cargo test` runs a bounded sample of cut points (plus the first of each rotation
//! step); set `TOPICS_CRASH_SWEEP=all` to run every one.

mod audit;
mod eio;
mod full_disk;
mod kit;
mod points;
mod recovery;
mod workload;

use super::testkit::{temp_dir, visible_seqs, Harness};
use super::AppendRequest;
use crate::clock::ManualClock;
use crate::model::record::RecordDraft;
use crate::storage::fs::fault::{CutMode, FaultFs};
use crate::storage::fs::Fs;
use bytes::Bytes;
use points::Coverage;
use std::path::PathBuf;
use std::sync::Arc;
use workload::{config, verify, workload, Outcome};

/// WAL files of the sweeps: small enough that the workload rotates by size between its
/// checkpoints, so cuts land in every step of a rotation.
const SWEEP_WAL_FILE_BYTES: u64 = 2048;

fn sweep_all() -> bool {
    std::env::var("TOPICS_CRASH_SWEEP").as_deref() == Ok("all")
}

/// Start on `dir` with `fs` and the sweeps' small WAL files.
fn start(dir: PathBuf, fs: Arc<dyn Fs>) -> Result<Harness, String> {
    Harness::try_start_with(dir, ManualClock::new(1), fs, SWEEP_WAL_FILE_BYTES)
}

/// Cut the power at operation `cut`, restart and check; returns how many files kept un-synced
/// bytes behind lost ones.
async fn run_cut(cut: usize, mode: CutMode, coverage: &mut Coverage) -> usize {
    let dir = temp_dir("crash");
    let fs = Arc::new(FaultFs::with_mode(cut, mode));
    let (dir, out) = match start(dir.clone(), fs.clone()) {
        Ok(h) => {
            let out = workload(&h).await;
            (h.crash().await, out)
        }
        Err(_) => (dir, Outcome::default()), // the power failed during start-up
    };
    coverage.note(&fs);
    let split = fs.power_cut().iter().filter(|p| p.exists()).count();
    let h = Harness::start(dir, ManualClock::new(1));
    verify(&h, &out, cut).await;
    // Everything past the lost bytes was written after the last completed fdatasync: a torn
    // tail to cut, never the zero end of the log (that would leave the later bytes in place).
    assert!(
        split == 0 || h.replay.truncated_bytes > 0,
        "cut {cut} ({mode:?}): bytes survived behind a lost range but recovery cut nothing"
    );
    let _ = std::fs::remove_dir_all(&h.dir);
    split
}

/// The power-cut modes of one sweep point: clean, a torn prefix, and sectors written back out
/// of order (lost ones reading as zeros at even points, as garbage at odd ones).
fn modes(point: usize) -> [CutMode; 3] {
    let ooo = if point.is_multiple_of(2) {
        CutMode::OutOfOrder
    } else {
        CutMode::OutOfOrderGarbage
    };
    [CutMode::Clean, CutMode::TornPrefix, ooo]
}

/// The cut points to run: all of them under `TOPICS_CRASH_SWEEP=all`; otherwise about 24
/// spread over the run plus the first operation of each rotation step the probe run saw.
fn cut_points(probe: &FaultFs) -> Vec<usize> {
    let total = probe.ops();
    if sweep_all() {
        return (0..total).collect();
    }
    let mut cuts: Vec<usize> = (0..total).step_by((total / 24).max(1)).collect();
    let steps = points::in_log(probe);
    for p in points::ALL {
        cuts.extend(steps.iter().find(|(_, q)| *q == p).map(|(i, _)| *i));
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sampled_crash_point_recovers_all_acknowledged_state() {
    let probe = Arc::new(FaultFs::new(usize::MAX));
    let h = start(temp_dir("probe"), probe.clone()).unwrap();
    workload(&h).await;
    let _ = std::fs::remove_dir_all(h.crash().await);
    let total = probe.ops();
    assert!(
        total > 50,
        "the workload exercises the seam ({total} operations)"
    );
    let (mut runs, mut split, mut coverage) = (0, 0, Coverage::default());
    for (point, cut) in cut_points(&probe).into_iter().enumerate() {
        for mode in modes(point) {
            split += usize::from(run_cut(cut, mode, &mut coverage).await > 0);
            runs += 1;
        }
    }
    eprintln!(
        "crash sweep: {runs} runs (clean, torn and out-of-order power cuts) over {total} \
         file-system operations; {split} left bytes behind a lost range; rotation steps cut: \
         {coverage}"
    );
    assert!(split > 0, "some out-of-order cut kept later sectors");
    let missing = coverage.missing();
    assert!(missing.is_empty(), "no cut landed at {missing:?}");
}

/// A storage error while running (every operation from the Nth on fails with an I/O error
/// that is not "no space"): every later durable write fails — never a false ack — reads keep
/// working, storage reports poisoned, and a restart on a healthy disk recovers every write
/// acknowledged before the fault. (Running out of space is survivable: `full_disk`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_io_errors_fail_writes_keep_reads_and_recover_after_restart() {
    for fail_at in [12, 20, 40] {
        let fs = Arc::new(FaultFs::new(fail_at));
        let h = Harness::start_with_fs(temp_dir("eio"), ManualClock::new(1), fs.clone());
        let (t, _) = h.registry.get_or_create("t", config()).await.unwrap();
        let mut acked = Vec::new();
        let mut failed = false;
        for i in 0..40u64 {
            let d = RecordDraft {
                node: None,
                tag: None,
                data: Bytes::from(i.to_string()),
                meta: None,
                hops: 0,
            };
            match t
                .append(AppendRequest {
                    records: vec![d],
                    idempotency_key: None,
                })
                .await
            {
                Ok(ok) if !failed => acked.push(ok.last_seq),
                Ok(ok) => panic!(
                    "fail_at {fail_at}: seq {} acked after a storage failure",
                    ok.last_seq
                ),
                Err(_) => failed = true,
            }
        }
        assert!(failed, "fail_at {fail_at}: the fault was hit");
        assert!(
            h.poisoned(),
            "fail_at {fail_at}: storage reports the failure (readiness turns 503)"
        );
        let visible = visible_seqs(&t).await;
        assert_eq!(
            visible, acked,
            "fail_at {fail_at}: reads still work and show exactly the acked writes"
        );
        assert!(h.registry.get("t").is_some());
        drop(t);
        // The fault clears (a healthy disk): no power cut, the written data is all there.
        let h = Harness::start(h.crash().await, ManualClock::new(1));
        let t = h.registry.get("t").unwrap();
        let got = visible_seqs(&t).await;
        for s in &acked {
            assert!(got.contains(s), "fail_at {fail_at}: acked seq {s} lost");
        }
        let _ = std::fs::remove_dir_all(&h.dir);
    }
}
