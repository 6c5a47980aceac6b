//! Topic name → actor handle, and the topic lifecycle (create, replace config, delete).
//! Lookups take a short read lock; creations and deletions are serialised by one async lock
//! so a name is never created twice and a create is durable before anyone sees the topic.

use crate::model::topic_config::TopicConfig;
use crate::storage::frame;
use crate::storage::shard_of;
use crate::storage::wal::{Commit, SubmitError};
use crate::topic::{RecoveredTopic, TopicCtx, TopicError, TopicHandle};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug)]
pub enum CreateError {
    /// `max_topics` reached.
    Limit {
        max: u64,
    },
    Topic(TopicError),
}

pub struct Registry {
    topics: RwLock<BTreeMap<Arc<str>, TopicHandle>>,
    lifecycle: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    max_topics: u64,
    ctx: Arc<TopicCtx>,
}

impl Registry {
    pub fn new(ctx: Arc<TopicCtx>, max_topics: u64) -> Registry {
        Registry {
            topics: RwLock::new(BTreeMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
            max_topics,
            ctx,
        }
    }

    /// Start actors for recovered topics. Called once, before the server is ready.
    pub fn install(&self, recovered: Vec<RecoveredTopic>, next_id: u64) {
        self.next_id.store(next_id, Ordering::SeqCst);
        let mut map = self.write_map();
        for rec in recovered {
            let handle = TopicHandle::spawn(rec, self.ctx.clone());
            map.insert(handle.name.clone(), handle);
        }
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Arc<str>, TopicHandle>> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Arc<str>, TopicHandle>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<TopicHandle> {
        self.read_map().get(name).cloned()
    }

    pub fn len(&self) -> usize {
        self.read_map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The WAL, for features that log their own state (router definitions and cursors).
    pub fn wal(&self) -> &crate::storage::wal::Wal {
        &self.ctx.wal
    }

    /// A fresh id from the topic id space (routers use it too, so no id is ever reused).
    pub fn allocate_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// What the heap-trim watcher follows: the estimated RAM of every sealable topic's hot
    /// tier (what `storage.hot_budget_bytes` bounds) plus the live payload of all topics
    /// (which covers `ephemeral` topics, held in RAM only). A large drop of either means
    /// freed heap.
    pub fn memory_signal(&self) -> u64 {
        let hot = self
            .ctx
            .hot_total
            .load(std::sync::atomic::Ordering::Relaxed);
        hot + self
            .ctx
            .total_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records accepted by writes since the process started (every class).
    pub fn records_written(&self) -> u64 {
        self.ctx
            .records_written
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Segment files being written right now (checkpoint GC must keep them).
    pub fn segments_in_flight(&self) -> std::collections::HashSet<String> {
        self.ctx.sealer.in_flight()
    }

    /// Damage found in sealed data by this process.
    pub fn integrity(&self) -> &crate::topic::integrity::Integrity {
        &self.ctx.integrity
    }

    /// Names in ascending byte order after `after`, starting with `prefix`, at most `limit`;
    /// the bool says whether more exist.
    pub fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        allowed: impl Fn(&str) -> bool,
    ) -> (Vec<TopicHandle>, bool) {
        use std::ops::Bound;
        let map = self.read_map();
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        let mut iter = map
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
            .filter(|(name, _)| allowed(name))
            .map(|(_, h)| h.clone());
        let page: Vec<_> = iter.by_ref().take(limit).collect();
        let more = iter.next().is_some();
        (page, more)
    }

    /// The existing topic, or a new one with `config`; the bool is `true` when created.
    pub async fn get_or_create(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<(TopicHandle, bool), CreateError> {
        if let Some(h) = self.get(name) {
            return Ok((h, false));
        }
        let _guard = self.lifecycle.lock().await;
        if let Some(h) = self.get(name) {
            return Ok((h, false));
        }
        if self.max_topics > 0 && self.len() as u64 >= self.max_topics {
            return Err(CreateError::Limit {
                max: self.max_topics,
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.write_config_frame(id, name, &config)
            .await
            .map_err(CreateError::Topic)?;
        let handle = TopicHandle::spawn(
            RecoveredTopic::new(id, name.to_string(), config),
            self.ctx.clone(),
        );
        self.write_map().insert(handle.name.clone(), handle.clone());
        Ok((handle, true))
    }

    async fn write_config_frame(
        &self,
        id: u64,
        name: &str,
        config: &TopicConfig,
    ) -> Result<(), TopicError> {
        let json = serde_json::to_vec(config).unwrap_or_default();
        let mut buf = Vec::new();
        frame::encode_config(&mut buf, id, name, &json);
        let shard = shard_of(name, self.ctx.wal.shard_count());
        match self.ctx.wal.submit(shard, buf, Commit::Wait) {
            Ok(Some(rx)) => match rx.await {
                Ok(r) => r.map_err(TopicError::Storage),
                Err(_) => Err(TopicError::Storage(
                    crate::storage::health::StoreError::failed("WAL writer stopped"),
                )),
            },
            Ok(None) => Ok(()),
            Err(SubmitError::Full) => Err(TopicError::Throttled),
            Err(SubmitError::Failed(e)) => Err(TopicError::Storage(e)),
        }
    }

    /// Delete durably; `Ok(false)` when absent.
    pub async fn delete(&self, name: &str, if_empty: bool) -> Result<bool, TopicError> {
        let _guard = self.lifecycle.lock().await;
        let Some(handle) = self.get(name) else {
            return Ok(false);
        };
        match handle.delete(if_empty).await {
            Ok(()) | Err(TopicError::Gone) => {
                self.write_map().remove(name);
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// A checkpoint cut: with no create or delete in progress, run `barrier` (the WAL
    /// rotation) on a blocking thread, then list every topic and the next topic id.
    pub async fn cut<T: Send + 'static>(
        &self,
        barrier: impl FnOnce() -> Result<T, crate::storage::health::StoreError> + Send + 'static,
    ) -> Result<(T, Vec<TopicHandle>, u64), crate::storage::health::StoreError> {
        let _guard = self.lifecycle.lock().await;
        let t = tokio::task::spawn_blocking(barrier)
            .await
            .map_err(|e| crate::storage::health::StoreError::failed(e.to_string()))??;
        let handles = self.read_map().values().cloned().collect();
        Ok((t, handles, self.next_id.load(Ordering::SeqCst)))
    }

    /// Graceful shutdown: every actor records its exact head and stops.
    pub async fn finalize_all(&self) {
        for h in self.handles() {
            h.finalize(true).await;
        }
    }

    /// Stop every actor without WAL writes (a final snapshot already holds their state).
    pub async fn stop_all(&self) {
        for h in self.handles() {
            h.finalize(false).await;
        }
    }

    fn handles(&self) -> Vec<TopicHandle> {
        self.read_map().values().cloned().collect()
    }
}
