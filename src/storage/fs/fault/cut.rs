//! The power cut: what survives of un-synced appends, file contents and directory entries.

use super::{CutMode, EntryUndo, State, Undo};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The unit a disk writes whole. Bytes inside one sector are never lost out of order: a
/// sector holds either its old or its new contents (and its new contents are a prefix of the
/// appends into it, written front to back). Pages of the page cache are written back as
/// whole sectors, in any order.
pub const SECTOR_BYTES: u64 = 512;

/// What survives of `[synced, written)`, the bytes appended after the last fdatasync: the
/// surviving range `[from, to)`; bytes in `[synced, from)` read as lost (zeros or garbage).
fn survivors(mode: CutMode, synced: u64, written: u64) -> (u64, u64) {
    let half = synced + (written - synced) / 2;
    match mode {
        CutMode::Clean => (synced, synced),
        CutMode::TornPrefix => (synced, half),
        CutMode::OutOfOrder | CutMode::OutOfOrderGarbage => match sector_split(synced, written) {
            Some(split) => (split, written),
            // All of it lies in one sector: no later sector to survive without it.
            None => (synced, synced),
        },
    }
}

/// The sector boundary inside `(synced, written)` nearest to its middle, if any.
fn sector_split(synced: u64, written: u64) -> Option<u64> {
    let first = (synced / SECTOR_BYTES + 1) * SECTOR_BYTES;
    if first >= written {
        return None;
    }
    let last = (written - 1) / SECTOR_BYTES * SECTOR_BYTES;
    let mid = synced + (written - synced) / 2;
    let nearest = (mid + SECTOR_BYTES / 2) / SECTOR_BYTES * SECTOR_BYTES;
    Some(nearest.clamp(first, last))
}

/// Deterministic junk for the garbage mode (xorshift, never a valid frame in practice: the
/// crc would have to match).
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Apply `mode` to one append file with un-synced appends; true when later bytes survived
/// while earlier ones were lost.
fn cut_file(path: &Path, mode: CutMode, synced: u64, written: u64, prealloc: Option<u64>) -> bool {
    let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) else {
        return false;
    };
    let written = written.max(synced);
    let (from, to) = survivors(mode, synced, written);
    let _ = f.set_len(to);
    if from > synced {
        let lost = (from - synced) as usize;
        let fill = match mode {
            CutMode::OutOfOrderGarbage => garbage(lost, synced),
            _ => vec![0; lost],
        };
        let _ = f.write_all_at(&fill, synced);
    }
    // Blocks that were preallocated stay allocated and read as zeros.
    if let Some(pre) = prealloc {
        let _ = f.set_len(pre.max(to));
    }
    from > synced
}

impl State {
    /// Undo every effect that was not durable, newest first. Returns the append files whose
    /// later un-synced bytes survived while earlier ones were lost.
    pub(super) fn roll_back(&mut self, mode: CutMode) -> Vec<PathBuf> {
        let mut split = Vec::new();
        for (path, synced) in self.synced_len.drain().collect::<Vec<_>>() {
            let written = self.written_len.get(&path).copied().unwrap_or(synced);
            let prealloc = self.prealloc_len.get(&path).copied();
            if cut_file(&path, mode, synced, written, prealloc) {
                split.push(path);
            }
        }
        let pending: Vec<_> = self.pending.drain().collect();
        for (path, durable) in pending {
            self.journal.push(Undo::Contents { path, durable });
        }
        while let Some(u) = self.journal.pop() {
            undo(u);
        }
        split
    }
}

fn undo(u: Undo) {
    match u {
        Undo::Contents {
            path,
            durable: Some(c),
        } => {
            if path.exists() {
                let _ = std::fs::write(&path, c);
            }
        }
        Undo::Contents {
            path,
            durable: None,
        } => {
            let _ = std::fs::write(&path, b"");
        }
        Undo::Entry {
            undo: EntryUndo::Created(p),
            ..
        } => {
            let _ = std::fs::remove_file(p);
        }
        Undo::Entry {
            undo:
                EntryUndo::Renamed {
                    from,
                    to,
                    to_before,
                },
            ..
        } => {
            let _ = std::fs::rename(&to, &from);
            if let Some(c) = to_before {
                let _ = std::fs::write(&to, c);
            }
        }
        Undo::Entry {
            undo: EntryUndo::Removed { path, contents },
            ..
        } => {
            let _ = std::fs::write(path, contents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_splits_at_the_sector_boundary_nearest_the_middle() {
        let s = SECTOR_BYTES;
        assert_eq!(
            sector_split(100, 300),
            None,
            "one sector: nothing to reorder"
        );
        assert_eq!(sector_split(s - 10, s + 10), Some(s));
        assert_eq!(sector_split(10, 4 * s), Some(2 * s));
        assert_eq!(
            sector_split(s, 2 * s),
            None,
            "starts on a boundary, one sector long"
        );
        assert_eq!(sector_split(s, 2 * s + 1), Some(2 * s));
        assert_eq!(survivors(CutMode::OutOfOrder, 10, 4 * s), (2 * s, 4 * s));
        assert_eq!(survivors(CutMode::OutOfOrder, 100, 300), (100, 100));
        assert_eq!(survivors(CutMode::TornPrefix, 100, 300), (100, 200));
        assert_eq!(survivors(CutMode::Clean, 100, 300), (100, 100));
    }
}
