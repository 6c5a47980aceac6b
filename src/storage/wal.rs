//! WAL shards: each is a dedicated OS thread owning one append-only file (never the tokio
//! blocking pool: a slow disk must not starve other blocking work). A writer takes everything
//! queued, writes it with one `write`, and calls `fdatasync` once for the whole group when any
//! frame in it needs a sync — adaptive group commit: the longer a sync takes, the larger the
//! next group. `disk` frames are synced within `sync_interval` even when nobody waits.
//!
//! Invariants: frames of one shard reach the file in submission order; a sync waiter is
//! answered only after the `fdatasync` that covers its frame returned; after any I/O error the
//! shard is poisoned and every later submission fails (no retry).

use super::frame::{FileHeader, FILE_HEADER_LEN};
use super::fs::{AppendFile, Fs};
use super::health::{StorageHealth, StoreError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How a frame is committed (see contract §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Rides along with other syncs; never causes one (`memory`).
    Lazy,
    /// Synced within the sync interval (`disk`).
    Soon,
    /// The submitter waits for the covering sync (`fsync`, definitions, reservations).
    Wait,
}

/// Result of a sync waiter.
pub type SyncResult = Result<(), StoreError>;

/// Why a frame was not accepted.
#[derive(Debug, Clone)]
pub enum SubmitError {
    /// The shard's ingest queue is full: back-pressure (429).
    Full,
    /// Storage failed earlier, or the WAL is shut down.
    Failed(StoreError),
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    pub dir: PathBuf,
    pub shards: usize,
    /// This server run; names new files so replay can order runs.
    pub boot: u32,
    pub queue_frames: usize,
    pub queue_bytes: u64,
    pub file_bytes: u64,
    pub sync_interval: Duration,
    /// Every file operation of the writers goes through this seam.
    pub fs: std::sync::Arc<dyn Fs>,
}

/// Counters exported as metrics.
#[derive(Debug, Default)]
pub struct WalStats {
    pub frames: AtomicU64,
    pub batches: AtomicU64,
    pub fsyncs: AtomicU64,
    pub bytes_written: AtomicU64,
    pub rotations: AtomicU64,
    pub submit_full: AtomicU64,
    pub queue_depth: AtomicU64,
    pub queue_depth_peak: AtomicU64,
    pub fsync_micros_total: AtomicU64,
}

enum Msg {
    Frame {
        bytes: Vec<u8>,
        commit: Commit,
        done: Option<oneshot::Sender<SyncResult>>,
    },
    Stop(oneshot::Sender<()>),
    /// Checkpoint barrier: everything queued before it lands in the current file, everything
    /// after it in a new one; answers the new file's index.
    Rotate(oneshot::Sender<Result<u32, StoreError>>),
}

struct Shard {
    tx: SyncSender<Msg>,
    queued_bytes: Arc<AtomicU64>,
}

/// Handle to all shards; clone freely.
#[derive(Clone)]
pub struct Wal {
    shards: Arc<Vec<Shard>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    health: Arc<StorageHealth>,
    stats: Arc<WalStats>,
    queue_bytes_max: u64,
    boot: u32,
}

impl Wal {
    /// Create this boot's first file in every shard and start the writer threads.
    pub fn start(opts: WalOptions, health: Arc<StorageHealth>) -> std::io::Result<Wal> {
        std::fs::create_dir_all(&opts.dir)?;
        let stats = Arc::new(WalStats::default());
        let mut shards = Vec::with_capacity(opts.shards);
        let mut threads = Vec::with_capacity(opts.shards);
        for shard in 0..opts.shards {
            let file = create_wal_file(&*opts.fs, &opts.dir, opts.boot, shard, 0)?;
            let (tx, rx) = mpsc::sync_channel(opts.queue_frames);
            let queued_bytes = Arc::new(AtomicU64::new(0));
            let writer = Writer {
                rx,
                file,
                file_len: FILE_HEADER_LEN as u64,
                file_index: 0,
                shard,
                opts: opts.clone(),
                dirty_since: None,
                health: health.clone(),
                stats: stats.clone(),
                queued_bytes: queued_bytes.clone(),
                buf: Vec::new(),
            };
            let t = std::thread::Builder::new()
                .name(format!("wal-{shard}"))
                .spawn(move || writer.run())?;
            shards.push(Shard { tx, queued_bytes });
            threads.push(t);
        }
        Ok(Wal {
            shards: Arc::new(shards),
            threads: Arc::new(Mutex::new(threads)),
            health,
            stats,
            queue_bytes_max: opts.queue_bytes,
            boot: opts.boot,
        })
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn stats(&self) -> &WalStats {
        &self.stats
    }

    pub fn health(&self) -> &Arc<StorageHealth> {
        &self.health
    }

    /// Queue a frame. With `Commit::Wait` the receiver resolves after the covering sync.
    pub fn submit(
        &self,
        shard: usize,
        bytes: Vec<u8>,
        commit: Commit,
    ) -> Result<Option<oneshot::Receiver<SyncResult>>, SubmitError> {
        if self.health.is_poisoned() {
            return Err(SubmitError::Failed(self.health.error()));
        }
        let s = &self.shards[shard % self.shards.len()];
        let len = bytes.len() as u64;
        if s.queued_bytes.load(Ordering::Relaxed) + len > self.queue_bytes_max {
            self.stats.submit_full.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::Full);
        }
        let (done, rx) = match commit {
            Commit::Wait => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        // Count before sending: the writer may dequeue (and decrement) before try_send returns.
        s.queued_bytes.fetch_add(len, Ordering::Relaxed);
        let depth = self.stats.queue_depth.fetch_add(1, Ordering::Relaxed) + 1;
        match s.tx.try_send(Msg::Frame {
            bytes,
            commit,
            done,
        }) {
            Ok(()) => {
                self.stats
                    .queue_depth_peak
                    .fetch_max(depth, Ordering::Relaxed);
                Ok(rx)
            }
            Err(e) => {
                s.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => {
                        self.stats.submit_full.fetch_add(1, Ordering::Relaxed);
                        Err(SubmitError::Full)
                    }
                    TrySendError::Disconnected(_) => {
                        Err(SubmitError::Failed(StoreError("WAL is shut down".into())))
                    }
                }
            }
        }
    }

    /// Checkpoint barrier on every shard (blocking; call from a blocking thread): returns, per
    /// shard, the index of the file where frames submitted after this call begin.
    pub fn rotate_all(&self) -> Result<Vec<u32>, StoreError> {
        let mut waits = Vec::new();
        for s in self.shards.iter() {
            let (tx, rx) = oneshot::channel();
            s.tx.send(Msg::Rotate(tx))
                .map_err(|_| StoreError("WAL is shut down".into()))?;
            waits.push(rx);
        }
        waits
            .into_iter()
            .map(|w| {
                w.blocking_recv()
                    .unwrap_or_else(|_| Err(StoreError("WAL writer stopped".into())))
            })
            .collect()
    }

    /// This boot's number (names its WAL files).
    pub fn boot(&self) -> u32 {
        self.boot
    }

    /// Drain every shard, sync, and join the threads. Idempotent.
    pub fn shutdown(&self) {
        let mut waits = Vec::new();
        for s in self.shards.iter() {
            let (tx, rx) = oneshot::channel();
            if s.tx.send(Msg::Stop(tx)).is_ok() {
                waits.push(rx);
            }
        }
        for w in waits {
            let _ = w.blocking_recv();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("shards", &self.shard_count())
            .finish()
    }
}

/// WAL file name: boot, shard and index, zero-padded so names sort in replay order.
pub fn wal_file_name(boot: u32, shard: usize, index: u32) -> String {
    format!("{boot:010}-{shard:02}-{index:06}.wal")
}

fn create_wal_file(
    fs: &dyn Fs,
    dir: &Path,
    boot: u32,
    shard: usize,
    index: u32,
) -> std::io::Result<Box<dyn AppendFile>> {
    let path = dir.join(wal_file_name(boot, shard, index));
    let mut file = fs.create_append(&path)?;
    file.append(
        &FileHeader {
            shard: shard as u16,
            boot,
        }
        .encode(),
    )?;
    file.sync_data()?;
    fs.sync_dir(dir)?;
    Ok(file)
}

/// The state a writer thread owns.
struct Writer {
    rx: mpsc::Receiver<Msg>,
    file: Box<dyn AppendFile>,
    file_len: u64,
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
}

/// Largest group written at once; bounds the buffer and the latency of one write.
const GROUP_BYTES_MAX: usize = 16 << 20;

/// How long a group that starts with a frame nobody waits for (`disk`, `memory`) stays open
/// before its write. Their acks never wait for the write, so this costs no latency; it widens
/// the window in which a process kill can take a not-yet-written tail by about as much.
const LINGER: Duration = Duration::from_micros(200);

fn waits_for_sync(m: &Msg) -> bool {
    matches!(
        m,
        Msg::Frame {
            commit: Commit::Wait,
            ..
        }
    )
}

impl Writer {
    fn run(mut self) {
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
                    Ok(m) => {
                        if let Msg::Frame { bytes: b, .. } = &m {
                            bytes += b.len();
                        }
                        group.push(m);
                    }
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit_group(group);
            }
            if let Some(done) = barrier {
                let result = match self.health.is_poisoned() {
                    true => Err(self.health.error()),
                    false => self
                        .rotate()
                        .map(|()| self.file_index)
                        .map_err(|e| self.fail(&format!("WAL rotation failed: {e}"))),
                };
                let _ = done.send(result);
            }
            if stop.is_some() {
                return self.finish(stop);
            }
        }
    }

    /// Block for the next message, waking early to sync a dirty file in time.
    fn next_message(&mut self) -> Option<Msg> {
        loop {
            let Some(since) = self.dirty_since else {
                return self.rx.recv().ok();
            };
            let due = since + self.opts.sync_interval;
            match self
                .rx
                .recv_timeout(due.saturating_duration_since(Instant::now()))
            {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.sync();
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn commit_group(&mut self, group: Vec<Msg>) {
        self.buf.clear();
        let mut need_sync = false;
        let mut soon = false;
        let mut waiters = Vec::new();
        let mut frames = 0u64;
        for m in group {
            if let Msg::Frame {
                bytes,
                commit,
                done,
            } = m
            {
                self.buf.extend_from_slice(&bytes);
                frames += 1;
                need_sync |= commit == Commit::Wait;
                soon |= commit == Commit::Soon;
                waiters.extend(done);
            }
        }
        let group_len = self.buf.len() as u64;
        let result = self.write_group(need_sync, soon);
        self.queued_bytes.fetch_sub(group_len, Ordering::Relaxed);
        self.stats.queue_depth.fetch_sub(frames, Ordering::Relaxed);
        self.stats.frames.fetch_add(frames, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        for w in waiters {
            let _ = w.send(result.clone());
        }
        if result.is_ok() && self.file_len >= self.opts.file_bytes {
            if let Err(e) = self.rotate() {
                self.fail(&format!("WAL rotation failed: {e}"));
            }
        }
    }

    fn write_group(&mut self, need_sync: bool, soon: bool) -> SyncResult {
        if self.health.is_poisoned() {
            return Err(self.health.error());
        }
        if let Err(e) = self.file.append(&self.buf) {
            return Err(self.fail(&format!("WAL write failed: {e}")));
        }
        self.file_len += self.buf.len() as u64;
        self.stats
            .bytes_written
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        if need_sync {
            return self.sync();
        }
        if soon && self.dirty_since.is_none() {
            self.dirty_since = Some(Instant::now());
        }
        Ok(())
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
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.stats
            .fsync_micros_total
            .fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.dirty_since = None;
        self.file_index += 1;
        self.file = create_wal_file(
            &*self.opts.fs,
            &self.opts.dir,
            self.opts.boot,
            self.shard,
            self.file_index,
        )?;
        self.file_len = FILE_HEADER_LEN as u64;
        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn fail(&mut self, what: &str) -> StoreError {
        let err = StoreError(format!("shard {}: {what}", self.shard).into());
        self.health.poison(&err);
        err
    }

    /// Final sync (of `memory` frames too) so a clean stop leaves nothing un-synced.
    fn finish(mut self, done: Option<oneshot::Sender<()>>) {
        let _ = self.sync();
        if let Some(d) = done {
            let _ = d.send(());
        }
    }
}
