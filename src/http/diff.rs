//! `POST /v0/topics/:topic/diff` — cursor read with long-poll (API.md §6).

use super::body;
use super::render::{json_bytes, ms, push_performance, push_records, Include};
use super::topics::lookup_path;
use super::AppState;
use crate::error::ApiError;
use crate::model::json::{push_str, push_u64};
use crate::topic::{ReadRequest, ReadResult};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Deserialize)]
#[serde(untagged)]
enum NodeFilter {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
struct DiffBody {
    from_seq: Option<u64>,
    limit: Option<u32>,
    node: Option<NodeFilter>,
    include_tags: Option<bool>,
    include_meta: Option<bool>,
    wait_ms: Option<u32>,
    max_batch_bytes: Option<u64>,
}

pub async fn diff(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    // Taken apart, not extracted: the `HeaderMap` extractor clones every header.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let started = Instant::now();
    state.registry()?; // 503 during replay, before any other check
    let topic = lookup_path(path);
    let max = state.config().limits.max_body_bytes;
    let b: DiffBody = body::json(headers, body, max, true).await?;
    let req = read_request(&state, &b);
    let inc = Include {
        tags: b.include_tags.unwrap_or(false),
        meta: req.include_meta,
        data: true,
    };
    let wait_ms = u64::from(b.wait_ms.unwrap_or(0)).min(state.config().read.wait_ms_max);
    let handle = state
        .registry()?
        .get(&topic)
        .ok_or_else(|| ApiError::topic_not_found(&topic))?;
    // Read-your-writes: routers feeding this topic catch up with their sources first.
    let routers = state.routers()?;
    routers.drive_dest(&topic, super::routers::SYNC_WAIT).await;
    // Subscribe before the first read so an append between the read and the wait wakes us.
    let mut head = handle.head_watch();
    head.borrow_and_update();
    let map_err = |e| ApiError::from_topic(&topic, e);
    let mut result = handle.read(req.clone()).await.map_err(map_err)?;
    let idle = result.records.is_empty() && result.tombstone.is_none() && result.caught_up;
    let mut stopping = state.shutdown_watch();
    if wait_ms > 0 && idle && !*stopping.borrow_and_update() {
        // Woken by an append (re-read once), the timeout, or shutdown (answer as is).
        let appended = tokio::select! {
            r = head.changed() => r.is_ok(),
            _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => false,
            _ = stopping.changed() => false,
        };
        if appended {
            result = handle.read(req).await.map_err(map_err)?;
        }
    }
    Ok(json_bytes(
        StatusCode::OK,
        render(&topic, &result, inc, started),
    ))
}

fn read_request(state: &AppState, b: &DiffBody) -> ReadRequest {
    let read = &state.config().read;
    let limit = match b.limit.unwrap_or(0) {
        0 => read.diff_limit_default,
        n => n.min(read.diff_limit_max),
    };
    let budget = match b.max_batch_bytes.unwrap_or(0) {
        0 => read.diff_batch_bytes_default,
        n => n.min(read.batch_bytes_max),
    };
    let skip_nodes = match &b.node {
        None => Vec::new(),
        Some(NodeFilter::One(n)) => vec![n.clone()],
        Some(NodeFilter::Many(v)) => v.clone(),
    };
    ReadRequest {
        from_seq: b.from_seq.unwrap_or(0),
        limit: limit as usize,
        budget_bytes: budget,
        skip_nodes,
        include_meta: b.include_meta.unwrap_or(true),
    }
}

fn render(topic: &str, r: &ReadResult, inc: Include, started: Instant) -> Vec<u8> {
    let size: usize = r.records.iter().map(|x| x.data.len() + 64).sum();
    let mut out = Vec::with_capacity(256 + size);
    out.extend_from_slice(b"{\"topic\":");
    push_str(&mut out, topic);
    out.extend_from_slice(b",\"records\":");
    push_records(&mut out, &r.records, inc);
    for (key, v) in [
        (&b",\"next_from_seq\":"[..], r.next_from_seq),
        (b",\"head_seq\":", r.head_seq),
        (b",\"earliest_seq\":", r.earliest_seq),
    ] {
        out.extend_from_slice(key);
        push_u64(&mut out, v);
    }
    out.extend_from_slice(if r.caught_up {
        b",\"caught_up\":true"
    } else {
        b",\"caught_up\":false"
    });
    out.extend_from_slice(b",\"tombstone\":");
    let _ = serde_json::to_writer(&mut out, &r.tombstone);
    out.extend_from_slice(b",\"lag\":");
    push_u64(&mut out, r.lag);
    out.extend_from_slice(b",\"performance\":");
    push_performance(
        &mut out,
        &[("server_total_ms", ms(started))],
        Some(r.scanned),
    );
    out.push(b'}');
    out
}
