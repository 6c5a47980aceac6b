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
        let floor = self.floors.evict_floor(self.head_seq);
        Watermarks {
            head_seq: self.head_seq,
            earliest_seq: self.earliest_seq(),
            floors: self.floors,
            first_loss: self.store.first_loss(floor),
        }
    }

    pub(super) fn read(&mut self, req: &ReadRequest) -> ReadResult {
        let now = self.ctx.clock.now_ms();
        self.last_read_ts = Some(now);
        self.last_consumed_ts = Some(now);
        let w = self.watermarks();
        let start = plan_start(req.from_seq, &w);
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
        let floor = w.floors.evict_floor(w.head_seq);
        let mut found = Vec::new();
        let run = self.store.items_after(start.after, floor, &mut found);
        let out = scan(run, start, &w, &lim);
        if !found.is_empty() {
            self.report_damaged(&found);
        }
        ReadResult {
            records: out.taken,
            next_from_seq: out.next_from_seq,
            head_seq: self.head_seq,
            earliest_seq: w.earliest_seq,
            caught_up: out.next_from_seq == self.head_seq,
            tombstone: out.tombstone,
            lag: self.head_seq.saturating_sub(out.next_from_seq),
            scanned: out.scanned,
        }
    }

    /// Damaged records a read found: known from now on (so reported and logged once),
    /// logged per run and counted.
    fn report_damaged(&mut self, found: &[u64]) {
        for run in self.store.note_damaged(found) {
            tracing::error!(
                topic = %self.name,
                segment = %run.path.display(),
                first_seq = run.from,
                last_seq = run.to,
                records = run.records,
                "sealed records failed their checksum; readers get a corrupt tombstone instead"
            );
            let segments = u64::from(run.first_in_segment);
            self.ctx.integrity.add(run.records, segments);
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
