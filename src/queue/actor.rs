//! The queue actor: owns one queue's `LeaseBook`, serves its commands one at a time (so a
//! seq is never leased twice), logs lease events on the topic's WAL shard, and gathers claims
//! arriving within `claim_jitter_ms` into one cohort served round-robin.

use super::{Cmd, Counters, QueueError, QueueHandle, QueueImage};
use crate::clock::Clock;
use crate::model::queue::{Backoff, LeaseBook};
use crate::model::topic_config::{Durability, TopicConfig};
use crate::registry::Registry;
use crate::storage::frame;
use crate::storage::wal::{Commit, SubmitError};
use crate::topic::recovered::RecoveredQueue;
use crate::topic::{TopicError, TopicHandle, TopicState};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// Commands waiting for the actor; a full mailbox makes callers wait, not fail.
const MAILBOX: usize = 256;

pub(super) struct QueueActor {
    pub(super) book: LeaseBook,
    pub(super) topic: TopicHandle,
    pub(super) registry: Arc<Registry>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) params: super::QueueParams,
    pub(super) changed: Arc<Notify>,
    /// Claims waiting for their cohort window to close (`claim_jitter_ms`).
    pub(super) cohort: Vec<super::claim::Waiting>,
    pub(super) cohort_until: Option<Instant>,
}

pub(super) fn spawn(
    topic: TopicHandle,
    rec: RecoveredQueue,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    params: super::QueueParams,
) -> QueueHandle {
    let (tx, rx) = mpsc::channel(MAILBOX);
    let changed = Arc::new(Notify::new());
    let intents = rec.intents.clone();
    let actor = QueueActor {
        book: LeaseBook::restore(rec.states, rec.last_lease, rec.dead_lettered),
        topic: topic.clone(),
        registry,
        clock,
        params,
        changed: changed.clone(),
        cohort: Vec::new(),
        cohort_until: None,
    };
    tokio::spawn(actor.run(rx, intents));
    QueueHandle { tx, topic, changed }
}

impl QueueActor {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Cmd>,
        intents: std::collections::BTreeMap<u64, u64>,
    ) {
        self.recover(intents).await;
        loop {
            let until = self.cohort_until;
            let cmd = tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => c,
                    None => break,
                },
                _ = sleep_until(until), if until.is_some() => {
                    self.serve_cohort().await;
                    continue;
                }
            };
            self.handle(cmd).await;
        }
    }

    async fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Claim(req, reply) => self.on_claim(req, reply).await,
            Cmd::Settle(req, reply) => match self.settle(req).await {
                Ok((ok, sync)) => answer_after(sync, reply, Ok(ok)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Cmd::Counters(reply) => {
                let result = match self.topic.state(false).await {
                    Ok(st) => Ok(self.counters(&st)),
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(result);
            }
            Cmd::HeldBy(conn, reply) => {
                let _ = reply.send(self.book.held_by_conn(conn, self.clock.now_ms()));
            }
            Cmd::ReleaseConn(conn) => {
                let seqs = self.book.release_conn(conn);
                if !seqs.is_empty() {
                    if let Ok(st) = self.topic.state(false).await {
                        // Lost lease state only makes work claimable again: best effort.
                        let _ = self.log_seqs(&seqs, &st.config).await;
                    }
                    self.changed.notify_waiters();
                }
            }
            Cmd::Image(reply) => {
                let _ = reply.send(QueueImage {
                    topic_id: self.topic.id,
                    states: self.book.states(),
                    last_lease: self.book.last_lease(),
                    dead_lettered: self.book.dead_lettered,
                });
            }
        }
    }

    /// Lazy expiry (API.md §13) before every operation; wakes `/work` streams when work returns.
    pub(super) fn expire(&mut self, now: i64, st: &TopicState) {
        self.book.note_head(st.head_seq);
        let backoff = st.config.retry_backoff.map(|b| Backoff {
            base_ms: b.base_ms,
            max_ms: b.max_ms,
        });
        if !self.book.expire(now, backoff).is_empty() {
            self.changed.notify_waiters();
        }
    }

    pub(super) fn counters(&mut self, st: &TopicState) -> Counters {
        let now = self.clock.now_ms();
        self.expire(now, st);
        let in_flight = self.book.in_flight(now);
        Counters {
            ready: st
                .count
                .saturating_sub(in_flight + self.book.delayed_count()),
            in_flight,
            dead_lettered: self.book.dead_lettered,
            oldest_lease_ms: self.book.oldest_lease_ms(now),
        }
    }

    /// Log the current state of `seqs` (QueueSeq frames) on the topic's shard: synced before
    /// returning with `leases_durable`, written lazily otherwise, not at all for `ephemeral`.
    pub(super) async fn log_seqs(
        &self,
        seqs: &[u64],
        config: &TopicConfig,
    ) -> Result<(), TopicError> {
        match self.submit_seqs(seqs, config)? {
            Some(sync) => durable(sync).await,
            None => Ok(()),
        }
    }

    /// Submit the QueueSeq frames of `seqs` without waiting: with `leases_durable` the
    /// receiver resolves at the covering sync (the caller answers its client then, while the
    /// actor goes on, so concurrent claims share one sync).
    pub(super) fn submit_seqs(
        &self,
        seqs: &[u64],
        config: &TopicConfig,
    ) -> Result<Sync, TopicError> {
        if seqs.is_empty() {
            return Ok(None);
        }
        let mut buf = Vec::new();
        for &seq in seqs {
            let st = self.book.state(seq, self.book.deliveries(seq));
            frame::encode_queue_seq(&mut buf, self.topic.id, seq, &st);
        }
        frame::encode_queue_meta(
            &mut buf,
            self.topic.id,
            self.book.last_lease(),
            self.book.dead_lettered,
        );
        self.submit(buf, config, config.leases_durable)
    }

    /// Submit `buf` on the topic's shard and, with `wait`, wait for the covering sync.
    pub(super) async fn log(
        &self,
        buf: Vec<u8>,
        config: &TopicConfig,
        wait: bool,
    ) -> Result<(), TopicError> {
        match self.submit(buf, config, wait)? {
            Some(sync) => durable(sync).await,
            None => Ok(()),
        }
    }

    /// Submit `buf` on the topic's shard; with `wait`, the receiver of the covering sync.
    fn submit(&self, buf: Vec<u8>, config: &TopicConfig, wait: bool) -> Result<Sync, TopicError> {
        if config.durability == Durability::Ephemeral {
            return Ok(None);
        }
        let wal = self.registry.wal();
        let shard = crate::storage::shard_of(&self.topic.name, wal.shard_count());
        let commit = if wait { Commit::Wait } else { Commit::Lazy };
        match wal.submit(shard, buf, commit) {
            Ok(rx) if wait => Ok(rx),
            Ok(_) => Ok(None),
            Err(SubmitError::Full) => Err(TopicError::Throttled),
            Err(SubmitError::Failed(e)) => Err(TopicError::Storage(e)),
        }
    }

    /// After a restart: forget logged state of seqs that are gone, then finish or drop the
    /// dead-letter moves a crash interrupted.
    async fn recover(&mut self, intents: std::collections::BTreeMap<u64, u64>) {
        let tracked: Vec<u64> = self.book.states().keys().copied().collect();
        for chunk in tracked.chunks(self.params.max_claim) {
            let Ok(live) = self.topic.fetch(chunk.to_vec()).await else {
                return;
            };
            let live: std::collections::HashSet<u64> = live.iter().map(|r| r.seq).collect();
            for s in chunk.iter().filter(|s| !live.contains(s)) {
                self.book.forget(*s);
            }
        }
        for (seq, mark) in intents {
            self.finish_interrupted_move(seq, mark).await;
        }
    }
}

/// A pending sync, if the caller must wait for one before answering.
pub(super) type Sync = Option<tokio::sync::oneshot::Receiver<crate::storage::wal::SyncResult>>;

/// Wait for a submitted frame's covering sync.
pub(super) async fn durable(
    sync: tokio::sync::oneshot::Receiver<crate::storage::wal::SyncResult>,
) -> Result<(), TopicError> {
    sync.await
        .map_err(|_| TopicError::Storage(stopped()))?
        .map_err(TopicError::Storage)
}

/// Answer once `sync` (if any) completed, without holding up the actor: a failed sync turns
/// the answer into the storage error (the server is failing then; leases granted meanwhile
/// only expire, no job is lost).
pub(super) fn answer_after<T: Send + 'static>(
    sync: Sync,
    reply: tokio::sync::oneshot::Sender<Result<T, QueueError>>,
    out: Result<T, QueueError>,
) {
    match sync {
        None => {
            let _ = reply.send(out);
        }
        Some(sync) => {
            tokio::spawn(async move {
                let out = match durable(sync).await {
                    Ok(()) => out,
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(out);
            });
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn stopped() -> crate::storage::health::StoreError {
    crate::storage::health::StoreError::failed("WAL writer stopped")
}
