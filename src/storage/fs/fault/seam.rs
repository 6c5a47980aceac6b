//! The directory-level operations of the fault file system: each journals what a power cut
//! could still undo, and whole-file writes draw on the space budget.

use super::{enospc, file, parent, size_of, EntryUndo, FaultFs, Op, Track, Undo};
use crate::storage::fs::{AppendFile, Fs, RealFs};
use std::io;
use std::path::Path;

impl Fs for FaultFs {
    fn create_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut st = self.step(Op::CreateAppend, path)?;
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(path)?;
        st.journal.push(Undo::Entry {
            dir: parent(path),
            undo: EntryUndo::Created(path.to_path_buf()),
        });
        st.synced_len.insert(path.to_path_buf(), 0);
        st.tracks.insert(path.to_path_buf(), Track::default());
        st.log.push((Op::CreateAppend, path.to_path_buf()));
        Ok(Box::new(file::FaultAppend::new(
            file,
            path,
            self.state.clone(),
            self.gate.clone(),
        )))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.step(Op::CreateDir, dir)?;
        // Logged like every operation, so a log index is the cut that lands on it.
        st.log.push((Op::CreateDir, dir.to_path_buf()));
        // Directories are created durably here; only files are modelled.
        RealFs.create_dir_all(dir)?;
        RealFs.sync_dir(&parent(dir))
    }

    /// A whole-file write takes the file's new length from the space budget (after giving
    /// back its old one); past the budget it writes what fits and fails with ENOSPC, as the
    /// kernel does.
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut st = self.step(Op::WriteFile, path)?;
        let existed = std::fs::read(path).ok();
        if existed.is_none() {
            st.journal.push(Undo::Entry {
                dir: parent(path),
                undo: EntryUndo::Created(path.to_path_buf()),
            });
        }
        st.pending.entry(path.to_path_buf()).or_insert(existed);
        st.free_space(size_of(path));
        let granted = st.take_space(data.len() as u64) as usize;
        if granted < data.len() {
            RealFs.write_file(path, &data[..granted])?;
            return Err(enospc());
        }
        st.log.push((Op::WriteFile, path.to_path_buf()));
        RealFs.write_file(path, data)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.step(Op::SyncFile, path)?;
        st.pending.remove(path);
        st.log.push((Op::SyncFile, path.to_path_buf()));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.step(Op::Rename, to)?;
        let to_before = std::fs::read(to).ok();
        // Unsynced contents travel with the inode.
        if let Some(d) = st.pending.remove(from) {
            st.pending.insert(to.to_path_buf(), d);
        }
        st.free_space(to_before.as_ref().map_or(0, |c| c.len() as u64));
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
        let mut st = self.step(Op::Remove, path)?;
        let contents = std::fs::read(path)?;
        st.pending.remove(path);
        st.free_space(contents.len() as u64);
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
        let mut st = self.step(Op::Truncate, path)?;
        st.pending.remove(path);
        st.free_space(size_of(path).saturating_sub(len));
        st.log.push((Op::Truncate, path.to_path_buf()));
        RealFs.truncate(path, len)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.step(Op::SyncDir, dir)?;
        st.journal
            .retain(|u| !matches!(u, Undo::Entry { dir: d, .. } if d == dir));
        st.log.push((Op::SyncDir, dir.to_path_buf()));
        Ok(())
    }
}
