//! Sealing: once the hot tier passes a trigger (records, bytes, age or the shared budget), its
//! oldest live records are written to an immutable segment file on the blocking pool, and
//! leave RAM when that file is durable. `ephemeral` topics never seal (their records must
//! not reach the disk).
//!
//! Rule: a segment file is complete and durable (fsynced, renamed, directory fsynced) before
//! the topic swaps it in, and a snapshot refers only to swapped-in segments; until then the
//! records stay hot (and in every snapshot as hot records), and GC keeps the file.

use super::actor::Actor;
use super::store::{write_segment, SealError};
use super::TopicCtx;
use crate::model::topic_config::Durability;
use crate::storage::health::StoreError;
use crate::storage::segment::{self, Segment};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a topic whose seal found the disk full waits before trying again (its records
/// stay in RAM and in the WAL meanwhile).
const SEAL_RETRY_WHEN_FULL: Duration = Duration::from_secs(5);

/// Sealing triggers (config `storage.segment_seal_*` and `hot_budget_bytes`); 0 disables a
/// trigger.
#[derive(Debug, Clone, Copy, Default)]
pub struct SealPolicy {
    pub records: u64,
    pub bytes: u64,
    pub age_ms: u64,
    /// Over this many hot bytes across all topics, a topic holding more than
    /// `budget / 1024` (at least `BUDGET_SEAL_MIN`) seals.
    pub budget: u64,
}

/// Smallest hot tier the budget trigger seals: no flood of tiny segments.
const BUDGET_SEAL_MIN: u64 = 4096;

/// RAM a hot record costs beyond its payload (record handle, indexes, vector slack, its
/// share of the request buffer), measured: 4.17M hot ~95-byte records took 1.09 GB of heap.
const HOT_RECORD_OVERHEAD: u64 = 170;

impl SealPolicy {
    fn over_budget(&self, total: u64, mine: u64) -> bool {
        self.budget > 0 && total > self.budget && mine >= (self.budget / 1024).max(BUDGET_SEAL_MIN)
    }
}

/// Seals running at once across all topics: each holds a blocking-pool thread while it
/// writes and fsyncs its segment. Not lower: the seals' fsyncs overlap on the device, and
/// with 2 at once seals fell behind the hot budget in the 1000-topic benchmark (1.5 GB
/// resident instead of 0.4 GB).
pub const SEALS_AT_ONCE: usize = 16;

/// One segment's worth at most: bounds the actor's share of a seal (copying the batch out,
/// swapping the segment in) to a few milliseconds even when recovery left millions of
/// records hot; a large hot tier seals as a run of these, one after another.
const SEAL_MAX_RECORDS: usize = 65_536;
const SEAL_MAX_BYTES: u64 = 32 << 20;

/// Backpressure for a topic whose writes outrun its seals (only one seal per topic runs at a
/// time): past `records` hot records or `bytes` hot payload, the topic waits for the seal in
/// flight before it handles the next write — and meanwhile handles nothing else, as it did
/// for every seal when sealing was inline; this happens only while writes outrun sealing.
/// The limits start at what recovery left hot (a recovered backlog drains in the background
/// without holding anything up) and only come down as seals drain it, to two batches' worth
/// at least.
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    records: u64,
    bytes: u64,
}

impl Backlog {
    const MIN_RECORDS: u64 = 2 * SEAL_MAX_RECORDS as u64;
    const MIN_BYTES: u64 = 2 * SEAL_MAX_BYTES;

    /// One batch of headroom above what is hot: writes wait only once they, not an earlier
    /// backlog, have outrun the seals by a batch.
    const HEADROOM_RECORDS: u64 = SEAL_MAX_RECORDS as u64;
    const HEADROOM_BYTES: u64 = SEAL_MAX_BYTES;

    pub fn new(hot_records: u64, hot_bytes: u64) -> Backlog {
        Backlog {
            records: (hot_records + Self::HEADROOM_RECORDS).max(Self::MIN_RECORDS),
            bytes: (hot_bytes + Self::HEADROOM_BYTES).max(Self::MIN_BYTES),
        }
    }

    fn exceeded(&self, hot_records: u64, hot_bytes: u64) -> bool {
        hot_records >= self.records || hot_bytes >= self.bytes
    }

    /// After a seal: the limits follow the hot tier down (keeping a batch of headroom), never
    /// up.
    fn drained_to(&mut self, hot_records: u64, hot_bytes: u64) {
        let records = hot_records + Self::HEADROOM_RECORDS;
        let bytes = hot_bytes + Self::HEADROOM_BYTES;
        self.records = self.records.min(records).max(Self::MIN_RECORDS);
        self.bytes = self.bytes.min(bytes).max(Self::MIN_BYTES);
    }
}

/// Segment files being written, across all topics (at most `SEALS_AT_ONCE`). Checkpoint GC
/// leaves these alone: such a file is complete on disk before any snapshot refers to it.
#[derive(Debug, Default)]
pub struct Sealer {
    files: Mutex<HashSet<String>>,
}

impl Sealer {
    /// Names of the segment files in flight.
    pub fn in_flight(&self) -> HashSet<String> {
        self.lock().clone()
    }

    /// Take a slot for `file`; false when all are taken (or `file` is already in flight).
    fn admit(&self, file: &str) -> bool {
        let mut files = self.lock();
        files.len() < SEALS_AT_ONCE && files.insert(file.to_string())
    }

    fn release(&self, file: &str) {
        self.lock().remove(file);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A seal's slot and its file's place in [`Sealer`], from before the file exists until the
/// topic has swapped the segment in (or dropped it): released on drop.
pub struct SealTicket {
    ctx: Arc<TopicCtx>,
    file: String,
}

impl SealTicket {
    fn try_acquire(ctx: &Arc<TopicCtx>, file: String) -> Option<SealTicket> {
        ctx.sealer.admit(&file).then(|| SealTicket {
            ctx: ctx.clone(),
            file,
        })
    }
}

impl Drop for SealTicket {
    fn drop(&mut self) {
        self.ctx.sealer.release(&self.file);
    }
}

/// A finished segment write, handed back to its topic's actor.
pub struct SealDone {
    result: Result<Segment, SealError>,
    gen: u32,
    /// Dropped only after the segment is swapped in: until then GC must keep the file.
    ticket: SealTicket,
}

/// The actor's in-flight seal, if any (one per topic at a time).
pub type SealInFlight = Option<oneshot::Receiver<SealDone>>;

/// Resolves when the in-flight seal finishes (`None`: its task died), never without one.
pub(super) async fn seal_finished(
    rx: Option<&mut oneshot::Receiver<SealDone>>,
) -> Option<SealDone> {
    match rx {
        Some(rx) => rx.await.ok(),
        None => std::future::pending().await,
    }
}

impl Actor {
    /// Start a seal if one is due and none is in flight. The segment is written, fsynced and
    /// checked on the blocking pool; the topic keeps serving reads and writes from the hot
    /// tier meanwhile, and swaps the segment in when it is durable ([`Actor::on_sealed`]).
    pub(super) fn maybe_seal(&mut self) {
        if self.config.durability == Durability::Ephemeral || self.ctx.segments_dir.is_none() {
            return;
        }
        self.report_hot();
        if self.seal_inflight.is_some() || !self.seal_due() {
            return;
        }
        let Some(dir) = self.ctx.segments_dir.clone() else {
            return;
        };
        let Some(first) = self.store.hot_first_seq() else {
            return;
        };
        let (id, gen) = (self.id, self.ctx.wal.boot());
        // A topic that finds no slot keeps its hot tier a little longer and tries again
        // after its next event (before copying anything out: in a seal storm that is most
        // events of most topics).
        let file = segment::file_name(id, first, gen);
        let Some(ticket) = SealTicket::try_acquire(&self.ctx, file) else {
            return;
        };
        let records = self.store.seal_batch(SEAL_MAX_RECORDS, SEAL_MAX_BYTES);
        debug_assert_eq!(records.first().map(|r| r.seq), Some(first));
        let (tx, rx) = oneshot::channel();
        let fs = self.ctx.fs.clone();
        tokio::task::spawn_blocking(move || {
            let result = write_segment(&*fs, &dir, id, gen, &records);
            drop(records);
            // A topic gone meanwhile drops the ticket here: the file is garbage for GC.
            let _ = tx.send(SealDone {
                result,
                gen,
                ticket,
            });
        });
        self.seal_inflight = Some(rx);
    }

    fn seal_due(&self) -> bool {
        if self.ctx.wal.health().is_poisoned() {
            return false;
        }
        if self.seal_retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let p = self.ctx.seal;
        let n = self.store.hot_count();
        let old =
            |ts: i64| p.age_ms > 0 && self.ctx.clock.now_ms().saturating_sub(ts) >= p.age_ms as i64;
        n > 0
            && ((p.records > 0 && n >= p.records)
                || (p.bytes > 0 && self.store.hot_bytes() >= p.bytes)
                || self.store.hot_oldest_ts().is_some_and(old)
                || p.over_budget(
                    self.ctx.hot_total.load(Ordering::Relaxed),
                    self.hot_footprint(),
                ))
    }

    /// The in-flight seal finished (`None`: its task died before reporting).
    pub(super) fn on_sealed(&mut self, done: Option<SealDone>) {
        self.seal_inflight = None;
        let Some(done) = done else {
            let e = StoreError::failed(format!("topic {}: the seal task died", self.name));
            return self.ctx.wal.health().poison(&e);
        };
        match done.result {
            Err(SealError::NoSpace(e)) => {
                tracing::warn!(topic = %self.name, error = %e, "seal skipped: the disk is full");
                self.seal_retry_at = Some(Instant::now() + SEAL_RETRY_WHEN_FULL);
            }
            Err(SealError::Failed(e)) => self
                .ctx
                .wal
                .health()
                .poison(&StoreError::failed(format!("topic {}: {e}", self.name))),
            Ok(seg) => {
                self.store.attach_sealed(seg, done.gen);
                self.seal_retry_at = None;
            }
        }
        let (n, b) = (self.store.hot_count(), self.store.hot_bytes());
        self.seal_backlog.drained_to(n, b);
        // Only now may GC see the file as unreferenced-unless-in-an-image.
        drop(done.ticket);
        self.report_hot();
    }

    /// While the hot tier is past its backlog limits and a seal is in flight, wait for that
    /// seal (and start the next), taking no command meanwhile: what the actor does once
    /// `park::PARKED_MAX` commands wait, so memory stays bounded when writes outrun sealing.
    pub(super) async fn wait_for_seal_backlog(&mut self) {
        while self.backlog_exceeded() {
            self.settle_seal().await;
            self.maybe_seal();
        }
    }

    /// A seal is in flight and the hot tier is past the backlog limit: writes must wait.
    pub(super) fn backlog_exceeded(&self) -> bool {
        self.seal_inflight.is_some()
            && self
                .seal_backlog
                .exceeded(self.store.hot_count(), self.store.hot_bytes())
    }

    /// Wait for the in-flight seal and swap it in (or handle its failure), starting no other.
    pub(super) async fn settle_seal(&mut self) {
        if let Some(rx) = self.seal_inflight.as_mut() {
            let done = rx.await.ok();
            self.on_sealed(done);
        }
    }

    /// Wait for the in-flight seal without using it (the topic is stopping): no seal writes
    /// into the data directory after its topic stopped. Its records are still hot.
    pub(super) async fn drain_seal(&mut self) {
        if let Some(rx) = self.seal_inflight.take() {
            let _ = rx.await;
        }
    }

    /// Estimated RAM of the hot tier: what the budget counts.
    fn hot_footprint(&self) -> u64 {
        self.store.hot_bytes() + self.store.hot_count() * HOT_RECORD_OVERHEAD
    }

    /// Bring this topic's share of `hot_total` up to date.
    pub(super) fn report_hot(&mut self) {
        let now = self.hot_footprint();
        let total = &self.ctx.hot_total;
        match now.cmp(&self.hot_reported) {
            std::cmp::Ordering::Greater => {
                total.fetch_add(now - self.hot_reported, Ordering::Relaxed)
            }
            std::cmp::Ordering::Less => total.fetch_sub(self.hot_reported - now, Ordering::Relaxed),
            std::cmp::Ordering::Equal => return,
        };
        self.hot_reported = now;
    }
}

impl Drop for Actor {
    /// A stopped or deleted topic's hot tier no longer counts against the budget.
    fn drop(&mut self) {
        self.ctx
            .hot_total
            .fetch_sub(self.hot_reported, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovered_backlog_drains_without_holding_writes_and_new_growth_waits() {
        let batch = SEAL_MAX_RECORDS as u64;
        let mut b = Backlog::new(3_000_000, 0);
        // A few writes on top of the recovered backlog do not wait.
        assert!(!b.exceeded(3_000_010, 0));
        // Each seal takes a batch; the limit follows with a batch of headroom.
        b.drained_to(3_000_010 - batch, 0);
        assert!(!b.exceeded(3_000_020 - batch, 0));
        // Writes that outrun the seals by a batch wait.
        assert!(b.exceeded(3_000_010 + batch, 0));
        // Drained: back to two batches' worth.
        b.drained_to(1000, 0);
        assert!(!b.exceeded(2 * batch - 1, 0));
        assert!(b.exceeded(2 * batch, 0));
        assert!(Backlog::new(0, 0).exceeded(0, 2 * SEAL_MAX_BYTES));
    }

    #[test]
    fn the_sealer_admits_a_bounded_number_of_distinct_files() {
        let sealer = Sealer::default();
        let names: Vec<String> = (0..SEALS_AT_ONCE).map(|i| format!("f{i}")).collect();
        assert!(names.iter().all(|n| sealer.admit(n)));
        assert!(!sealer.admit("one-more"), "all slots taken");
        assert_eq!(sealer.in_flight().len(), SEALS_AT_ONCE);
        sealer.release("f0");
        assert!(
            !sealer.admit("f1"),
            "a file in flight is not admitted twice"
        );
        assert!(sealer.admit("one-more"), "a released slot is free again");
        assert!(!sealer.in_flight().contains("f0"));
    }
}
