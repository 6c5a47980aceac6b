//! One open watch stream (API.md §11): drain every dirty topic in ascending name order,
//! then park until an append, the heartbeat or shutdown. A client of topic handles only.
//!
//! Invariants:
//! - Register, then drain: a topic's head watch is marked seen *before* the read that drains
//!   it, so an append landing mid-drain leaves the watch changed and wakes the park at once.
//! - Pull, don't buffer: `next_chunk` does one read and returns its frames as one chunk (one
//!   body frame, one socket write); the next read happens only when the connection asks for
//!   the next chunk, so a stalled client holds at most one chunk and never holds a topic or a
//!   writer.
//! - Read your writes (API.md §12): the first read of a topic in each pass drives the
//!   routers feeding it to their source heads, so a copy of a write acknowledged before the
//!   pass is in the read. A topic no router feeds pays one lookup of the router set (no wait,
//!   no allocation).
//! - Every stream ends with the `error` frame once shutdown starts (checked before every read
//!   and while parked).
//! - Encode once: reads go through the fan-out cache (`fanout`), so the watchers one append
//!   wakes at the same cursor share one topic read and one encoded `record` event; a watcher
//!   only builds its own `id:` line and small frames around it, and copies the shared bytes
//!   into its chunk (a memcpy, cheaper than a body frame and a socket write of its own). The first read after arming a head watch takes
//!   only a batch read after the arming: the head value seen at arming may predate appends
//!   made while nobody listened.

use super::fanout::{read_batch, Floor, Key, SharedBatch};
use super::frame;
use super::session::StreamGuard;
use crate::registry::Registry;
use crate::router::Routers;
use crate::topic::{TopicError, TopicHandle};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// A wake-up: the topic, its head watch (to re-arm) and whether the topic still exists.
type Wake = (String, watch::Receiver<u64>, bool);

/// What a watch stream needs to honour read-your-writes on router dests (API.md §12): the
/// router set and the longest a pass waits for one feeding router to catch up.
#[derive(Clone)]
pub struct Feeders {
    pub routers: Arc<Routers>,
    pub wait: Duration,
}

/// Per connection and topic.
#[derive(Default)]
struct Slot {
    /// The next read of this topic starts a pass over it: drive its feeding routers first.
    drive: bool,
    /// Id of the topic incarnation whose head watch is armed.
    armed: Option<u64>,
    /// A read of this topic already happened on this connection.
    read_once: bool,
    /// `caught-up` sent since the last `record`/`tombstone` frame.
    caught_up_sent: bool,
    /// Highest head seq the head watch showed or a read returned: a shared batch must have
    /// seen at least this.
    seen_head: u64,
    /// Set on arming, cleared by the first read after it: until then only a batch whose read
    /// was issued after this instant may stand in for the watcher's own.
    armed_at: Option<Instant>,
}

enum Parked {
    Appended,
    Heartbeat,
    Stop,
}

pub struct Watcher {
    registry: Arc<Registry>,
    feeders: Feeders,
    guard: StreamGuard,
    stop: watch::Receiver<bool>,
    stopping: bool,
    slots: BTreeMap<String, Slot>,
    /// Topics to read before parking again.
    dirty: BTreeSet<String>,
    wakes: FuturesUnordered<BoxFuture<'static, Wake>>,
    last_frame: Instant,
    retry_ms: Option<u64>,
    ended: bool,
}

impl Watcher {
    pub fn new(
        registry: Arc<Registry>,
        feeders: Feeders,
        guard: StreamGuard,
        stop: watch::Receiver<bool>,
        retry_ms: u64,
    ) -> Watcher {
        let topics = guard.session.topics();
        let fresh = || Slot {
            drive: true,
            ..Slot::default()
        };
        Watcher {
            registry,
            feeders,
            slots: topics.iter().map(|t| (t.clone(), fresh())).collect(),
            dirty: topics.into_iter().collect(),
            guard,
            stop,
            stopping: false,
            wakes: FuturesUnordered::new(),
            last_frame: Instant::now(),
            retry_ms: Some(retry_ms),
            ended: false,
        }
    }

    /// The next chunk of the stream; `None` ends it.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        if let Some(ms) = self.retry_ms.take() {
            return Some(Bytes::from(frame::retry(ms)));
        }
        loop {
            if self.stopping || *self.stop.borrow() {
                self.ended = true;
                let mut out = Vec::new();
                let id = self.guard.session.event_id();
                frame::event(&mut out, &id, "error", frame::shutdown_data());
                return Some(Bytes::from(out));
            }
            if self.slots.is_empty() {
                self.ended = true;
                return None;
            }
            if let Some(topic) = self.dirty.first().cloned() {
                // Returned at once: the session cursor already covers this chunk.
                if let Some(chunk) = self.drain_step(&topic).await {
                    self.last_frame = Instant::now();
                    return Some(chunk);
                }
                continue;
            }
            match self.park().await {
                Parked::Appended | Parked::Stop => {}
                Parked::Heartbeat => {
                    // API.md §11: repeat the drain (this is how a quiet delete is noticed).
                    self.dirty = self.slots.keys().cloned().collect();
                    self.slots.values_mut().for_each(|s| s.drive = true);
                    self.last_frame = Instant::now();
                    return Some(Bytes::from_static(frame::HEARTBEAT));
                }
            }
        }
    }

    /// Subscribe to `handle`'s head before it is read; any later append wakes the park.
    fn arm(&mut self, topic: &str, handle: &TopicHandle) {
        let Some(slot) = self.slots.get_mut(topic) else {
            return;
        };
        if slot.armed == Some(handle.id) {
            return;
        }
        slot.armed = Some(handle.id);
        slot.armed_at = Some(Instant::now());
        let mut rx = handle.head_watch();
        slot.seen_head = *rx.borrow_and_update();
        self.push_wake(topic.to_string(), rx);
    }

    fn push_wake(&mut self, topic: String, mut rx: watch::Receiver<u64>) {
        self.wakes.push(
            async move {
                let alive = rx.changed().await.is_ok();
                (topic, rx, alive)
            }
            .boxed(),
        );
    }

    fn on_wake(&mut self, (topic, mut rx, alive): Wake) {
        let Some(slot) = self.slots.get_mut(&topic) else {
            return;
        };
        if self.dirty.insert(topic.clone()) {
            slot.drive = true;
        }
        if alive {
            // Marked seen now, before the drain this wake-up causes.
            slot.seen_head = slot.seen_head.max(*rx.borrow_and_update());
            self.push_wake(topic, rx);
        } else {
            slot.armed = None;
        }
    }

    async fn park(&mut self) -> Parked {
        let deadline = self.last_frame + self.guard.session.opts.heartbeat;
        let woke = tokio::select! {
            Some(w) = self.wakes.next(), if !self.wakes.is_empty() => Some(w),
            _ = tokio::time::sleep_until(deadline) => return Parked::Heartbeat,
            r = self.stop.changed() => {
                self.stopping |= r.is_err();
                return Parked::Stop;
            }
        };
        if let Some(w) = woke {
            self.on_wake(w);
        }
        while let Some(Some(w)) = self.wakes.next().now_or_never() {
            self.on_wake(w);
        }
        Parked::Appended
    }

    /// One read of `topic` and the frames it yields; the topic leaves `dirty` once caught up.
    async fn drain_step(&mut self, topic: &str) -> Option<Bytes> {
        let Some(handle) = self.registry.get(topic) else {
            return self.deleted(topic);
        };
        self.arm(topic, &handle);
        if self
            .slots
            .get_mut(topic)
            .is_some_and(|s| std::mem::take(&mut s.drive))
        {
            // Read-your-writes: a no-op without feeding routers (no await pending). Shutdown
            // cuts the wait short; the read then goes ahead and the `error` frame follows.
            let f = &self.feeders;
            tokio::select! {
                biased;
                _ = f.routers.drive_dest(topic, f.wait) => {}
                r = self.stop.changed() => self.stopping |= r.is_err(),
            }
        }
        let session = self.guard.session.clone();
        let from = session.cursor(topic).unwrap_or(0);
        let floor = self.slots.get(topic).map_or(
            Floor {
                head: 0,
                born_after: Some(Instant::now()),
            },
            |s| Floor {
                head: s.seen_head,
                born_after: s.armed_at,
            },
        );
        let o = &session.opts;
        let key = Key {
            topic_id: handle.id,
            from_seq: from,
            limit: o.limit,
            budget_bytes: o.budget_bytes,
            skip_nodes: o.skip_nodes.clone(),
            include: (o.include.tags, o.include.meta, o.include.data),
        };
        let read = || read_batch(&handle, topic, &key, o.include);
        match self.guard.fanout().get(&key, floor, read).await {
            Ok(b) => self.frames(topic, from, &b),
            Err(TopicError::Gone) => self.deleted(topic),
            Err(_) => {
                // A full mailbox: the topic stays dirty; retry shortly.
                tokio::time::sleep(Duration::from_millis(5)).await;
                None
            }
        }
    }

    fn deleted(&mut self, topic: &str) -> Option<Bytes> {
        self.slots.remove(topic);
        self.dirty.remove(topic);
        let id = self.guard.session.drop_topic(topic);
        let mut out = Vec::new();
        frame::event(&mut out, &id, "topic-deleted", &frame::deleted_data(topic));
        Some(Bytes::from(out))
    }

    /// This watcher's chunk for batch `b`: its own frames and `id:` lines around the shared
    /// `record` event, in one buffer; `None` when the read yields no frame.
    fn frames(&mut self, topic: &str, from: u64, b: &SharedBatch) -> Option<Bytes> {
        let session = self.guard.session.clone();
        let slot = self.slots.get_mut(topic)?;
        let mut out = Vec::new();
        let first_read = !std::mem::replace(&mut slot.read_once, true);
        // The head this read saw is a floor for later shared batches too: the head watch value
        // at arming can be older (nobody listened), and a batch below a head already seen
        // could report caught-up early and park until the heartbeat.
        slot.seen_head = slot.seen_head.max(b.head_seq);
        slot.armed_at = None;
        if let Some(t) = &b.tombstone {
            let reason = if first_read {
                "from_seq_too_old"
            } else {
                t.reason
            };
            let id = session.advance(topic, t.gap_to);
            frame::event(
                &mut out,
                &id,
                "tombstone",
                &frame::tombstone_data(topic, reason, t),
            );
            slot.caught_up_sent = false;
        }
        let id = session.advance(topic, b.next_from_seq);
        if let Some(record) = &b.record {
            // One allocation for the id line, the shared event and a `caught-up` after it.
            out.reserve(2 * id.len() + record.len() + topic.len() + 96);
            frame::id_line(&mut out, &id);
            out.extend_from_slice(record);
            slot.caught_up_sent = false;
        }
        let stuck = b.tombstone.is_none() && b.next_from_seq == from;
        if b.caught_up || stuck {
            self.dirty.remove(topic);
        }
        if b.caught_up && !slot.caught_up_sent {
            slot.caught_up_sent = true;
            frame::event(
                &mut out,
                &id,
                "caught-up",
                &frame::caught_up_data(topic, b.head_seq),
            );
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}
