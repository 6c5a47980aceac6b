//! WAL shards: each is a dedicated OS thread owning one append-only file (never the tokio
//! blocking pool: a slow disk must not starve other blocking work). A writer takes everything
//! queued, writes it with one `write`, and calls `fdatasync` once for the whole group when any
//! frame in it needs a sync — adaptive group commit: the longer a sync takes, the larger the
//! next group. `disk` frames are synced within `sync_interval` even when nobody waits.
//!
//! Invariants: frames of one shard reach the file in submission order; a sync waiter is
//! answered only after the `fdatasync` that covers its frame returned; after any I/O error the
//! shard is poisoned and every later submission fails (no retry).

#[cfg(test)]
mod tests;
mod writer;

use super::frame;
use super::fs::Fs;
use super::health::{StorageHealth, StoreError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;
use writer::Writer;

/// How a frame is committed (see API.md §3).
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
    /// The last boot whose WAL files replay found (written into sync marks, so recovery
    /// notices a boot whose files all went missing).
    pub prev_boot: u32,
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
    /// fdatasync latencies, one (non-cumulative) count per bucket of
    /// [`FSYNC_BUCKETS_US`], the last one for slower syncs (`+Inf`).
    pub fsync_buckets: [AtomicU64; FSYNC_BUCKETS_US.len() + 1],
}

/// Upper bounds (µs, inclusive) of the fsync latency histogram buckets.
pub const FSYNC_BUCKETS_US: [u64; 9] = [50, 100, 250, 500, 1000, 5000, 10_000, 50_000, 100_000];

impl WalStats {
    /// One completed WAL fdatasync that took `micros`: relaxed atomics only (the writer thread
    /// calls this right after the sync).
    pub fn record_fsync(&self, micros: u64) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_micros_total.fetch_add(micros, Ordering::Relaxed);
        let bucket = FSYNC_BUCKETS_US.partition_point(|&le| le < micros);
        self.fsync_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative bucket counts (Prometheus `le` order, ending with `+Inf`).
    pub fn fsync_cumulative(&self) -> [u64; FSYNC_BUCKETS_US.len() + 1] {
        let mut out = [0; FSYNC_BUCKETS_US.len() + 1];
        let mut sum = 0;
        for (o, b) in out.iter_mut().zip(&self.fsync_buckets) {
            sum += b.load(Ordering::Relaxed);
            *o = sum;
        }
        out
    }
}

struct FrameMsg {
    bytes: Vec<u8>,
    commit: Commit,
    done: Option<oneshot::Sender<SyncResult>>,
}

enum Msg {
    Frame(FrameMsg),
    /// Answers whether everything reached the file.
    Stop(oneshot::Sender<bool>),
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
    prev_boot: u32,
}

impl Wal {
    /// Create this boot's first file in every shard and start the writer threads.
    pub fn start(opts: WalOptions, health: Arc<StorageHealth>) -> std::io::Result<Wal> {
        std::fs::create_dir_all(&opts.dir)?;
        let stats = Arc::new(WalStats::default());
        let mut shards = Vec::with_capacity(opts.shards);
        let mut threads = Vec::with_capacity(opts.shards);
        for shard in 0..opts.shards {
            let (tx, rx) = mpsc::sync_channel(opts.queue_frames);
            let queued_bytes = Arc::new(AtomicU64::new(0));
            let writer = Writer::open(
                rx,
                shard,
                opts.clone(),
                health.clone(),
                stats.clone(),
                queued_bytes.clone(),
            )?;
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
            prev_boot: opts.prev_boot,
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
        // While a shard cannot write for lack of space, only bookkeeping frames go in (into
        // space kept back for them): nothing new is acknowledged that could not be written.
        if self.health.is_full() && !frame::is_control(&bytes) {
            return Err(SubmitError::Failed(StoreError::no_space(
                "the disk is full; durable writes resume once space is freed",
            )));
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
        match s.tx.try_send(Msg::Frame(FrameMsg {
            bytes,
            commit,
            done,
        })) {
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
                        Err(SubmitError::Failed(StoreError::failed("WAL is shut down")))
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
                .map_err(|_| StoreError::failed("WAL is shut down"))?;
            waits.push(rx);
        }
        waits
            .into_iter()
            .map(|w| {
                w.blocking_recv()
                    .unwrap_or_else(|_| Err(StoreError::failed("WAL writer stopped")))
            })
            .collect()
    }

    /// This boot's number (names its WAL files).
    pub fn boot(&self) -> u32 {
        self.boot
    }

    /// The boot before this one, as this boot's sync marks name it.
    pub fn prev_boot(&self) -> u32 {
        self.prev_boot
    }

    /// Drain every shard, sync, and join the threads. Idempotent. False when a shard could
    /// not write everything it held (the disk stayed full): the next start signals those
    /// seqs as lost.
    pub fn shutdown(&self) -> bool {
        let mut waits = Vec::new();
        for s in self.shards.iter() {
            let (tx, rx) = oneshot::channel();
            if s.tx.send(Msg::Stop(tx)).is_ok() {
                waits.push(rx);
            }
        }
        let mut clean = true;
        for w in waits {
            clean &= w.blocking_recv().unwrap_or(false);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        clean && !self.health.is_poisoned()
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

/// A whole WAL file for `shard` of `boot` that holds no frames and ends with a clean-stop
/// mark: what an online backup puts where its snapshot's replay starts. Replay finds the
/// barrier's files there and a boot that stopped cleanly, so the copy starts with exactly the
/// snapshot's state and no `crash` loss ranges for seqs it never held.
pub fn stopped_file(boot: u32, shard: usize, prev_boot: u32) -> Vec<u8> {
    let mut out = frame::FileHeader {
        shard: shard as u16,
        boot,
    }
    .encode()
    .to_vec();
    let header_len = out.len() as u64;
    frame::encode_sync(&mut out, header_len, prev_boot, false);
    frame::encode_stop(&mut out);
    out
}
