//! The shared read/encode path of the watch fan-out (GUIDE API.md §12 "encode once"). One append wakes
//! every caught-up watcher of a topic at the same cursor; without sharing, each would put its
//! own read in the topic actor's bounded mailbox (hundreds at once fill it and writers get
//! 429) and encode the same `record` frame again. Here the first watcher at a
//! (topic incarnation, cursor, read options) key reads and encodes once; the others at that key
//! await that one read (single flight) and reuse its encoded event. Only the `id:` line (the
//! watcher's composite cursor) and the small per-watcher frames are built per watcher; the
//! stream copies the shared bytes into the one chunk it writes per read.
//!
//! Invariants:
//! - Never stale past a wake-up: an entry is reused only when it saw at least the head the
//!   watcher was woken for (`Floor::head`), and for a watcher's first read after arming its
//!   head watch only when the entry's read was issued after the arming (`Floor::born_after`:
//!   the head watch value can predate appends made while nobody listened). Otherwise the
//!   watcher reads again, so register-then-drain still holds.
//! - Bounded: at most `MAX_ENTRIES` entries and `MAX_BYTES` of encoded frames, each reused
//!   for at most `FRESH` (the cache only joins watchers waking together; a lagging watcher
//!   just reads). Nothing here holds a topic or a writer: the cache only holds bytes.

use super::frame::{self, Batch};
use crate::model::json::records::Include;
use crate::model::read::Tombstone;
use crate::topic::{ReadRequest, ReadResult, TopicError, TopicHandle};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

const MAX_ENTRIES: usize = 256;
const MAX_BYTES: usize = 32 << 20;
const FRESH: Duration = Duration::from_millis(250);
/// Shared attempts before a watcher whose wake-up keeps outrunning the shared read reads alone.
const ATTEMPTS: usize = 3;

/// One read's outcome with the `record` frame already encoded (without its `id:` line).
#[derive(Debug)]
pub struct SharedBatch {
    pub next_from_seq: u64,
    pub head_seq: u64,
    pub caught_up: bool,
    pub tombstone: Option<Tombstone>,
    /// `event: record\ndata: …\n\n`, or `None` when the read returned no records.
    pub record: Option<Bytes>,
}

impl SharedBatch {
    /// Encode `r`, read from `from` for `topic`.
    pub fn encode(topic: &str, from: u64, include: Include, r: ReadResult) -> SharedBatch {
        let record = (!r.records.is_empty()).then(|| {
            let batch = Batch {
                topic,
                from_seq: from,
                head_seq: r.head_seq,
                to_seq: r.next_from_seq,
                records: &r.records,
                include,
            };
            Bytes::from(frame::unnamed_event("record", &frame::record_data(&batch)))
        });
        SharedBatch {
            next_from_seq: r.next_from_seq,
            head_seq: r.head_seq,
            caught_up: r.caught_up,
            tombstone: r.tombstone,
            record,
        }
    }

    fn size(&self) -> usize {
        self.record.as_ref().map_or(0, Bytes::len)
    }
}

/// What a shared batch must have seen to stand in for the watcher's own read.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    /// The batch's `head_seq` is at least this.
    pub head: u64,
    /// The batch's read was issued after this instant (the watcher's arming).
    pub born_after: Option<Instant>,
}

/// Everything a read's answer depends on besides the topic's contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub topic_id: u64,
    pub from_seq: u64,
    pub limit: usize,
    pub budget_bytes: u64,
    pub skip_nodes: Vec<String>,
    /// tags, meta, data.
    pub include: (bool, bool, bool),
}

type Cell = Arc<OnceCell<Arc<SharedBatch>>>;

struct Entry {
    cell: Cell,
    born: Instant,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    /// Keys by insertion time, oldest first (may name entries already replaced).
    order: VecDeque<(Key, Cell)>,
}

/// Process-wide; owned by `Sessions`.
#[derive(Default)]
pub struct FanoutCache {
    inner: Mutex<Inner>,
    /// Topic reads issued through the cache (for tests; not part of the HTTP API).
    reads: AtomicU64,
}

impl FanoutCache {
    /// Topic reads issued so far through `get`.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The batch at `key` above `floor`: shared when another watcher's read is in flight or
    /// fresh, else read (and encoded) by `read` and offered to the others.
    pub async fn get<F, Fut>(
        &self,
        key: &Key,
        floor: Floor,
        read: F,
    ) -> Result<Arc<SharedBatch>, TopicError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<SharedBatch, TopicError>>,
    {
        for _ in 0..ATTEMPTS {
            let cell = self.cell(key, floor);
            let batch = cell
                .get_or_try_init(|| async {
                    self.reads.fetch_add(1, Ordering::Relaxed);
                    read().await.map(Arc::new)
                })
                .await?;
            if batch.head_seq >= floor.head {
                return Ok(batch.clone());
            }
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        read().await.map(Arc::new)
    }

    /// The entry to join: an in-flight read, or a fresh one above `floor`; otherwise a new
    /// empty cell replaces it. (An entry's read is issued after its cell is born.)
    fn cell(&self, key: &Key, floor: Floor) -> Cell {
        let now = Instant::now();
        let mut inner = self.inner();
        if let Some(e) = inner.map.get(key) {
            let late_enough = floor.born_after.is_none_or(|t| e.born > t);
            let usable = late_enough
                && match e.cell.get() {
                    None => true,
                    Some(b) => b.head_seq >= floor.head && now.duration_since(e.born) < FRESH,
                };
            if usable {
                return e.cell.clone();
            }
        }
        let cell = Cell::default();
        let entry = Entry {
            cell: cell.clone(),
            born: now,
        };
        inner.map.insert(key.clone(), entry);
        inner.order.push_back((key.clone(), cell.clone()));
        evict(&mut inner, now);
        cell
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner().map.len()
    }
}

/// Drop the oldest entries while over a bound or past `FRESH`; an in-flight read keeps
/// working for the watchers already holding its cell.
fn evict(inner: &mut Inner, now: Instant) {
    let mut bytes: usize = inner
        .order
        .iter()
        .filter_map(|(_, c)| c.get().map(|b| b.size()))
        .sum();
    while let Some((key, cell)) = inner.order.front() {
        let born = inner.map.get(key).map(|e| e.born);
        let current = inner
            .map
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.cell, cell));
        let old = born.is_none_or(|b| now.duration_since(b) >= FRESH);
        let over = inner.order.len() > MAX_ENTRIES || bytes > MAX_BYTES;
        if current && !old && !over {
            break;
        }
        bytes -= cell.get().map_or(0, |b| b.size());
        if current {
            inner.map.remove(key);
        }
        inner.order.pop_front();
    }
}

/// One topic read at `key`, encoded once for every watcher that shares it.
pub async fn read_batch(
    handle: &TopicHandle,
    topic: &str,
    key: &Key,
    include: Include,
) -> Result<SharedBatch, TopicError> {
    let req = ReadRequest {
        from_seq: key.from_seq,
        limit: key.limit,
        budget_bytes: key.budget_bytes,
        skip_nodes: key.skip_nodes.clone(),
        include_meta: include.meta,
    };
    let r = handle.read(req).await?;
    Ok(SharedBatch::encode(topic, key.from_seq, include, r))
}

#[cfg(test)]
#[path = "fanout_tests.rs"]
mod tests;
