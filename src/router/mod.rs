//! Routers (API.md §12): the set of router definitions and one forwarding task per router.
//! A client of topic handles: it reads sources and appends to dests through `TopicHandle`,
//! wakes on the source's head watch, and no topic actor knows it exists.
//! Invariants: a definition is durable (a synced RouterDef frame) before it is visible or
//! answered; a cursor only moves forward and only past records appended to the dest (or
//! skipped), and it is logged after that append on the dest's WAL shard; a re-PUT replaces
//! the definition and never touches the cursor.

mod put;
mod task;

use crate::model::router::{Edge, Position, RouterDef};
use crate::registry::Registry;
use crate::storage::frame;
use crate::storage::wal::{Commit, SubmitError};
use crate::topic::TopicError;
pub use put::PutError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use task::RouterTask;

/// Router tunables (config `[router]`, `limits.max_routers`).
#[derive(Debug, Clone, Copy)]
pub struct RouterParams {
    pub max_routers: u64,
    pub max_hops: u8,
    pub batch: usize,
    /// Backoff while a router is stalled (full dest, full queue).
    pub retry_ms: u64,
    /// Record limits an exactly-once copy (whose `meta` grows by its stamp) must still meet.
    pub max_meta_bytes: usize,
    pub max_record_bytes: usize,
}

/// One router's state shared by its task, the set and the HTTP handlers.
pub struct Shared {
    pub id: u64,
    pub name: Arc<str>,
    /// The dest never changes (re-pointing is refused), so dest reads find their feeders
    /// without locking the definition.
    dest: Arc<str>,
    /// Steps that could not proceed; a read-your-writes waiter stops waiting on a stall.
    stalls: AtomicU64,
    def: RwLock<RouterDef>,
    /// Last source seq consumed; set before its cursor frame is submitted, so a checkpoint
    /// image taken after the WAL barrier is never behind a cursor frame before it.
    cursor: AtomicU64,
    forwarded_total: AtomicU64,
    /// The same cursor and count with the dest mark, as one consistent value for frames and
    /// images (a mark newer than its cursor would make a recovery scan start too late).
    pos: Mutex<Position>,
    stop: AtomicBool,
    /// Sticky wake-up for the task (`notify_one` keeps a permit): a re-PUT, a stop, a sync.
    kick: tokio::sync::Notify,
    /// The cursor after every step, for read-your-writes waiters.
    progress: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub fn def(&self) -> RouterDef {
        self.def.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }

    pub fn forwarded_total(&self) -> u64 {
        self.forwarded_total.load(Ordering::Acquire)
    }

    pub fn position(&self) -> Position {
        *self.pos.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Move to `pos` (the task's step, the only writer).
    fn set_position(&self, pos: Position) {
        *self.pos.lock().unwrap_or_else(|e| e.into_inner()) = pos;
        self.forwarded_total
            .store(pos.forwarded_total, Ordering::Release);
        self.cursor.store(pos.cursor, Ordering::Release);
    }
}

struct Entry {
    shared: Arc<Shared>,
    /// `None` once stopped by `stop_all` (the entry stays for the final checkpoint).
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A router as a checkpoint stores it.
pub struct RouterImage {
    pub id: u64,
    pub name: Arc<str>,
    pub def: RouterDef,
    pub pos: Position,
}

pub struct Routers {
    map: Mutex<BTreeMap<Arc<str>, Entry>>,
    /// Serialises create, update and delete with each other and with checkpoint cuts. Lock
    /// order: this, then the registry's lifecycle lock.
    lifecycle: tokio::sync::Mutex<()>,
    registry: Arc<Registry>,
    params: RouterParams,
}

impl Routers {
    pub fn new(registry: Arc<Registry>, params: RouterParams) -> Arc<Routers> {
        Arc::new(Routers {
            map: Mutex::new(BTreeMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
            registry,
            params,
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Arc<str>, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start the tasks of recovered routers (before the server is ready).
    pub fn install(&self, recovered: Vec<crate::model::router::catalog::RecoveredRouter>) {
        for r in recovered {
            self.start(r.id, Arc::from(r.name.as_str()), r.def, r.pos);
        }
    }

    fn start(&self, id: u64, name: Arc<str>, def: RouterDef, pos: Position) {
        let shared = Arc::new(Shared {
            id,
            name: name.clone(),
            dest: Arc::from(def.dest.as_str()),
            stalls: AtomicU64::new(0),
            def: RwLock::new(def),
            cursor: AtomicU64::new(pos.cursor),
            forwarded_total: AtomicU64::new(pos.forwarded_total),
            pos: Mutex::new(pos),
            stop: AtomicBool::new(false),
            kick: tokio::sync::Notify::new(),
            progress: tokio::sync::watch::channel(pos.cursor).0,
        });
        let t = RouterTask::new(shared.clone(), self.registry.clone(), self.params);
        let task = tokio::spawn(t.run());
        let task = Some(task);
        self.map().insert(name, Entry { shared, task });
    }

    pub fn get(&self, name: &str) -> Option<Arc<Shared>> {
        self.map().get(name).map(|e| e.shared.clone())
    }

    /// Every router in name order (the set is bounded by `max_routers`).
    pub fn all(&self) -> Vec<Arc<Shared>> {
        self.map().values().map(|e| e.shared.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn edges(&self) -> Vec<(Arc<str>, String, String)> {
        self.map()
            .values()
            .map(|e| {
                let d = e.shared.def();
                (e.shared.name.clone(), d.source, d.dest)
            })
            .collect()
    }

    /// Read-your-writes for a read of `topic`: drive every router feeding it to its source
    /// head first (API.md §12). Nothing to do, and no wait, when no router feeds it.
    pub async fn drive_dest(&self, topic: &str, max: std::time::Duration) {
        let feeders: Vec<Arc<Shared>> = self
            .map()
            .values()
            .filter(|e| &*e.shared.dest == topic)
            .map(|e| e.shared.clone())
            .collect();
        for f in feeders {
            self.sync(&f, max).await;
        }
    }

    /// Drive the router to its source head as of now (read-your-writes), waiting at most
    /// `max`; a router that stalls (full dest) ends the wait at once with what it has.
    pub async fn sync(&self, shared: &Shared, max: std::time::Duration) {
        let source = shared.def().source;
        let Some(h) = self.registry.get(&source) else {
            return;
        };
        let Ok(state) = h.state(false).await else {
            return;
        };
        let mut rx = shared.progress.subscribe();
        let stalls = shared.stalls.load(Ordering::Acquire);
        shared.kick.notify_one();
        let reached =
            rx.wait_for(|&c| c >= state.head_seq || shared.stalls.load(Ordering::Acquire) > stalls);
        let _ = tokio::time::timeout(max, reached).await;
    }

    /// Remove a router: its task stops first (so no cursor frame follows), then the removal
    /// is made durable. `Ok(false)` when absent.
    pub async fn delete(&self, name: &str) -> Result<bool, TopicError> {
        let _guard = self.lifecycle.lock().await;
        self.remove_locked(name).await
    }

    async fn remove_locked(&self, name: &str) -> Result<bool, TopicError> {
        let Some(entry) = self.map().remove(name) else {
            return Ok(false);
        };
        entry.shared.stop.store(true, Ordering::Release);
        entry.shared.kick.notify_one();
        if let Some(task) = entry.task {
            let _ = task.await;
        }
        let mut buf = Vec::new();
        frame::encode_router_delete(&mut buf, entry.shared.id);
        self.log(name, buf).await?;
        Ok(true)
    }

    /// The routers that read or feed `topic`, removed (a topic delete cascades). Sorted.
    pub async fn remove_for_topic(&self, topic: &str) -> Result<Vec<String>, TopicError> {
        let _guard = self.lifecycle.lock().await;
        let doomed: Vec<Arc<str>> = self
            .edges()
            .into_iter()
            .filter(|(_, s, d)| s == topic || d == topic)
            .map(|(n, _, _)| n)
            .collect();
        for name in &doomed {
            self.remove_locked(name).await?;
        }
        Ok(doomed.iter().map(|n| n.to_string()).collect())
    }

    /// A definition or removal frame on the router name's shard, synced before returning.
    async fn log(&self, name: &str, buf: Vec<u8>) -> Result<(), TopicError> {
        let wal = self.registry.wal();
        let shard = crate::storage::shard_of(name, wal.shard_count());
        match wal.submit(shard, buf, Commit::Wait) {
            Ok(Some(rx)) => rx
                .await
                .map_err(|_| TopicError::Storage(writer_stopped()))?
                .map_err(TopicError::Storage),
            Ok(None) => Ok(()),
            Err(SubmitError::Full) => Err(TopicError::Throttled),
            Err(SubmitError::Failed(e)) => Err(TopicError::Storage(e)),
        }
    }

    /// Images for a checkpoint. The caller holds `cut_guard` across the WAL barrier and this
    /// call, so no definition can be logged before the barrier yet be missing here.
    pub fn images(&self) -> Vec<RouterImage> {
        self.all()
            .into_iter()
            .map(|s| RouterImage {
                id: s.id,
                name: s.name.clone(),
                def: s.def(),
                pos: s.position(),
            })
            .collect()
    }

    /// Held by a checkpoint from before its barrier until it has the router images.
    pub async fn cut_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lifecycle.lock().await
    }

    /// Graceful shutdown: every task finishes its current step and stops; cursors are then
    /// final, for the last checkpoint.
    pub async fn stop_all(&self) {
        let tasks: Vec<_> = self
            .map()
            .values_mut()
            .filter_map(|e| {
                e.shared.stop.store(true, Ordering::Release);
                e.shared.kick.notify_one();
                e.task.take()
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Router images as snapshot frames (one RouterDef frame each, cursor included).
pub fn encode_images(images: &[RouterImage], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for r in images {
        let json = crate::model::router::def_to_json(&r.def).to_string();
        frame::encode_router_def(&mut buf, r.id, &r.name, json.as_bytes(), r.pos);
    }
    out.write_all(&buf)
}

fn writer_stopped() -> crate::storage::health::StoreError {
    crate::storage::health::StoreError::failed("WAL writer stopped")
}

fn edge_refs(edges: &[(Arc<str>, String, String)]) -> Vec<Edge<'_>> {
    edges
        .iter()
        .map(|(n, s, d)| Edge {
            router: n,
            source: s,
            dest: d,
        })
        .collect()
}
