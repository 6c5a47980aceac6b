//! Kafka sinks (API.md §15, feature `kafka`): the set of sink definitions and one forwarding
//! task per sink. A client of topic handles like `router/`: it reads its source through a
//! `TopicHandle`, wakes on the source's head watch, and no topic actor knows it exists; it
//! never writes to a topic, so Kafka being slow or away can never hold up a topic write.
//! Invariants: a definition is durable (its file synced) before it is visible or answered;
//! a cursor moves only past records Kafka acknowledged (or committed, `exactly_once`); a
//! re-PUT replaces the definition (restarting the connection) and never moves the cursor.

mod batch;
mod file;
mod kafka;
mod put;
mod task;

pub use file::SinkFile;
pub use put::PutError;

use crate::model::sink::SinkDef;
use crate::registry::Registry;
use crate::storage::fs::Fs;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Sinks one server runs at most: each holds a Kafka producer (threads and buffers).
pub const MAX_SINKS: usize = 64;

/// What a sink is doing (API.md §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkState {
    /// Connected, forwarding or caught up.
    Running,
    /// The last attempt failed (`last_error`); retrying with backoff.
    Retrying,
    /// Not forwarding: the source topic does not exist, or the server is stopping.
    Stopped,
}

impl SinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkState::Running => "running",
            SinkState::Retrying => "retrying",
            SinkState::Stopped => "stopped",
        }
    }
}

/// One sink's state shared by its task, the set and the HTTP handlers.
pub struct Shared {
    pub name: Arc<str>,
    def: RwLock<SinkDef>,
    /// Fixed when the sink is created (see `SinkFile::epoch`).
    pub epoch: u64,
    /// Last source seq in Kafka; the task is its only writer.
    cursor: AtomicU64,
    /// Source topic id the cursor counts in (`0`: not seen yet).
    topic_id: AtomicU64,
    forwarded_total: AtomicU64,
    gap_markers_total: AtomicU64,
    status: Mutex<(SinkState, Option<String>)>,
    stop: AtomicBool,
    /// Sticky wake-up for the task (`notify_one` keeps a permit): a re-PUT or a stop.
    kick: tokio::sync::Notify,
    /// Bumped by a re-PUT: the task reconnects with the new definition.
    generation: AtomicU64,
    /// Serialises writes of this sink's file (the task's cursor saves and a re-PUT), which
    /// share one temp file name.
    file_lock: Mutex<()>,
}

impl Shared {
    fn new(f: SinkFile) -> Shared {
        Shared {
            name: Arc::from(f.name.as_str()),
            def: RwLock::new(f.def),
            epoch: f.epoch,
            cursor: AtomicU64::new(f.cursor),
            topic_id: AtomicU64::new(f.topic_id),
            forwarded_total: AtomicU64::new(f.forwarded_total),
            gap_markers_total: AtomicU64::new(f.gap_markers_total),
            status: Mutex::new((SinkState::Running, None)),
            stop: AtomicBool::new(false),
            kick: tokio::sync::Notify::new(),
            generation: AtomicU64::new(0),
            file_lock: Mutex::new(()),
        }
    }

    pub fn def(&self) -> SinkDef {
        self.def.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }

    pub fn forwarded_total(&self) -> u64 {
        self.forwarded_total.load(Ordering::Acquire)
    }

    pub fn gap_markers_total(&self) -> u64 {
        self.gap_markers_total.load(Ordering::Acquire)
    }

    /// The state and the last error (kept while `retrying` or `stopped`).
    pub fn status(&self) -> (SinkState, Option<String>) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_status(&self, state: SinkState, error: Option<String>) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = (state, error);
    }

    /// The file contents for this sink as of now.
    fn file(&self) -> SinkFile {
        SinkFile {
            name: self.name.to_string(),
            def: self.def(),
            epoch: self.epoch,
            topic_id: self.topic_id.load(Ordering::Acquire),
            cursor: self.cursor(),
            forwarded_total: self.forwarded_total(),
            gap_markers_total: self.gap_markers_total(),
        }
    }
}

struct Entry {
    shared: Arc<Shared>,
    /// `None` once stopped by `stop_all`.
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Where sink files live and how they are written.
#[derive(Clone)]
pub struct Store {
    pub fs: Arc<dyn Fs>,
    pub data_dir: PathBuf,
}

impl Store {
    fn save(&self, f: &SinkFile) -> std::io::Result<()> {
        f.save(&*self.fs, &self.data_dir)
    }

    /// Write `s`'s file as of now (blocking). With `def`, the file gets that definition and
    /// the sink takes it only once it is durable.
    fn save_shared(&self, s: &Shared, def: Option<SinkDef>) -> std::io::Result<()> {
        let _g = s.file_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut f = s.file();
        match def {
            Some(d) => {
                f.def = d.clone();
                self.save(&f)?;
                *s.def.write().unwrap_or_else(|e| e.into_inner()) = d;
                Ok(())
            }
            None => self.save(&f),
        }
    }
}

pub struct Sinks {
    map: Mutex<BTreeMap<Arc<str>, Entry>>,
    /// Serialises create, update and delete (and their file writes) with each other.
    lifecycle: tokio::sync::Mutex<()>,
    registry: Arc<Registry>,
    store: Store,
}

impl Sinks {
    /// The sink set with every sink saved in the data directory started.
    pub fn load(registry: Arc<Registry>, store: Store) -> Result<Arc<Sinks>, String> {
        let files = file::load_all(&store.data_dir)?;
        let sinks = Arc::new(Sinks {
            map: Mutex::new(BTreeMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
            registry,
            store,
        });
        for f in files {
            tracing::info!(sink = %f.name, cursor = f.cursor, "sink loaded");
            sinks.start(f);
        }
        Ok(sinks)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Arc<str>, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, f: SinkFile) {
        let shared = Arc::new(Shared::new(f));
        let t = task::SinkTask::new(shared.clone(), self.registry.clone(), self.store.clone());
        let task = Some(tokio::spawn(t.run()));
        self.map()
            .insert(shared.name.clone(), Entry { shared, task });
    }

    pub fn get(&self, name: &str) -> Option<Arc<Shared>> {
        self.map().get(name).map(|e| e.shared.clone())
    }

    /// Every sink in name order (at most [`MAX_SINKS`]).
    pub fn all(&self) -> Vec<Arc<Shared>> {
        self.map().values().map(|e| e.shared.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records of the source not in Kafka yet (source head − cursor); `0` when the source is
    /// missing.
    pub async fn lag(&self, s: &Shared) -> u64 {
        let Some(h) = self.registry.get(&s.def().source) else {
            return 0;
        };
        match h.state(false).await {
            Ok(st) if h.id == s.topic_id.load(Ordering::Acquire) => {
                st.head_seq.saturating_sub(s.cursor())
            }
            Ok(st) => st.head_seq.saturating_sub(s.def().from_seq),
            Err(_) => 0,
        }
    }

    /// Remove a sink: its task stops first, then its file goes. Kafka data stays.
    /// `Ok(false)` when absent.
    pub async fn delete(&self, name: &str) -> std::io::Result<bool> {
        let _guard = self.lifecycle.lock().await;
        let Some(entry) = self.map().remove(name) else {
            return Ok(false);
        };
        stop_entry(&entry.shared);
        if let Some(task) = entry.task {
            let _ = task.await;
        }
        let store = self.store.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || file::remove(&*store.fs, &store.data_dir, &name))
            .await
            .map_err(std::io::Error::other)??;
        Ok(true)
    }

    /// Graceful shutdown: every task ends its current step, saves its file and stops.
    pub async fn stop_all(&self) {
        let tasks: Vec<_> = self
            .map()
            .values_mut()
            .filter_map(|e| {
                stop_entry(&e.shared);
                e.task.take()
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

fn stop_entry(s: &Shared) {
    s.stop.store(true, Ordering::Release);
    s.kick.notify_one();
}
