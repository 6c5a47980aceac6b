//! The disk's own cost of a durable write: 4 KiB `write` + `fdatasync`, one at a time, in a
//! file that grows with every write (as a WAL without preallocation does: each `fdatasync`
//! also has to write the inode's new size) and in one laid out in advance (overwrites in
//! place: the data alone), and one whose blocks were reserved with `posix_fallocate` but never
//! written (as topics reserves WAL files). Prints one JSON line per mode.
//!
//!   disk --dir DIR [--n 3000]

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::time::Instant;

use serde_json::json;

use crate::{pct, Args, Res};

pub fn cmd_disk(a: &Args) -> Res<()> {
    let dir = std::path::PathBuf::from(a.s("dir", "."));
    let n = a.n("n", 3000);
    std::fs::create_dir_all(&dir)?;
    let block = vec![0x5au8; 4096];
    for mode in ["append", "fallocated", "preallocated"] {
        let path = dir.join(format!("peers-disk-{mode}"));
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        if mode == "fallocated" {
            // Blocks reserved but unwritten, as topics reserves each WAL file: the first write
            // into each block still converts it (a metadata change the fdatasync carries).
            use std::os::fd::AsRawFd;
            let len = (n * block.len() as u64) as libc::off_t;
            // SAFETY: a valid open descriptor; no pointers are passed.
            let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len) };
            if rc != 0 {
                return Err(format!("posix_fallocate: error {rc}").into());
            }
            f.sync_all()?;
        }
        if mode == "preallocated" {
            // Real blocks, not a hole: written and made durable before timing starts.
            for _ in 0..n {
                f.write_all(&block)?;
            }
            f.sync_all()?;
            f.seek(SeekFrom::Start(0))?;
        }
        let mut lat = Vec::with_capacity(n as usize);
        let t0 = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            f.write_all(&block)?;
            f.sync_data()?;
            lat.push(t.elapsed().as_micros() as u32);
        }
        let secs = t0.elapsed().as_secs_f64();
        lat.sort_unstable();
        println!(
            "{}",
            json!({
                "kind": "disk",
                "mode": mode,
                "writes": n,
                "iops": n as f64 / secs,
                "p50_ms": pct(&lat, 0.50),
                "p99_ms": pct(&lat, 0.99),
            })
        );
        drop(f);
        std::fs::remove_file(&path)?;
    }
    Ok(())
}
