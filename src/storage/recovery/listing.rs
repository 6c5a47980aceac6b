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

/// A file missing from the replayed sequence is damage: its frames would vanish silently.
pub fn check_sequence(files: &[WalFile], after: Option<&Barrier>) -> Result<(), Damage> {
    let mut runs: BTreeMap<(u32, usize), Vec<&WalFile>> = BTreeMap::new();
    for f in files {
        runs.entry((f.id.boot, f.id.shard)).or_default().push(f);
    }
    if let Some(b) = after {
        for (shard, &start) in b.start.iter().enumerate() {
            if !runs.contains_key(&(b.boot, shard)) {
                let name = crate::storage::wal::wal_file_name(b.boot, shard, start);
                return Err(missing(
                    files,
                    &name,
                    "the file the snapshot's replay starts from",
                ));
            }
        }
    }
    let mut boots: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for ((boot, shard), run) in &runs {
        boots.entry(*boot).or_default().push(*shard);
        let first = match after {
            Some(b) if b.boot == *boot => b.start.get(*shard).copied().unwrap_or(0),
            _ => 0,
        };
        for (k, f) in run.iter().enumerate() {
            let want = first + k as u32;
            if f.id.index != want {
                let name = crate::storage::wal::wal_file_name(*boot, *shard, want);
                return Err(missing(
                    files,
                    &name,
                    "a file in the middle of the sequence",
                ));
            }
        }
    }
    for (boot, shards) in boots {
        if let Some(gap) = (0..shards.len()).find(|s| shards[*s] != *s) {
            let name = crate::storage::wal::wal_file_name(boot, gap, 0);
            return Err(missing(files, &name, "the first file of a shard"));
        }
    }
    Ok(())
}

fn missing(files: &[WalFile], name: &str, what: &str) -> Damage {
    let dir = files
        .first()
        .and_then(|f| f.path.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Damage {
        file: dir.join(name),
        offset: 0,
        what: format!("WAL file missing ({what}); its frames cannot be replayed"),
        topics: Vec::new(),
    }
}
