//! `POST /v0/watch` and `GET /v0/watch/:wid` (API.md §11): create a session, open its
//! `text/event-stream`. The session and stream logic lives in `crate::watch`.

use super::body::{self, query_bool, QueryPairs};
use super::render::{json_value, performance, Include};
use super::topics::{lookup_path, query_pairs};
use super::AppState;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::watch::{cursor, Feeders, WatchOpts, Watcher};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Deserialize)]
#[serde(untagged)]
enum NodeFilter {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Consistency {
    Eventual,
    Strong,
}

#[derive(Deserialize)]
struct TopicSpec {
    from_seq: Option<u64>,
    tail: Option<bool>,
}

#[derive(Deserialize)]
struct WatchBody {
    topics: BTreeMap<String, TopicSpec>,
    node: Option<NodeFilter>,
    limit: Option<u32>,
    max_batch_bytes: Option<u64>,
    heartbeat_ms: Option<u64>,
    include_meta: Option<bool>,
    include_tags: Option<bool>,
    include_data: Option<bool>,
    /// Accepted and validated; it changes nothing (records are visible only after commit).
    #[allow(dead_code)]
    consistency: Option<Consistency>,
}

/// `POST /v0/watch`: 503 → 415/413/400 (body) → 400 (topic count) → 404 per topic in
/// ascending name order (unless `lenient`) → 429 `max_watch_sessions`.
pub async fn create(
    State(state): State<AppState>,
    query: Result<Query<QueryPairs>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let registry = state.registry()?.clone();
    let lenient = query_bool(&query_pairs(query), "lenient", false);
    let (parts, body) = request.into_parts();
    let max = state.config().limits.max_body_bytes;
    let b: WatchBody = body::json(&parts.headers, body, max, false).await?;
    // Every topic key is allowlist-checked, whether or not it exists (API.md §11).
    let caller = super::auth::Caller::of(&parts);
    for topic in b.topics.keys() {
        caller.check_topic(topic)?;
    }
    let max_topics = state.config().watch.max_watch_topics;
    if b.topics.is_empty() || b.topics.len() > max_topics {
        return Err(ApiError::invalid(format!(
            "topics must hold 1 to {max_topics} entries"
        )));
    }
    let mut opts = options(&state, &b);
    opts.owner = caller.0.as_ref().map(|k| k.digest);
    let (cursors, shown) = resolve_topics(&registry, &b.topics, lenient).await?;
    let wid = cursor::new_wid().map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let sessions = &state.inner.watch;
    let now = tokio::time::Instant::now();
    sessions
        .create(wid.clone(), cursors, opts, now)
        .map_err(ApiError::from_watch)?;
    let body = json!({
        "wid": wid, "stream_url": format!("/v0/watch/{wid}"),
        "session_ttl_ms": sessions.ttl().as_millis() as u64, "topics": shown,
        "performance": performance(started, &[]),
    });
    Ok(json_value(StatusCode::OK, &body))
}

/// Each topic's starting cursor (`tail` = head now) and the `topics` object of the answer;
/// the first missing topic in name order is `404` unless `lenient` drops it.
async fn resolve_topics(
    registry: &Registry,
    topics: &BTreeMap<String, TopicSpec>,
    lenient: bool,
) -> Result<(BTreeMap<String, u64>, Map<String, Value>), ApiError> {
    let mut cursors = BTreeMap::new();
    let mut shown = Map::new();
    for (topic, spec) in topics {
        let st = match registry.get(topic) {
            Some(h) => h
                .state(false)
                .await
                .map_err(|e| ApiError::from_topic(topic, e)),
            None => Err(ApiError::topic_not_found(topic)),
        };
        let st = match st {
            Ok(st) => st,
            Err(e) if lenient && e.code == "topic_not_found" => continue,
            Err(e) => return Err(e),
        };
        let from = match spec.tail.unwrap_or(false) {
            true => st.head_seq,
            false => spec.from_seq.unwrap_or(0),
        };
        cursors.insert(topic.clone(), from);
        let t =
            json!({ "from_seq": from, "head_seq": st.head_seq, "earliest_seq": st.earliest_seq });
        shown.insert(topic.clone(), t);
    }
    Ok((cursors, shown))
}

/// Limits and flags per API.md §11, clamped with the configured tunables.
fn options(state: &AppState, b: &WatchBody) -> WatchOpts {
    let (read, watch) = (&state.config().read, &state.config().watch);
    let limit = match b.limit.unwrap_or(0) {
        0 => read.diff_limit_default,
        n => n.min(read.diff_limit_max),
    };
    let budget = match b.max_batch_bytes {
        None => watch.batch_bytes_default,
        Some(0) => read.diff_batch_bytes_default,
        Some(n) => n,
    };
    let heartbeat_ms = b.heartbeat_ms.unwrap_or(watch.heartbeat_ms_default).clamp(
        watch.heartbeat_ms_min,
        watch.heartbeat_ms_max.max(watch.heartbeat_ms_min),
    );
    WatchOpts {
        owner: None,
        skip_nodes: match &b.node {
            None => Vec::new(),
            Some(NodeFilter::One(n)) => vec![n.clone()],
            Some(NodeFilter::Many(v)) => v.clone(),
        },
        limit: limit as usize,
        budget_bytes: budget.min(read.batch_bytes_max),
        heartbeat: Duration::from_millis(heartbeat_ms),
        include: Include {
            tags: b.include_tags.unwrap_or(false),
            meta: b.include_meta.unwrap_or(true),
            data: b.include_data.unwrap_or(true),
        },
    }
}

/// `GET /v0/watch/:wid`: 503 → 406 (`Accept`) → 404 (`wid`) → 429 (`max_sse_connections`).
pub async fn stream(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let registry = state.registry()?.clone();
    let feeders = Feeders {
        routers: state.routers()?.clone(),
        wait: super::routers::SYNC_WAIT,
    };
    if !accepts_event_stream(&headers) {
        return Err(ApiError::not_acceptable());
    }
    let wid = lookup_path(path);
    // Bound to its creating key (API.md §11): that key, in the header or `?token=`, or 401.
    let mut key_slot = None;
    if let Some(Some(owner)) = state.inner.watch.owner_of(&wid) {
        let key = super::auth::presented_key(&state, &uri, &headers);
        if key.is_none_or(|k| k.digest != owner) {
            return Err(ApiError::unauthorized(
                "this watch session belongs to another API key (send it as Bearer or ?token=)",
            ));
        }
        // The stream counts for the session's creator (API.md §10).
        let max = state.config().limits.max_sse_connections_per_key;
        key_slot = Some(state.inner.key_caps.stream(owner, max)?);
    }
    let now = tokio::time::Instant::now();
    let guard = state
        .inner
        .watch
        .open(&wid, now)
        .map_err(ApiError::from_watch)?;
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    if let Some(resume) = last.and_then(cursor::decode) {
        guard.session.rewind(&resume);
    }
    let retry_ms = state.config().watch.sse_retry_ms;
    let watcher = Watcher::new(registry, feeders, guard, state.shutdown_watch(), retry_ms);
    // The per-key slot lives as long as the stream.
    let chunks = futures_util::stream::unfold((watcher, key_slot), |(mut w, slot)| async move {
        let chunk = w.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), (w, slot)))
    });
    Ok(super::render::event_stream(chunks))
}

/// `Accept` absent, or naming `text/event-stream` or `*/*` (API.md §11).
pub fn accepts_event_stream(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    values.filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|item| {
            let media = item.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/event-stream") || media == "*/*"
        })
    })
}
