//! WAL replay at startup. Files are replayed in (boot, shard, index) order: within one boot a
//! topic's frames all live in one shard, and every boot's frames follow the previous boot's,
//! so per-topic order is exact even if the shard count changed between runs.
//!
//! Torn states: the last file of each (boot, shard) run may end in a partial or corrupt frame
//! (a crash mid-write): it is truncated at the first bad frame and synced. A last file whose
//! header is incomplete (a crash while creating it) is removed. A bad frame anywhere else is
//! corruption of data that was once complete: startup fails rather than silently dropping it.

use super::frame::{self, DecodeError, FileHeader, Frame, FILE_HEADER_LEN};
use super::fs::Fs;
use super::snapshot::Barrier;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The boot number the next run must use.
    pub next_boot: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WalFileId {
    pub(crate) boot: u32,
    pub(crate) shard: usize,
    pub(crate) index: u32,
}

fn parse_name(name: &str) -> Option<WalFileId> {
    let stem = name.strip_suffix(".wal")?;
    let mut parts = stem.split('-');
    let boot = parts.next()?.parse().ok()?;
    let shard = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some(WalFileId { boot, shard, index })
}

/// WAL files in replay order, with their lengths.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<(WalFileId, PathBuf, u64)>, String> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match parse_name(&name) {
            Some(id) => {
                let len = entry.metadata().map_err(|e| format!("{name}: {e}"))?.len();
                files.push((id, entry.path(), len));
            }
            None => tracing::warn!(file = %name, "ignoring unexpected file in the WAL directory"),
        }
    }
    files.sort();
    Ok(files)
}

/// Replay every WAL file in `dir` (only those after `after`, a snapshot's barrier, if given),
/// handing each valid frame to `apply` in order.
pub fn replay(
    fs: &dyn Fs,
    dir: &Path,
    after: Option<&Barrier>,
    progress: &ReplayProgress,
    mut apply: impl FnMut(Frame),
) -> Result<ReplaySummary, String> {
    let all = list_files(dir)?;
    let next_boot = all
        .iter()
        .map(|f| f.0.boot.saturating_add(1))
        .max()
        .unwrap_or(1);
    // A file is a tail when it is the last of its (boot, shard) run: decided over all files.
    let files: Vec<_> = all
        .iter()
        .enumerate()
        .map(|(i, (id, path, len))| {
            let tail = all
                .get(i + 1)
                .is_none_or(|(next, _, _)| (next.boot, next.shard) != (id.boot, id.shard));
            (id, path, *len, tail)
        })
        .filter(|(id, ..)| after.is_none_or(|b| b.covers(id.boot, id.shard, id.index)))
        .collect();
    let total: u64 = files.iter().map(|f| f.2).sum();
    progress.total_bytes.store(total.max(1), Ordering::Relaxed);
    let mut summary = ReplaySummary {
        next_boot,
        ..Default::default()
    };
    let mut base = 0u64;
    for (_, path, len, is_tail) in files {
        let buf = Bytes::from(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
        let mut on_frame = |f: Frame, offset: usize| {
            progress
                .done_bytes
                .store(base + offset as u64, Ordering::Relaxed);
            apply(f)
        };
        let (frames, truncated) = replay_file(fs, &buf, path, is_tail, &mut on_frame)?;
        summary.files += 1;
        summary.frames += frames;
        summary.truncated_bytes += truncated;
        base += len;
        progress.done_bytes.store(base, Ordering::Relaxed);
    }
    progress.done_bytes.store(total.max(1), Ordering::Relaxed);
    Ok(summary)
}

/// Delete WAL files that lie entirely before `barrier` (a kept snapshot holds their effect).
pub fn remove_before(fs: &dyn Fs, dir: &Path, barrier: &Barrier) -> Result<usize, String> {
    let mut removed = 0;
    for (id, path, _) in list_files(dir)? {
        if !barrier.covers(id.boot, id.shard, id.index) {
            fs.remove(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            removed += 1;
        }
    }
    if removed > 0 {
        fs.sync_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(removed)
}

/// Returns (frames applied, bytes truncated).
fn replay_file(
    fs: &dyn Fs,
    buf: &Bytes,
    path: &Path,
    is_tail: bool,
    apply: &mut impl FnMut(Frame, usize),
) -> Result<(u64, u64), String> {
    if let Err(e) = FileHeader::decode(buf) {
        if is_tail && (e == DecodeError::Truncated || buf.len() < FILE_HEADER_LEN) {
            tracing::warn!(file = %path.display(), "removing WAL file torn during creation");
            fs.remove(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(parent) = path.parent() {
                fs.sync_dir(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            return Ok((0, buf.len() as u64));
        }
        return Err(format!(
            "{}: not a WAL file of this format version",
            path.display()
        ));
    }
    let mut at = FILE_HEADER_LEN;
    let mut frames = 0;
    while at < buf.len() {
        match frame::decode(buf, at) {
            Ok((f, next)) => {
                apply(f, next);
                frames += 1;
                at = next;
            }
            Err(e) if is_tail => {
                let cut = buf.len() - at;
                tracing::warn!(file = %path.display(), offset = at, bytes = cut, error = ?e,
                    "truncating torn WAL tail");
                fs.truncate(path, at as u64)
                    .map_err(|e| format!("truncate {}: {e}", path.display()))?;
                return Ok((frames, cut as u64));
            }
            Err(e) => {
                return Err(format!(
                    "{}: {e:?} frame at offset {at} in a sealed WAL file; refusing to start \
                     with silently missing data",
                    path.display()
                ))
            }
        }
    }
    Ok((frames, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::wal::wal_file_name;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("topics-rec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn file_with(dir: &Path, boot: u32, shard: usize, frames: &[u64]) -> PathBuf {
        file_at(dir, boot, shard, 0, frames)
    }

    fn file_at(dir: &Path, boot: u32, shard: usize, index: u32, frames: &[u64]) -> PathBuf {
        let mut out = FileHeader {
            shard: shard as u16,
            boot,
        }
        .encode()
        .to_vec();
        for &c in frames {
            frame::encode_reserve(&mut out, 1, c);
        }
        let p = dir.join(wal_file_name(boot, shard, index));
        std::fs::write(&p, out).unwrap();
        p
    }

    fn ceilings(dir: &Path) -> Result<(Vec<u64>, ReplaySummary), String> {
        let mut seen = Vec::new();
        let s = replay(
            &crate::storage::fs::RealFs,
            dir,
            None,
            &ReplayProgress::default(),
            |f| {
                if let Frame::Reserve { ceiling, .. } = f {
                    seen.push(ceiling)
                }
            },
        )?;
        Ok((seen, s))
    }

    #[test]
    fn replays_boots_in_order_and_picks_next_boot() {
        let d = tmp("order");
        file_with(&d, 2, 0, &[3, 4]);
        file_with(&d, 1, 1, &[1, 2]);
        let (seen, s) = ceilings(&d).unwrap();
        assert_eq!(seen, vec![1, 2, 3, 4]);
        assert_eq!(s.next_boot, 3);
    }

    #[test]
    fn torn_tail_is_truncated_at_every_cut_point() {
        let d = tmp("torn");
        let p = file_with(&d, 1, 0, &[10, 20, 30]);
        let full = std::fs::read(&p).unwrap();
        let frame_len = (full.len() - FILE_HEADER_LEN) / 3;
        for cut in 1..frame_len {
            std::fs::write(&p, &full[..full.len() - cut]).unwrap();
            let (seen, s) = ceilings(&d).unwrap();
            assert_eq!(seen, vec![10, 20], "cut {cut}");
            assert_eq!(s.truncated_bytes as usize, frame_len - cut);
            assert_eq!(
                std::fs::metadata(&p).unwrap().len() as usize,
                full.len() - frame_len
            );
        }
    }

    #[test]
    fn corruption_in_a_sealed_file_refuses_to_start() {
        let d = tmp("sealed");
        let p = file_at(&d, 1, 0, 0, &[1, 2]);
        file_at(&d, 1, 0, 1, &[3]);
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        assert!(ceilings(&d).unwrap_err().contains("refusing"));
    }

    #[test]
    fn each_boot_may_end_torn() {
        let d = tmp("boots");
        let p = file_with(&d, 1, 0, &[1, 2]);
        file_with(&d, 2, 0, &[3]);
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 3).unwrap();
        let (seen, _) = ceilings(&d).unwrap();
        assert_eq!(
            seen,
            vec![1, 3],
            "boot 1 crashed mid-frame; boot 2 is intact"
        );
    }

    #[test]
    fn file_torn_at_creation_is_removed() {
        let d = tmp("hdr");
        file_with(&d, 1, 0, &[1]);
        let p = d.join(wal_file_name(2, 0, 0));
        std::fs::write(&p, b"TOPIC").unwrap();
        let (seen, s) = ceilings(&d).unwrap();
        assert_eq!(seen, vec![1]);
        assert!(!p.exists());
        assert_eq!(s.next_boot, 3, "the removed file's boot is still consumed");
    }
}
