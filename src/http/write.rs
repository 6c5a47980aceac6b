//! `POST /v0/topics/:topic` — atomic append of a batch (API.md §5).

use super::body::{self, query_bool};
use super::render::{json_bytes, ms, push_performance};
use super::topics::{query_pairs, resolve_config, topic_path};
use super::AppState;
use crate::error::ApiError;
use crate::model::json::{push_str, push_u64};
use crate::model::name::is_valid_topic_name;
use crate::model::record::{RecordDraft, RecordInput, RECORD_ENVELOPE_DEPTH};
use crate::model::topic_config::TopicConfigInput;
use crate::topic::{AppendOk, AppendRequest, TopicHandle};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Instant;

#[derive(Deserialize)]
struct WriteBody<'a> {
    #[serde(borrow)]
    records: Vec<RecordIn<'a>>,
    node: Option<String>,
    idempotency_key: Option<String>,
    create: Option<bool>,
    config: Option<TopicConfigInput>,
    #[allow(dead_code)]
    disable_backpressure: Option<bool>,
}

#[derive(Deserialize)]
struct RecordIn<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    tag: Option<String>,
    node: Option<String>,
    #[serde(borrow)]
    meta: Option<&'a RawValue>,
}

/// A write after every record check, before the topic is looked up.
struct CheckedWrite {
    drafts: Vec<RecordDraft>,
    idempotency_key: Option<String>,
    create: Option<bool>,
    config: Option<TopicConfigInput>,
}

pub async fn write(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<body::QueryPairs>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    write_topic(state, topic_path(path), query_pairs(query), request).await
}

/// The write itself, for the routed handler above and for the router's shortcut
/// (`super::fast`), which hands over the topic segment and query it parsed itself.
pub async fn write_topic<B: body::RequestBody>(
    state: AppState,
    topic: Result<String, ApiError>,
    query: body::QueryPairs,
    request: axum::http::Request<B>,
) -> Result<Response, ApiError> {
    // Taken apart, not extracted: the `HeaderMap` extractor clones every header.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let started = Instant::now();
    state.registry()?; // 503 during replay, before any other check
    let topic = topic?;
    let caller = super::auth::Caller::of(&parts);
    let return_seqs = query_bool(&query, "return_seqs", true);
    let bytes = body::read_json(headers, body, state.config().limits.max_body_bytes, false).await?;
    let checked = check(&state, &bytes, headers)?;
    if checked.config.is_some()
        && !caller.has(crate::model::auth::ADMIN)
        && state.registry()?.get(&topic).is_none()
    {
        // Creating a topic with an inline config needs `admin` (API.md §1); nothing is created.
        return Err(
            ApiError::forbidden("creating a topic with a config needs the admin scope")
                .with_detail(serde_json::json!({ "topic": topic })),
        );
    }
    let (handle, created) = resolve_topic(&state, &topic, checked.create, checked.config).await?;
    let count = checked.drafts.len();
    let req = AppendRequest {
        records: checked.drafts,
        idempotency_key: checked.idempotency_key,
    };
    let ok = handle
        .append(req)
        .await
        .map_err(|e| ApiError::from_topic(&topic, e))?;
    // A dedupe is always 200 with created:false and the original seqs (API.md §5).
    let created = created && !ok.deduped;
    let count = if ok.deduped {
        (ok.last_seq + 1 - ok.first_seq) as usize
    } else {
        count
    };
    let status = super::render::created_status(created);
    Ok(json_bytes(
        status,
        render(&topic, &ok, count, created, return_seqs, started),
    ))
}

fn check(state: &AppState, bytes: &Bytes, headers: &HeaderMap) -> Result<CheckedWrite, ApiError> {
    let text = body::as_json_text(bytes)?;
    let wb: WriteBody<'_> = body::parse_within(text, RECORD_ENVELOPE_DEPTH)?;
    let lim = state.config().limits.write_limits();
    lim.check_batch_len(wb.records.len())?;
    if let Some(node) = &wb.node {
        lim.check_node(node, "node")?;
    }
    let header_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let idempotency_key = wb.idempotency_key.or(header_key);
    if let Some(key) = &idempotency_key {
        lim.check_idempotency_key(key)?;
    }
    let default_node: Option<Arc<str>> = wb.node.as_deref().map(Arc::from);
    let mut drafts = Vec::with_capacity(wb.records.len());
    for (i, r) in wb.records.iter().enumerate() {
        let input = RecordInput {
            data: r.data.get().as_bytes(),
            meta: r.meta.map(|m| m.get().as_bytes()),
            tag: r.tag.as_deref(),
            node: r.node.as_deref(),
        };
        drafts.push(lim.draft(i, input, bytes, default_node.as_ref())?);
    }
    Ok(CheckedWrite {
        drafts,
        idempotency_key,
        create: wb.create,
        config: wb.config,
    })
}

/// The topic, created when absent and allowed (`create`, else the inline `auto_create`).
async fn resolve_topic(
    state: &AppState,
    topic: &str,
    create: Option<bool>,
    config: Option<TopicConfigInput>,
) -> Result<(TopicHandle, bool), ApiError> {
    let registry = state.registry()?;
    if let Some(h) = registry.get(topic) {
        return Ok((h, false));
    }
    if create == Some(false) {
        return Err(ApiError::topic_not_found(topic));
    }
    let config = resolve_config(config.unwrap_or_default(), topic)?;
    if !create.unwrap_or(config.auto_create) {
        return Err(ApiError::topic_not_found(topic));
    }
    if !is_valid_topic_name(topic) {
        return Err(ApiError::invalid(format!("invalid topic name {topic:?}")));
    }
    registry
        .get_or_create(topic, config)
        .await
        .map_err(|e| ApiError::from_create(topic, e))
}

fn render(
    topic: &str,
    ok: &AppendOk,
    count: usize,
    created: bool,
    seqs: bool,
    started: Instant,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + topic.len() + if seqs { count * 8 } else { 0 });
    out.extend_from_slice(b"{\"topic\":");
    push_str(&mut out, topic);
    out.extend_from_slice(b",\"first_seq\":");
    push_u64(&mut out, ok.first_seq);
    out.extend_from_slice(b",\"last_seq\":");
    push_u64(&mut out, ok.last_seq);
    if seqs {
        out.extend_from_slice(b",\"seqs\":[");
        for s in ok.first_seq..=ok.last_seq {
            if s > ok.first_seq {
                out.push(b',');
            }
            push_u64(&mut out, s);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"head_seq\":");
    push_u64(&mut out, ok.head_seq);
    out.extend_from_slice(b",\"count\":");
    push_u64(&mut out, count as u64);
    out.extend_from_slice(if created {
        b",\"created\":true"
    } else {
        b",\"created\":false"
    });
    out.extend_from_slice(if ok.deduped {
        b",\"deduped\":true"
    } else {
        b",\"deduped\":false"
    });
    out.extend_from_slice(b",\"performance\":");
    // Deduped responses carry only server_total_ms (API.md §5).
    let total = ("server_total_ms", ms(started));
    if ok.deduped {
        push_performance(&mut out, &[total], None);
    } else {
        let fields = [
            total,
            ("wal_append_ms", ok.wal_append_ms),
            ("fsync_ms", ok.fsync_ms),
        ];
        push_performance(&mut out, &fields, None);
    }
    out.push(b'}');
    out
}
