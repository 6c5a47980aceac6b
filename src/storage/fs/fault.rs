//! Fault-injecting file system for crash-point tests. It performs operations on real files but
//! journals every effect that a power cut could still undo; from operation number `crash_at`
//! on, every operation fails (the machine is "off"), and `power_cut` rolls the directory back
//! to what was durable: unsynced file contents are lost, and creations, renames and removals
//! not followed by an fsync of their directory are undone.

use super::{Fs, RealFs};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug)]
enum Undo {
    /// Restore `path` to these durable contents (`None`: it did not exist durably).
    Contents {
        path: PathBuf,
        durable: Option<Vec<u8>>,
    },
    /// Directory entry change in `dir` that only a `sync_dir(dir)` makes durable.
    Entry { dir: PathBuf, undo: EntryUndo },
}

#[derive(Debug)]
enum EntryUndo {
    Created(PathBuf),
    Renamed {
        from: PathBuf,
        to: PathBuf,
        to_before: Option<Vec<u8>>,
    },
    Removed {
        path: PathBuf,
        contents: Vec<u8>,
    },
}

#[derive(Debug, Default)]
struct State {
    ops: usize,
    journal: Vec<Undo>,
    /// Durable contents of files written since their last fsync (first write wins).
    pending: HashMap<PathBuf, Option<Vec<u8>>>,
    /// Durable length of append files with unsynced appends.
    synced_len: HashMap<PathBuf, u64>,
    /// Bytes written into each append file (its logical end; the file may be longer when
    /// preallocated).
    written_len: HashMap<PathBuf, u64>,
    /// Preallocated length of append files: durable once set (the header's fdatasync follows),
    /// so a power cut leaves zeros, not a shorter file, after what survived.
    prealloc_len: HashMap<PathBuf, u64>,
    /// Every successful operation with its path, for durability audits.
    log: Vec<(Op, PathBuf)>,
}

/// Operation kinds recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    CreateAppend,
    Append,
    SyncData,
    WriteFile,
    SyncFile,
    Rename,
    Remove,
    SyncDir,
    Truncate,
    Preallocate,
}

#[derive(Debug)]
pub struct FaultFs {
    crash_at: usize,
    /// On a power cut keep half of each file's un-synced appended bytes (a torn write)
    /// instead of none.
    torn: bool,
    state: Arc<Mutex<State>>,
}

/// An append-only file whose appends since its last `sync_data` a power cut discards.
struct FaultAppend {
    file: std::fs::File,
    path: PathBuf,
    len: u64,
    crash_at: usize,
    state: Arc<Mutex<State>>,
}

fn step(state: &Mutex<State>, crash_at: usize) -> io::Result<std::sync::MutexGuard<'_, State>> {
    let mut st = state.lock().unwrap();
    st.ops += 1;
    if st.ops > crash_at {
        return Err(off());
    }
    Ok(st)
}

impl super::AppendFile for FaultAppend {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut st = step(&self.state, self.crash_at)?;
        st.synced_len.entry(self.path.clone()).or_insert(self.len);
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, self.len)?;
        self.len += data.len() as u64;
        st.written_len.insert(self.path.clone(), self.len);
        st.log.push((Op::Append, self.path.clone()));
        Ok(())
    }

    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        let mut st = step(&self.state, self.crash_at)?;
        if self.file.metadata()?.len() < len {
            self.file.set_len(len)?;
        }
        st.prealloc_len.insert(self.path.clone(), len);
        st.log.push((Op::Preallocate, self.path.clone()));
        Ok(true)
    }

    fn shrink_to_written(&mut self) -> io::Result<()> {
        // Durable when it returns (truncate and fsync), like `Fs::truncate`.
        let mut st = step(&self.state, self.crash_at)?;
        self.file.set_len(self.len)?;
        st.prealloc_len.remove(&self.path);
        st.synced_len.remove(&self.path);
        st.log.push((Op::Truncate, self.path.clone()));
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut st = step(&self.state, self.crash_at)?;
        st.synced_len.remove(&self.path);
        st.log.push((Op::SyncData, self.path.clone()));
        Ok(())
    }
}

fn off() -> io::Error {
    io::Error::other("injected power cut")
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl FaultFs {
    /// Operations `0..crash_at` succeed; every later one fails.
    pub fn new(crash_at: usize) -> FaultFs {
        FaultFs {
            crash_at,
            torn: false,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Like `new`, but a power cut tears the un-synced tail of appended files in half.
    pub fn torn(crash_at: usize) -> FaultFs {
        FaultFs {
            torn: true,
            ..FaultFs::new(crash_at)
        }
    }

    /// Successful operations, in order.
    pub fn log(&self) -> Vec<(Op, PathBuf)> {
        self.state.lock().unwrap().log.clone()
    }

    /// Operations performed (or attempted) so far.
    pub fn ops(&self) -> usize {
        self.state.lock().unwrap().ops
    }

    fn step(&self) -> io::Result<std::sync::MutexGuard<'_, State>> {
        step(&self.state, self.crash_at)
    }

    /// Undo every effect that was not durable, newest first.
    pub fn power_cut(&self) {
        let mut st = self.state.lock().unwrap();
        for (path, len) in st.synced_len.drain().collect::<Vec<_>>() {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) {
                let now = st.written_len.get(&path).copied().unwrap_or(len);
                let keep = if self.torn {
                    len + (now.saturating_sub(len)) / 2
                } else {
                    len
                };
                let _ = f.set_len(keep);
                // Blocks that were preallocated stay allocated and read as zeros.
                if let Some(&pre) = st.prealloc_len.get(&path) {
                    let _ = f.set_len(pre.max(keep));
                }
            }
        }
        let pending: Vec<_> = st.pending.drain().collect();
        for (path, durable) in pending {
            st.journal.push(Undo::Contents { path, durable });
        }
        while let Some(u) = st.journal.pop() {
            match u {
                Undo::Contents {
                    path,
                    durable: Some(c),
                } => {
                    if path.exists() {
                        let _ = std::fs::write(&path, c);
                    }
                }
                Undo::Contents {
                    path,
                    durable: None,
                } => {
                    let _ = std::fs::write(&path, b"");
                }
                Undo::Entry {
                    undo: EntryUndo::Created(p),
                    ..
                } => {
                    let _ = std::fs::remove_file(p);
                }
                Undo::Entry {
                    undo:
                        EntryUndo::Renamed {
                            from,
                            to,
                            to_before,
                        },
                    ..
                } => {
                    let _ = std::fs::rename(&to, &from);
                    if let Some(c) = to_before {
                        let _ = std::fs::write(&to, c);
                    }
                }
                Undo::Entry {
                    undo: EntryUndo::Removed { path, contents },
                    ..
                } => {
                    let _ = std::fs::write(path, contents);
                }
            }
        }
    }
}

impl Fs for FaultFs {
    fn create_append(&self, path: &Path) -> io::Result<Box<dyn super::AppendFile>> {
        let mut st = self.step()?;
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(path)?;
        st.journal.push(Undo::Entry {
            dir: parent(path),
            undo: EntryUndo::Created(path.to_path_buf()),
        });
        st.synced_len.insert(path.to_path_buf(), 0);
        st.log.push((Op::CreateAppend, path.to_path_buf()));
        Ok(Box::new(FaultAppend {
            file,
            path: path.to_path_buf(),
            len: 0,
            crash_at: self.crash_at,
            state: self.state.clone(),
        }))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let _st = self.step()?;
        // Directories are created durably here; only files are modelled.
        RealFs.create_dir_all(dir)?;
        RealFs.sync_dir(&parent(dir))
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut st = self.step()?;
        let existed = std::fs::read(path).ok();
        if existed.is_none() {
            st.journal.push(Undo::Entry {
                dir: parent(path),
                undo: EntryUndo::Created(path.to_path_buf()),
            });
        }
        st.pending.entry(path.to_path_buf()).or_insert(existed);
        st.log.push((Op::WriteFile, path.to_path_buf()));
        RealFs.write_file(path, data)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.step()?;
        st.pending.remove(path);
        st.log.push((Op::SyncFile, path.to_path_buf()));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.step()?;
        let to_before = std::fs::read(to).ok();
        // Unsynced contents travel with the inode.
        if let Some(d) = st.pending.remove(from) {
            st.pending.insert(to.to_path_buf(), d);
        }
        st.journal.push(Undo::Entry {
            dir: parent(to),
            undo: EntryUndo::Renamed {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                to_before,
            },
        });
        st.log.push((Op::Rename, to.to_path_buf()));
        RealFs.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.step()?;
        let contents = std::fs::read(path)?;
        st.pending.remove(path);
        st.journal.push(Undo::Entry {
            dir: parent(path),
            undo: EntryUndo::Removed {
                path: path.to_path_buf(),
                contents,
            },
        });
        st.log.push((Op::Remove, path.to_path_buf()));
        RealFs.remove(path)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        // Truncate-and-fsync is durable when it returns; a cut before it changes nothing.
        let mut st = self.step()?;
        st.pending.remove(path);
        st.log.push((Op::Truncate, path.to_path_buf()));
        RealFs.truncate(path, len)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.step()?;
        st.journal
            .retain(|u| !matches!(u, Undo::Entry { dir: d, .. } if d == dir));
        st.log.push((Op::SyncDir, dir.to_path_buf()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("topics-faultfs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn every_cut_of_an_atomic_write_leaves_old_or_new() {
        for crash_at in 0..8 {
            let d = tmp(&format!("atomic{crash_at}"));
            let p = d.join("f");
            std::fs::write(&p, b"old").unwrap();
            let fs = FaultFs::new(crash_at);
            let done = fs.write_atomic(&p, b"new").is_ok();
            fs.power_cut();
            let now = std::fs::read(&p).unwrap();
            if done {
                assert_eq!(now, b"new", "a completed atomic write is durable");
            } else {
                assert!(
                    now == b"old" || now == b"new",
                    "crash at {crash_at}: {now:?}"
                );
            }
        }
    }

    #[test]
    fn unsynced_creation_and_removal_are_undone() {
        let d = tmp("undo");
        std::fs::write(d.join("keep"), b"k").unwrap();
        let fs = FaultFs::new(100);
        fs.write_file(&d.join("new"), b"n").unwrap();
        fs.sync_file(&d.join("new")).unwrap();
        fs.remove(&d.join("keep")).unwrap();
        fs.power_cut();
        assert!(
            !d.join("new").exists(),
            "creation without a directory fsync is lost"
        );
        assert_eq!(
            std::fs::read(d.join("keep")).unwrap(),
            b"k",
            "removal without a directory fsync is lost"
        );
    }
}
