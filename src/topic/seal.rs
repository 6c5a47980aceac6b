//! Sealing inside the actor: once the hot tier passes a trigger (records, bytes or age), every
//! live hot record moves into an immutable segment file and leaves RAM. `ephemeral` topics
//! never seal (their records must not reach the disk).

use super::actor::Actor;
use crate::model::topic_config::Durability;
use crate::storage::fs::is_no_space;
use crate::storage::health::StoreError;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Seals running at once across all topics. Each holds a runtime worker in `block_in_place`,
/// which hands the worker's other tasks to another thread: a seal storm over many topics would
/// otherwise start a thread per sealing topic (~105 threads in the 1000-topic benchmark; ~35
/// with this bound). Not lower: the seals' fsyncs overlap on the device, and with 2 slots they
/// fell behind the hot budget there (1.5 GB resident instead of 0.4 GB).
const SEALS_AT_ONCE: usize = 16;

/// One of the `SEALS_AT_ONCE` slots, released on drop.
struct SealSlot<'a>(&'a AtomicUsize);

impl<'a> SealSlot<'a> {
    fn try_acquire(sealing: &'a AtomicUsize) -> Option<SealSlot<'a>> {
        sealing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < SEALS_AT_ONCE).then_some(n + 1)
            })
            .ok()
            .map(|_| SealSlot(sealing))
    }
}

impl Drop for SealSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Actor {
    pub(super) fn maybe_seal(&mut self) {
        if self.config.durability == Durability::Ephemeral || self.ctx.segments_dir.is_none() {
            return;
        }
        self.report_hot();
        let Some(dir) = self.ctx.segments_dir.as_deref() else {
            return;
        };
        if self.ctx.wal.health().is_poisoned() {
            return;
        }
        let p = self.ctx.seal;
        let n = self.store.hot_count();
        let old =
            |ts: i64| p.age_ms > 0 && self.ctx.clock.now_ms().saturating_sub(ts) >= p.age_ms as i64;
        let due = n > 0
            && ((p.records > 0 && n >= p.records)
                || (p.bytes > 0 && self.store.hot_bytes() >= p.bytes)
                || self.store.hot_oldest_ts().is_some_and(old)
                || p.over_budget(
                    self.ctx.hot_total.load(Ordering::Relaxed),
                    self.hot_footprint(),
                ));
        if !due {
            return;
        }
        // At most SEALS_AT_ONCE topics seal at a time; a topic that finds no slot keeps its
        // hot tier a little longer and tries again after its next command.
        let ctx = self.ctx.clone();
        let Some(slot) = SealSlot::try_acquire(&ctx.sealing) else {
            return;
        };
        // The write is synchronous for this topic (it waits for one segment fsync); on the
        // multi-thread runtime `block_in_place` moves other tasks off this worker meanwhile,
        // so other topics keep running.
        let (id, gen) = (self.id, self.ctx.wal.boot());
        let (store, fs) = (&mut self.store, &*self.ctx.fs);
        let mut seal = || store.seal(fs, dir, id, gen);
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let result = if multi {
            tokio::task::block_in_place(seal)
        } else {
            seal()
        };
        match result {
            // Out of space before the segment was renamed into place: its temp file is gone
            // again (`write_atomic`), the records stay hot and the WAL still holds them, so
            // nothing is lost by trying again after a later command.
            Err(e) if is_no_space(&e) => {
                tracing::warn!(topic = %self.name, "seal skipped: the disk is full");
            }
            Err(e) => self.ctx.wal.health().poison(&StoreError::failed(format!(
                "topic {}: sealing a segment: {e}",
                self.name
            ))),
            Ok(_) => {}
        }
        drop(slot);
        self.report_hot();
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
    fn seal_slots_admit_a_bounded_number_at_once() {
        let sealing = AtomicUsize::new(0);
        let held: Vec<_> = (0..SEALS_AT_ONCE)
            .map(|_| SealSlot::try_acquire(&sealing).expect("a free slot"))
            .collect();
        assert!(SealSlot::try_acquire(&sealing).is_none(), "all slots taken");
        drop(held);
        assert_eq!(
            sealing.load(Ordering::Acquire),
            0,
            "slots come back on drop"
        );
        assert!(SealSlot::try_acquire(&sealing).is_some());
    }
}
