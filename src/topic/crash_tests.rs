//! Crash-point sweep over sealing, checkpoints (snapshot write, pruning, WAL and segment
//! collection) and deletes: the power is cut after the Nth file-system operation of the seam,
//! un-synced effects are rolled back, and the restarted server must hold every acknowledged
//! `fsync` write with its data, no acknowledged-deleted record, nothing invented, and must
//! never reissue a seq. `cargo test` runs a bounded sample of cut points; set
//! `TOPICS_CRASH_SWEEP=all` to run every one.

use super::testkit::{temp_dir, visible_seqs, Harness};
use super::{AppendRequest, DeleteRequest, ReadRequest};
use crate::clock::ManualClock;
use crate::model::predicate::TagPredicate;
use crate::model::record::RecordDraft;
use crate::model::topic_config::{Durability, TopicConfig};
use crate::storage::fs::fault::{CutMode, FaultFs};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Default)]
struct Outcome {
    /// seq → data of every acknowledged write.
    acked: BTreeMap<u64, Bytes>,
    /// Data of every write attempted (acked or not): the only data allowed to appear.
    attempted: BTreeSet<Bytes>,
    /// Seqs whose delete was acknowledged.
    deleted: BTreeSet<u64>,
}

fn config() -> TopicConfig {
    TopicConfig {
        durability: Durability::Fsync,
        durable: true,
        ..TopicConfig::default()
    }
}

/// Writes, tag deletes, prefix deletes and checkpoints until the first failure.
async fn workload(h: &Harness) -> Outcome {
    let mut out = Outcome::default();
    let Ok((t, _)) = h.registry.get_or_create("t", config()).await else {
        return out;
    };
    let mut n = 0u64;
    for step in 0..24u64 {
        let datas: Vec<Bytes> = (0..3)
            .map(|_| {
                n += 1;
                Bytes::from(n.to_string())
            })
            .collect();
        out.attempted.extend(datas.iter().cloned());
        let records = datas
            .iter()
            .map(|d| RecordDraft {
                node: None,
                tag: Some(Arc::from(if step % 3 == 0 { "x" } else { "y" })),
                data: d.clone(),
                meta: None,
                hops: 0,
            })
            .collect();
        let Ok(ok) = t
            .append(AppendRequest {
                records,
                idempotency_key: None,
            })
            .await
        else {
            break;
        };
        for (i, d) in datas.into_iter().enumerate() {
            out.acked.insert(ok.first_seq + i as u64, d);
        }
        if step % 7 == 6 {
            let pred = TagPredicate::Eq("x".into());
            let Ok(d) = t
                .delete_records(DeleteRequest {
                    before_seq: None,
                    pred: Some(pred),
                })
                .await
            else {
                break;
            };
            let _ = d;
            let xs: Vec<u64> = out
                .acked
                .keys()
                .copied()
                .filter(|s| (s - 1) / 3 % 3 == 0)
                .collect();
            out.deleted.extend(xs);
        }
        if step == 17 {
            let bound = ok.last_seq - 10;
            if t.delete_records(DeleteRequest {
                before_seq: Some(bound),
                pred: None,
            })
            .await
            .is_err()
            {
                break;
            }
            out.deleted
                .extend(out.acked.range(..bound).map(|(s, _)| *s));
        }
        if step % 4 == 3 && h.try_checkpoint().await.is_err() {
            break;
        }
    }
    out
}

async fn verify(h: &Harness, out: &Outcome, cut: usize) {
    let Some(t) = h.registry.get("t") else {
        assert!(
            out.acked.is_empty(),
            "cut {cut}: the topic of acknowledged writes is gone"
        );
        return;
    };
    let req = ReadRequest {
        from_seq: 0,
        limit: 1000,
        budget_bytes: 1 << 30,
        skip_nodes: vec![],
        include_meta: true,
    };
    let got = t.read(req).await.unwrap().records;
    let present: BTreeMap<u64, Bytes> = got.iter().map(|r| (r.seq, r.data.clone())).collect();
    assert_eq!(present.len(), got.len(), "cut {cut}: duplicate seqs");
    for (seq, data) in &out.acked {
        if out.deleted.contains(seq) {
            assert!(
                !present.contains_key(seq),
                "cut {cut}: deleted seq {seq} came back"
            );
        } else {
            assert_eq!(
                present.get(seq),
                Some(data),
                "cut {cut}: acknowledged seq {seq} lost or changed"
            );
        }
    }
    for (seq, data) in &present {
        assert!(
            out.attempted.contains(data),
            "cut {cut}: seq {seq} holds invented data"
        );
    }
    let head = t.state(false).await.unwrap().head_seq;
    let max_acked = out.acked.keys().last().copied().unwrap_or(0);
    assert!(
        head >= max_acked,
        "cut {cut}: head {head} would reissue seq {max_acked}"
    );
}

/// What one cut run saw.
struct CutRun {
    /// File-system operations of the whole run (workload and start-up).
    ops: usize,
    /// Files in which un-synced bytes survived behind lost ones (and still exist).
    split: usize,
}

async fn run_cut(cut: usize, mode: CutMode) -> CutRun {
    let dir = temp_dir("crash");
    let fs = Arc::new(FaultFs::with_mode(cut, mode));
    let (dir, out) = match Harness::try_start_with_fs(dir.clone(), ManualClock::new(1), fs.clone())
    {
        Ok(h) => {
            let out = workload(&h).await;
            (h.crash().await, out)
        }
        Err(_) => (dir, Outcome::default()), // the power failed during start-up
    };
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
    CutRun {
        ops: fs.ops(),
        split,
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sampled_crash_point_recovers_all_acknowledged_state() {
    let total = run_cut(usize::MAX, CutMode::Clean).await.ops;
    assert!(
        total > 50,
        "the workload exercises the seam ({total} operations)"
    );
    let step = if std::env::var("TOPICS_CRASH_SWEEP").as_deref() == Ok("all") {
        1
    } else {
        (total / 24).max(1)
    };
    let (mut runs, mut split) = (0, 0);
    for (point, cut) in (0..total).step_by(step).enumerate() {
        for mode in modes(point) {
            split += usize::from(run_cut(cut, mode).await.split > 0);
            runs += 1;
        }
    }
    eprintln!(
        "crash sweep: {runs} runs (clean, torn and out-of-order power cuts) over {total} \
         file-system operations; {split} left bytes behind a lost range"
    );
}

/// A storage error while running (EIO/ENOSPC from the Nth operation on): every later durable
/// write fails — never a false ack — reads keep working, storage reports poisoned, and a
/// restart on a healthy disk recovers every write acknowledged before the fault.
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

/// fsync audit over a full workload: every new file, rename and removal is followed by an
/// fsync of its directory; every atomically written file is fsynced before it is renamed into
/// place; every WAL file's appends end in an fdatasync. (That each `fsync`-class ack waits for
/// the covering sync is shown by the crash sweep: acking before the sync makes it fail.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_file_rename_and_removal_is_followed_by_a_directory_fsync() {
    use crate::storage::fs::fault::Op;
    let fs = Arc::new(FaultFs::new(usize::MAX));
    let h = Harness::start_with_fs(temp_dir("audit"), ManualClock::new(1), fs.clone());
    workload(&h).await;
    let dir = h.crash().await;
    let log = fs.log();
    let parent = |p: &std::path::Path| p.parent().unwrap().to_path_buf();
    for (i, (op, path)) in log.iter().enumerate() {
        let later = &log[i + 1..];
        match op {
            Op::CreateAppend | Op::Rename | Op::Remove => assert!(
                later
                    .iter()
                    .any(|(o, p)| *o == Op::SyncDir && *p == parent(path)),
                "{op:?} {} is never made durable by a directory fsync",
                path.display()
            ),
            Op::WriteFile => {
                let synced = later
                    .iter()
                    .position(|(o, p)| *o == Op::SyncFile && p == path);
                let renamed = later.iter().position(|(o, _)| *o == Op::Rename);
                assert!(
                    synced.is_some() && synced < renamed,
                    "{} renamed before its fsync",
                    path.display()
                );
            }
            _ => {}
        }
    }
    let appended: std::collections::BTreeSet<_> = log
        .iter()
        .filter(|(o, _)| *o == Op::Append)
        .map(|(_, p)| p)
        .collect();
    for p in appended {
        let last_append = log
            .iter()
            .rposition(|(o, q)| *o == Op::Append && q == p)
            .unwrap();
        let last_sync = log.iter().rposition(|(o, q)| *o == Op::SyncData && q == p);
        assert!(
            last_sync > Some(last_append),
            "{}: appends after the last fdatasync",
            p.display()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
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

/// A second power cut while recovering from the first (torn WAL tails to cut, new WAL files
/// to create): whatever recovery step it hits, the next start still has every acknowledged
/// write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_recovery_loses_nothing_acknowledged() {
    // First cuts right after a WAL append and before its fdatasync, so the torn power cut
    // leaves half a frame for recovery to cut off.
    let probe = Arc::new(FaultFs::new(usize::MAX));
    let h = Harness::start_with_fs(temp_dir("probe"), ManualClock::new(1), probe.clone());
    workload(&h).await;
    let _ = std::fs::remove_dir_all(h.crash().await);
    let log = probe.log();
    use crate::storage::fs::fault::Op;
    let after_appends: Vec<usize> = (0..log.len().saturating_sub(1))
        .filter(|&i| log[i].0 == Op::Append && log[i + 1].0 == Op::SyncData)
        .map(|i| i + 1)
        .collect();
    assert!(after_appends.len() >= 3);
    let all = std::env::var("TOPICS_CRASH_SWEEP").as_deref() == Ok("all");
    let step = if all {
        1
    } else {
        (after_appends.len() / 6).max(1)
    };
    let mut tails_cut = 0;
    for (point, &first) in after_appends.iter().step_by(step).enumerate() {
        // The first crash in the middle of the workload leaves a torn tail: a prefix of the
        // last write, or its later sectors without the earlier ones.
        let torn_dir = temp_dir("torn");
        let mode = if point.is_multiple_of(2) {
            CutMode::TornPrefix
        } else {
            CutMode::OutOfOrder
        };
        let fs = Arc::new(FaultFs::with_mode(first, mode));
        let out =
            match Harness::try_start_with_fs(torn_dir.clone(), ManualClock::new(1), fs.clone()) {
                Ok(h) => {
                    let out = workload(&h).await;
                    h.crash().await;
                    out
                }
                Err(_) => Outcome::default(),
            };
        fs.power_cut();
        // The second crash, at every operation of the recovery and restart that follows.
        let mut second = 0;
        loop {
            let dir = temp_dir("rerecover");
            copy_dir(&torn_dir, &dir);
            let fs2 = Arc::new(FaultFs::new(second));
            let finished =
                match Harness::try_start_with_fs(dir.clone(), ManualClock::new(1), fs2.clone()) {
                    Ok(h) => {
                        h.crash().await;
                        true
                    }
                    Err(_) => false,
                };
            fs2.power_cut();
            let h = Harness::start(dir, ManualClock::new(1));
            verify(&h, &out, second).await;
            let _ = std::fs::remove_dir_all(&h.dir);
            if finished && fs2.ops() <= second {
                let truncated = fs2.log().iter().any(|(op, _)| *op == Op::Truncate);
                tails_cut += usize::from(truncated);
                eprintln!("recovery crash sweep after cut {first} ({mode:?}): {second} cut points, torn tail cut: {truncated}");
                break; // the whole recovery ran before the cut: every point was covered
            }
            second += 1;
        }
        let _ = std::fs::remove_dir_all(&torn_dir);
    }
    assert!(
        tails_cut > 0,
        "some first cut left a torn tail for recovery to cut"
    );
}
