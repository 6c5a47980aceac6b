//! The fsync audit: the order of file-system operations a full workload performs.

use super::workload::workload;
use crate::storage::frame::WAL_MAGIC;
use crate::storage::fs::fault::{is_closing_mark, is_stop_frame, FaultFs, Op};
use crate::storage::{segment, snapshot};
use crate::topic::testkit::temp_dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// fsync audit over a full workload: every new file, rename and removal is followed by an
/// fsync of its directory; every atomically written file is fsynced before it is renamed into
/// place; every WAL file's appends end in an fdatasync. (That each `fsync`-class ack waits for
/// the covering sync is shown by the crash sweep: acking before the sync makes it fail.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_file_rename_and_removal_is_followed_by_a_directory_fsync() {
    let fs = Arc::new(FaultFs::new(usize::MAX));
    let h = super::start(temp_dir("audit"), fs.clone()).unwrap();
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
                // Seals run beside checkpoints: match the rename of this very file.
                let target = path.with_extension("");
                let renamed = later
                    .iter()
                    .position(|(o, p)| *o == Op::Rename && *p == target);
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

/// The sealing rule: a segment is written on the blocking pool while its topic runs on, and
/// only a durable one may be referred to by a snapshot. Every segment the last snapshot
/// refers to was renamed into place and its directory fsynced before that snapshot's write
/// began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_segment_a_snapshot_refers_to_was_durable_before_the_snapshot() {
    let fs = Arc::new(FaultFs::new(usize::MAX));
    let h = super::start(temp_dir("audit-seg"), fs.clone()).unwrap();
    workload(&h).await;
    let dir = h.crash().await;
    let progress = crate::storage::recovery::ReplayProgress::default();
    let rec = crate::topic::recovered::recover_dir(
        &crate::storage::fs::RealFs,
        &dir,
        &progress,
        Default::default(),
    )
    .unwrap();
    assert!(
        rec.snapshot_number > 0 && !rec.segment_files.is_empty(),
        "the workload's last snapshot refers to segments"
    );
    let log = fs.log();
    let snap =
        snapshot::dir(&dir).join(format!("{}.tmp", snapshot::file_name(rec.snapshot_number)));
    let written = log
        .iter()
        .position(|(o, p)| *o == Op::WriteFile && *p == snap)
        .expect("the snapshot's write is in the log");
    let seg_dir = segment::dir(&dir);
    for name in &rec.segment_files {
        let path = seg_dir.join(name);
        let renamed = log[..written]
            .iter()
            .rposition(|(o, p)| *o == Op::Rename && *p == path)
            .unwrap_or_else(|| panic!("{name} was not in place before the snapshot"));
        assert!(
            log[renamed..written]
                .iter()
                .any(|(o, p)| *o == Op::SyncDir && *p == seg_dir),
            "{name}: referred to by a snapshot before its directory entry was durable"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// One WAL file's operations in log order: (log index, op, appended bytes).
type FileOps = Vec<(usize, Op, Option<Vec<u8>>)>;

fn wal_file_ops(fs: &FaultFs) -> BTreeMap<PathBuf, FileOps> {
    let mut files: BTreeMap<PathBuf, FileOps> = BTreeMap::new();
    for (i, (op, path)) in fs.log().into_iter().enumerate() {
        if path.extension().is_some_and(|e| e == "wal") {
            files.entry(path).or_default().push((i, op, fs.appended(i)));
        }
    }
    files
}

/// A preallocated file gets its header (with the first sync mark) and that header's
/// fdatasync, and its directory entry is made durable, before any frame goes in.
fn assert_header_synced_before_frames(fs: &FaultFs, path: &Path, ops: &FileOps) {
    let log = fs.log();
    let Some(at) = ops.iter().position(|(_, op, _)| *op == Op::Preallocate) else {
        return;
    };
    let name = path.display();
    let header = &ops[at + 1];
    assert!(
        header.1 == Op::Append && header.2.as_ref().is_some_and(|d| d.starts_with(&WAL_MAGIC)),
        "{name}: the first write after preallocating is not the header"
    );
    assert_eq!(
        ops[at + 2].1,
        Op::SyncData,
        "{name}: header not synced next"
    );
    let first_frame = ops[at + 3..].iter().find(|(_, op, _)| *op == Op::Append);
    let dir_synced = |upto: usize| {
        log[ops[at + 2].0..upto]
            .iter()
            .any(|(o, p)| *o == Op::SyncDir && Some(p.as_path()) == path.parent())
    };
    if let Some((i, _, _)) = first_frame {
        assert!(
            dir_synced(*i),
            "{name}: a frame before the file's entry is durable"
        );
    }
}

/// A closed file is shrunk only after its closing mark (or, at a clean stop, its Stop frame)
/// was synced, and nothing follows. True for a file closed by rotation.
fn assert_shrunk_after_synced_closing_mark(path: &Path, ops: &FileOps) -> bool {
    let Some(at) = ops.iter().position(|(_, op, _)| *op == Op::Shrink) else {
        return false;
    };
    let name = path.display();
    let last_append = ops[..at]
        .iter()
        .rposition(|(_, op, _)| *op == Op::Append)
        .expect("a shrunk file was written");
    let mark = ops[last_append].2.as_deref().unwrap_or_default();
    let closing = is_closing_mark(mark);
    assert!(
        closing || is_stop_frame(mark),
        "{name}: shrunk, but its last write is neither a closing mark nor a Stop frame"
    );
    assert!(
        ops[last_append..at]
            .iter()
            .any(|(_, op, _)| *op == Op::SyncData),
        "{name}: shrunk before its closing mark was synced"
    );
    assert!(
        !ops[at..].iter().any(|(_, op, _)| *op == Op::Append),
        "{name}: written after it was closed and shrunk"
    );
    closing
}

/// Rotation order over a workload that rotates by size and at checkpoints: every
/// preallocation is followed by the header's fdatasync before any frame, and a closed file is
/// shrunk only after its closing mark is synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_syncs_the_new_header_before_frames_and_the_closing_mark_before_the_shrink() {
    let fs = Arc::new(FaultFs::new(usize::MAX));
    let h = super::start(temp_dir("audit-rotate"), fs.clone()).unwrap();
    let out = workload(&h).await;
    let rotations = h.wal().stats().rotations.load(Ordering::Relaxed);
    let dir = h.crash().await;
    let mut shrunk = 0;
    for (path, ops) in wal_file_ops(&fs) {
        assert_header_synced_before_frames(&fs, &path, &ops);
        shrunk += u64::from(assert_shrunk_after_synced_closing_mark(&path, &ops));
    }
    let shards = 2;
    assert!(
        rotations > out.checkpoints * shards,
        "files rotate by size too ({rotations} rotations, {} checkpoints)",
        out.checkpoints
    );
    assert_eq!(shrunk, rotations, "every rotation closed and shrank a file");
    let _ = std::fs::remove_dir_all(dir);
}
