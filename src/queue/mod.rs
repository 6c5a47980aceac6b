//! Lease queues (API.md §13): one actor per queue topic owns its lease state
//! (`model::queue::LeaseBook`) and reaches the topic — and its dead-letter topic — only
//! through topic handles. The set here finds or starts the actor of a topic.
//!
//! Invariants: a seq is leased to at most one holder at a time (one actor decides every
//! claim); lease events are logged on the queue topic's WAL shard (synced before the reply
//! with `leases_durable`), so recovery rebuilds delivery counters and leases from what was
//! written, never from a live head; an ack is the topic's permanent delete of that seq.

mod actor;
mod claim;
mod dead_letter;
mod settle;

use crate::clock::Clock;
use crate::model::queue::SeqState;
use crate::model::record::Record;
use crate::model::topic_config::TopicType;
use crate::registry::Registry;
use crate::topic::recovered::RecoveredQueue;
use crate::topic::{TopicError, TopicHandle};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, Notify};

/// Queue tunables (config `[queue]`).
#[derive(Debug, Clone, Copy)]
pub struct QueueParams {
    /// Most jobs one claim takes and most seqs one ack, nack or extend names.
    pub max_claim: usize,
    pub lease_ms_min: u64,
    pub lease_ms_max: u64,
    pub claim_jitter_ms_max: u64,
    pub nack_delay_ms_max: u64,
}

impl QueueParams {
    pub fn from_config(c: &crate::config::QueueConfig) -> QueueParams {
        QueueParams {
            max_claim: c.max_claim.max(1) as usize,
            lease_ms_min: c.lease_ms_min.max(1),
            lease_ms_max: c.lease_ms_max.max(c.lease_ms_min.max(1)),
            claim_jitter_ms_max: c.claim_jitter_ms_max,
            nack_delay_ms_max: c.nack_delay_ms_max,
        }
    }

    pub fn clamp_lease(&self, ms: u64) -> u64 {
        ms.clamp(self.lease_ms_min, self.lease_ms_max)
    }
}

#[derive(Debug, Clone)]
pub enum QueueError {
    NotFound,
    NotAQueue,
    Topic(TopicError),
    /// Creating the dead-letter topic failed.
    Create(String, crate::registry::CreateError),
}

impl From<TopicError> for QueueError {
    fn from(e: TopicError) -> Self {
        match e {
            TopicError::Gone => QueueError::NotFound,
            e => QueueError::Topic(e),
        }
    }
}

/// One claim request (a POST or a `/work` refill).
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub node: Arc<str>,
    pub max: usize,
    pub lease_ms: Option<u64>,
    /// The `/work` connection the leases go to, if any.
    pub conn: Option<u64>,
}

/// A leased record as a claim hands it out.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub record: Record,
    pub lease_no: u64,
    pub deadline: i64,
    pub deliveries: u32,
}

#[derive(Debug, Clone)]
pub struct ClaimOk {
    pub claimed: Vec<Claimed>,
    pub ready: u64,
}

/// What ack, nack and extend do to the seqs a node holds.
#[derive(Debug, Clone, Copy)]
pub enum SettleOp {
    Ack,
    Nack { delay_ms: u64 },
    Extend { lease_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct SettleRequest {
    pub op: SettleOp,
    pub node: String,
    pub seqs: Vec<u64>,
    /// Per seq: the lease number it must hold (`None` = no fence).
    pub fences: Vec<Option<u64>>,
    /// Nack only: why (kept as the job's last reason; an extension).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SettleOk {
    pub done: Vec<u64>,
    pub skipped: Vec<u64>,
    /// Extend: each extended seq's new deadline.
    pub deadlines: BTreeMap<u64, i64>,
    pub ready: u64,
    pub in_flight: u64,
    /// Ack on an `fsync` queue: when its delete was submitted (the answer waits for the sync).
    pub sync_started: Option<std::time::Instant>,
}

/// `queue` in topic state (API.md §13).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub ready: u64,
    pub in_flight: u64,
    pub dead_lettered: u64,
    /// Age of the oldest unexpired lease (ms; metrics only, not in topic state).
    pub oldest_lease_ms: u64,
}

/// A queue as a checkpoint stores it.
pub struct QueueImage {
    pub topic_id: u64,
    pub states: BTreeMap<u64, SeqState>,
    pub last_lease: u64,
    pub dead_lettered: u64,
}

type Reply<T> = oneshot::Sender<T>;

pub(crate) enum Cmd {
    Claim(ClaimRequest, Reply<Result<ClaimOk, QueueError>>),
    Settle(SettleRequest, Reply<Result<SettleOk, QueueError>>),
    Counters(Reply<Result<Counters, QueueError>>),
    HeldBy(u64, Reply<usize>),
    ReleaseConn(u64),
    Image(Reply<QueueImage>),
}

/// Cheap-clone handle to a queue actor.
#[derive(Clone)]
pub struct QueueHandle {
    tx: mpsc::Sender<Cmd>,
    pub topic: TopicHandle,
    /// Woken when work may have become claimable without an append (release, nack, expiry
    /// due, a dead-letter move undone); `/work` streams park on it and the head watch.
    pub changed: Arc<Notify>,
}

impl QueueHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, QueueError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| QueueError::NotFound)?;
        rx.await.map_err(|_| QueueError::NotFound)
    }

    pub async fn claim(&self, req: ClaimRequest) -> Result<ClaimOk, QueueError> {
        self.call(|r| Cmd::Claim(req, r)).await?
    }

    pub async fn settle(&self, req: SettleRequest) -> Result<SettleOk, QueueError> {
        self.call(|r| Cmd::Settle(req, r)).await?
    }

    pub async fn counters(&self) -> Result<Counters, QueueError> {
        self.call(Cmd::Counters).await?
    }

    /// Unexpired leases delivered on `/work` connection `conn`.
    pub async fn held_by(&self, conn: u64) -> Result<usize, QueueError> {
        self.call(|r| Cmd::HeldBy(conn, r)).await
    }

    /// The connection closed: its leases are claimable at once. Never waits (called from
    /// a drop).
    pub fn release_conn(&self, conn: u64) {
        if self.tx.try_send(Cmd::ReleaseConn(conn)).is_err() {
            let tx = self.tx.clone();
            tokio::spawn(async move { tx.send(Cmd::ReleaseConn(conn)).await });
        }
    }

    async fn image(&self) -> Option<QueueImage> {
        self.call(Cmd::Image).await.ok()
    }
}

pub struct Queues {
    /// By topic id: a recreated topic of the same name is another queue.
    map: Mutex<HashMap<u64, QueueHandle>>,
    /// Logged state of queues whose actor has not started yet.
    recovered: Mutex<HashMap<u64, RecoveredQueue>>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    params: QueueParams,
    next_conn: std::sync::atomic::AtomicU64,
}

impl Queues {
    pub fn new(registry: Arc<Registry>, clock: Arc<dyn Clock>, params: QueueParams) -> Arc<Queues> {
        Arc::new(Queues {
            map: Mutex::new(HashMap::new()),
            recovered: Mutex::new(HashMap::new()),
            registry,
            clock,
            params,
            next_conn: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Recovered lease state; the actors of queues with unfinished dead-letter moves start
    /// at once (they finish the moves), the rest on first use.
    pub async fn install(&self, recovered: Vec<(String, RecoveredQueue)>) {
        let mut eager = Vec::new();
        {
            let mut map = self.recovered.lock().unwrap_or_else(|e| e.into_inner());
            for (name, q) in recovered {
                let Some(h) = self.registry.get(&name) else {
                    continue;
                };
                if !q.intents.is_empty() {
                    eager.push(name);
                }
                map.insert(h.id, q);
            }
        }
        for name in eager {
            let _ = self.get(&name).await;
        }
    }

    pub fn params(&self) -> &QueueParams {
        &self.params
    }

    /// A number for a new `/work` connection.
    pub fn connection(&self) -> u64 {
        self.next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// The queue actor of `topic`: `NotFound` when there is no such topic (never created
    /// here), `NotAQueue` when it is a log.
    pub async fn get(&self, topic: &str) -> Result<QueueHandle, QueueError> {
        let h = self.registry.get(topic).ok_or(QueueError::NotFound)?;
        if let Some(q) = self.lock().get(&h.id) {
            return Ok(q.clone());
        }
        let state = h.state(false).await?;
        if state.config.kind != TopicType::Queue {
            return Err(QueueError::NotAQueue);
        }
        let mut map = self.lock();
        if let Some(q) = map.get(&h.id) {
            return Ok(q.clone());
        }
        // Queues of deleted (or recreated) topics go: their actors end with the last handle.
        let registry = &self.registry;
        map.retain(|_, q| {
            registry
                .get(&q.topic.name)
                .is_some_and(|h| h.id == q.topic.id)
        });
        let rec = self
            .recovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&h.id)
            .unwrap_or_default();
        let (registry, clock) = (self.registry.clone(), self.clock.clone());
        let q = actor::spawn(h.clone(), rec, registry, clock, self.params);
        map.insert(h.id, q.clone());
        Ok(q)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, QueueHandle>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Images for a checkpoint, taken after its WAL barrier (like router cursors): every
    /// event logged before the barrier is in them. Queues whose actor never started keep
    /// their recovered state.
    pub async fn images(&self) -> Vec<QueueImage> {
        let handles: Vec<QueueHandle> = self.lock().values().cloned().collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            if let Some(img) = h.image().await {
                out.push(img);
            }
        }
        let rec = self.recovered.lock().unwrap_or_else(|e| e.into_inner());
        out.extend(rec.iter().map(|(&topic_id, q)| QueueImage {
            topic_id,
            states: q.states.clone(),
            last_lease: q.last_lease,
            dead_lettered: q.dead_lettered,
        }));
        out
    }
}

/// Queue images as snapshot frames (after the topics', so each topic exists on replay).
pub fn encode_images(images: &[QueueImage], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use crate::storage::frame;
    let mut buf = Vec::new();
    for q in images {
        frame::encode_queue_meta(&mut buf, q.topic_id, q.last_lease, q.dead_lettered);
        for (&seq, st) in &q.states {
            frame::encode_queue_seq(&mut buf, q.topic_id, seq, st);
        }
    }
    out.write_all(&buf)
}
