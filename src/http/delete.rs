//! `POST /v0/topics/:topic/delete` — permanent, silent, point-in-time record deletes (API.md §7).

use super::body;
use super::render::{json_value, performance};
use super::topics::lookup_path;
use super::AppState;
use crate::error::ApiError;
use crate::model::predicate::TagPredicate;
use crate::topic::DeleteRequest;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Instant;

#[derive(Deserialize)]
struct DeleteBody {
    before_seq: Option<u64>,
    #[serde(rename = "match")]
    pred: Option<Value>,
}

pub async fn delete_records(
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
    let b: DeleteBody = body::json(headers, body, max, false).await?;
    let pred = match &b.pred {
        None | Some(Value::Null) => None,
        Some(v) => Some(TagPredicate::parse(v).map_err(ApiError::invalid)?),
    };
    if b.before_seq.is_none() && pred.is_none() {
        return Err(ApiError::invalid("give before_seq, match, or both"));
    }
    let handle = state
        .registry()?
        .get(&topic)
        .ok_or_else(|| ApiError::topic_not_found(&topic))?;
    let req = DeleteRequest {
        before_seq: b.before_seq,
        pred,
    };
    let ok = handle
        .delete_records(req)
        .await
        .map_err(|e| ApiError::from_topic(&topic, e))?;
    let body = json!({ "topic": topic, "deleted": ok.deleted, "earliest_seq": ok.earliest_seq,
        "head_seq": ok.head_seq, "count": ok.count, "bytes": ok.bytes,
        "performance": performance(started, &[]) });
    Ok(json_value(StatusCode::OK, &body))
}
