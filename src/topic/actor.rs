//! The actor loop: one task per topic, selecting over its mailbox and the completions of its
//! own in-flight work (the front pending write's WAL sync, the seq reservation, the seal).

use super::append::Pending;
use super::idempotency::IdemTable;
use super::store::Store;
use super::{AppendOk, Command, RecoveredTopic, TopicCtx, TopicError};
use crate::model::read::LossFloors;
use crate::model::topic_config::TopicConfig;
use crate::storage::frame;
use crate::storage::health::StoreError;
use crate::storage::shard_of;
use crate::storage::wal::{Commit, SubmitError, SyncResult};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// All mutable state of one topic. Only this task touches it.
pub(super) struct Actor {
    pub id: u64,
    pub name: Arc<str>,
    pub config: TopicConfig,
    pub shard: usize,
    pub ctx: Arc<TopicCtx>,
    /// Visible records, ascending by seq (holes allowed), with live counters and tag index.
    pub store: Store,
    /// Highest seq lost to each kind of involuntary loss: the tombstone floor `E`.
    pub floors: LossFloors,
    /// Floors as last written to the WAL; a change is logged once per command.
    pub floors_logged: LossFloors,
    pub idempotency: IdemTable,
    /// Same-key writes that arrived while the first is still pending: answered with its
    /// result (`deduped`) once it publishes.
    pub idem_waiters: HashMap<String, Vec<super::Reply<Result<AppendOk, TopicError>>>>,
    /// Highest visible seq (`head_seq` on the wire).
    pub head_seq: u64,
    /// Highest seq handed out, visible or still pending.
    pub assigned_seq: u64,
    /// Seqs up to here are covered by a synced reservation.
    pub durable_ceiling: u64,
    /// In-flight reservation: its target ceiling and sync completion.
    pub reserve_inflight: Option<(u64, oneshot::Receiver<SyncResult>)>,
    /// Current reservation window (adapts to the write rate).
    pub reserve_window: u64,
    /// `assigned_seq` and the time when the in-flight reservation was requested.
    pub reserve_requested_at: u64,
    pub reserve_requested_time: std::time::Instant,
    /// Writes waiting for their ack point, in seq order.
    pub pending: VecDeque<Pending>,
    /// Records and payload bytes of `pending` (admission for `discard:"reject"`).
    pub pending_records: u64,
    pub pending_bytes: u64,
    /// Last assigned `$ts`; keeps `$ts` non-decreasing in seq even if the clock steps back.
    pub last_ts: i64,
    pub last_write_ts: Option<i64>,
    pub last_read_ts: Option<i64>,
    pub last_consumed_ts: Option<i64>,
    /// This topic's hot-tier footprint as last added to `ctx.hot_total`.
    pub hot_reported: u64,
    /// The segment being written for this topic, if any.
    pub seal_inflight: super::seal::SealInFlight,
    /// Hot records and bytes beyond which a write waits for the seal in flight.
    pub seal_backlog: super::seal::Backlog,
    /// Set when a seal found the disk full: no new attempt before then.
    pub seal_retry_at: Option<std::time::Instant>,
    /// Publishes the visible head; long-polls wait on it. Dropped when the topic dies.
    pub head_tx: watch::Sender<u64>,
    pub mailbox: mpsc::Receiver<Command>,
    /// Commands waiting behind writes that wait for the seal in flight (`park`).
    pub parked: VecDeque<Command>,
}

enum Event {
    Synced(SyncResult),
    Reserved(SyncResult),
    Sealed(Option<super::seal::SealDone>),
    Cmd(Option<Command>),
}

/// Resolves with the receiver's result, or never when there is none.
async fn maybe(rx: Option<&mut oneshot::Receiver<SyncResult>>) -> SyncResult {
    match rx {
        Some(rx) => rx
            .await
            .unwrap_or_else(|_| Err(StoreError::failed("WAL writer stopped"))),
        None => std::future::pending().await,
    }
}

impl Actor {
    /// A fresh or recovered topic; returns the actor and the watch receiver for its handle.
    pub fn new(
        rec: RecoveredTopic,
        ctx: Arc<TopicCtx>,
        mailbox: mpsc::Receiver<Command>,
    ) -> (Actor, watch::Receiver<u64>) {
        let head = rec.head_seq();
        let (head_tx, head_rx) = watch::channel(head);
        let last_ts = rec.store.last_ts().unwrap_or(0);
        let shard = shard_of(&rec.name, ctx.wal.shard_count());
        let reserve_ahead = ctx.seq_reserve_ahead;
        ctx.total_bytes
            .fetch_add(rec.store.bytes(), Ordering::Relaxed);
        let seal_backlog = super::seal::Backlog::new(rec.store.hot_count(), rec.store.hot_bytes());
        let actor = Actor {
            id: rec.id,
            name: Arc::from(rec.name),
            config: rec.config,
            shard,
            ctx,
            store: rec.store,
            floors: rec.floors,
            floors_logged: rec.floors,
            idempotency: rec.idempotency,
            idem_waiters: HashMap::new(),
            head_seq: head,
            assigned_seq: head,
            durable_ceiling: rec.ceiling,
            reserve_inflight: None,
            reserve_window: reserve_ahead,
            reserve_requested_at: head,
            reserve_requested_time: std::time::Instant::now(),
            pending: VecDeque::new(),
            pending_records: 0,
            pending_bytes: 0,
            last_ts,
            last_write_ts: None,
            last_read_ts: None,
            last_consumed_ts: None,
            hot_reported: 0,
            seal_inflight: None,
            seal_backlog,
            seal_retry_at: None,
            head_tx,
            mailbox,
            parked: VecDeque::new(),
        };
        (actor, head_rx)
    }

    pub async fn run(mut self) {
        // A recovered topic may start with a large hot tier: its seals begin right away, in
        // the background.
        self.maybe_seal();
        loop {
            let event = {
                let front = self.pending.front_mut().and_then(|p| p.wait.as_mut());
                let reserve = self.reserve_inflight.as_mut().map(|(_, rx)| rx);
                let seal = self.seal_inflight.as_mut();
                tokio::select! {
                    biased;
                    r = maybe(front) => Event::Synced(r),
                    r = maybe(reserve) => Event::Reserved(r),
                    d = super::seal::seal_finished(seal) => Event::Sealed(d),
                    c = self.mailbox.recv() => Event::Cmd(c),
                }
            };
            match event {
                Event::Synced(r) => {
                    self.on_front_synced(r);
                    self.maybe_seal();
                }
                Event::Reserved(r) => {
                    self.on_reserved(r);
                    self.maybe_seal();
                }
                Event::Sealed(d) => {
                    self.on_sealed(d);
                    self.maybe_seal();
                    if self.drain_parked().await.is_break() {
                        return;
                    }
                }
                Event::Cmd(None) => return self.fail_pending(TopicError::Gone),
                Event::Cmd(Some(cmd)) => {
                    if self.on_command(cmd).await.is_break() {
                        return;
                    }
                }
            }
        }
    }

    /// One command and the upkeep around it (retention, floors, seals).
    pub(super) async fn run_command(&mut self, cmd: Command) -> std::ops::ControlFlow<()> {
        self.apply_retention();
        let flow = self.handle(cmd).await;
        self.apply_retention();
        self.log_floors();
        self.maybe_seal();
        flow
    }

    async fn handle(&mut self, cmd: Command) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow::{Break, Continue};
        match cmd {
            Command::Append { req, reply } => self.on_append(req, 0, reply),
            Command::Holes { count, reply } => {
                let req = super::AppendRequest {
                    records: Vec::new(),
                    idempotency_key: None,
                };
                self.on_append(req, count, reply)
            }
            Command::Read { req, reply } => {
                let _ = reply.send(self.read(&req));
            }
            Command::State { touch, reply } => {
                let _ = reply.send(self.state(touch));
            }
            Command::PutConfig { config, reply } => {
                let _ = reply.send(self.put_config(config).await);
            }
            Command::DeleteRecords { req, reply } => {
                let _ = reply.send(self.delete_records(req).await);
            }
            Command::Delete { if_empty, reply } => {
                if if_empty && self.store.count() > 0 {
                    let count = self.store.count();
                    let _ = reply.send(Err(TopicError::NotEmpty { count }));
                    return Continue(());
                }
                let result = self.durable_frame(frame::encode_delete).await;
                let ok = result.is_ok();
                let _ = reply.send(result);
                if ok {
                    self.fail_pending(TopicError::Gone);
                    self.ctx
                        .total_bytes
                        .fetch_sub(self.store.bytes(), Ordering::Relaxed);
                    return Break(());
                }
            }
            Command::Fetch { seqs, reply } => {
                let _ = reply.send(self.store.fetch(&seqs));
            }
            Command::DeleteSeqs { seqs, reply } => {
                let _ = reply.send(self.delete_seqs(&seqs));
            }
            Command::Sync { reply } => {
                let result = match self.config.durability.uses_wal() {
                    // Any frame submitted with Wait resolves after a sync covering every
                    // frame submitted before it; the floors frame is idempotent.
                    true => {
                        let floors = self.floors;
                        self.durable_frame(|out, id| frame::encode_floors(out, id, &floors))
                            .await
                    }
                    false => Ok(()),
                };
                let _ = reply.send(result);
            }
            Command::Image { exact, reply } => {
                if exact {
                    // The final snapshot refers to the segment rather than copying its
                    // records as hot ones (a smaller snapshot, a faster start).
                    self.settle_seal().await;
                }
                let _ = reply.send(self.image(exact));
            }
            Command::Finalize { record_head, reply } => {
                self.drain_seal().await;
                self.finalize(record_head);
                let _ = reply.send(());
                return Break(());
            }
        }
        Continue(())
    }

    /// Replace the config durably; `Ok(false)` when identical (no-op).
    async fn put_config(&mut self, config: TopicConfig) -> Result<bool, TopicError> {
        if config == self.config {
            return Ok(false);
        }
        if config.kind != self.config.kind {
            return Err(TopicError::TypeChange {
                existing: kind_str(&self.config),
                requested: kind_str(&config),
            });
        }
        let json = serde_json::to_vec(&config)
            .map_err(|e| TopicError::Storage(StoreError::failed(e.to_string())))?;
        let name = self.name.clone();
        self.durable_frame(|out, id| frame::encode_config(out, id, &name, &json))
            .await?;
        self.config = config;
        Ok(true)
    }

    /// Write one definition frame and wait for its sync (definitions are durable before
    /// the response in every class).
    pub(super) async fn durable_frame(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>, u64),
    ) -> Result<(), TopicError> {
        let mut buf = Vec::new();
        encode(&mut buf, self.id);
        match self.ctx.wal.submit(self.shard, buf, Commit::Wait) {
            Ok(Some(mut rx)) => maybe(Some(&mut rx)).await.map_err(TopicError::Storage),
            Ok(None) => Ok(()),
            Err(SubmitError::Full) => Err(TopicError::Throttled),
            Err(SubmitError::Failed(e)) => Err(TopicError::Storage(e)),
        }
    }

    /// Graceful shutdown: record the exact head so a clean restart leaves no reserved holes.
    /// `record_head` is false when a final snapshot already holds the exact head.
    fn finalize(&mut self, record_head: bool) {
        if record_head {
            let head = self.head_seq.max(self.assigned_seq);
            let mut buf = Vec::new();
            frame::encode_head(&mut buf, self.id, head);
            if let Err(e) = self.ctx.wal.submit(self.shard, buf, Commit::Lazy) {
                tracing::warn!(topic = %self.name, error = ?e, "could not record the final head");
            }
        }
        self.fail_pending(TopicError::Gone);
        self.ctx
            .total_bytes
            .fetch_sub(self.store.bytes(), Ordering::Relaxed);
    }
}

pub(super) fn kind_str(c: &TopicConfig) -> &'static str {
    match c.kind {
        crate::model::topic_config::TopicType::Log => "log",
        crate::model::topic_config::TopicType::Queue => "queue",
    }
}
