//! The claim pass (API.md §13): lazy expiry, then the next claimable seqs — reclaimed
//! ones lowest first, then fresh ones past the claim cursor — each counted as one more
//! delivery and either dead-lettered (over `max_deliveries`) or leased. Claims arriving
//! within `claim_jitter_ms` of the first form a cohort served round-robin in one pass.

use super::actor::{QueueActor, Sync};
use super::{ClaimOk, ClaimRequest, Claimed, QueueError, Reply};
use crate::model::record::Record;
use crate::topic::{ReadRequest, TopicState};
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;

/// A claim waiting in a cohort.
pub(super) struct Waiting {
    req: ClaimRequest,
    reply: Reply<Result<ClaimOk, QueueError>>,
}

/// Rounds of reading fresh work in one pass (each reads at most what is still needed).
const FRESH_ROUNDS: usize = 16;
/// Bytes of fresh records one read takes at most.
const READ_BUDGET: u64 = 8 << 20;

impl QueueActor {
    pub(super) async fn on_claim(
        &mut self,
        req: ClaimRequest,
        reply: Reply<Result<ClaimOk, QueueError>>,
    ) {
        let st = match self.topic.state(false).await {
            Ok(st) => st,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        let jitter = st
            .config
            .claim_jitter_ms
            .min(self.params.claim_jitter_ms_max);
        self.cohort.push(Waiting { req, reply });
        if jitter == 0 {
            self.serve(st).await;
        } else if self.cohort_until.is_none() {
            self.cohort_until = Some(Instant::now() + Duration::from_millis(jitter));
        }
    }

    /// The cohort window closed: serve it with the topic's state as of now.
    pub(super) async fn serve_cohort(&mut self) {
        match self.topic.state(false).await {
            Ok(st) => self.serve(st).await,
            Err(e) => {
                let e = QueueError::from(e);
                for m in std::mem::take(&mut self.cohort) {
                    let _ = m.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Serve every waiting claim in one pass: seqs handed out one at a time, round-robin,
    /// each member up to its `max`.
    async fn serve(&mut self, mut st: TopicState) {
        self.cohort_until = None;
        let members = std::mem::take(&mut self.cohort);
        let mut got: Vec<Vec<Claimed>> = members.iter().map(|_| Vec::new()).collect();
        let moved = self.book.dead_lettered;
        let (result, sync) = self.fill(&members, &mut got, &st).await;
        // Claims change no record; dead-letter moves each delete one.
        st.count = st.count.saturating_sub(self.book.dead_lettered - moved);
        let ready = self.counters(&st).ready;
        let answers: Vec<_> = members
            .into_iter()
            .zip(got)
            .map(|(m, mut claimed)| {
                let out = match &result {
                    Err(e) if claimed.is_empty() => Err(e.clone()),
                    _ => {
                        claimed.sort_by_key(|c| c.record.seq);
                        Ok(ClaimOk { claimed, ready })
                    }
                };
                (m.reply, out)
            })
            .collect();
        let Some(sync) = sync else {
            answers.into_iter().for_each(|(r, out)| drop(r.send(out)));
            return;
        };
        // Durable leases: the claimers hear of them after the sync; the actor goes on, so
        // the claims of other workers share that sync.
        tokio::spawn(async move {
            let synced = super::actor::durable(sync).await;
            for (reply, out) in answers {
                let out = match &synced {
                    Ok(()) => out,
                    Err(e) => Err(QueueError::from(e.clone())),
                };
                let _ = reply.send(out);
            }
        });
    }

    /// Lease claimable records to the members, round-robin, until every member has its
    /// `max` or nothing is claimable. Leases are logged before any member hears of them:
    /// the returned sync (with `leases_durable`) must complete before the answers go out.
    async fn fill(
        &mut self,
        members: &[Waiting],
        got: &mut [Vec<Claimed>],
        st: &TopicState,
    ) -> (Result<(), QueueError>, Sync) {
        let now = self.clock.now_ms();
        self.expire(now, st);
        let cfg = &st.config;
        let mut turn = 0;
        let mut granted = Vec::new();
        // Jobs whose dead-letter move failed go back only after this pass, so the pass does
        // not take the same job again and again.
        let mut failed_moves = Vec::new();
        let mut outcome = Ok(());
        for _ in 0..FRESH_ROUNDS {
            let need: usize = members
                .iter()
                .zip(got.iter())
                .map(|(m, g)| m.req.max - g.len())
                .sum();
            if need == 0 {
                break;
            }
            let candidates = match self.candidates(need).await {
                Ok(c) if c.is_empty() => break,
                Ok(c) => c,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            for rec in candidates {
                let deliveries = self.book.bump(rec.seq);
                if cfg.max_deliveries > 0 && u64::from(deliveries) > cfg.max_deliveries {
                    if let Some(dlq) = cfg.dead_letter.clone() {
                        if let Err(e) = self.dead_letter(&rec, &dlq, cfg).await {
                            tracing::warn!(topic = %self.topic.name, seq = rec.seq, error = ?e,
                                "dead-letter move failed; the job stays claimable");
                            // Not delivered, not moved: the attempt does not count.
                            self.book.unbump(rec.seq);
                            failed_moves.push(rec.seq);
                        }
                        continue;
                    }
                }
                // The next member (round-robin) that still wants work.
                while got[turn].len() >= members[turn].req.max {
                    turn = (turn + 1) % members.len();
                }
                let m = &members[turn].req;
                let lease_ms = self.params.clamp_lease(m.lease_ms.unwrap_or(cfg.lease_ms));
                let deadline = now + lease_ms as i64;
                let lease = self.book.grant(rec.seq, m.node.clone(), deadline, m.conn);
                let lease_no = lease.lease_no;
                self.book.note_granted(rec.seq, now);
                granted.push(rec.seq);
                got[turn].push(Claimed {
                    record: rec,
                    lease_no,
                    deadline,
                    deliveries,
                });
                turn = (turn + 1) % members.len();
            }
        }
        failed_moves.iter().for_each(|s| self.book.put_back(*s));
        match self.submit_seqs(&granted, cfg) {
            Ok(sync) => (outcome, sync),
            Err(e) => {
                // Not logged, not handed out: the leases and their delivery counts are
                // undone and the work stays claimable.
                for s in &granted {
                    self.book.release(*s, 0, now);
                    self.book.unbump(*s);
                }
                got.iter_mut().for_each(Vec::clear);
                (Err(e.into()), None)
            }
        }
    }

    /// Up to `need` claimable records, ascending within each source: reclaimed seqs first
    /// (lowest first), then fresh ones past the claim cursor. Seqs that are gone are
    /// forgotten.
    async fn candidates(&mut self, need: usize) -> Result<Vec<Record>, QueueError> {
        let seqs = self.book.take_reclaimed(need);
        let mut out = Vec::with_capacity(need);
        if !seqs.is_empty() {
            let recs = self.topic.fetch(seqs.clone()).await.inspect_err(|_| {
                seqs.iter().for_each(|s| self.book.put_back(*s));
            })?;
            let live: HashSet<u64> = recs.iter().map(|r| r.seq).collect();
            for s in seqs.iter().filter(|s| !live.contains(s)) {
                self.book.forget(*s);
            }
            out.extend(recs);
        }
        for _ in 0..FRESH_ROUNDS {
            if out.len() >= need {
                break;
            }
            let from = self.book.cursor();
            let req = ReadRequest {
                from_seq: from,
                limit: need - out.len(),
                budget_bytes: READ_BUDGET,
                skip_nodes: Vec::new(),
                include_meta: true,
            };
            let read = self.topic.read(req).await?;
            for rec in read.records {
                if !self.book.tracked(rec.seq) {
                    out.push(rec);
                }
            }
            self.book.advance_cursor(read.next_from_seq);
            if read.caught_up || read.next_from_seq <= from {
                break;
            }
        }
        Ok(out)
    }
}
