//! Data-directory lock: one server per directory. Uses an advisory `flock` on `LOCK` held for
//! the life of the process (the kernel drops it if the process dies, even on `kill -9`).

use std::fs::{File, OpenOptions};
use std::path::Path;

/// Holds the lock while alive.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

pub fn lock_data_dir(dir: &Path) -> Result<DirLock, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
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

    #[test]
    fn second_lock_on_same_dir_fails() {
        let dir = std::env::temp_dir().join(format!("topics-lock-{}", std::process::id()));
        let first = lock_data_dir(&dir).unwrap();
        let err = lock_data_dir(&dir).unwrap_err();
        assert!(err.contains("locked"), "{err}");
        drop(first);
        assert!(lock_data_dir(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
