//! Test-only I/O failures for the real binary: `RealFs` with the WAL's fdatasyncs, or renames,
//! failing with EIO after a given number of successes. The integration tests use it to prove
//! that a storage failure stops the process with a non-zero status and that a restart
//! recovers every acknowledged write. Chosen by `TOPICS_TEST_*` variables that production
//! never sets; the composition root logs loudly when one is.

use super::{AppendFile, Fs, RealFs};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Linux `EIO`: what a failing disk returns, so logs read as they would in production.
const EIO: i32 = 5;

/// Lets the first `n` operations of one kind through, then fails every later one.
#[derive(Debug)]
struct Budget(Option<AtomicU64>);

impl Budget {
    fn new(successes: Option<u64>) -> Self {
        Budget(successes.map(AtomicU64::new))
    }

    fn spend(&self, what: &str) -> io::Result<()> {
        let Some(left) = &self.0 else {
            return Ok(());
        };
        let spent = left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if spent.is_ok() {
            return Ok(());
        }
        tracing::error!(what, "injecting EIO (test-only fault injection)");
        Err(io::Error::from_raw_os_error(EIO))
    }
}

/// `RealFs` with injected failures.
#[derive(Debug)]
pub struct InjectedFs {
    fsyncs: Arc<Budget>,
    renames: Budget,
}

impl InjectedFs {
    /// `fsyncs`: WAL fdatasyncs that succeed before the rest fail; `renames` likewise.
    /// `None` leaves that kind alone.
    pub fn new(fsyncs: Option<u64>, renames: Option<u64>) -> Self {
        InjectedFs {
            fsyncs: Arc::new(Budget::new(fsyncs)),
            renames: Budget::new(renames),
        }
    }
}

/// A WAL file whose `sync_data` draws on the shared fsync budget.
struct InjectedFile {
    inner: Box<dyn AppendFile>,
    fsyncs: Arc<Budget>,
}

impl AppendFile for InjectedFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.append(data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.fsyncs.spend("WAL fdatasync")?;
        self.inner.sync_data()
    }

    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        self.inner.preallocate(len)
    }

    fn shrink_to_written(&mut self) -> io::Result<()> {
        self.inner.shrink_to_written()
    }
}

impl Fs for InjectedFs {
    fn create_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(InjectedFile {
            inner: RealFs.create_append(path)?,
            fsyncs: self.fsyncs.clone(),
        }))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        RealFs.write_file(path, data)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        RealFs.sync_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.renames.spend("rename")?;
        RealFs.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        RealFs.remove(path)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        RealFs.truncate(path, len)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        RealFs.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_n_pass_and_every_later_one_fails_with_eio() {
        let budget = Budget::new(Some(2));
        assert!(budget.spend("x").is_ok());
        assert!(budget.spend("x").is_ok());
        for _ in 0..3 {
            let err = budget.spend("x").unwrap_err();
            assert_eq!(err.raw_os_error(), Some(EIO));
        }
        let unlimited = Budget::new(None);
        assert!((0..100).all(|_| unlimited.spend("x").is_ok()));
    }
}
