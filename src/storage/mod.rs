//! Bytes on disk. Knows frames and files, not HTTP and not topic semantics.
//!
//! - `frame`: the WAL frame codec (crc32, format version).
//! - `wal`: group-committing writer threads, one per shard.
//! - `recovery`: replays WAL files at startup, truncating a torn tail.
//! - `lock`: the data-directory lock.
//! - `segment`: sealed segment files; `snapshot`: checkpoint files.
//! - `verify`: offline checks of every checksum in a data directory (`topics verify`).

pub mod frame;
pub mod fs;
pub mod health;
pub mod lock;
pub mod recovery;
pub mod segment;
pub mod snapshot;
pub mod verify;
pub mod wal;

use std::path::{Path, PathBuf};

/// Folder of WAL files inside the data dir.
pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

/// Stable FNV-1a hash of a topic name: the shard mapping must not change between builds.
pub fn shard_of(name: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// fsync a directory so a created, renamed or removed entry in it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
