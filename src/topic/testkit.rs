//! In-process harness for actor tests: a real WAL in a temp dir, a manual clock, a registry,
//! and restarts that replay the directory (graceful, or "crash" without final heads).

use super::recovered::recover_dir;
use super::TopicCtx;
use crate::checkpoint::Checkpointer;
use crate::clock::ManualClock;
use crate::model::priority::PriorityParams;
use crate::registry::Registry;
use crate::storage::fs::{Fs, RealFs};
use crate::storage::health::StorageHealth;
use crate::storage::recovery::ReplayProgress;
use crate::storage::wal::{Wal, WalOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Seqs of every visible record of `t`, in order (test topics are small: one read).
pub async fn visible_seqs(t: &super::TopicHandle) -> Vec<u64> {
    let req = super::ReadRequest {
        from_seq: 0,
        limit: 100_000,
        budget_bytes: 1 << 30,
        skip_nodes: vec![],
        include_meta: true,
    };
    let result = t.read(req).await.expect("read");
    assert!(result.caught_up, "one read covers a test topic");
    result.records.iter().map(|r| r.seq).collect()
}

/// A record draft with `data` and an optional tag, nothing else (what most tests write).
pub fn draft(tag: Option<&str>, data: bytes::Bytes) -> crate::model::record::RecordDraft {
    crate::model::record::RecordDraft {
        node: None,
        tag: tag.map(std::sync::Arc::from),
        data,
        meta: None,
        hops: 0,
    }
}

pub struct Harness {
    pub dir: PathBuf,
    pub clock: Arc<ManualClock>,
    pub registry: Arc<Registry>,
    wal: Wal,
    checkpointer: Checkpointer,
    /// What the replay at this start saw.
    pub replay: crate::storage::recovery::ReplaySummary,
    fs: Arc<dyn Fs>,
    /// Kept for restarts.
    wal_file_bytes: u64,
}

/// WAL files of the harness: small, since every file is preallocated to this and tests read
/// them back often.
pub const WAL_FILE_BYTES: u64 = 1 << 20;

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

pub fn temp_dir(tag: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("topics-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Harness {
    pub fn start(dir: PathBuf, clock: Arc<ManualClock>) -> Harness {
        Harness::start_with_fs(dir, clock, Arc::new(RealFs))
    }

    /// Start with `fs` under sealing and checkpoints (a `FaultFs` injects power cuts).
    pub fn start_with_fs(dir: PathBuf, clock: Arc<ManualClock>, fs: Arc<dyn Fs>) -> Harness {
        Harness::try_start_with_fs(dir, clock, fs).unwrap()
    }

    /// Like `start_with_fs`, reporting a failed start (the WAL could not create its files).
    pub fn try_start_with_fs(
        dir: PathBuf,
        clock: Arc<ManualClock>,
        fs: Arc<dyn Fs>,
    ) -> Result<Harness, String> {
        Harness::try_start_with(dir, clock, fs, WAL_FILE_BYTES)
    }

    /// Like `try_start_with_fs` with WAL files of `wal_file_bytes` (small ones rotate often).
    pub fn try_start_with(
        dir: PathBuf,
        clock: Arc<ManualClock>,
        fs: Arc<dyn Fs>,
        wal_file_bytes: u64,
    ) -> Result<Harness, String> {
        let wal_dir = crate::storage::wal_dir(&dir);
        let rec = recover_dir(&*fs, &dir, &ReplayProgress::default(), Default::default())?;
        let (topics, next_id, summary) = (rec.topics, rec.next_id, rec.summary);
        let opts = WalOptions {
            dir: wal_dir,
            shards: 2,
            boot: summary.next_boot,
            queue_frames: 1024,
            queue_bytes: 64 << 20,
            file_bytes: wal_file_bytes,
            sync_interval: Duration::from_millis(5),
            fs: fs.clone(),
            prev_boot: summary.last_boot,
        };
        let wal = Wal::start(opts, StorageHealth::new()).map_err(|e| e.to_string())?;
        let ctx = Arc::new(TopicCtx {
            wal: wal.clone(),
            clock: clock.clone(),
            seq_reserve_ahead: 8,
            mailbox: 64,
            priority: PriorityParams::default(),
            total_bytes: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            max_total_bytes: 0,
            segments_dir: Some(crate::storage::segment::dir(&dir)),
            // Tiny so that model tests cross tiers constantly.
            seal: super::seal::SealPolicy {
                records: 4,
                bytes: 0,
                age_ms: 0,
                budget: 0,
            },
            hot_total: AtomicU64::new(0),
            sealer: Default::default(),
            fs: fs.clone(),
            integrity: Default::default(),
        });
        ctx.integrity.add(rec.damaged.0, rec.damaged.1);
        let registry = Arc::new(Registry::new(ctx, 0));
        registry.install(topics, next_id);
        let clock_dyn: Arc<dyn crate::clock::Clock> = clock.clone();
        let checkpointer = Checkpointer::new(
            registry.clone(),
            crate::router::Routers::new(registry.clone(), ROUTER_PARAMS),
            crate::queue::Queues::new(
                registry.clone(),
                clock_dyn,
                crate::queue::QueueParams::from_config(&Default::default()),
            ),
            wal.clone(),
            dir.clone(),
            crate::checkpoint::PrevSnapshot {
                number: rec.snapshot_number,
                segments: rec.segment_files,
            },
            fs.clone(),
        );
        Ok(Harness {
            dir,
            clock,
            registry,
            wal,
            checkpointer,
            replay: summary,
            fs,
            wal_file_bytes,
        })
    }

    /// The WAL (its stats and storage health).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Wait (at most 10 s) until no seal is in flight: seals run in the background, so a
    /// test that needs a quiet file system (or a swapped-in segment) waits for them. A round
    /// trip to `t` first: a seal its last write made due has started by the time the actor
    /// answers its next command.
    pub async fn seals_settled(&self, t: &super::TopicHandle) {
        let _ = t.state(false).await;
        let wait = async {
            while !self.registry.segments_in_flight().is_empty() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("a seal never finished");
    }

    /// Whether storage has been poisoned by a failed write, sync or rename.
    pub fn poisoned(&self) -> bool {
        self.wal.health().is_poisoned()
    }

    /// Take a (non-final) checkpoint while the topics keep running.
    pub async fn checkpoint(&self) -> u64 {
        self.checkpointer.run(false).await.unwrap()
    }

    /// Like `checkpoint`, reporting failure (injected faults).
    pub async fn try_checkpoint(&self) -> Result<u64, String> {
        self.checkpointer.run(false).await
    }

    /// Stop like a crash (no final frames or snapshot) and hand back the data dir.
    pub async fn crash(self) -> PathBuf {
        self.stop(false).await.0
    }

    /// Stop and replay. `graceful` writes final heads first; otherwise it is a process crash
    /// that keeps the page cache (every frame handed to the WAL is written).
    pub async fn restart(self, graceful: bool) -> Harness {
        let file_bytes = self.wal_file_bytes;
        let (dir, clock, fs) = self.stop(graceful).await;
        Harness::try_start_with(dir, clock, fs, file_bytes).unwrap()
    }

    async fn stop(self, graceful: bool) -> (PathBuf, Arc<ManualClock>, Arc<dyn Fs>) {
        if graceful {
            self.registry.finalize_all().await;
        } else {
            // A crash: no final frames, but in-process actors must stop before the "next
            // process" starts (a real crash stops them all at once).
            self.registry.stop_all().await;
        }
        drop(self.checkpointer);
        drop(self.registry);
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || wal.shutdown())
            .await
            .unwrap();
        (self.dir, self.clock, self.fs)
    }
}

/// No routers run in actor-level tests; checkpoints still need a (empty) router set.
const ROUTER_PARAMS: crate::router::RouterParams = crate::router::RouterParams {
    max_routers: 0,
    max_hops: 8,
    batch: 1024,
    retry_ms: 50,
    max_meta_bytes: 0,
    max_record_bytes: 0,
};
