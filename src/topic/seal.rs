//! Sealing inside the actor: once the hot tier passes a trigger (records, bytes or age), every
//! live hot record moves into an immutable segment file and leaves RAM. `ephemeral` topics
//! never seal (their records must not reach the disk).

use super::actor::Actor;
use crate::model::topic_config::Durability;
use crate::storage::health::StoreError;

/// Sealing triggers (config `storage.segment_seal_*`); 0 disables a trigger.
#[derive(Debug, Clone, Copy, Default)]
pub struct SealPolicy {
    pub records: u64,
    pub bytes: u64,
    pub age_ms: u64,
}

impl Actor {
    pub(super) fn maybe_seal(&mut self) {
        let Some(dir) = self.ctx.segments_dir.as_deref() else {
            return;
        };
        if self.config.durability == Durability::Ephemeral || self.ctx.wal.health().is_poisoned() {
            return;
        }
        let p = self.ctx.seal;
        let n = self.store.hot_count();
        let old =
            |ts: i64| p.age_ms > 0 && self.ctx.clock.now_ms().saturating_sub(ts) >= p.age_ms as i64;
        let due = n > 0
            && ((p.records > 0 && n >= p.records)
                || (p.bytes > 0 && self.store.hot_bytes() >= p.bytes)
                || self.store.hot_oldest_ts().is_some_and(old));
        if !due {
            return;
        }
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
        if let Err(e) = result {
            self.ctx
                .wal
                .health()
                .poison(&StoreError(format!("topic {}: {e}", self.name).into()));
        }
    }
}
