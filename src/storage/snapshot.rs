//! Snapshot files: a consistent image of all durable state plus the WAL position (per shard)
//! where replay must resume. Written atomically (temp file → fsync → rename → fsync dir);
//! the newest valid one wins, a corrupt or partial one falls back to the previous.
//!
//! Layout of `snapshots/{number:020}.snap`: header (magic `TOPICSNP`, version u16, shard count
//! u16, number u64, boot u32, one u32 start index per shard, crc32 of all that), then ordinary
//! WAL frames,
//! ending with a SnapshotEnd frame. WAL files before the *previous* snapshot's barrier are
//! deleted, so a fallback to it always finds its tail.

use super::frame::{self, Frame};
use super::fs::Fs;
use bytes::Bytes;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"TOPICSNP";
const VERSION: u16 = 1;

/// Where a snapshot's WAL tail begins: every file of a later boot, and files of `boot` whose
/// index is at least `start[shard]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barrier {
    pub boot: u32,
    pub start: Vec<u32>,
}

impl Barrier {
    /// Is the WAL file (boot, shard, index) part of the tail after this barrier?
    pub fn covers(&self, boot: u32, shard: usize, index: u32) -> bool {
        boot > self.boot
            || (boot == self.boot && index >= self.start.get(shard).copied().unwrap_or(0))
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub number: u64,
    pub barrier: Barrier,
    /// Every frame, SnapshotEnd last.
    pub frames: Vec<Frame>,
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

pub fn file_name(number: u64) -> String {
    format!("{number:020}.snap")
}

/// The number of a snapshot file this server wrote: exactly the shape `file_name` produces.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let n = name.strip_suffix(".snap")?.parse().ok()?;
    (file_name(n) == name).then_some(n)
}

/// Write snapshot `number` atomically through `fs`; `body` writes the frames (without the
/// end marker).
pub fn write(
    fs: &dyn Fs,
    dir: &Path,
    number: u64,
    barrier: &Barrier,
    end: (u64, u64),
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    let mut w: Vec<u8> = Vec::with_capacity(1 << 20);
    w.extend_from_slice(&MAGIC);
    w.extend_from_slice(&VERSION.to_le_bytes());
    w.extend_from_slice(&(barrier.start.len() as u16).to_le_bytes());
    w.extend_from_slice(&number.to_le_bytes());
    w.extend_from_slice(&barrier.boot.to_le_bytes());
    for s in &barrier.start {
        w.extend_from_slice(&s.to_le_bytes());
    }
    // The barrier decides where replay resumes: a flipped bit there must not go unnoticed.
    let crc = crc32fast::hash(&w);
    w.extend_from_slice(&crc.to_le_bytes());
    body(&mut w)?;
    frame::encode_snapshot_end(&mut w, end.0, end.1);
    let path = dir.join(file_name(number));
    fs.write_atomic(&path, &w)?;
    Ok(path)
}

/// Snapshot numbers present, ascending; removes leftover temp files of interrupted writes.
/// Files of any other name are not this server's: they are left alone, with a warning.
pub fn list(fs: &dyn Fs, dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(numbers),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let temp_of = name.strip_suffix(".tmp").and_then(parse_file_name);
        if temp_of.is_some() && entry.file_type()?.is_file() {
            fs.remove(&entry.path())?;
        } else if let Some(n) = parse_file_name(&name) {
            numbers.push(n);
        } else if temp_of.is_none() {
            tracing::warn!(file = %name, "ignoring unexpected file in the snapshot directory");
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Read and fully validate one snapshot; `None` if it is corrupt or incomplete.
pub fn load(dir: &Path, number: u64) -> Option<Snapshot> {
    read_checked(dir, number).ok()
}

/// `load`, saying where the first failure is: (file offset, what).
fn read_checked(dir: &Path, number: u64) -> Result<Snapshot, (u64, String)> {
    let buf =
        std::fs::read(dir.join(file_name(number))).map_err(|e| (0, format!("cannot read: {e}")))?;
    check(Bytes::from(buf), number)
}

/// Every check `load` makes, saying where the first failure is: (file offset, what).
pub fn check(buf: Bytes, number: u64) -> Result<Snapshot, (u64, String)> {
    let (barrier, mut at) = parse_header(&buf, number)
        .ok_or((0, "bad header (magic, version, number or crc)".into()))?;
    let mut frames = Vec::new();
    while at < buf.len() {
        let (f, next) = frame::decode(&buf, at).map_err(|e| (at as u64, format!("{e:?} frame")))?;
        frames.push(f);
        at = next;
    }
    if !matches!(frames.last(), Some(Frame::SnapshotEnd { .. })) {
        return Err((buf.len() as u64, "no end marker: incomplete".into()));
    }
    Ok(Snapshot {
        number,
        barrier,
        frames,
    })
}

fn parse_header(buf: &[u8], number: u64) -> Option<(Barrier, usize)> {
    let u16_at = |i: usize| Some(u16::from_le_bytes(buf.get(i..i + 2)?.try_into().ok()?));
    let u32_at = |i: usize| Some(u32::from_le_bytes(buf.get(i..i + 4)?.try_into().ok()?));
    let u64_at = |i: usize| Some(u64::from_le_bytes(buf.get(i..i + 8)?.try_into().ok()?));
    if buf.get(..8)? != MAGIC || u16_at(8)? != VERSION || u64_at(12)? != number {
        return None;
    }
    let shards = u16_at(10)? as usize;
    let boot = u32_at(20)?;
    let start = (0..shards)
        .map(|i| u32_at(24 + 4 * i))
        .collect::<Option<Vec<_>>>()?;
    let end = 24 + 4 * shards;
    if crc32fast::hash(buf.get(..end)?) != u32_at(end)? {
        return None;
    }
    Some((Barrier { boot, start }, end + 4))
}

/// Newest valid snapshot, falling back past corrupt ones. `Err` when snapshots exist but none
/// is valid: the WAL before them may be gone, so starting would silently lose state.
pub fn load_latest(fs: &dyn Fs, dir: &Path) -> Result<Option<Snapshot>, String> {
    let numbers = list(fs, dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut skipped = Vec::new();
    for &n in numbers.iter().rev() {
        let path = dir.join(file_name(n));
        match read_checked(dir, n) {
            Ok(s) => return Ok(Some(s)),
            Err((offset, what)) => {
                tracing::warn!(file = %path.display(), offset, what = %what,
                    "snapshot is corrupt or incomplete; trying the previous one");
                skipped.push(format!("{} at offset {offset}: {what}", path.display()));
            }
        }
    }
    if numbers.is_empty() {
        Ok(None)
    } else {
        Err(format!(
            "no valid snapshot in {}; refusing to start with missing state ({})",
            dir.display(),
            skipped.join("; ")
        ))
    }
}

/// Keep the newest two snapshots, and any in `pinned` (an online backup is reading it);
/// return the older of the newest two's barrier (WAL before it may go: a pinned snapshot is
/// read as a file, never replayed from this directory's WAL).
pub fn prune(
    fs: &dyn Fs,
    dir: &Path,
    pinned: &std::collections::HashSet<u64>,
) -> std::io::Result<Option<Barrier>> {
    let numbers = list(fs, dir)?;
    if numbers.len() < 2 {
        return Ok(None);
    }
    let keep_from = numbers[numbers.len() - 2];
    let gone = |n: &&u64| **n < keep_from && !pinned.contains(n);
    for &n in numbers.iter().filter(gone) {
        fs.remove(&dir.join(file_name(n)))?;
    }
    fs.sync_dir(dir)?;
    Ok(load(dir, keep_from).map(|s| s.barrier))
}

#[cfg(test)]
mod tests;
