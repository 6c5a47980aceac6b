//! Reads inside the actor: cursor reads (diff) and state snapshots.

use super::actor::Actor;
use super::{ReadRequest, ReadResult, TopicState};
use crate::model::priority::{effective_priority, PriorityInputs};
use crate::model::read::{plan_start, scan, ScanLimits, Watermarks};

impl Actor {
    /// First live seq; `head + 1` when nothing is live.
    pub(super) fn earliest_seq(&self) -> u64 {
        self.store.first_live_seq().unwrap_or(self.head_seq + 1)
    }

    fn watermarks(&self) -> Watermarks {
        Watermarks {
            head_seq: self.head_seq,
            earliest_seq: self.earliest_seq(),
            floors: self.floors,
        }
    }

    pub(super) fn read(&mut self, req: &ReadRequest) -> ReadResult {
        let now = self.ctx.clock.now_ms();
        self.last_read_ts = Some(now);
        self.last_consumed_ts = Some(now);
        let w = self.watermarks();
        let (tombstone, scan_after) = plan_start(req.from_seq, &w);
        let skip_nodes: &[String] = if self.config.dedupe_node {
            &req.skip_nodes
        } else {
            &[]
        };
        let lim = ScanLimits {
            limit: req.limit,
            budget_bytes: req.budget_bytes,
            include_meta: req.include_meta,
            skip_nodes,
        };
        let out = scan(
            self.store.live_after(scan_after),
            scan_after,
            self.head_seq,
            &lim,
        );
        ReadResult {
            records: out.taken,
            next_from_seq: out.next_from_seq,
            head_seq: self.head_seq,
            earliest_seq: w.earliest_seq,
            caught_up: out.next_from_seq == self.head_seq,
            tombstone,
            lag: self.head_seq.saturating_sub(out.next_from_seq),
            scanned: out.scanned,
        }
    }

    pub(super) fn state(&mut self, touch: bool) -> TopicState {
        let now = self.ctx.clock.now_ms();
        if touch {
            self.last_read_ts = Some(now);
            self.last_consumed_ts = Some(now);
        }
        let prio = PriorityInputs {
            priority: self.config.priority,
            auto_priority: self.config.auto_priority,
            last_consumed_ms: self.last_consumed_ts,
            now_ms: now,
        };
        TopicState {
            name: self.name.clone(),
            config: self.config.clone(),
            head_seq: self.head_seq,
            earliest_seq: self.earliest_seq(),
            count: self.store.count(),
            bytes: self.store.bytes(),
            effective_priority: effective_priority(&prio, &self.ctx.priority),
            last_write_ts: self.last_write_ts,
            last_read_ts: self.last_read_ts,
        }
    }
}
