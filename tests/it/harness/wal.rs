//! A reader of WAL files as docs/STORAGE.md lays them out (16-byte header, then frames of
//! `len u32, crc u32, body` with the kind as the body's first byte), for tests that cut or
//! damage files at exact frame positions; snapshot files hold the same frames after their own
//! header (`frames_in`). It checks nothing: recovery is what is under test.

use std::path::{Path, PathBuf};

pub const HEADER: usize = 16;
pub const KIND_APPEND: u8 = 3;

/// One frame as found on disk.
#[derive(Debug, Clone, Copy)]
pub struct FrameAt {
    pub offset: usize,
    /// Header and body.
    pub len: usize,
    pub kind: u8,
}

/// Every `.wal` file under `<data-dir>/wal`, in name (replay) order.
pub fn files(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("wal")) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    out.sort();
    out
}

/// Frames from the header to the first zero length (the preallocated tail) or the end.
pub fn frames(file: &Path) -> Vec<FrameAt> {
    frames_in(&std::fs::read(file).unwrap_or_default(), HEADER)
}

/// Frames in `b` from offset `at` to the first zero length or the end.
pub fn frames_in(b: &[u8], mut at: usize) -> Vec<FrameAt> {
    let mut out = Vec::new();
    while at + 9 <= b.len() {
        let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 || at + 8 + len > b.len() {
            break;
        }
        out.push(FrameAt {
            offset: at,
            len: 8 + len,
            kind: b[at + 8],
        });
        at += 8 + len;
    }
    out
}

/// Bytes written into a file (its preallocated zero tail excluded).
pub fn written_len(file: &Path) -> usize {
    frames(file).last().map_or(HEADER, |f| f.offset + f.len)
}

/// Bytes written into all WAL files of a data dir.
pub fn written_bytes(data_dir: &Path) -> u64 {
    files(data_dir).iter().map(|f| written_len(f) as u64).sum()
}

/// The file with the most written bytes (the one a single busy topic writes to).
pub fn busiest_file(data_dir: &Path) -> PathBuf {
    let all = files(data_dir);
    assert!(
        !all.is_empty(),
        "no .wal files under {}/wal",
        data_dir.display()
    );
    all.into_iter().max_by_key(|p| written_len(p)).unwrap()
}

/// Append frames of a file, in order.
pub fn appends(file: &Path) -> Vec<FrameAt> {
    frames(file)
        .into_iter()
        .filter(|f| f.kind == KIND_APPEND)
        .collect()
}

/// XOR one byte of a file.
pub fn flip_byte(file: &Path, at: usize) {
    let mut b = std::fs::read(file).unwrap();
    b[at] ^= 0x5a;
    std::fs::write(file, b).unwrap();
}

/// Cut a file to its first `len` bytes, durably (what a crash mid-write leaves).
pub fn cut(file: &Path, len: usize) {
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.set_len(len as u64).unwrap();
    f.sync_all().unwrap();
}
