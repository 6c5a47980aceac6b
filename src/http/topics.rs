//! Topic lifecycle: PUT (create/replace config), GET state, DELETE, and the list.

use super::body::{self, query_bool, query_value, QueryPairs};
use super::render::{json_value, performance};
use super::AppState;
use crate::error::ApiError;
use crate::model::name::is_valid_topic_name;
use crate::model::topic_config::{TopicConfig, TopicConfigInput, TopicType};
use crate::topic::TopicState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};
use std::time::Instant;

/// The decoded `:topic` path segment.
pub fn topic_path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|e| ApiError::invalid(format!("bad path: {e}")))
}

/// The `:topic` segment of a lookup. Lookups do not validate names (API.md §1): a segment that does
/// not even decode to UTF-8 names no topic, so it becomes a name no topic can have (U+FFFD)
/// and the handler answers exactly as for any absent topic.
pub fn lookup_path(p: Result<Path<String>, PathRejection>) -> String {
    p.map(|Path(t)| t)
        .unwrap_or_else(|_| "\u{fffd}".to_string())
}

/// Query pairs; an unparseable query string counts as empty (every value has a default).
pub fn query_pairs(q: Result<Query<QueryPairs>, QueryRejection>) -> QueryPairs {
    q.map(|Query(p)| p).unwrap_or_default()
}

/// Resolve a config input for `topic`, mapping rule violations to 400.
pub fn resolve_config(input: TopicConfigInput, topic: &str) -> Result<TopicConfig, ApiError> {
    input.resolve(topic).map_err(|e| {
        let err = ApiError::invalid(e.message);
        match e.dead_letter {
            Some(dl) => err.with_detail(json!({ "dead_letter": dl })),
            None => err,
        }
    })
}

pub async fn put(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    // Taken apart, not extracted: the `HeaderMap` extractor clones every header.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let started = Instant::now();
    state.registry()?; // 503 during replay, before any other check
    let topic = topic_path(path)?;
    let max = state.config().limits.max_body_bytes;
    let input: TopicConfigInput = body::json(headers, body, max, true).await?;
    if !is_valid_topic_name(&topic) {
        return Err(ApiError::invalid(format!("invalid topic name {topic:?}")));
    }
    let config = resolve_config(input, &topic)?;
    if let Some(dl) = &config.dead_letter {
        // The dead-letter topic is written on this key's behalf: it must be allowed (API.md §1).
        let caller = super::auth::Caller::of(&parts);
        caller.check_topic(dl)?;
    }
    let registry = state.registry()?;
    let (handle, created) = registry
        .get_or_create(&topic, config.clone())
        .await
        .map_err(|e| ApiError::from_create(&topic, e))?;
    if !created {
        handle
            .put_config(config.clone())
            .await
            .map_err(|e| ApiError::from_topic(&topic, e))?;
    }
    let status = super::render::created_status(created);
    let body = json!({ "topic": topic, "created": created, "config": config,
        "performance": performance(started, &[]) });
    Ok(json_value(status, &body))
}

pub async fn get_state(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryPairs>, QueryRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    state.registry()?; // 503 during replay, before any other check
    let topic = lookup_path(path);
    let touch = query_bool(&query_pairs(query), "touch", true);
    let handle = state
        .registry()?
        .get(&topic)
        .ok_or_else(|| ApiError::topic_not_found(&topic))?;
    // Read-your-writes: routers feeding this topic catch up with their sources first.
    let routers = state.routers()?;
    routers.drive_dest(&topic, super::routers::SYNC_WAIT).await;
    let s = handle
        .state(touch)
        .await
        .map_err(|e| ApiError::from_topic(&topic, e))?;
    let mut body = json!({
        "topic": topic, "type": s.config.kind, "head_seq": s.head_seq,
        "earliest_seq": s.earliest_seq, "next_seq": s.head_seq + 1, "count": s.count,
        "bytes": s.bytes, "config": s.config, "effective_priority": s.effective_priority,
        "last_write_ts": s.last_write_ts, "last_read_ts": s.last_read_ts,
    });
    if s.config.kind == TopicType::Queue {
        let q = state.queues()?.get(&topic).await;
        let c = q.map_err(|e| super::queue::from_queue(&topic, e))?;
        let c = c
            .counters()
            .await
            .map_err(|e| super::queue::from_queue(&topic, e))?;
        body["queue"] = json!({ "ready": c.ready, "in_flight": c.in_flight,
            "dead_lettered": c.dead_lettered });
    }
    body["performance"] = performance(started, &[]);
    Ok(json_value(StatusCode::OK, &body))
}

pub async fn delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryPairs>, QueryRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    state.registry()?; // 503 during replay, before any other check
    let topic = lookup_path(path);
    let if_empty = query_bool(&query_pairs(query), "if_empty", false);
    let deleted = state
        .registry()?
        .delete(&topic, if_empty)
        .await
        .map_err(|e| ApiError::from_topic(&topic, e))?;
    // After the topic: a crash in between leaves routers whose topic is gone, and replay
    // drops exactly those.
    let routers_removed = match deleted {
        true => state
            .routers()?
            .remove_for_topic(&topic)
            .await
            .map_err(|e| ApiError::from_topic(&topic, e))?,
        false => Vec::new(),
    };
    let body = json!({ "topic": topic, "deleted": deleted, "routers_removed": routers_removed,
        "performance": performance(started, &[]) });
    Ok(json_value(StatusCode::OK, &body))
}

pub async fn list(
    State(state): State<AppState>,
    caller: super::auth::Caller,
    query: Result<Query<QueryPairs>, QueryRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    state.registry()?; // 503 during replay, before any other check
    let q = query_pairs(query);
    let read = &state.config().read;
    let Page {
        size: page_size,
        after,
        prefix,
    } = Page::of(&q, read)?;
    let touch = query_bool(&q, "touch", false);
    // Only names the caller's key may use are listed (API.md §1).
    let allowed = |name: &str| caller.allows(name);
    let (handles, more) = state
        .registry()?
        .list(prefix, after.as_deref(), page_size, allowed);
    let mut items = Vec::with_capacity(handles.len());
    for h in &handles {
        // A topic deleted since the listing is simply left out.
        if let Ok(s) = h.state(touch).await {
            items.push(list_item(&s));
        }
    }
    let last = handles.last().filter(|_| more).map(|h| &*h.name);
    Ok(list_page("topics", items, last, started))
}

/// One page of a listing: `{key: items, next_cursor, performance}`; `last` is the last listed
/// name when more follow (its cursor starts the next page), `None` on the last page.
pub fn list_page(key: &str, items: Vec<Value>, last: Option<&str>, started: Instant) -> Response {
    let mut body = json!({ key: items });
    if let Some(last) = last {
        body["next_cursor"] = Value::from(encode_cursor(last));
    }
    body["performance"] = performance(started, &[]);
    json_value(StatusCode::OK, &body)
}

fn list_item(s: &TopicState) -> Value {
    json!({ "topic": s.name.as_ref(), "head_seq": s.head_seq, "earliest_seq": s.earliest_seq,
        "count": s.count, "bytes": s.bytes, "durable": s.config.durable,
        "effective_priority": s.effective_priority })
}

/// What a list request asks for (API.md §1): page size, where to start, name prefix.
pub struct Page<'q> {
    pub size: usize,
    /// Names strictly after this one (`None`: the first page).
    pub after: Option<String>,
    pub prefix: &'q str,
}

impl<'q> Page<'q> {
    pub fn of(q: &'q QueryPairs, read: &crate::config::ReadConfig) -> Result<Self, ApiError> {
        Ok(Page {
            size: page_size(q, read),
            after: decode_cursor(query_value(q, "cursor").unwrap_or(""))?,
            prefix: query_value(q, "prefix").unwrap_or(""),
        })
    }
}

/// `page_size` of a list request: default when absent or unparseable, clamped to
/// `[1, page_size_max]`.
fn page_size(q: &QueryPairs, read: &crate::config::ReadConfig) -> usize {
    query_value(q, "page_size")
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(read.page_size_default, |n| {
            n.clamp(1, read.page_size_max as i64) as usize
        })
}

/// Standard padded base64 of `{"after":"<name>"}`.
pub fn encode_cursor(after: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!({ "after": after }).to_string())
}

/// `Ok(None)` = first page.
pub fn decode_cursor(cursor: &str) -> Result<Option<String>, ApiError> {
    if cursor.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid("cursor is not a cursor this server issued");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    match v.get("after") {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad()),
        None if v.is_object() => Ok(None),
        None => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = encode_cursor("payments.refunds");
        assert_eq!(c, "eyJhZnRlciI6InBheW1lbnRzLnJlZnVuZHMifQ==");
        assert_eq!(
            decode_cursor(&c).unwrap().as_deref(),
            Some("payments.refunds")
        );
        assert_eq!(decode_cursor("").unwrap(), None);
        assert_eq!(
            decode_cursor("e30=").unwrap(),
            None,
            "{{}} means first page"
        );
        assert!(decode_cursor("%%%").is_err());
        assert!(decode_cursor("WzFd").is_err(), "[1] is not an object");
    }
}
