//! A disk that fills up while the server runs (`FaultFs` with a space budget: real `ENOSPC`
//! from appends past a file's allocation, preallocations and whole-file writes). Nothing
//! acknowledged is lost, nothing refused comes back, writes resume by themselves once space
//! is freed, and running out of space never poisons storage.

use super::kit::{class, contents, data, start, stop, write};
use crate::error::ApiError;
use crate::model::topic_config::Durability;
use crate::storage::fs::fault::FaultFs;
use crate::topic::testkit::{temp_dir, Harness};
use crate::topic::{TopicError, TopicHandle};
use axum::http::StatusCode;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Space left when a test starts filling the disk: less than a WAL file (with preallocation
/// the disk fills at the next rotation), enough for a few writes without.
const SPACE_LEFT: u64 = 1500;

/// The file systems the tests run on: with preallocation, appends never need space of their
/// own (the file's blocks were reserved when it was created); without, every append past the
/// file's end does, and the disk can fill in the middle of one.
fn file_systems() -> [(bool, bool); 4] {
    [(true, false), (true, true), (false, false), (false, true)]
}

fn fault_fs(prealloc: bool) -> Arc<FaultFs> {
    let fs = FaultFs::new(usize::MAX);
    Arc::new(if prealloc {
        fs
    } else {
        fs.without_preallocation()
    })
}

/// A write refused for lack of space: a no-space storage error, which HTTP answers with 507.
fn assert_no_space(e: TopicError, n: u64) {
    assert!(
        matches!(&e, TopicError::Storage(s) if s.is_no_space()),
        "write {n}: {e:?}"
    );
    let status = ApiError::from_topic("t", e).status;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "write {n}");
}

/// Write from `n` on until the disk is full: returns the acknowledged writes and the number
/// of the first refused one.
async fn fill(t: &TopicHandle, mut n: u64) -> (BTreeMap<u64, Bytes>, u64) {
    let mut acked = BTreeMap::new();
    for _ in 0..1000 {
        match write(t, n).await {
            Ok(seq) => acked.insert(seq, data(n)),
            Err(e) => {
                assert_no_space(e, n);
                return (acked, n);
            }
        };
        n += 1;
    }
    panic!("the disk never filled");
}

/// A topic of `durability` on a fresh fault file system with `SPACE_LEFT` bytes left, written
/// until the disk is full: the file system, the harness, the topic, its acknowledged writes
/// and the number of the first refused one.
async fn filled(
    tag: &str,
    prealloc: bool,
    durability: Durability,
) -> (
    Arc<FaultFs>,
    Harness,
    TopicHandle,
    BTreeMap<u64, Bytes>,
    u64,
) {
    let fs = fault_fs(prealloc);
    let h = start(&temp_dir(tag), &fs);
    let (t, _) = h
        .registry
        .get_or_create("t", class(durability))
        .await
        .unwrap();
    fs.set_space(Some(SPACE_LEFT));
    let (acked, refused) = fill(&t, 0).await;
    (fs, h, t, acked, refused)
}

/// Stop (cleanly or by a power cut) and start again: the topic holds exactly `acked`.
async fn restart_holding(
    h: Harness,
    t: TopicHandle,
    fs: &Arc<FaultFs>,
    power_cut: bool,
    acked: &BTreeMap<u64, Bytes>,
) -> Harness {
    drop(t);
    let h = stop(h, fs, power_cut).await;
    let t = h.registry.get("t").unwrap();
    assert_eq!(&contents(&t).await, acked, "power cut {power_cut}");
    h
}

/// Whether any WAL file under `dir` holds `needle`.
fn wal_holds(dir: &Path, needle: &[u8]) -> bool {
    let wal = crate::storage::wal_dir(dir);
    std::fs::read_dir(wal).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

/// Wait (bounded) until the WAL writes again after space was freed; no restart.
async fn wait_writable(h: &Harness) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.wal().health().is_full() {
        assert!(Instant::now() < deadline, "writes never resumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `disk` writes are acknowledged on enqueue, so some are acknowledged while the disk fills:
/// they wait in memory, are written once space is freed, and survive a restart and a power
/// cut; later writes are refused with 507 and never appear; writes resume without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_writes_acknowledged_as_the_disk_fills_are_written_once_space_is_freed() {
    let mut held_checked = 0;
    for (prealloc, power_cut) in file_systems() {
        let (fs, h, t, mut acked, refused) = filled("full-disk", prealloc, Durability::Disk).await;
        // No space at all from here on. Until now a retry of the full shard could still fit
        // what it held into the crumbs left (it needs less room than the group that filled
        // the disk); the moment that raced with the fill is rare, and then it has nothing
        // left to hold — which is also correct.
        fs.set_space(Some(0));
        let last = acked.values().last().unwrap().clone();
        assert!(!h.poisoned());
        // A seal still writing has its temp file in place; once it has failed for lack of
        // space, nothing of it may be left.
        h.seals_settled(&t).await;
        let left = temp_files(&h.dir);
        assert!(left.is_empty(), "seals that ran out of space left {left:?}");
        if h.wal().health().is_full() {
            assert!(
                !wal_holds(&h.dir, &last),
                "the last acknowledged write waits in memory for space"
            );
            for n in refused + 1..refused + 4 {
                assert_no_space(write(&t, n).await.unwrap_err(), n);
            }
            held_checked += 1;
        }
        assert_eq!(
            contents(&t).await,
            acked,
            "reads show exactly the acknowledged"
        );
        fs.set_space(None);
        wait_writable(&h).await;
        assert!(wal_holds(&h.dir, &last), "held writes reach the WAL");
        if !power_cut {
            for n in 100..103 {
                acked.insert(write(&t, n).await.unwrap(), data(n));
            }
        }
        let h = restart_holding(h, t, &fs, power_cut, &acked).await;
        let _ = std::fs::remove_dir_all(&h.dir);
    }
    assert!(
        held_checked >= 2,
        "the held-in-memory state was seen only {held_checked} times"
    );
}

/// An `fsync` write that gets "no space" was never written: it is not applied, and no restart
/// or power cut brings it back; the writes acknowledged around it all survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fsync_write_refused_for_lack_of_space_never_appears() {
    for (prealloc, power_cut) in file_systems() {
        let (fs, h, t, mut acked, refused) =
            filled("full-fsync", prealloc, Durability::Fsync).await;
        assert!(!h.poisoned());
        assert_eq!(
            contents(&t).await,
            acked,
            "the refused write is not applied"
        );
        assert!(!wal_holds(&h.dir, &data(refused)), "and never written");
        fs.set_space(None);
        wait_writable(&h).await;
        acked.insert(write(&t, 100).await.unwrap(), data(100));
        let h = restart_holding(h, t, &fs, power_cut, &acked).await;
        assert!(!wal_holds(&h.dir, &data(refused)));
        let _ = std::fs::remove_dir_all(&h.dir);
    }
}

/// Files of an interrupted atomic write (`*.tmp`) anywhere under `dir`.
fn temp_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        if e.file_type().unwrap().is_dir() {
            found.extend(temp_files(&e.path()));
        } else if e.file_name().to_string_lossy().ends_with(".tmp") {
            found.push(e.path());
        }
    }
    found
}

/// Try a checkpoint with `budget` bytes of space left: `None` when it succeeded, else where it
/// ran out ("barrier": a new WAL file; "snapshot": the snapshot file).
async fn checkpoint_with(h: &Harness, fs: &FaultFs, budget: u64) -> Option<&'static str> {
    fs.set_space(Some(budget));
    let e = h.try_checkpoint().await.err()?;
    assert!(!h.poisoned(), "budget {budget}: storage poisoned by {e}");
    let left = temp_files(&h.dir);
    assert!(left.is_empty(), "budget {budget}: {left:?} left behind");
    Some(if e.contains("barrier") {
        "barrier"
    } else {
        "snapshot"
    })
}

/// Checkpoints on a disk with ever more space left, from none to enough: each that runs out
/// of space — creating the WAL files of its barrier, or writing the snapshot — is skipped
/// without poisoning storage and leaves no temp file; then one succeeds, and a restart finds
/// every acknowledged write. On a file system without preallocation too, where appends and
/// new files' headers need space of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_that_run_out_of_space_are_skipped_without_poisoning_or_leftovers() {
    for prealloc in [true, false] {
        let fs = fault_fs(prealloc);
        let h = start(&temp_dir("full-ckpt"), &fs);
        let (t, _) = h
            .registry
            .get_or_create("t", class(Durability::Fsync))
            .await
            .unwrap();
        let mut acked = BTreeMap::new();
        for n in 0..10 {
            acked.insert(write(&t, n).await.unwrap(), data(n));
        }
        // A seal writing its temp file beside the checkpoint would read as a leftover.
        h.seals_settled(&t).await;
        let mut skipped = std::collections::BTreeSet::new();
        let mut budget = 0;
        while let Some(at) = checkpoint_with(&h, &fs, budget).await {
            skipped.insert(at);
            budget += 16;
            assert!(budget < 1 << 16, "no checkpoint succeeded");
        }
        assert!(
            skipped.contains("barrier"),
            "prealloc {prealloc}: {skipped:?}"
        );
        if !prealloc {
            assert!(skipped.contains("snapshot"), "{skipped:?}");
        }
        fs.set_space(None);
        acked.insert(write(&t, 100).await.unwrap(), data(100));
        drop(t);
        let h = stop(h, &fs, false).await;
        let t = h.registry.get("t").unwrap();
        assert_eq!(contents(&t).await, acked, "prealloc {prealloc}");
        let _ = std::fs::remove_dir_all(&h.dir);
    }
}
