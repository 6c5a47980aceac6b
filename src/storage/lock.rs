//! Data-directory lock: one server per directory. An advisory `flock` on the directory itself,
//! held for the life of the process (the kernel drops it if the process dies, even on
//! `kill -9`). The directory is the one thing that cannot be deleted while the server uses it
//! the way a lock file can: with a `LOCK` file, removing it let a second server create a new
//! one, lock that, and write the same directory.

use std::fs::File;
use std::path::Path;

/// Holds the lock while alive.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

pub fn lock_data_dir(dir: &Path) -> Result<DirLock, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    // Opening a directory read-only is allowed and gives an fd flock works on (Linux).
    let handle = File::open(dir)
        .map_err(|e| format!("cannot open data directory {}: {e}", dir.display()))?;
    match handle.try_lock() {
        Ok(()) => Ok(DirLock { _dir: handle }),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "data directory {} is locked by another topics process",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("cannot lock data directory {}: {e}", dir.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("topics-lock-{tag}-{}", std::process::id()))
    }

    #[test]
    fn second_lock_on_same_dir_fails() {
        let dir = temp_dir("twice");
        let first = lock_data_dir(&dir).unwrap();
        let err = lock_data_dir(&dir).unwrap_err();
        assert!(err.contains("locked by another topics process"), "{err}");
        drop(first);
        assert!(lock_data_dir(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_file_in_the_directory_carries_the_lock() {
        let dir = temp_dir("files");
        let first = lock_data_dir(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        assert!(
            lock_data_dir(&dir).is_err(),
            "emptying the directory frees nothing"
        );
        drop(first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
