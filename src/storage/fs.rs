//! File-system seam for every mutating storage operation while serving — WAL appends and
//! fdatasyncs, WAL file creation, atomic file writes of segments and snapshots, renames,
//! removals, directory syncs — so tests can cut the power after any one of them. `RealFs` is
//! the production implementation; `FaultFs` (unit tests) fails every operation from the Nth
//! on and, on `power_cut`, undoes every effect that was not yet durable, and injects a single
//! EIO or a space budget that runs out with ENOSPC; `InjectedFs` (the
//! real binary under `TOPICS_TEST_*` variables) makes fsyncs or renames fail with EIO.

use std::io;
use std::path::Path;

/// A file written strictly front to back (a WAL file). Writes go to the logical end the
/// file tracks itself, not to the end of the file on disk, because a preallocated file is
/// longer than what was written into it.
pub trait AppendFile: Send {
    /// Write `data` at the logical end and advance it. On error the logical end stays where
    /// it was; whatever part of `data` reached the file lies past it until the next append
    /// overwrites it or `shrink_to_written` cuts it off.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
    /// Reserve disk blocks for the first `len` bytes (zero-filled), so later appends inside
    /// them cannot fail for lack of space. `Ok(false)`: the file system cannot preallocate.
    fn preallocate(&mut self, len: u64) -> io::Result<bool>;
    /// Cut the file to its logical end and make that durable: a closed file keeps only what
    /// was written into it, and a failed append leaves nothing behind.
    fn shrink_to_written(&mut self) -> io::Result<()>;
}

/// True for the errors that mean "no space left" (a full disk or an exhausted quota): the
/// only write failures the WAL survives, because nothing was acknowledged into the space
/// that is missing and a retry once space is back writes exactly the same bytes.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
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
        let placed = self
            .write_file(&tmp, data)
            .and_then(|()| self.sync_file(&tmp))
            .and_then(|()| self.rename(&tmp, path));
        if let Err(e) = placed {
            // Out of space before the rename: the new file never replaced anything, so its
            // temp file goes (freeing what it took) and the caller may simply retry later.
            if is_no_space(&e) {
                let _ = self.remove(&tmp);
            }
            return Err(e);
        }
        self.sync_dir(dir)
    }
}

#[derive(Debug, Default)]
pub struct RealFs;

/// A real WAL file and its logical end.
struct RealAppend {
    file: std::fs::File,
    end: u64,
}

impl AppendFile for RealAppend {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, self.end)?;
        self.end += data.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        fallocate(&self.file, len)
    }

    fn shrink_to_written(&mut self) -> io::Result<()> {
        self.file.set_len(self.end)?;
        self.file.sync_all()
    }
}

/// `fallocate(2)` in its default mode: blocks are reserved and the file size grows to `len`
/// (reading as zeros). File systems without it report `Ok(false)`.
pub fn fallocate(file: &std::fs::File, len: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::other("length too large"))?;
    // SAFETY: plain syscall on a file descriptor this function borrows for its duration.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(false),
        _ => Err(err),
    }
}

impl Fs for RealFs {
    fn create_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(path)?;
        Ok(Box::new(RealAppend { file, end: 0 }))
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
