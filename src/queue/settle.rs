//! Ack, nack and extend (API.md §13–API.md §13): each seq is acted on only if `node` holds an
//! unexpired lease on it (with the given `lease_id`, when fenced); every other seq is
//! `skipped`. An ack is the topic's permanent delete of the seq.

use super::actor::{QueueActor, Sync};
use super::{QueueError, SettleOk, SettleOp, SettleRequest};
use crate::model::queue::Backoff;
use crate::model::topic_config::Durability;
use crate::topic::TopicError;
use std::time::Instant;

impl QueueActor {
    /// The outcome, and the sync the answer must wait for (acks on an `fsync` queue, and
    /// nacks and extends with `leases_durable`).
    pub(super) async fn settle(
        &mut self,
        req: SettleRequest,
    ) -> Result<(SettleOk, Sync), QueueError> {
        let mut st = self.topic.state(false).await?;
        let now = self.clock.now_ms();
        self.expire(now, &st);
        let mut out = SettleOk::default();
        for (i, &seq) in req.seqs.iter().enumerate() {
            let fence = req.fences.get(i).copied().flatten();
            // A seq listed twice is acted on once.
            let held = !out.done.contains(&seq) && self.book.holds(seq, &req.node, fence, now);
            match held {
                true => out.done.push(seq),
                false => out.skipped.push(seq),
            }
        }
        let sync = match req.op {
            SettleOp::Ack => {
                let sync = self.ack(&out.done).await?;
                let fsync = st.config.durability == Durability::Fsync && sync.is_some();
                out.sync_started = fsync.then(Instant::now);
                sync
            }
            SettleOp::Nack { delay_ms } => {
                let ready_at = now + delay_ms.min(self.params.nack_delay_ms_max) as i64;
                let backoff = st.config.retry_backoff.map(|b| Backoff {
                    base_ms: b.base_ms,
                    max_ms: b.max_ms,
                });
                for &s in &out.done {
                    if let Some(r) = &req.reason {
                        self.book.set_reason(s, r.clone());
                    }
                    match backoff {
                        // A plain nack backs off like an expiry; a `delay_ms` is kept.
                        Some(b) if delay_ms == 0 => self.book.back_off(s, now, b),
                        _ => self.book.release(s, ready_at, now),
                    }
                }
                let sync = self.submit_seqs(&out.done, &st.config)?;
                if !out.done.is_empty() {
                    self.changed.notify_waiters();
                }
                sync
            }
            SettleOp::Extend { lease_ms } => {
                let deadline = now + self.params.clamp_lease(lease_ms) as i64;
                for &s in &out.done {
                    self.book.extend(s, deadline);
                    out.deadlines.insert(s, deadline);
                }
                self.submit_seqs(&out.done, &st.config)?
            }
        };
        // Only an ack changes the topic: each acked seq was a live record.
        if matches!(req.op, SettleOp::Ack) {
            st.count = st.count.saturating_sub(out.done.len() as u64);
        }
        let c = self.counters(&st);
        (out.ready, out.in_flight) = (c.ready, c.in_flight);
        Ok((out, sync))
    }

    /// Delete the acked seqs; on a storage failure they all return to the reclaim set and
    /// the call fails (API.md §13); refused for back-pressure, the leases stay.
    async fn ack(&mut self, seqs: &[u64]) -> Result<Sync, QueueError> {
        if seqs.is_empty() {
            return Ok(None);
        }
        match self.topic.delete_seqs(seqs.to_vec()).await {
            Ok((_, sync)) => {
                seqs.iter().for_each(|s| self.book.forget(*s));
                Ok(sync)
            }
            Err(e @ TopicError::Throttled) => Err(e.into()),
            // A failed delete (API.md §13): the jobs are claimable again and the call fails.
            Err(e) => {
                let now = self.clock.now_ms();
                seqs.iter().for_each(|s| self.book.release(*s, 0, now));
                self.changed.notify_waiters();
                Err(e.into())
            }
        }
    }
}
