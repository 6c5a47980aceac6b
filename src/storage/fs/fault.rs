//! Fault-injecting file system for crash-point tests. It performs operations on real files but
//! journals every effect that a power cut could still undo; from operation number `crash_at`
//! on, every operation fails (the machine is "off"), and `power_cut` rolls the directory back
//! to what was durable: unsynced file contents are lost (how much of an append file's unsynced
//! tail survives is the [`CutMode`]), and creations, renames and removals not followed by an
//! fsync of their directory are undone.
//!
//! Besides power cuts it injects what the kernel reports on a live machine and a real disk
//! cannot be made to do on demand: one EIO at a chosen point ([`EioAt`]) and a space budget
//! whose exhaustion fails allocations with a real `ENOSPC` ([`FaultFs::set_space`]).

mod cut;
mod file;
mod seam;
#[cfg(test)]
mod tests;

use super::Fs;
use crate::storage::frame::{self, Frame};
use bytes::Bytes;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// What a power cut leaves of the bytes appended to a file after its last fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// None of them.
    Clean,
    /// Their first half: a torn write, a prefix reached the disk.
    TornPrefix,
    /// Their second half, while the first half reads as zeros: the page cache wrote the later
    /// sectors back first. Split at a sector boundary (see `cut::SECTOR_BYTES`).
    OutOfOrder,
    /// Like `OutOfOrder`, but the lost first half reads as garbage (a file system that can
    /// show stale blocks).
    OutOfOrderGarbage,
}

/// Where a single EIO is injected; every other operation keeps working, as on a disk with
/// one failing write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioAt {
    /// The fdatasync of a file whose last append was a closing sync mark.
    ClosingMarkSync,
    /// Giving back the preallocated tail of a closed WAL file.
    Shrink,
    /// The first fdatasync of a new append file (the one covering its header).
    HeaderSync,
    /// Reserving a new append file's space.
    Preallocate,
}

/// An operation as it was attempted: what the power cut refused, or what an [`EioAt`] is
/// matched against.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub op: Op,
    pub path: PathBuf,
    /// Appends that reached this file before.
    pub appends_before: usize,
    /// The file's last append was a closing sync mark.
    pub after_closing_mark: bool,
    /// The bytes of an append.
    pub data: Option<Vec<u8>>,
}

impl EioAt {
    fn matches(self, a: &Attempt) -> bool {
        match self {
            EioAt::ClosingMarkSync => a.op == Op::SyncData && a.after_closing_mark,
            EioAt::Shrink => a.op == Op::Shrink,
            EioAt::HeaderSync => a.op == Op::SyncData && a.appends_before == 1,
            EioAt::Preallocate => a.op == Op::Preallocate,
        }
    }
}

/// What the fault file system knows of one append file.
#[derive(Debug, Default, Clone, Copy)]
struct Track {
    appends: usize,
    last_was_closing_mark: bool,
}

#[derive(Debug, Default)]
struct State {
    ops: usize,
    /// Operations `0..crash_at` succeed; every later one fails.
    crash_at: usize,
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
    /// The bytes of every logged append, by log index.
    appended: HashMap<usize, Vec<u8>>,
    tracks: HashMap<PathBuf, Track>,
    /// The first operation the power cut refused.
    refused: Option<Attempt>,
    /// The one operation still to fail with EIO.
    eio: Option<EioAt>,
    /// Bytes that may still be allocated; `None`: unlimited.
    space: Option<u64>,
    /// Preallocation reports "not supported", so append files grow with every write.
    no_prealloc: bool,
}

impl State {
    /// Grant up to `need` bytes of the space budget; returns what was granted.
    fn take_space(&mut self, need: u64) -> u64 {
        match &mut self.space {
            None => need,
            Some(left) => {
                let granted = need.min(*left);
                *left -= granted;
                granted
            }
        }
    }

    fn free_space(&mut self, bytes: u64) {
        if let Some(left) = &mut self.space {
            *left += bytes;
        }
    }

    fn attempt(&self, op: Op, path: &Path, data: Option<&[u8]>) -> Attempt {
        let t = self.tracks.get(path).copied().unwrap_or_default();
        Attempt {
            op,
            path: path.to_path_buf(),
            appends_before: t.appends,
            after_closing_mark: t.last_was_closing_mark,
            data: data.map(<[u8]>::to_vec),
        }
    }
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
    /// `shrink_to_written` of an append file.
    Shrink,
    CreateDir,
}

#[derive(Debug)]
pub struct FaultFs {
    mode: CutMode,
    state: Arc<Mutex<State>>,
    gate: Arc<file::SyncGate>,
}

/// Count an operation and decide whether it runs: refused once the power is off (the first
/// refused one is remembered), failed with EIO where one is injected.
fn step<'a>(
    state: &'a Mutex<State>,
    op: Op,
    path: &Path,
    data: Option<&[u8]>,
) -> io::Result<MutexGuard<'a, State>> {
    let mut st = state.lock().unwrap();
    st.ops += 1;
    if st.ops > st.crash_at {
        if st.refused.is_none() {
            st.refused = Some(st.attempt(op, path, data));
        }
        return Err(off());
    }
    if let Some(point) = st.eio {
        if point.matches(&st.attempt(op, path, None)) {
            st.eio = None;
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
    }
    Ok(st)
}

fn off() -> io::Error {
    io::Error::other("injected power cut")
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Bytes a file takes on disk (its length: the model has no sparse files).
fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// True when `data` is exactly one sync mark that closes its file.
pub fn is_closing_mark(data: &[u8]) -> bool {
    let buf = Bytes::copy_from_slice(data);
    matches!(frame::decode(&buf, 0),
        Ok((Frame::Sync { closing: true, .. }, end)) if end == data.len())
}

/// True when `data` is exactly one Stop frame (a shard's clean stop, after which its last
/// file is shrunk too).
pub fn is_stop_frame(data: &[u8]) -> bool {
    let buf = Bytes::copy_from_slice(data);
    matches!(frame::decode(&buf, 0), Ok((Frame::Stop, end)) if end == data.len())
}

impl FaultFs {
    /// Operations `0..crash_at` succeed; every later one fails; a power cut keeps nothing
    /// unsynced.
    pub fn new(crash_at: usize) -> FaultFs {
        FaultFs::with_mode(crash_at, CutMode::Clean)
    }

    /// Like `new`, but a power cut tears the un-synced tail of appended files in half.
    pub fn torn(crash_at: usize) -> FaultFs {
        FaultFs::with_mode(crash_at, CutMode::TornPrefix)
    }

    pub fn with_mode(crash_at: usize, mode: CutMode) -> FaultFs {
        let state = State {
            crash_at,
            ..State::default()
        };
        FaultFs {
            mode,
            state: Arc::new(Mutex::new(state)),
            gate: Arc::default(),
        }
    }

    /// A file system that cannot preallocate (`preallocate` answers `Ok(false)`).
    pub fn without_preallocation(self) -> FaultFs {
        self.state.lock().unwrap().no_prealloc = true;
        self
    }

    /// Successful operations, in order: in a run without failures, entry `i` is the
    /// operation a cut at `i` refuses.
    pub fn log(&self) -> Vec<(Op, PathBuf)> {
        self.state.lock().unwrap().log.clone()
    }

    /// The bytes of the append logged at `index` of [`Self::log`].
    pub fn appended(&self, index: usize) -> Option<Vec<u8>> {
        self.state.lock().unwrap().appended.get(&index).cloned()
    }

    /// Operations performed (or attempted) so far.
    pub fn ops(&self) -> usize {
        self.state.lock().unwrap().ops
    }

    /// The operation the power cut hit first, if it hit any.
    pub fn refused(&self) -> Option<Attempt> {
        self.state.lock().unwrap().refused.clone()
    }

    /// Hold the next fdatasync of an append file until [`Self::release_sync`]
    /// ([`Self::wait_sync_held`] returns once a thread is held there).
    pub fn hold_next_sync(&self) {
        self.gate.arm();
    }

    pub fn wait_sync_held(&self) {
        self.gate.wait_holding();
    }

    pub fn release_sync(&self) {
        self.gate.release();
    }

    /// Cut the power now: every later operation fails (then call [`Self::power_cut`]).
    pub fn power_off_now(&self) {
        let mut st = self.state.lock().unwrap();
        st.crash_at = st.ops;
    }

    /// Fail the next operation that matches `point` with EIO (once).
    pub fn inject_eio(&self, point: EioAt) {
        self.state.lock().unwrap().eio = Some(point);
    }

    /// Whether the injected EIO is still waiting for its operation.
    pub fn eio_pending(&self) -> bool {
        self.state.lock().unwrap().eio.is_some()
    }

    /// Limit the bytes that may still be allocated (`None`: unlimited). Appends past a file's
    /// allocated length, preallocations and whole-file writes draw on it; removals and
    /// truncations give space back. Raising it again is "space freed".
    pub fn set_space(&self, bytes: Option<u64>) {
        self.state.lock().unwrap().space = bytes;
    }

    pub fn space_left(&self) -> Option<u64> {
        self.state.lock().unwrap().space
    }

    fn step(&self, op: Op, path: &Path) -> io::Result<MutexGuard<'_, State>> {
        step(&self.state, op, path, None)
    }

    /// Undo every effect that was not durable, newest first. Returns the append files in
    /// which un-synced bytes survived behind lost ones (out-of-order modes only).
    pub fn power_cut(&self) -> Vec<PathBuf> {
        self.state.lock().unwrap().roll_back(self.mode)
    }
}
