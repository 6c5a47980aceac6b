//! The WAL check: recovery's own replay, run against a file system that changes nothing, from
//! the newest valid snapshot's barrier (files before it are no longer replayed and may have
//! been deleted). Damage that would make the server refuse to start is damage; a torn tail
//! the next start would cut, or a file torn while being created, is a note.

use super::Problem;
use crate::storage::fs::{AppendFile, Fs};
use crate::storage::recovery::{self, ReplayError, ReplayOptions, ReplayProgress};
use crate::storage::{snapshot, wal_dir};
use std::io;
use std::path::Path;

/// Every finding in the WAL of `data_dir` (replay stops at the first damage).
pub fn verify_wal(data_dir: &Path) -> Vec<Problem> {
    let dir = wal_dir(data_dir);
    let barrier = match snapshot::load_latest(&Untouched, &snapshot::dir(data_dir)) {
        Ok(s) => s.map(|s| s.barrier),
        // `verify_snapshots` reports that damage; reported here again it would count twice.
        Err(_) => {
            let what = "not checked: no valid snapshot says where replay would begin";
            return vec![Problem::note(&dir, 0, what)];
        }
    };
    let progress = ReplayProgress::default();
    let opts = ReplayOptions::default();
    match recovery::replay(&Untouched, &dir, barrier.as_ref(), &progress, opts, |_| {}) {
        Ok(s) => {
            let cut = s.cuts.iter().map(|(file, at, bytes)| {
                let what = format!(
                    "{bytes} bytes of torn tail (written after the last completed fdatasync); \
                     the next start cuts them"
                );
                Problem::note(file, *at, what)
            });
            let what = "torn while being created (no complete header); the next start removes it";
            let removed = s.removed.iter().map(|file| Problem::note(file, 0, what));
            cut.chain(removed).collect()
        }
        Err(ReplayError::Damaged(d)) => vec![Problem::damage(&d.file, d.offset, d.what)],
        Err(ReplayError::Io(e)) => vec![Problem::damage(&dir, 0, e)],
    }
}

/// Replay's file operations (cutting torn tails, removing files torn at creation) become
/// no-ops: verifying never changes a data directory.
#[derive(Debug)]
struct Untouched;

impl Fs for Untouched {
    fn create_append(&self, _: &Path) -> io::Result<Box<dyn AppendFile>> {
        Err(io::Error::other("verify never creates files"))
    }
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn write_file(&self, _: &Path, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("verify never writes files"))
    }
    fn sync_file(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(io::Error::other("verify never renames files"))
    }
    fn remove(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn truncate(&self, _: &Path, _: u64) -> io::Result<()> {
        Ok(())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
}
