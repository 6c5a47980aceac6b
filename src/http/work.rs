//! `GET /v0/topics/:topic/work` (API.md §13): a push stream of `job` frames. Each pass
//! tops this connection's unexpired leases up to `max` through the claim path, sends one
//! frame per new lease, then parks until the topic changes, `work_poll_ms` or shutdown.
//! Every lease delivered on the connection is released the moment the stream is dropped,
//! whatever ended it.
//!
//! Invariant: a wake-up source (head watch, the queue's `changed`) is registered before the
//! claim that drains, so work arriving during a claim wakes the next pass at once.

use super::body::{query_value, QueryPairs};
use super::queue::{check_node, from_queue, job};
use super::topics::{lookup_path, query_pairs};
use super::AppState;
use crate::error::ApiError;
use crate::queue::{ClaimRequest, QueueError, QueueHandle};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// `GET .../work`: 503 → 406 (`Accept`) → 400 (`node`) → 404 → 409 → 429 (SSE cap).
pub async fn work(
    State(state): State<AppState>,
    caller: super::auth::Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryPairs>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let queues = state.queues()?.clone();
    if !super::watch::accepts_event_stream(&headers) {
        return Err(ApiError::not_acceptable());
    }
    let q = query_pairs(query);
    let node = check_node(query_value(&q, "node"))?.to_string();
    let topic = lookup_path(path);
    let max = query_value(&q, "max")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, queues.params().max_claim as u64) as usize;
    let lease_ms = query_value(&q, "lease_ms").and_then(|v| v.parse().ok());
    let queue = queues
        .get(&topic)
        .await
        .map_err(|e| from_queue(&topic, e))?;
    let slot = state
        .inner
        .watch
        .stream_slot()
        .map_err(ApiError::from_watch)?;
    let key_slot = match caller.0 {
        Some(k) => {
            let max = state.config().limits.max_sse_connections_per_key;
            Some(state.inner.key_caps.stream(k.digest, max)?)
        }
        None => None,
    };
    let conn = queues.connection();
    let stream = WorkStream {
        release: Release {
            queue: queue.clone(),
            conn,
        },
        queue,
        topic,
        req: ClaimRequest {
            node: Arc::from(node),
            max,
            lease_ms,
            conn: Some(conn),
        },
        poll: Duration::from_millis(state.config().queue.work_poll_ms.max(10)),
        heartbeat: Duration::from_millis(state.config().queue.work_heartbeat_ms.max(100)),
        shutdown: state.shutdown_watch(),
        started: false,
        done: false,
        last_frame: Instant::now(),
        _slot: slot,
        _key_slot: key_slot,
    };
    let chunks = futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), s))
    });
    Ok(super::render::event_stream(chunks))
}

/// Releases the connection's leases when the stream is dropped (client gone, shutdown, end).
struct Release {
    queue: QueueHandle,
    conn: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.queue.release_conn(self.conn);
    }
}

struct WorkStream {
    queue: QueueHandle,
    topic: String,
    req: ClaimRequest,
    poll: Duration,
    /// 15 s by default (`queue.work_heartbeat_ms`), fixed per the contract.
    heartbeat: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
    started: bool,
    done: bool,
    last_frame: Instant,
    release: Release,
    _slot: crate::watch::session::SlotGuard,
    _key_slot: Option<super::caps::Slot>,
}

enum Next {
    Frames(Bytes),
    End(Option<Bytes>),
    Park,
}

impl WorkStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            return Some(Bytes::from_static(b"retry: 2000\n\n"));
        }
        loop {
            if *self.shutdown.borrow() {
                self.done = true;
                return Some(self.error("server_shutting_down", "the server is shutting down"));
            }
            // Register, then claim: work arriving meanwhile wakes the park below.
            let mut head = self.queue.topic.head_watch();
            head.borrow_and_update();
            let changed = self.queue.changed.clone();
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.pass().await {
                Next::Frames(b) => {
                    self.last_frame = Instant::now();
                    return Some(b);
                }
                Next::End(last) => {
                    self.done = true;
                    return last;
                }
                Next::Park => {}
            }
            let heartbeat = self.last_frame + self.heartbeat;
            tokio::select! {
                _ = head.changed() => {}
                _ = notified => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = tokio::time::sleep_until(heartbeat) => {
                    self.last_frame = Instant::now();
                    return Some(Bytes::from_static(b": hb\n\n"));
                }
                _ = self.shutdown.changed() => {}
            }
        }
    }

    /// Top this connection up to `max` leases; frames for the new ones.
    async fn pass(&mut self) -> Next {
        let held = match self.queue.held_by(self.release.conn).await {
            Ok(n) => n,
            Err(_) => return Next::End(None),
        };
        if held >= self.req.max {
            return Next::Park;
        }
        let req = ClaimRequest {
            max: self.req.max - held,
            ..self.req.clone()
        };
        match self.queue.claim(req).await {
            Ok(ok) if ok.claimed.is_empty() => Next::Park,
            Ok(ok) => {
                let mut out = Vec::new();
                for c in &ok.claimed {
                    let data = job(c, Some(&self.topic)).to_string();
                    let seq = c.record.seq;
                    out.extend_from_slice(
                        format!("id: {seq}\nevent: job\ndata: {data}\n\n").as_bytes(),
                    );
                }
                Next::Frames(Bytes::from(out))
            }
            // A topic that vanished ends the stream silently (API.md §13).
            Err(QueueError::NotFound) => Next::End(None),
            Err(QueueError::NotAQueue) => {
                let msg = format!("topic {:?} is not a queue", self.topic);
                Next::End(Some(self.error("not_a_queue", &msg)))
            }
            // Throttled or a storage error: try again on the next pass.
            Err(e) => {
                tracing::debug!(topic = %self.topic, error = ?e, "work stream claim failed");
                Next::Park
            }
        }
    }

    /// The stream's last event; `code` is one of the API's string error codes.
    fn error(&self, code: &str, text: &str) -> Bytes {
        let data = serde_json::json!({ "code": code, "error": text, "topic": self.topic });
        Bytes::from(format!("event: error\ndata: {data}\n\n"))
    }
}
