//! The writer thread of one WAL shard: group commit, sync marks, rotation into preallocated
//! files, and holding frames while the disk is full.
//!
//! Invariants:
//! - frames reach the file in submission order, except that bookkeeping frames (reservations,
//!   heads, floors) may overtake data frames held for lack of space — replay applies those
//!   with `max`, so their order against appends does not matter;
//! - after every completed fdatasync a Sync frame records the synced length, so recovery can
//!   tell bytes that were once durable (damage there is media damage) from a torn tail;
//! - a frame nobody waits for (an acknowledged `disk`/`memory` append) is never dropped: when
//!   space runs out it is held in memory and written first once space is back; a frame whose
//!   submitter waits is answered "no space" instead, and never written (what a write that
//!   ran out of space left in the file is cut off at once);
//! - any other I/O error poisons storage; nothing is retried.

use super::{FrameMsg, Msg, SyncResult, WalOptions, WalStats};
use crate::storage::frame::{self, FileHeader};
use crate::storage::fs::{is_no_space, AppendFile};
use crate::storage::health::{StorageHealth, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use super::{wal_file_name, Commit};

mod full;

/// Largest group written at once; bounds the buffer and the latency of one write.
const GROUP_BYTES_MAX: usize = 16 << 20;

/// How long a group that starts with a frame nobody waits for (`disk`, `memory`) stays open
/// before its write. Their acks never wait for the write, so this costs no latency; it widens
/// the window in which a process kill can take a not-yet-written tail by about as much.
const LINGER: Duration = Duration::from_micros(200);

/// How often a shard that ran out of space tries again.
const FULL_RETRY: Duration = Duration::from_millis(250);

/// Space at the end of every preallocated file kept for bookkeeping frames, so reservations
/// (which `ephemeral` writes need too) and sync marks still fit while the disk is full.
const CONTROL_RESERVE_BYTES: u64 = 1 << 20;

/// Bytes of one encoded sync mark.
const MARK_BYTES: u64 = 38;

/// What a write may use of a preallocated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// Data frames leave the control reserve free.
    Data,
    /// Bookkeeping frames and ordinary sync marks leave room for the closing mark.
    Control,
    /// The closing mark may take the last bytes.
    Closing,
}

/// The control reserve of files of `file_bytes`: a quarter of a small file, at most 1 MiB,
/// and always room for a few marks.
fn control_reserve(file_bytes: u64) -> u64 {
    CONTROL_RESERVE_BYTES
        .min(file_bytes / 4)
        .max(4 * MARK_BYTES)
}

/// Why a group did not reach the file.
enum WriteError {
    NoSpace,
    Failed(StoreError),
}

/// The state a writer thread owns.
pub(super) struct Writer {
    rx: mpsc::Receiver<Msg>,
    file: Box<dyn AppendFile>,
    /// Logical end of the current file (where the next frame goes).
    file_len: u64,
    /// Blocks reserved for the current file (0: the file system cannot preallocate).
    prealloc_len: u64,
    file_index: u32,
    shard: usize,
    opts: WalOptions,
    /// Set when written-but-unsynced `disk` frames exist; bounds their exposure.
    dirty_since: Option<Instant>,
    health: Arc<StorageHealth>,
    stats: Arc<WalStats>,
    queued_bytes: Arc<AtomicU64>,
    /// Reused group buffer.
    buf: Vec<u8>,
    /// Frames nobody waits for that could not be written for lack of space, in order.
    held: Vec<u8>,
    /// True while `held` waits for space (mirrored into `StorageHealth`).
    full: bool,
    /// `file_len` right after the current file's closing mark was synced, if it has one and
    /// nothing followed it.
    closed_at: Option<u64>,
}

fn waits_for_sync(m: &Msg) -> bool {
    matches!(
        m,
        Msg::Frame(FrameMsg {
            commit: Commit::Wait,
            ..
        })
    )
}

/// A new WAL file, its logical length and its preallocated length.
struct NewFile {
    file: Box<dyn AppendFile>,
    len: u64,
    prealloc: u64,
}

/// Create `index` of this boot's `shard`: preallocate at least `min_len` bytes, write the
/// header and a first sync mark, and make both and the directory entry durable. A file that
/// could not get its space or its header is removed again (it must not look like a torn
/// creation later, and the next attempt reuses its name).
fn create_file(
    opts: &WalOptions,
    shard: usize,
    index: u32,
    min_len: u64,
) -> std::io::Result<NewFile> {
    let fs = &*opts.fs;
    let path = opts.dir.join(wal_file_name(opts.boot, shard, index));
    let mut file = fs.create_append(&path)?;
    let want = opts.file_bytes.max(min_len);
    let mut head = FileHeader {
        shard: shard as u16,
        boot: opts.boot,
    }
    .encode()
    .to_vec();
    let header_len = head.len() as u64;
    frame::encode_sync(&mut head, header_len, opts.prev_boot, false);
    // Without preallocation the header itself needs space: running out there is as
    // survivable as running out while preallocating.
    let written = file
        .preallocate(want)
        .and_then(|pre| file.append(&head).map(|()| pre));
    let prealloc = match written {
        Ok(true) => want,
        Ok(false) => 0,
        Err(e) if is_no_space(&e) => {
            drop(file);
            fs.remove(&path)?;
            fs.sync_dir(&opts.dir)?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    file.sync_data().map_err(|e| untrusted("fdatasync", e))?;
    fs.sync_dir(&opts.dir)
        .map_err(|e| untrusted("directory fsync", e))?;
    Ok(NewFile {
        file,
        len: head.len() as u64,
        prealloc,
    })
}

/// An fdatasync failure must never be mistaken for "no space" (which is survivable).
fn untrusted(what: &str, e: std::io::Error) -> std::io::Error {
    std::io::Error::other(format!("{what}: {e}"))
}

impl Writer {
    pub(super) fn open(
        rx: mpsc::Receiver<Msg>,
        shard: usize,
        opts: WalOptions,
        health: Arc<StorageHealth>,
        stats: Arc<WalStats>,
        queued_bytes: Arc<AtomicU64>,
    ) -> std::io::Result<Writer> {
        let first = create_file(&opts, shard, 0, 0)?;
        Ok(Writer {
            rx,
            file: first.file,
            file_len: first.len,
            prealloc_len: first.prealloc,
            file_index: 0,
            shard,
            opts,
            dirty_since: None,
            health,
            stats,
            queued_bytes,
            buf: Vec::new(),
            held: Vec::new(),
            full: false,
            closed_at: None,
        })
    }

    pub(super) fn run(mut self) {
        loop {
            let first = match self.next_message() {
                Some(m) => m,
                None => return self.finish(None),
            };
            let mut group = Vec::new();
            let mut stop = None;
            let mut barrier = None;
            match first {
                Msg::Stop(done) => stop = Some(done),
                Msg::Rotate(done) => barrier = Some(done),
                m => {
                    if !waits_for_sync(&m) {
                        // Nobody waits for this frame: let more arrive so one write()
                        // carries many. Sleeping (not blocking on the channel) also spares
                        // every submitter in the meantime a futex wake-up.
                        std::thread::sleep(LINGER);
                    }
                    group.push(m)
                }
            }
            let mut bytes = 0usize;
            while stop.is_none() && barrier.is_none() && bytes < GROUP_BYTES_MAX {
                match self.rx.try_recv() {
                    Ok(Msg::Stop(done)) => stop = Some(done),
                    Ok(Msg::Rotate(done)) => barrier = Some(done),
                    Ok(Msg::Frame(f)) => {
                        bytes += f.bytes.len();
                        group.push(Msg::Frame(f));
                    }
                    Err(_) => break,
                }
            }
            let frames: Vec<FrameMsg> = group
                .into_iter()
                .filter_map(|m| match m {
                    Msg::Frame(f) => Some(f),
                    _ => None,
                })
                .collect();
            if !frames.is_empty() {
                self.commit_group(frames);
            }
            if let Some(done) = barrier {
                let _ = done.send(self.barrier());
            }
            if stop.is_some() {
                return self.finish(stop);
            }
        }
    }

    /// Block for the next message, waking early to sync a dirty file in time and, while the
    /// disk is full, to try again.
    fn next_message(&mut self) -> Option<Msg> {
        loop {
            let sync_due = self.dirty_since.map(|s| s + self.opts.sync_interval);
            let retry_due = self.full.then(|| Instant::now() + FULL_RETRY);
            let due = match (sync_due, retry_due) {
                (None, None) => return self.rx.recv().ok(),
                (a, b) => a.into_iter().chain(b).min()?,
            };
            match self
                .rx
                .recv_timeout(due.saturating_duration_since(Instant::now()))
            {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Timeout) => {
                    if self.full {
                        self.retry_held();
                    }
                    if self
                        .dirty_since
                        .is_some_and(|s| s + self.opts.sync_interval <= Instant::now())
                    {
                        let _ = self.sync();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Checkpoint barrier: everything queued before it is in the current file; start a new
    /// one and answer its index.
    fn barrier(&mut self) -> Result<u32, StoreError> {
        if self.health.is_poisoned() {
            return Err(self.health.error());
        }
        if self.full {
            self.retry_held();
        }
        if self.full {
            return Err(StoreError::no_space("the disk is full"));
        }
        match self.rotate(0) {
            Ok(()) => Ok(self.file_index),
            Err(WriteError::NoSpace) => Err(StoreError::no_space("the disk is full")),
            Err(WriteError::Failed(e)) => Err(e),
        }
    }

    fn commit_group(&mut self, frames: Vec<FrameMsg>) {
        let group_len: u64 = frames.iter().map(|f| f.bytes.len() as u64).sum();
        let n = frames.len() as u64;
        self.queued_bytes.fetch_sub(group_len, Ordering::Relaxed);
        self.stats.queue_depth.fetch_sub(n, Ordering::Relaxed);
        self.stats.frames.fetch_add(n, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        if self.full {
            self.retry_held();
        }
        if self.full {
            return self.commit_while_full(frames);
        }
        let result = self.write_frames(&frames);
        match result {
            Err(WriteError::NoSpace) => {
                // Bookkeeping in this group still goes in: a reservation that a write in it
                // waits for must not fail just because the data beside it does not fit.
                self.enter_full();
                self.commit_while_full(frames);
            }
            Err(WriteError::Failed(e)) => answer(frames, Err(e)),
            Ok(()) => answer(frames, Ok(())),
        }
    }

    /// One write for the whole group, then one fdatasync if anyone waits for it.
    fn write_frames(&mut self, frames: &[FrameMsg]) -> Result<(), WriteError> {
        self.buf.clear();
        let mut need_sync = false;
        let mut soon = false;
        let mut room = Room::Control;
        for f in frames {
            self.buf.extend_from_slice(&f.bytes);
            need_sync |= f.commit == Commit::Wait;
            soon |= f.commit == Commit::Soon;
            if !frame::is_control(&f.bytes) {
                room = Room::Data;
            }
        }
        self.write_buf(room)?;
        if need_sync {
            return self.sync().map_err(WriteError::Failed);
        }
        if soon && self.dirty_since.is_none() {
            self.dirty_since = Some(Instant::now());
        }
        Ok(())
    }

    /// Write `self.buf` at the end of the current file, rotating first when it does not fit.
    fn write_buf(&mut self, room: Room) -> Result<(), WriteError> {
        if self.health.is_poisoned() {
            return Err(WriteError::Failed(self.health.error()));
        }
        let len = self.buf.len() as u64;
        if self.file_len + len > self.limit(room) {
            self.rotate(len)?;
        }
        if let Err(e) = self.file.append(&self.buf) {
            if is_no_space(&e) {
                self.discard_partial_write()?;
                return Err(WriteError::NoSpace);
            }
            return Err(WriteError::Failed(
                self.fail(&format!("WAL write failed: {e}")),
            ));
        }
        self.file_len += len;
        self.stats.bytes_written.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// Where the current file stops taking frames of a kind; a file the file system could
    /// not preallocate grows (data frames up to `file_bytes`).
    fn limit(&self, room: Room) -> u64 {
        if self.prealloc_len == 0 {
            return match room {
                Room::Data => self.opts.file_bytes,
                _ => u64::MAX,
            };
        }
        let reserve = control_reserve(self.opts.file_bytes);
        match room {
            Room::Data => self.prealloc_len.saturating_sub(reserve),
            Room::Control => self.prealloc_len.saturating_sub(MARK_BYTES),
            Room::Closing => self.prealloc_len,
        }
    }

    fn sync(&mut self) -> SyncResult {
        if self.health.is_poisoned() {
            return Err(self.health.error());
        }
        let t0 = Instant::now();
        if let Err(e) = self.file.sync_data() {
            return Err(self.fail(&format!("WAL fdatasync failed: {e}")));
        }
        self.dirty_since = None;
        self.stats.record_fsync(t0.elapsed().as_micros() as u64);
        self.write_mark(false);
        Ok(())
    }

    /// Record the synced frontier right after a completed fdatasync. The mark itself is not
    /// synced (the next sync covers it); a mark that cannot be written only means recovery
    /// knows less, so lack of space skips it (false). A `closing` mark ends a file.
    fn write_mark(&mut self, closing: bool) -> bool {
        let mut mark = Vec::with_capacity(48);
        frame::encode_sync(&mut mark, self.file_len, self.opts.prev_boot, closing);
        debug_assert_eq!(mark.len() as u64, MARK_BYTES);
        let room = if closing {
            Room::Closing
        } else {
            Room::Control
        };
        if self.file_len + mark.len() as u64 > self.limit(room) {
            return false;
        }
        match self.file.append(&mark) {
            Ok(()) => {
                self.file_len += mark.len() as u64;
                true
            }
            Err(e) if is_no_space(&e) => {
                let _ = self.discard_partial_write();
                false
            }
            Err(e) => {
                self.fail(&format!("WAL write failed: {e}"));
                false
            }
        }
    }

    /// A write that ran out of space may have left part of itself past the logical end, and
    /// whole frames of a group answered "no space" among them: a start that found them would
    /// replay writes that were refused. Cut the file back to the logical end (truncating needs
    /// no space). It keeps no reserved blocks past that end, so it grows from here on.
    fn discard_partial_write(&mut self) -> Result<(), WriteError> {
        if let Err(e) = self.file.shrink_to_written() {
            let e = self.fail(&format!("WAL truncate after a short write failed: {e}"));
            return Err(WriteError::Failed(e));
        }
        self.prealloc_len = 0;
        Ok(())
    }

    /// Close the current file (synced whole) and start the next, preallocated for at least
    /// `need` bytes of frames. On no space the current file stays in use.
    fn rotate(&mut self, need: u64) -> Result<(), WriteError> {
        self.close_current()?;
        let min_len = need + 128 + control_reserve(self.opts.file_bytes);
        let next = match create_file(&self.opts, self.shard, self.file_index + 1, min_len) {
            Ok(next) => next,
            // The closed file stays current (frames may follow its closing mark; it keeps its
            // control reserve), and a later rotation closes it again.
            Err(e) if is_no_space(&e) => return Err(WriteError::NoSpace),
            Err(e) => {
                let e = untrusted("create", e);
                return Err(WriteError::Failed(
                    self.fail(&format!("WAL rotation failed: {e}")),
                ));
            }
        };
        // A closed file keeps only what it holds. A crash before this is durable leaves a
        // zero tail after the closing mark, which replay reads the same way.
        if let Err(e) = self.file.shrink_to_written() {
            return Err(WriteError::Failed(
                self.fail(&format!("WAL truncate failed: {e}")),
            ));
        }
        self.file = next.file;
        self.file_len = next.len;
        self.prealloc_len = next.prealloc;
        self.closed_at = None;
        self.file_index += 1;
        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Sync the current file whole, then end it with a closing sync mark (synced too), so
    /// replay can tell a complete earlier file from one cut short by damage. Nothing to do
    /// when the closing mark is already the last thing written.
    fn close_current(&mut self) -> Result<(), WriteError> {
        if self.closed_at == Some(self.file_len) {
            return Ok(());
        }
        let mut synced = self.file.sync_data();
        if synced.is_ok() {
            if !self.write_mark(true) {
                return Err(WriteError::NoSpace);
            }
            synced = self.file.sync_data();
        }
        if let Err(e) = synced {
            return Err(WriteError::Failed(
                self.fail(&format!("WAL fdatasync failed: {e}")),
            ));
        }
        self.dirty_since = None;
        self.closed_at = Some(self.file_len);
        Ok(())
    }

    fn fail(&mut self, what: &str) -> StoreError {
        let err = StoreError::failed(format!("shard {}: {what}", self.shard));
        self.health.poison(&err);
        err
    }

    /// Final sync (of `memory` frames too). Only a shard that wrote everything it was given
    /// adds a Stop frame: a start that finds one knows this shard lost nothing.
    fn finish(mut self, done: Option<oneshot::Sender<bool>>) {
        if self.full {
            self.retry_held();
        }
        let mut clean = !self.full && self.sync().is_ok();
        if clean {
            self.buf.clear();
            frame::encode_stop(&mut self.buf);
            clean = self.write_buf(Room::Control).is_ok() && self.file.sync_data().is_ok();
            // The file is never appended to again: give its unused preallocation back.
            clean = clean && self.file.shrink_to_written().is_ok();
        } else if self.full {
            tracing::error!(
                shard = self.shard,
                bytes = self.held.len(),
                "stopping with acknowledged frames that could not be written (disk full); the \
                 next start reports their seqs as lost (tombstone reason \"crash\")"
            );
        }
        if let Some(d) = done {
            let _ = d.send(clean);
        }
    }
}

fn answer(frames: Vec<FrameMsg>, result: SyncResult) {
    for f in frames {
        if let Some(done) = f.done {
            let _ = done.send(result.clone());
        }
    }
}
