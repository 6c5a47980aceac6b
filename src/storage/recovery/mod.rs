//! WAL replay at startup. Files are replayed in (boot, shard, index) order: within one boot a
//! topic's frames all live in one shard, and every boot's frames follow the previous boot's,
//! so per-topic order is exact even if the shard count changed between runs.
//!
//! What may be cut and what must be refused (see docs/STORAGE.md, "Torn tail or damage"):
//! only bytes written after the last completed fdatasync can be torn by a crash. Sync marks
//! record that frontier, so a bad frame before it — or anywhere in a file that was closed and
//! synced whole — is media damage: replay refuses to start, naming the file, the offset and
//! the seqs around it, unless the operator asked to skip damage (then every topic whose
//! records may have been in the damaged bytes is told so by a `Lost` event). A missing file
//! in the sequence is damage too.

mod file;
mod listing;
#[cfg(test)]
mod tests;

use super::fs::Fs;
use super::snapshot::Barrier;
use bytes::Bytes;
use file::FileReplay;
use listing::WalFileId;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use file::Replayed;

/// Replay progress for `/v0/ready` (bytes, since frame counts are unknown up front).
#[derive(Debug, Default)]
pub struct ReplayProgress {
    pub done_bytes: AtomicU64,
    pub total_bytes: AtomicU64,
}

impl ReplayProgress {
    /// 0.0–1.0; 0.0 while the total is unknown.
    pub fn fraction(&self) -> f64 {
        let total = self.total_bytes.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        (self.done_bytes.load(Ordering::Relaxed) as f64 / total as f64).min(1.0)
    }
}

/// What replay found.
#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    pub files: usize,
    pub frames: u64,
    /// Bytes cut from torn tails.
    pub truncated_bytes: u64,
    /// Each torn tail cut: (file, offset of the cut, bytes cut).
    pub cuts: Vec<(PathBuf, u64, u64)>,
    /// Files removed as torn during their creation.
    pub removed: Vec<PathBuf>,
    /// Damaged regions skipped because the operator asked for it.
    pub skipped_damage: usize,
    /// The boot number the next run must use.
    pub next_boot: u32,
    /// The newest boot that still has WAL files (the next run's `prev_boot`).
    pub last_boot: u32,
}

/// Damage found in the WAL: where, and which seqs may be affected.
#[derive(Debug, Clone)]
pub struct Damage {
    pub file: PathBuf,
    pub offset: u64,
    pub what: String,
    /// Per topic id: the last seq read intact before the damage, and the first after it in
    /// the same file (`None`: none was found).
    pub topics: Vec<(u64, u64, Option<u64>)>,
}

/// Why replay stopped.
#[derive(Debug, Clone)]
pub enum ReplayError {
    /// The WAL could not be read, or a torn tail could not be cut.
    Io(String),
    /// Once-durable bytes are damaged or a file is missing: starting would lose acknowledged
    /// data without a trace.
    Damaged(Damage),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Io(e) => f.write_str(e),
            ReplayError::Damaged(d) => write!(
                f,
                "WAL damage in {} at offset {}: {}",
                d.file.display(),
                d.offset,
                d.what
            ),
        }
    }
}

impl From<String> for ReplayError {
    fn from(e: String) -> Self {
        ReplayError::Io(e)
    }
}

/// How replay treats damage.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOptions {
    /// Skip damaged bytes instead of refusing to start (an operator's explicit choice).
    pub skip_damage: bool,
}

/// Replay every WAL file in `dir` (only those after `after`, a snapshot's barrier, if given),
/// handing each valid frame — and each boot's end, and each loss when damage is skipped — to
/// `apply` in order.
pub fn replay(
    fs: &dyn Fs,
    dir: &Path,
    after: Option<&Barrier>,
    progress: &ReplayProgress,
    opts: ReplayOptions,
    mut apply: impl FnMut(Replayed),
) -> Result<ReplaySummary, ReplayError> {
    let all = listing::list_files(dir)?;
    let mut summary = ReplaySummary {
        next_boot: all
            .iter()
            .map(|f| f.id.boot.saturating_add(1))
            .max()
            .unwrap_or(1),
        ..Default::default()
    };
    let files = listing::replay_window(&all, after);
    let mut gaps = listing::check_sequence(&files, after);
    gaps.extend(listing::check_chain(&files));
    for g in &gaps {
        skip_or_refuse(g.damage.clone(), opts, &mut summary)?;
    }
    let total: u64 = files.iter().map(|f| f.len).sum();
    progress.total_bytes.store(total.max(1), Ordering::Relaxed);
    let mut base = 0u64;
    let mut boots = BootTracker::default();
    let mut fixes = Vec::new();
    for (i, f) in files.iter().enumerate() {
        boots.enter(f.id.boot, &mut apply);
        report_gaps(&gaps, i, &mut apply);
        let buf =
            Bytes::from(std::fs::read(&f.path).map_err(|e| format!("{}: {e}", f.path.display()))?);
        let mut on_frame = |r: Replayed, offset: usize| {
            progress
                .done_bytes
                .store(base + offset as u64, Ordering::Relaxed);
            apply(r)
        };
        let shard = (f.id.shard, f.shards);
        let out = FileReplay::new(&buf, &f.path, f.is_tail, opts, shard).run(&mut on_frame)?;
        summary.files += 1;
        summary.frames += out.frames;
        summary.truncated_bytes += out.truncated;
        if out.truncated > 0 {
            let at = buf.len() as u64 - out.truncated;
            summary.cuts.push((f.path.clone(), at, out.truncated));
        }
        summary.skipped_damage += usize::from(out.skipped_damage);
        fixes.extend(out.fix.map(|x| (f.path.clone(), x)));
        if out.removed {
            summary.removed.push(f.path.clone());
        } else {
            summary.last_boot = summary.last_boot.max(f.id.boot);
            boots.file_done(&f.id, &out, f.is_tail);
        }
        base += f.len;
        progress.done_bytes.store(base, Ordering::Relaxed);
    }
    report_gaps(&gaps, files.len(), &mut apply);
    boots.finish(&mut apply);
    apply_fixes(fs, &fixes)?;
    // Older files (before the barrier) count too: the next boot follows the newest of them.
    let older = all.iter().filter(|f| !files.iter().any(|w| w.id == f.id));
    summary.last_boot = older.map(|f| f.id.boot).fold(summary.last_boot, u32::max);
    progress.done_bytes.store(total.max(1), Ordering::Relaxed);
    Ok(summary)
}

/// How many records a missing file or boot may have held: unknowable, so large enough that a
/// topic with no record after the gap moves its head past anything it could have issued.
const MISSING_FILE_RECORDS: u64 = 1 << 32;

/// Skipped missing files become discontinuities where their frames would have been replayed.
fn report_gaps(gaps: &[listing::Gap], at: usize, apply: &mut impl FnMut(Replayed)) {
    for g in gaps.iter().filter(|g| g.before == at) {
        apply(Replayed::Discontinuity {
            shard: g.shard,
            max_records: MISSING_FILE_RECORDS,
        });
    }
}

fn skip_or_refuse(
    d: Damage,
    opts: ReplayOptions,
    summary: &mut ReplaySummary,
) -> Result<(), ReplayError> {
    if !opts.skip_damage {
        return Err(ReplayError::Damaged(d));
    }
    tracing::error!(file = %d.file.display(), what = %d.what, "skipping WAL damage as asked");
    summary.skipped_damage += 1;
    Ok(())
}

/// Follows boots as their files go by: a boot is clean when every one of its shards ended
/// with a Stop frame.
#[derive(Debug, Default)]
struct BootTracker {
    current: Option<u32>,
    /// Shards of the current boot, and whether each ended with a Stop frame so far.
    shards: std::collections::BTreeMap<usize, bool>,
}

impl BootTracker {
    fn enter(&mut self, boot: u32, apply: &mut impl FnMut(Replayed)) {
        if self.current != Some(boot) {
            self.finish(apply);
            self.current = Some(boot);
        }
    }

    fn file_done(&mut self, id: &WalFileId, out: &file::FileOutcome, is_tail: bool) {
        if is_tail {
            self.shards.insert(id.shard, out.ended_with_stop);
        } else {
            self.shards.entry(id.shard).or_insert(false);
        }
    }

    fn finish(&mut self, apply: &mut impl FnMut(Replayed)) {
        if let Some(boot) = self.current.take() {
            let clean = !self.shards.is_empty() && self.shards.values().all(|s| *s);
            apply(Replayed::BootEnd { boot, clean });
        }
        self.shards.clear();
    }
}

/// Cut torn tails, give back zero tails, remove files torn at creation — only now that the
/// whole replay succeeded.
fn apply_fixes(fs: &dyn Fs, fixes: &[(PathBuf, file::Fix)]) -> Result<(), ReplayError> {
    let io = |p: &Path, e: std::io::Error| ReplayError::Io(format!("{}: {e}", p.display()));
    for (path, fix) in fixes {
        match fix {
            file::Fix::Truncate(len) => fs.truncate(path, *len).map_err(|e| io(path, e))?,
            file::Fix::Remove => {
                fs.remove(path).map_err(|e| io(path, e))?;
                if let Some(dir) = path.parent() {
                    fs.sync_dir(dir).map_err(|e| io(dir, e))?;
                }
            }
        }
    }
    Ok(())
}

/// Delete WAL files that lie entirely before `barrier` (a kept snapshot holds their effect).
pub fn remove_before(fs: &dyn Fs, dir: &Path, barrier: &Barrier) -> Result<usize, String> {
    let mut removed = 0;
    for f in listing::list_files(dir)? {
        if !barrier.covers(f.id.boot, f.id.shard, f.id.index) {
            fs.remove(&f.path)
                .map_err(|e| format!("{}: {e}", f.path.display()))?;
            removed += 1;
        }
    }
    if removed > 0 {
        fs.sync_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(removed)
}
