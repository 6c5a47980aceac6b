//! The write path inside the actor: seq assignment, seq reservations, WAL submission and the
//! ordered publication of pending writes at their ack points.

use super::actor::Actor;
use super::idempotency::IdemEntry;
use super::{AppendOk, AppendRequest, Reply, TopicError};
use crate::model::loss::LossReason;
use crate::model::record::{Record, RecordDraft};
use crate::model::topic_config::{Discard, Durability};
use crate::storage::frame;
use crate::storage::wal::{Commit, SubmitError, SyncResult};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::oneshot;

/// A write whose seqs are assigned but which is not yet visible.
pub(super) struct Pending {
    pub records: Vec<Record>,
    /// Source-trim hole seqs (`first_seq..first_seq + holes`) ahead of the records.
    pub holes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: u64,
    pub idempotency_key: Option<String>,
    /// Sync completion for `fsync`-class frames; `None` once synced or when not needed.
    pub wait: Option<oneshot::Receiver<SyncResult>>,
    /// Must a durable reservation cover `last_seq` before the ack?
    pub needs_ceiling: bool,
    pub failed: Option<TopicError>,
    pub reply: Reply<Result<AppendOk, TopicError>>,
    pub wal_append_ms: f64,
    /// When the sync wait began (fsync class).
    pub submitted: Option<Instant>,
}

/// The reservation window never exceeds this multiple of `seq_reserve_ahead`, bounding the
/// seq holes a crash can leave.
const RESERVE_GROWTH_MAX: u64 = 4096;

/// A busy topic reserves about this much time's worth of seqs at its current rate, so its
/// reservation syncs stay a few dozen per second (each one is a WAL write and fdatasync)
/// instead of one per `seq_reserve_ahead / 2` records.
const RESERVE_HORIZON_SECS: f64 = 0.1;

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn commit_for(class: Durability) -> Commit {
    match class {
        Durability::Fsync => Commit::Wait,
        Durability::Disk => Commit::Soon,
        Durability::Memory | Durability::Ephemeral => Commit::Lazy,
    }
}

impl Actor {
    /// Assign seqs to `holes` hole seqs (a router's source-trim holes, API.md §12)
    /// followed by the request's records, and submit them as one write.
    pub(super) fn on_append(
        &mut self,
        req: AppendRequest,
        holes: u64,
        reply: Reply<Result<AppendOk, TopicError>>,
    ) {
        if self.ctx.wal.health().is_poisoned() && self.config.durability.uses_wal() {
            let _ = reply.send(Err(TopicError::Storage(self.ctx.wal.health().error())));
            return;
        }
        let Some(reply) = self.dedupe(req.idempotency_key.as_deref(), reply) else {
            return;
        };
        let incoming: u64 = req.records.iter().map(RecordDraft::payload_bytes).sum();
        if let Err(e) = self.admit(req.records.len() as u64, incoming) {
            let _ = reply.send(Err(e));
            return;
        }
        let n = req.records.len() as u64;
        let first = self.assigned_seq + 1;
        let last = self.assigned_seq + holes + n;
        let ts = self.ctx.clock.now_ms().max(self.last_ts);
        let class = self.config.durability;
        let needs_ceiling = class.reserves_seqs() && last > self.durable_ceiling;
        if class.reserves_seqs() {
            if let Err(e) = self.reserve_for(last) {
                if needs_ceiling {
                    let _ = reply.send(Err(e));
                    return;
                }
            }
        }
        let t0 = Instant::now();
        let wait = match self.submit_append(&req, first, holes, ts) {
            Ok(w) => w,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let wal_append_ms = if class.uses_wal() { ms_since(t0) } else { 0.0 };
        self.assigned_seq = last;
        self.last_ts = ts;
        let records = req
            .records
            .into_iter()
            .enumerate()
            .map(|(i, d)| d.into_record(first + holes + i as u64, ts))
            .collect();
        let submitted = wait.as_ref().map(|_| Instant::now());
        self.pending_records += n;
        self.pending_bytes += incoming;
        self.ctx.total_bytes.fetch_add(incoming, Ordering::Relaxed);
        self.ctx.records_written.fetch_add(n, Ordering::Relaxed);
        self.pending.push_back(Pending {
            records,
            holes,
            first_seq: first,
            last_seq: last,
            bytes: incoming,
            idempotency_key: req.idempotency_key,
            wait,
            needs_ceiling,
            failed: None,
            reply,
            wal_append_ms,
            submitted,
        });
        self.publish_ready();
    }

    /// Encode the batch as one Append frame (after a source-trim LossRange frame for the
    /// holes, if any, in the same submission) and hand it to the topic's WAL shard (nothing
    /// for `ephemeral`); the receiver resolves at the covering sync for class `fsync`.
    fn submit_append(
        &self,
        req: &AppendRequest,
        first: u64,
        holes: u64,
        ts: i64,
    ) -> Result<Option<oneshot::Receiver<SyncResult>>, TopicError> {
        let class = self.config.durability;
        if !class.uses_wal() {
            return Ok(None);
        }
        let size: usize = req
            .records
            .iter()
            .map(|r| r.payload_bytes() as usize + 16)
            .sum();
        let mut buf = Vec::with_capacity(64 + size);
        if holes > 0 {
            let (to, code) = (first + holes - 1, LossReason::SourceTrim.code());
            frame::encode_loss_range(&mut buf, self.id, first, to, code);
        }
        if !req.records.is_empty() {
            let key = req.idempotency_key.as_deref();
            frame::encode_append(&mut buf, self.id, first + holes, ts, key, &req.records);
        }
        self.ctx
            .wal
            .submit(self.shard, buf, commit_for(class))
            .map_err(|e| match e {
                SubmitError::Full => TopicError::Throttled,
                SubmitError::Failed(e) => TopicError::Storage(e),
            })
    }

    /// Make sure a reservation covering `last` is durable or on its way; top up ahead of
    /// need so a steady writer rarely waits for one. The window starts at
    /// `seq_reserve_ahead` and grows with the write rate (enough for four reservation
    /// round-trips and for `RESERVE_HORIZON_SECS` of writes), so a `disk` ack waits for an
    /// fsync only at a burst's start.
    pub(super) fn reserve_for(&mut self, last: u64) -> Result<(), TopicError> {
        if self.reserve_inflight.is_some() {
            return Ok(()); // its completion re-checks what is still needed
        }
        let window = self.reserve_window.max(1);
        if last + window / 2 <= self.durable_ceiling {
            return Ok(());
        }
        let target = last + window;
        self.reserve_requested_at = self.assigned_seq;
        self.reserve_requested_time = Instant::now();
        let mut buf = Vec::new();
        frame::encode_reserve(&mut buf, self.id, target);
        match self.ctx.wal.submit(self.shard, buf, Commit::Wait) {
            Ok(Some(rx)) => {
                self.reserve_inflight = Some((target, rx));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(SubmitError::Full) => Err(TopicError::Throttled),
            Err(SubmitError::Failed(e)) => Err(TopicError::Storage(e)),
        }
    }

    pub(super) fn on_reserved(&mut self, result: SyncResult) {
        let Some((target, _)) = self.reserve_inflight.take() else {
            return;
        };
        match result {
            Ok(()) => {
                self.durable_ceiling = self.durable_ceiling.max(target);
                let used = self.assigned_seq.saturating_sub(self.reserve_requested_at);
                let secs = self
                    .reserve_requested_time
                    .elapsed()
                    .as_secs_f64()
                    .max(1e-6);
                let horizon = (used as f64 * RESERVE_HORIZON_SECS / secs) as u64;
                let ahead = self.ctx.seq_reserve_ahead.max(1);
                self.reserve_window = (used * 4)
                    .max(horizon)
                    .clamp(ahead, ahead.saturating_mul(RESERVE_GROWTH_MAX));
                if self.config.durability.reserves_seqs() {
                    let _ = self.reserve_for(self.assigned_seq);
                }
            }
            Err(e) => {
                for p in self.pending.iter_mut() {
                    if p.needs_ceiling && p.last_seq > self.durable_ceiling {
                        p.failed = Some(TopicError::Storage(e.clone()));
                    }
                }
            }
        }
        self.publish_ready();
    }

    pub(super) fn on_front_synced(&mut self, result: SyncResult) {
        if let Some(p) = self.pending.front_mut() {
            p.wait = None;
            if let Err(e) = result {
                p.failed = Some(TopicError::Storage(e));
            }
        }
        self.publish_ready();
    }

    /// Publish pending writes from the front while their ack points are reached.
    pub(super) fn publish_ready(&mut self) {
        while let Some(front) = self.pending.front() {
            let blocked = front.failed.is_none()
                && (front.wait.is_some()
                    || (front.needs_ceiling && front.last_seq > self.durable_ceiling));
            if blocked {
                // A stalled reservation with nothing in flight would block forever: retry it.
                if self.reserve_inflight.is_none() && front.wait.is_none() {
                    if let Err(e) = self.reserve_for(front.last_seq) {
                        if let Some(p) = self.pending.front_mut() {
                            p.failed = Some(e);
                        }
                        continue;
                    }
                }
                return;
            }
            let Some(p) = self.pending.pop_front() else {
                return;
            };
            self.pending_records -= p.records.len() as u64;
            self.pending_bytes -= p.bytes;
            match p.failed {
                Some(e) => {
                    self.ctx.total_bytes.fetch_sub(p.bytes, Ordering::Relaxed);
                    self.answer_waiters(p.idempotency_key.as_deref(), Err(e.clone()));
                    let _ = p.reply.send(Err(e));
                }
                None => self.publish(p),
            }
        }
    }

    fn publish(&mut self, p: Pending) {
        if p.holes > 0 {
            let to = p.first_seq + p.holes - 1;
            let reason = LossReason::SourceTrim.as_str();
            self.store.add_loss_range(p.first_seq, to, reason);
        }
        let ts = p.records.first().map(|r| r.ts);
        for r in p.records {
            self.store.push(r);
        }
        self.head_seq = self.head_seq.max(p.last_seq);
        self.last_write_ts = ts.or(self.last_write_ts);
        // Only long-polls listen (the handles share one receiver that never waits); a send
        // locks every notifier shard of the channel, so skip it when nobody is waiting. A
        // long-poll subscribes before its read reaches this actor, so it is counted by the
        // time any write it has not seen publishes; it never reads the value itself.
        if self.head_tx.receiver_count() > 1 {
            self.head_tx.send_replace(self.head_seq);
        }
        let ok = AppendOk {
            first_seq: p.first_seq + p.holes,
            last_seq: p.last_seq,
            head_seq: self.head_seq,
            wal_append_ms: p.wal_append_ms,
            fsync_ms: p.submitted.map_or(0.0, ms_since),
            deduped: false,
        };
        if let (Some(key), Some(ts)) = (&p.idempotency_key, ts) {
            let entry = IdemEntry {
                created_ms: ts,
                first_seq: p.first_seq,
                last_seq: p.last_seq,
                head_seq: self.head_seq,
            };
            self.idempotency.insert(key.clone(), entry);
            self.answer_waiters(Some(key), Ok(deduped(&entry)));
        }
        let _ = p.reply.send(Ok(ok));
        // Eviction follows the append (`discard:"old"`).
        self.apply_retention();
    }

    /// Idempotency (API.md §5): answer a hit with the original result, park a same-key write
    /// behind the pending one; otherwise hand the reply back to proceed.
    fn dedupe(
        &mut self,
        key: Option<&str>,
        reply: Reply<Result<AppendOk, TopicError>>,
    ) -> Option<Reply<Result<AppendOk, TopicError>>> {
        let Some(key) = key else { return Some(reply) };
        let now = self.ctx.clock.now_ms();
        let window = self.config.idempotency_window_ms;
        self.idempotency.prune(now, window);
        if let Some(e) = self.idempotency.get(key, now, window) {
            let _ = reply.send(Ok(deduped(&e)));
            return None;
        }
        if self
            .pending
            .iter()
            .any(|p| p.idempotency_key.as_deref() == Some(key))
        {
            self.idem_waiters
                .entry(key.to_string())
                .or_default()
                .push(reply);
            return None;
        }
        Some(reply)
    }

    fn answer_waiters(&mut self, key: Option<&str>, result: Result<AppendOk, TopicError>) {
        if let Some(waiters) = key.and_then(|k| self.idem_waiters.remove(k)) {
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    /// `discard:"reject"` admission and the global byte quota (API.md §2, API.md §10).
    fn admit(&self, n: u64, incoming: u64) -> Result<(), TopicError> {
        let c = &self.config;
        if c.discard == Discard::Reject {
            if c.cap_records > 0 && n > c.cap_records {
                return Err(TopicError::LargerThanCap {
                    what: "records",
                    size: n,
                    cap: c.cap_records,
                });
            }
            if c.cap_bytes > 0 && incoming > c.cap_bytes {
                return Err(TopicError::LargerThanCap {
                    what: "bytes",
                    size: incoming,
                    cap: c.cap_bytes,
                });
            }
            let count = self.store.count() + self.pending_records;
            let bytes = self.store.bytes() + self.pending_bytes;
            if (c.cap_records > 0 && count + n > c.cap_records)
                || (c.cap_bytes > 0 && bytes + incoming > c.cap_bytes)
            {
                return Err(TopicError::TopicFull {
                    cap_records: c.cap_records,
                    cap_bytes: c.cap_bytes,
                    head_seq: self.head_seq,
                    earliest_seq: self.earliest_seq(),
                });
            }
        }
        let max = self.ctx.max_total_bytes;
        if max > 0 && self.ctx.total_bytes.load(Ordering::Relaxed) + incoming > max {
            return Err(TopicError::Quota { max });
        }
        Ok(())
    }

    /// Answer every pending write with `err` (topic deleted, shutting down).
    pub(super) fn fail_pending(&mut self, err: TopicError) {
        for p in std::mem::take(&mut self.pending) {
            self.ctx.total_bytes.fetch_sub(p.bytes, Ordering::Relaxed);
            let _ = p.reply.send(Err(err.clone()));
        }
        for (_, waiters) in self.idem_waiters.drain() {
            for w in waiters {
                let _ = w.send(Err(err.clone()));
            }
        }
        self.pending_records = 0;
        self.pending_bytes = 0;
    }
}

fn deduped(e: &IdemEntry) -> AppendOk {
    AppendOk {
        first_seq: e.first_seq,
        last_seq: e.last_seq,
        head_seq: e.head_seq,
        wal_append_ms: 0.0,
        fsync_ms: 0.0,
        deduped: true,
    }
}
