//! Queues (API.md §13): `POST /v0/topics/:topic/claim`, `/ack`, `/nack`, `/extend`. Parse
//! and check the body, find the queue (404 / 409), call its actor, render. The `/work`
//! stream is in `http/work.rs`.

use super::body;
use super::render::{json_value, performance};
use super::topics::lookup_path;
use super::AppState;
use crate::error::ApiError;
use crate::model::queue::{lease_id, parse_lease_id};
use crate::queue::{ClaimRequest, Claimed, QueueError, SettleOp, SettleRequest};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// Longest `node` (API.md §13).
pub const MAX_NODE_BYTES: usize = 128;

pub async fn claim(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (queues, topic, b) = prepare(&state, path, request).await?;
    let node = node(&b)?;
    let max = match b.get("max") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| field("max", "an unsigned integer"))?,
    };
    let lease_ms = match b.get("lease_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| field("lease_ms", "an unsigned integer"))?,
        ),
    };
    let q = queues
        .get(&topic)
        .await
        .map_err(|e| from_queue(&topic, e))?;
    let req = ClaimRequest {
        node: Arc::from(node),
        max: (max.max(1) as usize).min(queues.params().max_claim),
        lease_ms,
        conn: None,
    };
    let ok = q.claim(req).await.map_err(|e| from_queue(&topic, e))?;
    let claimed: Vec<Value> = ok.claimed.iter().map(|c| job(c, None)).collect();
    let out = json!({ "topic": topic, "count": claimed.len(), "claimed": claimed,
        "ready": ok.ready, "performance": performance(started, &[]) });
    Ok(json_value(StatusCode::OK, &out))
}

pub async fn ack(
    state: State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    settle(state, path, request, Kind::Ack).await
}

pub async fn nack(
    state: State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    settle(state, path, request, Kind::Nack).await
}

pub async fn extend(
    state: State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    settle(state, path, request, Kind::Extend).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ack,
    Nack,
    Extend,
}

async fn settle(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
    kind: Kind,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (queues, topic, b) = prepare(&state, path, request).await?;
    let node = node(&b)?.to_string();
    let seqs = seqs(&b, queues.params().max_claim)?;
    let fences = fences(&b, seqs.len())?;
    let op = match kind {
        Kind::Ack => SettleOp::Ack,
        Kind::Nack => SettleOp::Nack {
            delay_ms: opt_u64(&b, "delay_ms")?.unwrap_or(0),
        },
        Kind::Extend => SettleOp::Extend {
            lease_ms: opt_u64(&b, "lease_ms")?.ok_or_else(|| field("lease_ms", "given"))?,
        },
    };
    let reason = match kind {
        Kind::Nack => reason(&b)?,
        _ => None,
    };
    let q = queues
        .get(&topic)
        .await
        .map_err(|e| from_queue(&topic, e))?;
    let req = SettleRequest {
        op,
        node,
        seqs,
        fences,
        reason,
    };
    let ok = q.settle(req).await.map_err(|e| from_queue(&topic, e))?;
    let n = ok.done.len();
    let mut out = json!({ "topic": topic, "skipped": ok.skipped });
    match kind {
        Kind::Ack => {
            out["acked"] = json!(n);
            out["ready"] = json!(ok.ready);
            out["in_flight"] = json!(ok.in_flight);
            let fsync_ms = ok.sync_started.map(|t| t.elapsed().as_secs_f64() * 1000.0);
            let extra = [("fsync_ms", json!(fsync_ms))];
            let extra: &[(&str, Value)] = if fsync_ms.is_some() { &extra } else { &[] };
            out["performance"] = performance(started, extra);
        }
        Kind::Nack => {
            out["nacked"] = json!(n);
            out["ready"] = json!(ok.ready);
            out["in_flight"] = json!(ok.in_flight);
            out["performance"] = performance(started, &[]);
        }
        Kind::Extend => {
            out["extended"] = json!(n);
            let deadlines: Map<String, Value> = ok
                .deadlines
                .iter()
                .map(|(s, d)| (s.to_string(), json!(d)))
                .collect();
            out["deadlines"] = Value::Object(deadlines);
            out["performance"] = performance(started, &[]);
        }
    }
    Ok(json_value(StatusCode::OK, &out))
}

/// Readiness, the path, then the body (required: empty is `400`).
async fn prepare(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<(Arc<crate::queue::Queues>, String, Map<String, Value>), ApiError> {
    let (parts, body) = request.into_parts();
    let queues = state.queues()?.clone(); // 503 during replay, before any other check
    let topic = lookup_path(path);
    let max = state.config().limits.max_body_bytes;
    let b: Map<String, Value> = body::json(&parts.headers, body, max, false).await?;
    Ok((queues, topic, b))
}

fn field(name: &str, want: &str) -> ApiError {
    ApiError::invalid(format!("{name} must be {want}")).with_detail(json!({ "field": name }))
}

/// `node`: a non-empty string of at most 128 bytes.
pub fn check_node(node: Option<&str>) -> Result<&str, ApiError> {
    match node {
        Some(n) if !n.is_empty() && n.len() <= MAX_NODE_BYTES => Ok(n),
        _ => Err(field("node", "a non-empty string of at most 128 bytes")),
    }
}

fn node(b: &Map<String, Value>) -> Result<&str, ApiError> {
    check_node(b.get("node").and_then(Value::as_str))
}

fn opt_u64(b: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| field(name, "an unsigned integer")),
    }
}

/// Longest nack `reason` (an extension).
pub const MAX_REASON_BYTES: usize = 256;

/// Nack `reason`: absent, or a string of at most 256 bytes.
fn reason(b: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match b.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(r)) if r.len() <= MAX_REASON_BYTES => Ok(Some(r.clone())),
        Some(_) => Err(field("reason", "a string of at most 256 bytes")),
    }
}

/// `seqs`: required, at most 1000 (`400 batch_too_large {seqs, max}`), may be empty.
fn seqs(b: &Map<String, Value>, max: usize) -> Result<Vec<u64>, ApiError> {
    let arr = b
        .get("seqs")
        .and_then(Value::as_array)
        .ok_or_else(|| field("seqs", "an array of unsigned integers"))?;
    if arr.len() > max {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "batch_too_large",
            format!("seqs holds {} entries; the limit is {max}", arr.len()),
        )
        .with_detail(json!({ "seqs": arr.len(), "max": max })));
    }
    arr.iter()
        .map(|v| v.as_u64())
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| field("seqs", "an array of unsigned integers"))
}

/// `lease_ids`: absent or empty = no fences; else one per seq, `""` or `lease_<hex>`.
fn fences(b: &Map<String, Value>, n: usize) -> Result<Vec<Option<u64>>, ApiError> {
    let ids = match b.get("lease_ids") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) if a.is_empty() => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(field("lease_ids", "an array of strings")),
    };
    if ids.len() != n {
        return Err(field("lease_ids", "as long as seqs"));
    }
    ids.iter()
        .map(|v| match v.as_str() {
            Some("") => Ok(None),
            Some(s) => parse_lease_id(s)
                .map(Some)
                .ok_or_else(|| field("lease_ids", "lease ids of the form lease_<hex> or \"\"")),
            None => Err(field("lease_ids", "an array of strings")),
        })
        .collect()
}

/// A leased record as claim and `/work` render it (API.md §13, API.md §13): no `$node`; `$tag` and
/// `meta` exactly when the record has them.
pub fn job(c: &Claimed, topic: Option<&str>) -> Value {
    let r = &c.record;
    let mut v = Map::new();
    if let Some(t) = topic {
        v.insert("topic".into(), json!(t));
    }
    v.insert("$seq".into(), json!(r.seq));
    v.insert("lease_id".into(), json!(lease_id(c.lease_no)));
    v.insert("deadline".into(), json!(c.deadline));
    v.insert("$ts".into(), json!(r.ts));
    if let Some(tag) = &r.tag {
        v.insert("$tag".into(), json!(tag.as_ref()));
    }
    v.insert("deliveries".into(), json!(c.deliveries));
    v.insert("data".into(), raw(&r.data));
    if let Some(m) = &r.meta {
        v.insert("meta".into(), raw(m));
    }
    Value::Object(v)
}

/// Stored JSON text as a value (it was validated when written).
fn raw(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

pub fn from_queue(topic: &str, e: QueueError) -> ApiError {
    match e {
        QueueError::NotFound => ApiError::topic_not_found(topic),
        QueueError::NotAQueue => ApiError::new(
            StatusCode::CONFLICT,
            "not_a_queue",
            format!("topic {topic:?} is a log, not a queue"),
        )
        .with_detail(json!({ "topic": topic })),
        QueueError::Topic(e) => ApiError::from_topic(topic, e),
        QueueError::Create(name, e) => ApiError::from_create(&name, e),
    }
}
