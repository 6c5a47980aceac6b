//! Which WAL files exist, which of them replay, and whether any file is missing from the
//! sequence: within a boot each shard's files are numbered 0, 1, 2, … with no gap, every
//! shard of a boot starts at 0 (or at the snapshot barrier's file), and a boot's shards are
//! 0..n with no gap.

use super::Damage;
use crate::storage::snapshot::Barrier;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WalFileId {
    pub boot: u32,
    pub shard: usize,
    pub index: u32,
}

#[derive(Debug, Clone)]
pub struct WalFile {
    pub id: WalFileId,
    pub path: PathBuf,
    pub len: u64,
    /// Last file of its (boot, shard) run: the only one whose end may be torn.
    pub is_tail: bool,
    /// Shards of this file's boot (its highest shard + 1).
    pub shards: usize,
}

/// The id of a WAL file this server wrote: exactly the shape `wal_file_name` produces, so a
/// foreign `1-0-0.wal` is never replayed, truncated or removed.
fn parse_name(name: &str) -> Option<WalFileId> {
    let stem = name.strip_suffix(".wal")?;
    let mut parts = stem.split('-');
    let boot = parts.next()?.parse().ok()?;
    let shard = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    let own =
        parts.next().is_none() && crate::storage::wal::wal_file_name(boot, shard, index) == name;
    own.then_some(WalFileId { boot, shard, index })
}

/// Every WAL file in `dir`, in replay order; unknown names are left alone.
pub fn list_files(dir: &Path) -> Result<Vec<WalFile>, String> {
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
                files.push(WalFile {
                    id,
                    path: entry.path(),
                    len,
                    is_tail: false,
                    shards: 0,
                });
            }
            None => tracing::warn!(file = %name, "ignoring unexpected file in the WAL directory"),
        }
    }
    files.sort_by(|a, b| a.id.cmp(&b.id));
    let mut shards: BTreeMap<u32, usize> = BTreeMap::new();
    for f in &files {
        let n = shards.entry(f.id.boot).or_default();
        *n = (*n).max(f.id.shard + 1);
    }
    for i in 0..files.len() {
        let next = files.get(i + 1).map(|n| (n.id.boot, n.id.shard));
        files[i].is_tail = next != Some((files[i].id.boot, files[i].id.shard));
        files[i].shards = shards.get(&files[i].id.boot).copied().unwrap_or(1);
    }
    Ok(files)
}

/// The files after the barrier (all of them without one).
pub fn replay_window(all: &[WalFile], after: Option<&Barrier>) -> Vec<WalFile> {
    all.iter()
        .filter(|f| after.is_none_or(|b| b.covers(f.id.boot, f.id.shard, f.id.index)))
        .cloned()
        .collect()
}

/// A place in the replayed sequence where files are missing.
#[derive(Debug, Clone)]
pub struct Gap {
    pub damage: Damage,
    /// Position in the replayed files the missing ones would have come before
    /// (`files.len()`: after the last).
    pub before: usize,
    /// The (shard, shards of its boot) whose files are missing; `None`: a whole boot.
    pub shard: Option<(usize, usize)>,
}

/// Every file missing from the replayed sequence: its frames would vanish silently.
pub fn check_sequence(files: &[WalFile], after: Option<&Barrier>) -> Vec<Gap> {
    let mut gaps = Vec::new();
    let mut runs: BTreeMap<(u32, usize), Vec<usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        runs.entry((f.id.boot, f.id.shard)).or_default().push(i);
    }
    if let Some(b) = after {
        let shards = b.start.len();
        for (shard, &start) in b.start.iter().enumerate() {
            if !runs.contains_key(&(b.boot, shard)) {
                let name = crate::storage::wal::wal_file_name(b.boot, shard, start);
                let what = "the file the snapshot's replay starts from";
                gaps.push(gap(files, &name, what, 0, Some((shard, shards))));
            }
        }
    }
    let mut boots: BTreeMap<u32, Vec<(usize, usize)>> = BTreeMap::new();
    for ((boot, shard), run) in &runs {
        boots.entry(*boot).or_default().push((*shard, run[0]));
        let first = match after {
            Some(b) if b.boot == *boot => b.start.get(*shard).copied().unwrap_or(0),
            _ => 0,
        };
        let shards = files[run[0]].shards;
        let mut want = first;
        for &i in run {
            if files[i].id.index != want {
                let name = crate::storage::wal::wal_file_name(*boot, *shard, want);
                let what = "a file in the middle of the sequence";
                gaps.push(gap(files, &name, what, i, Some((*shard, shards))));
            }
            want = files[i].id.index + 1;
        }
    }
    for (boot, shards) in boots {
        for (k, &(shard, at)) in shards.iter().enumerate() {
            if shard != k {
                let name = crate::storage::wal::wal_file_name(boot, k, 0);
                let total = files[at].shards;
                gaps.push(gap(
                    files,
                    &name,
                    "the first file of a shard",
                    at,
                    Some((k, total)),
                ));
                break;
            }
        }
    }
    gaps
}

/// Every boot names, in its first sync mark, the boot it followed; one inside the replayed
/// range with no file left went missing whole.
pub fn check_chain(files: &[WalFile]) -> Vec<Gap> {
    let Some(first) = files.first().map(|f| f.id.boot) else {
        return Vec::new();
    };
    let mut gaps = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let starts_boot = i == 0 || files[i - 1].id.boot != f.id.boot;
        let Some(prev) = starts_boot.then(|| prev_boot_of(&f.path)).flatten() else {
            continue;
        };
        if prev >= first && prev < f.id.boot && !files.iter().any(|g| g.id.boot == prev) {
            let mut g = gap(files, "", "", i, None);
            g.damage.file = f.path.clone();
            g.damage.what = format!(
                "boot {} followed boot {prev}, but no WAL file of boot {prev} is left",
                f.id.boot
            );
            gaps.push(g);
        }
    }
    gaps
}

/// The `prev_boot` of a format-2 file's first sync mark (it follows the header).
fn prev_boot_of(path: &Path) -> Option<u32> {
    use std::io::Read;
    let mut head = vec![0u8; crate::storage::frame::FILE_HEADER_LEN + 64];
    let mut f = std::fs::File::open(path).ok()?;
    let n = f.read(&mut head).ok()?;
    head.truncate(n);
    let buf = bytes::Bytes::from(head);
    match crate::storage::frame::decode(&buf, crate::storage::frame::FILE_HEADER_LEN) {
        Ok((crate::storage::frame::Frame::Sync { prev_boot, .. }, _)) => Some(prev_boot),
        _ => None,
    }
}

fn gap(
    files: &[WalFile],
    name: &str,
    what: &str,
    before: usize,
    shard: Option<(usize, usize)>,
) -> Gap {
    let dir = files
        .first()
        .and_then(|f| f.path.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Gap {
        damage: Damage {
            file: dir.join(name),
            offset: 0,
            what: format!("WAL file missing ({what}); its frames cannot be replayed"),
            topics: Vec::new(),
        },
        before,
        shard,
    }
}
