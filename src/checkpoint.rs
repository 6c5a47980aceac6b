//! Checkpoints: a consistent snapshot of every topic plus the WAL position to resume from, so
//! restart time depends on live state and the WAL tail, not on all history; WAL files older
//! than the previous snapshot are deleted.
//!
//! The cut: under the registry's lifecycle lock (no topic is being created or deleted), every
//! WAL shard rotates to a new file (the barrier); then each actor reports its state. A frame
//! written before the barrier is reflected in that state; a frame written after it is replayed
//! on top of the snapshot, and every frame kind is idempotent under replay, so effects that
//! are in both are applied once.

use crate::backup::pins::{PinGuard, Pins};
use crate::registry::Registry;
use crate::storage::fs::is_no_space;
use crate::storage::fs::Fs;
use crate::storage::health::StoreError;
use crate::storage::recovery::remove_before;
use crate::storage::segment;
use crate::storage::snapshot::{self, Barrier};
use crate::storage::wal::Wal;
use crate::storage::wal_dir;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Checkpointer {
    registry: Arc<Registry>,
    routers: Arc<crate::router::Routers>,
    queues: Arc<crate::queue::Queues>,
    wal: Wal,
    data_dir: PathBuf,
    /// Number the next snapshot gets.
    /// The next snapshot number; held for a whole checkpoint. The blocking snapshot write
    /// owns the guard, so a checkpoint task aborted at shutdown cannot let the final
    /// checkpoint start (and reuse its number) while its write is still running.
    next_number: Arc<tokio::sync::Mutex<u64>>,
    /// Every mutating file operation goes through this seam (tests inject power cuts).
    fs: Arc<dyn Fs>,
    /// Segment files the previous snapshot referred to (a fallback to it needs them).
    prev_segments: Arc<std::sync::Mutex<HashSet<String>>>,
    /// Snapshots and segments online backups are still reading (GC keeps them).
    pins: Arc<Pins>,
}

/// A checkpoint taken for an online backup: snapshot `number` and every segment it refers to
/// stay on disk until `guard` is dropped.
#[derive(Debug)]
pub struct BackupPoint {
    pub number: u64,
    pub barrier: Barrier,
    /// The boot before this one (named in WAL sync marks).
    pub prev_boot: u32,
    pub guard: PinGuard,
}

/// Why a checkpoint failed; `no_space`: it was only skipped (nothing was poisoned).
#[derive(Debug)]
pub struct Failed {
    pub message: String,
    pub no_space: bool,
}

/// When to checkpoint (config `[storage]`).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub wal_bytes: u64,
    pub max_interval: Duration,
    pub check_interval: Duration,
}

/// The snapshot recovery started from: its number and the segment files it referred to.
pub struct PrevSnapshot {
    pub number: u64,
    pub segments: HashSet<String>,
}

impl Checkpointer {
    pub fn new(
        registry: Arc<Registry>,
        routers: Arc<crate::router::Routers>,
        queues: Arc<crate::queue::Queues>,
        wal: Wal,
        data_dir: PathBuf,
        prev: PrevSnapshot,
        fs: Arc<dyn Fs>,
    ) -> Self {
        Self {
            fs,
            registry,
            routers,
            queues,
            wal,
            data_dir,
            next_number: Arc::new(tokio::sync::Mutex::new(prev.number + 1)),
            prev_segments: Arc::new(std::sync::Mutex::new(prev.segments)),
            pins: Arc::default(),
        }
    }

    /// Take one checkpoint. `exact`: the server is stopping, so heads are final.
    pub async fn run(&self, exact: bool) -> Result<u64, String> {
        match self.take(exact, false).await {
            Ok((n, _)) => Ok(n),
            Err(f) => Err(f.message),
        }
    }

    /// A checkpoint whose snapshot and segments are pinned for a backup to read.
    pub async fn run_for_backup(&self) -> Result<BackupPoint, Failed> {
        let (number, guard) = self.take(false, true).await?;
        let guard = guard.ok_or_else(|| Failed {
            message: "checkpoint pinned nothing".into(),
            no_space: false,
        })?;
        let dir = snapshot::dir(&self.data_dir);
        let barrier = tokio::task::spawn_blocking(move || snapshot::load(&dir, number))
            .await
            .ok()
            .flatten()
            .map(|s| s.barrier)
            .ok_or_else(|| Failed {
                message: format!("snapshot {number} cannot be read back"),
                no_space: false,
            })?;
        Ok(BackupPoint {
            number,
            barrier,
            prev_boot: self.wal.prev_boot(),
            guard,
        })
    }

    /// The checkpoint itself; with `pin`, its snapshot and segments are pinned before the
    /// snapshot-number lock is released (so no later checkpoint can collect them first).
    async fn take(&self, exact: bool, pin: bool) -> Result<(u64, Option<PinGuard>), Failed> {
        let mut number = self.next_number.clone().lock_owned().await;
        // Listed before the cut: a segment sealed after this point is never a GC candidate.
        // A listed file still in flight is not one either: its topic swaps it in only after
        // it is durable, maybe after the cut. A file's seal registers it before creating it,
        // so one listed but no longer in flight was swapped in before the cut (and is in an
        // image while live) or was dropped by its topic (garbage).
        let seg_dir = segment::dir(&self.data_dir);
        let mut candidates = list_segments(&seg_dir);
        let in_flight = self.registry.segments_in_flight();
        let pinned = self.pins.segments();
        candidates.retain(|f| !in_flight.contains(f) && !pinned.contains(f));
        let wal = self.wal.clone();
        // Until the router images: a router defined before the barrier is in them.
        let router_cut = self.routers.cut_guard().await;
        let (starts, handles, next_id) = self
            .registry
            .cut(move || wal.rotate_all())
            .await
            .map_err(|e| Failed {
                message: format!("checkpoint barrier failed: {e}"),
                no_space: false,
            })?;
        let barrier = Barrier {
            boot: self.wal.boot(),
            start: starts,
        };
        // After the barrier, so no cursor frame before it is newer (docs/STORAGE.md, Routers).
        let routers = self.routers.images();
        drop(router_cut);
        // After the barrier, like router cursors: every lease event before it is in them.
        let queues = self.queues.images().await;
        let images = topic_images(handles, exact).await;
        let referenced: HashSet<String> = images
            .iter()
            .flat_map(|img| {
                img.segments
                    .iter()
                    .map(|m| segment::file_name(img.id, m.first_seq, m.gen))
            })
            .collect();
        let keep: HashSet<String> = {
            let prev = self.prev_segments.lock().unwrap_or_else(|e| e.into_inner());
            referenced.union(&prev).cloned().collect()
        };
        let (dir, wal_dir, n) = (
            snapshot::dir(&self.data_dir),
            wal_dir(&self.data_dir),
            *number,
        );
        let (fs, prev, pins) = (
            self.fs.clone(),
            self.prev_segments.clone(),
            self.pins.clone(),
        );
        let written = tokio::task::spawn_blocking(move || {
            let end = (next_id, images.len() as u64);
            snapshot::write(&*fs, &dir, n, &barrier, end, |w| {
                images.iter().try_for_each(|img| img.encode(w))?;
                crate::queue::encode_images(&queues, w)?;
                crate::router::encode_images(&routers, w)
            })
            .map_err(|e| (format!("writing snapshot {n}: {e}"), is_no_space(&e)))?;
            *number += 1; // the guard is released only when this closure is over
            let guard = pin.then(|| pins.pin(n, referenced.iter().cloned().collect()));
            *prev.lock().unwrap_or_else(|e| e.into_inner()) = referenced;
            let older = snapshot::prune(&*fs, &dir, &pins.snapshots())
                .map_err(|e| (format!("pruning snapshots: {e}"), false))?;
            remove_segments(&*fs, &seg_dir, candidates.difference(&keep))
                .map_err(|e| (e, false))?;
            let removed = match older {
                Some(b) => remove_before(&*fs, &wal_dir, &b).map_err(|e| (e, false))?,
                None => 0,
            };
            Ok((removed, guard))
        })
        .await
        .map_err(|e| Failed {
            message: format!("checkpoint task failed: {e}"),
            no_space: false,
        })?;
        match written {
            Ok((removed, guard)) => {
                tracing::info!(
                    snapshot = n,
                    wal_files_removed = removed,
                    "checkpoint written"
                );
                Ok((n, guard))
            }
            Err((e, no_space)) => Err(Failed {
                message: self.failed(e, no_space),
                no_space,
            }),
        }
    }

    /// A checkpoint that ran out of space before its snapshot was renamed into place is only
    /// skipped (its temp file is gone again and nothing depends on it; the next one tries
    /// again). Any other failed write, fsync or rename is a storage failure like any other.
    fn failed(&self, e: String, no_space: bool) -> String {
        if no_space {
            tracing::warn!(error = %e, "checkpoint skipped: the disk is full");
        } else {
            self.wal.health().poison(&StoreError::failed(e.clone()));
        }
        e
    }

    /// Checkpoint whenever `wal_bytes` were written since the last one, or `max_interval`
    /// passed with any write at all. Runs until the task is aborted.
    pub async fn run_periodically(self: Arc<Self>, s: Schedule) {
        let mut last_bytes = self.wal.stats().bytes_written.load(Ordering::Relaxed);
        let mut last_at = Instant::now();
        loop {
            tokio::time::sleep(s.check_interval).await;
            if self.wal.health().is_poisoned() {
                continue;
            }
            let bytes = self.wal.stats().bytes_written.load(Ordering::Relaxed);
            let grown = bytes.saturating_sub(last_bytes);
            let due = (s.wal_bytes > 0 && grown >= s.wal_bytes)
                || (grown > 0 && last_at.elapsed() >= s.max_interval);
            if !due {
                continue;
            }
            if let Err(e) = self.run(false).await {
                tracing::error!(error = %e, "checkpoint failed");
            }
            // Count from the barrier; rotation itself writes file headers only.
            last_bytes = self.wal.stats().bytes_written.load(Ordering::Relaxed);
            last_at = Instant::now();
        }
    }
}

/// Segment files this server wrote present in `dir`: only they are candidates for removal.
/// Anything else (a `notes.seg` someone left there, a directory) is left alone, with a warning.
/// Every topic's image; a topic deleted since the cut is left out.
async fn topic_images(
    handles: Vec<crate::topic::TopicHandle>,
    exact: bool,
) -> Vec<crate::topic::image::TopicImage> {
    let mut images = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(img) = h.image(exact).await {
            images.push(img);
        }
    }
    images
}

fn list_segments(dir: &std::path::Path) -> HashSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HashSet::new();
    };
    let mut own = HashSet::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && segment::is_own_file_name(&name) {
            own.insert(name);
        } else if !segment::is_own_temp_name(&name) {
            tracing::warn!(file = %name, "ignoring unexpected file in the segment directory");
        }
    }
    own
}

/// Delete segment files no kept snapshot and no live topic refers to.
fn remove_segments<'a>(
    fs: &dyn Fs,
    dir: &std::path::Path,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), String> {
    let mut any = false;
    for name in names {
        fs.remove(&dir.join(name))
            .map_err(|e| format!("removing segment {name}: {e}"))?;
        any = true;
    }
    if any {
        fs.sync_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}
