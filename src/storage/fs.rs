//! File-system seam for every mutating storage operation while serving — WAL appends and
//! fdatasyncs, WAL file creation, atomic file writes of segments and snapshots, renames,
//! removals, directory syncs — so tests can cut the power after any one of them. `RealFs` is
//! the production implementation; `FaultFs` (unit tests) fails every operation from the Nth
//! on and, on `power_cut`, undoes every effect that was not yet durable; `InjectedFs` (the
//! real binary under `TOPICS_TEST_*` variables) makes fsyncs or renames fail with EIO.

use std::io;
use std::path::Path;

/// A file opened for appending (a WAL file).
pub trait AppendFile: Send {
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
}

pub trait Fs: Send + Sync + std::fmt::Debug {
    /// Create a new file (failing if it exists) for appending.
    fn create_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Create or truncate `path` and write `data` (not yet durable).
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// fsync a file's contents.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Cut a file to `len` bytes and fsync it (recovery of a torn tail).
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// fsync a directory, making creations, renames and removals in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// The durable atomic replace: temp file, fsync, rename, directory fsync.
    fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        self.create_dir_all(dir)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        self.write_file(&tmp, data)?;
        self.sync_file(&tmp)?;
        self.rename(&tmp, path)?;
        self.sync_dir(dir)
    }
}

#[derive(Debug, Default)]
pub struct RealFs;

impl AppendFile for std::fs::File {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        std::io::Write::write_all(self, data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }
}

impl Fs for RealFs {
    fn create_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let f = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        Ok(Box::new(f))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        std::fs::write(path, data)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        super::sync_dir(dir)
    }
}

#[cfg(test)]
pub mod fault;
pub mod injected;
