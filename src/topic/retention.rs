//! Retention inside the actor (API.md §2): TTL expiry and cap eviction from the front,
//! raising the loss floors that drive tombstones. Runs before and after every command, so a
//! tighter config applies at once. Eviction only drops records from memory; it never
//! rewrites data. Floors are logged to the WAL so they survive a restart.

use super::actor::Actor;
use crate::model::topic_config::Discard;
use crate::storage::frame;
use crate::storage::wal::Commit;
use std::sync::atomic::Ordering;

impl Actor {
    pub(super) fn apply_retention(&mut self) {
        let c = &self.config;
        let (ttl_ms, cap_records, cap_bytes) = (c.ttl_ms, c.cap_records, c.cap_bytes);
        let evict_caps = c.discard == Discard::Old;
        if ttl_ms == 0 && (!evict_caps || (cap_records == 0 && cap_bytes == 0)) {
            return;
        }
        let mut freed = 0;
        if ttl_ms > 0 {
            let now = self.ctx.clock.now_ms();
            let ev = self
                .store
                .evict_front_while(|r, _| now.saturating_sub(r.ts) > ttl_ms as i64);
            self.floors.ttl = self.floors.ttl.max(ev.max_seq);
            freed += ev.bytes;
        }
        if evict_caps && cap_records > 0 {
            let keep_above = self.head_seq.saturating_sub(cap_records);
            let ev = self.store.evict_front_while(|r, _| r.seq <= keep_above);
            self.floors.cap = self.floors.cap.max(ev.max_seq);
            freed += ev.bytes;
        }
        if evict_caps && cap_bytes > 0 {
            let ev = self.store.evict_front_while(|_, st| st.bytes() > cap_bytes);
            self.floors.cap = self.floors.cap.max(ev.max_seq);
            freed += ev.bytes;
        }
        self.ctx.total_bytes.fetch_sub(freed, Ordering::Relaxed);
        // Known losses below `E` are reported by the eviction tombstone from now on.
        let floor = self.floors.evict_floor(self.head_seq);
        self.store.drop_losses_below(floor);
    }

    /// Write the floors if they moved since last logged. No sync of its own: a floor lost
    /// in a crash only brings back records that were already gone, never hides one.
    pub(super) fn log_floors(&mut self) {
        if self.floors == self.floors_logged || !self.config.durability.uses_wal() {
            return;
        }
        let mut buf = Vec::new();
        frame::encode_floors(&mut buf, self.id, &self.floors);
        if self.ctx.wal.submit(self.shard, buf, Commit::Soon).is_ok() {
            self.floors_logged = self.floors;
        }
    }
}
