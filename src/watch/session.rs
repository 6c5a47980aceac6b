//! Watch sessions (API.md §11): created by `POST /v0/watch`, opened as streams by
//! `GET /v0/watch/:wid`. A session holds the subscription options and the authoritative
//! cursor map, in memory only.
//!
//! Invariants: a session with an open stream is never reclaimed; an idle one (no open stream,
//! last create/open/close older than the TTL) is reclaimed on the next create or open; the
//! session count never exceeds `max_watch_sessions` and open streams never exceed
//! `max_sse_connections` (0 disables either cap).

use super::cursor;
use super::fanout::FanoutCache;
use crate::model::json::records::Include;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How a session's streams read (resolved and clamped at `POST` time).
#[derive(Debug, Clone)]
pub struct WatchOpts {
    /// Digest of the API key that created the session: its streams must present that key
    /// (API.md §11). `None` in dev mode.
    pub owner: Option<[u8; 32]>,
    pub skip_nodes: Vec<String>,
    pub limit: usize,
    pub budget_bytes: u64,
    pub heartbeat: Duration,
    pub include: Include,
}

/// Why a session could not be created or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchError {
    /// `max_watch_sessions` reached after reclamation.
    SessionLimit { max: u64 },
    /// `max_sse_connections` streams are open.
    StreamLimit { max: u64 },
    /// Unknown or reclaimed `wid`.
    UnknownSession,
}

pub struct Session {
    pub wid: String,
    pub opts: WatchOpts,
    /// Topic → last consumed seq; shared by every stream of this session.
    cursors: Mutex<BTreeMap<String, u64>>,
    /// Open streams: a session with any is never reclaimed.
    open: AtomicUsize,
    /// Last create, stream open or stream close.
    last_access: Mutex<Instant>,
}

impl Session {
    fn cursors(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn topics(&self) -> Vec<String> {
        self.cursors().keys().cloned().collect()
    }

    pub fn cursor(&self, topic: &str) -> Option<u64> {
        self.cursors().get(topic).copied()
    }

    /// Set `topic`'s cursor (if still watched) and return the event id of the whole map.
    pub fn advance(&self, topic: &str, seq: u64) -> String {
        let mut c = self.cursors();
        if let Some(v) = c.get_mut(topic) {
            *v = seq;
        }
        cursor::encode(&c)
    }

    /// Stop watching `topic`; returns the event id of what remains.
    pub fn drop_topic(&self, topic: &str) -> String {
        let mut c = self.cursors();
        c.remove(topic);
        cursor::encode(&c)
    }

    pub fn event_id(&self) -> String {
        cursor::encode(&self.cursors())
    }

    /// `Last-Event-ID` resume: a topic in both maps moves to the smaller cursor (rewind only).
    pub fn rewind(&self, header: &BTreeMap<String, u64>) {
        for (topic, seq) in self.cursors().iter_mut() {
            if let Some(h) = header.get(topic) {
                *seq = (*seq).min(*h);
            }
        }
    }

    fn touch(&self, now: Instant) {
        *self.last_access.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    fn idle_since(&self) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(*self.last_access.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Every session by `wid`, and the count of open streams.
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    ttl: Duration,
    max_sessions: u64,
    max_streams: u64,
    streams: AtomicU64,
    /// The shared read/encode path of every stream.
    fanout: FanoutCache,
}

impl Sessions {
    pub fn new(ttl: Duration, max_sessions: u64, max_streams: u64) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl,
            max_sessions,
            max_streams,
            streams: AtomicU64::new(0),
            fanout: FanoutCache::default(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drop idle sessions older than the TTL.
    fn reclaim(&self, map: &mut HashMap<String, Arc<Session>>, now: Instant) {
        map.retain(|_, s| {
            s.idle_since()
                .is_none_or(|t| now.saturating_duration_since(t) <= self.ttl)
        });
    }

    /// A new session over `cursors` (after reclamation, within `max_watch_sessions`).
    pub fn create(
        &self,
        wid: String,
        cursors: BTreeMap<String, u64>,
        opts: WatchOpts,
        now: Instant,
    ) -> Result<Arc<Session>, WatchError> {
        let mut map = self.map();
        self.reclaim(&mut map, now);
        if self.max_sessions > 0 && map.len() as u64 >= self.max_sessions {
            return Err(WatchError::SessionLimit {
                max: self.max_sessions,
            });
        }
        let session = Arc::new(Session {
            wid: wid.clone(),
            opts,
            cursors: Mutex::new(cursors),
            open: AtomicUsize::new(0),
            last_access: Mutex::new(now),
        });
        map.insert(wid, session.clone());
        Ok(session)
    }

    /// Open a stream on `wid`: reclamation, then the lookup, then the stream cap.
    pub fn open(self: &Arc<Self>, wid: &str, now: Instant) -> Result<StreamGuard, WatchError> {
        let mut map = self.map();
        self.reclaim(&mut map, now);
        let session = map.get(wid).cloned().ok_or(WatchError::UnknownSession)?;
        if self.max_streams > 0 && self.streams.load(Ordering::Acquire) >= self.max_streams {
            return Err(WatchError::StreamLimit {
                max: self.max_streams,
            });
        }
        self.streams.fetch_add(1, Ordering::AcqRel);
        session.open.fetch_add(1, Ordering::AcqRel);
        session.touch(now);
        Ok(StreamGuard {
            sessions: self.clone(),
            session,
        })
    }

    /// The creating key of session `wid` (`Some(None)` in dev mode), `None` when unknown.
    pub fn owner_of(&self, wid: &str) -> Option<Option<[u8; 32]>> {
        self.map().get(wid).map(|s| s.opts.owner)
    }

    /// A stream slot for a stream that is not a watch session's (`/work`): counted against
    /// `max_sse_connections` like every SSE stream; freed when the guard drops.
    pub fn stream_slot(self: &Arc<Self>) -> Result<SlotGuard, WatchError> {
        if self.max_streams > 0 && self.streams.load(Ordering::Acquire) >= self.max_streams {
            return Err(WatchError::StreamLimit {
                max: self.max_streams,
            });
        }
        self.streams.fetch_add(1, Ordering::AcqRel);
        Ok(SlotGuard {
            sessions: self.clone(),
        })
    }

    /// Open event streams: watch streams plus `/work` streams (they share the slots).
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An open stream's hold on its session; dropping it (stream ended for any reason) frees the
/// stream slot and counts as the session's last access.
pub struct StreamGuard {
    sessions: Arc<Sessions>,
    pub session: Arc<Session>,
}

impl StreamGuard {
    pub fn fanout(&self) -> &FanoutCache {
        &self.sessions.fanout
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        // Under the map lock, so a reclamation never sees the count drop before the touch.
        let _map = self.sessions.map();
        self.session.touch(Instant::now());
        self.session.open.fetch_sub(1, Ordering::AcqRel);
        self.sessions.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

/// An SSE stream slot held by a `/work` stream.
pub struct SlotGuard {
    sessions: Arc<Sessions>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.sessions.streams.fetch_sub(1, Ordering::AcqRel);
    }
}
