//! An append file of the fault file system: appends since its last `sync_data` are what a
//! power cut may take; appends past its allocated length draw on the space budget.

use super::{enospc, is_closing_mark, size_of, step, Op, State};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Holds the thread that next calls `sync_data` until the test releases it, so frames can
/// queue up behind a sync in progress and go out as one group, deterministically.
#[derive(Debug, Default)]
pub(super) struct SyncGate {
    state: Mutex<Gate>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Gate {
    #[default]
    Open,
    Armed,
    Holding,
}

impl SyncGate {
    pub(super) fn arm(&self) {
        *self.state.lock().unwrap() = Gate::Armed;
    }

    /// Called by a sync: waits while the gate holds it.
    fn pass(&self) {
        let mut g = self.state.lock().unwrap();
        if *g != Gate::Armed {
            return;
        }
        *g = Gate::Holding;
        self.changed.notify_all();
        while *g == Gate::Holding {
            g = self.changed.wait(g).unwrap();
        }
    }

    /// Wait (at most 10 s) until a sync is held.
    pub(super) fn wait_holding(&self) {
        let g = self.state.lock().unwrap();
        let (g, _) = self
            .changed
            .wait_timeout_while(g, Duration::from_secs(10), |g| *g != Gate::Holding)
            .unwrap();
        assert_eq!(*g, Gate::Holding, "no sync reached the gate");
    }

    pub(super) fn release(&self) {
        *self.state.lock().unwrap() = Gate::Open;
        self.changed.notify_all();
    }
}

pub(super) struct FaultAppend {
    file: std::fs::File,
    path: PathBuf,
    /// Logical end: where the next append goes.
    len: u64,
    state: Arc<Mutex<State>>,
    gate: Arc<SyncGate>,
}

impl FaultAppend {
    pub(super) fn new(
        file: std::fs::File,
        path: &Path,
        state: Arc<Mutex<State>>,
        gate: Arc<SyncGate>,
    ) -> Self {
        FaultAppend {
            file,
            path: path.to_path_buf(),
            len: 0,
            state,
            gate,
        }
    }
}

impl crate::storage::fs::AppendFile for FaultAppend {
    /// Bytes past the file's allocated length take space; when the budget runs out the part
    /// that fits is written (a short write) and the append fails with ENOSPC, leaving those
    /// bytes in the file past its logical end — what `write(2)` leaves on a full disk.
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut st = step(&self.state, Op::Append, &self.path, Some(data))?;
        st.synced_len.entry(self.path.clone()).or_insert(self.len);
        let allocated = size_of(&self.path);
        let end = self.len + data.len() as u64;
        let grow = end.saturating_sub(allocated);
        let granted = st.take_space(grow);
        if granted < grow {
            let fits = (allocated.saturating_sub(self.len) + granted) as usize;
            self.file.write_all_at(&data[..fits], self.len)?;
            return Err(enospc());
        }
        self.file.write_all_at(data, self.len)?;
        self.len = end;
        st.written_len.insert(self.path.clone(), self.len);
        let track = st.tracks.entry(self.path.clone()).or_default();
        track.appends += 1;
        track.last_was_closing_mark = is_closing_mark(data);
        let index = st.log.len();
        st.appended.insert(index, data.to_vec());
        st.log.push((Op::Append, self.path.clone()));
        Ok(())
    }

    /// All or nothing: blocks for the whole length are taken from the budget, or ENOSPC.
    fn preallocate(&mut self, len: u64) -> io::Result<bool> {
        let mut st = step(&self.state, Op::Preallocate, &self.path, None)?;
        if st.no_prealloc {
            return Ok(false);
        }
        let allocated = size_of(&self.path);
        let grow = len.saturating_sub(allocated);
        if st.space.is_some_and(|left| left < grow) {
            return Err(enospc());
        }
        st.take_space(grow);
        if allocated < len {
            self.file.set_len(len)?;
        }
        st.prealloc_len.insert(self.path.clone(), len);
        st.log.push((Op::Preallocate, self.path.clone()));
        Ok(true)
    }

    fn shrink_to_written(&mut self) -> io::Result<()> {
        // Durable when it returns (truncate and fsync), like `Fs::truncate`.
        let mut st = step(&self.state, Op::Shrink, &self.path, None)?;
        let freed = size_of(&self.path).saturating_sub(self.len);
        self.file.set_len(self.len)?;
        st.free_space(freed);
        st.prealloc_len.remove(&self.path);
        st.synced_len.remove(&self.path);
        st.log.push((Op::Shrink, self.path.clone()));
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.gate.pass();
        let mut st = step(&self.state, Op::SyncData, &self.path, None)?;
        st.synced_len.remove(&self.path);
        st.log.push((Op::SyncData, self.path.clone()));
        Ok(())
    }
}
