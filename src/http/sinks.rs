//! Kafka sinks (API.md §15, feature `kafka`): PUT, GET, list and DELETE of `/v0/sinks`.
//! Parse, check, call the sink set, render; forwarding runs in `sink/`. Every route needs the
//! `admin` scope (the route table); a key with name prefixes must allow the sink name (the
//! route table) and its source topic (checked here).

use super::body::{self, QueryPairs};
use super::render::{json_value, performance};
use super::topics::{list_page, lookup_path, query_pairs, topic_path, Page};
use super::AppState;
use crate::error::ApiError;
use crate::model::sink::{def_to_json, parse_def, source_of};
use crate::sink::{Shared, Sinks};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::time::Instant;

pub async fn put(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let started = Instant::now();
    let sinks = state.sinks()?; // 503 during replay, before any other check
    let name = topic_path(path)?;
    let max = state.config().limits.max_body_bytes;
    let body: Map<String, Value> = body::json(&parts.headers, body, max, true).await?;
    // The allowlist on the source comes before every other body check, as for routers.
    if let Some(source) = source_of(&body) {
        super::auth::Caller::of(&parts).check_topic(source)?;
    }
    let def = parse_def(&name, &body)?;
    let created = sinks
        .put(&name, def, epoch_now_ms())
        .await
        .map_err(|e| ApiError::from_sink_put(&name, e))?;
    let shared = sinks
        .get(&name)
        .ok_or_else(|| ApiError::sink_not_found(&name))?;
    let mut out = sink_body(sinks, &shared).await;
    out["created"] = Value::Bool(created);
    out["performance"] = performance(started, &[]);
    let status = super::render::created_status(created);
    Ok(json_value(status, &out))
}

pub async fn get(
    State(state): State<AppState>,
    caller: super::auth::Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let sinks = state.sinks()?;
    let name = lookup_path(path);
    let shared = sinks
        .get(&name)
        .ok_or_else(|| ApiError::sink_not_found(&name))?;
    caller.check_topic(&shared.def().source)?;
    let mut out = sink_body(sinks, &shared).await;
    out["performance"] = performance(started, &[]);
    Ok(json_value(StatusCode::OK, &out))
}

pub async fn list(
    State(state): State<AppState>,
    caller: super::auth::Caller,
    query: Result<Query<QueryPairs>, QueryRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let sinks = state.sinks()?;
    let q = query_pairs(query);
    let Page {
        size,
        after,
        prefix,
    } = Page::of(&q, &state.config().read)?;
    let source = body::query_value(&q, "source");
    let mut matching = sinks.all().into_iter().filter(|s| {
        let d = s.def();
        s.name.starts_with(prefix)
            && caller.allows(&s.name)
            && caller.allows(&d.source)
            && after.as_deref().is_none_or(|a| &*s.name > a)
            && source.is_none_or(|x| x == d.source)
    });
    let page: Vec<_> = matching.by_ref().take(size).collect();
    let mut items = Vec::with_capacity(page.len());
    for s in &page {
        items.push(list_item(sinks, s).await);
    }
    let more = matching.next().is_some();
    let last = page.last().filter(|_| more).map(|s| &*s.name);
    Ok(list_page("sinks", items, last, started))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: super::auth::Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let sinks = state.sinks()?;
    let name = lookup_path(path);
    if let Some(s) = sinks.get(&name) {
        caller.check_topic(&s.def().source)?;
    }
    let deleted = sinks.delete(&name).await.map_err(|e| {
        tracing::error!(sink = %name, error = %e, "sink file not removed");
        ApiError::internal("the sink file could not be removed")
    })?;
    let out = json!({ "sink": name, "deleted": deleted, "performance": performance(started, &[]) });
    Ok(json_value(StatusCode::OK, &out))
}

/// A new sink's epoch: wall-clock milliseconds, so a sink re-created under an old name never
/// takes the old one's progress records for its own.
fn epoch_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
}

/// The definition (secrets redacted) and where the sink stands.
async fn sink_body(sinks: &Sinks, s: &Shared) -> Value {
    let mut out = def_to_json(&s.def(), true);
    let (state, last_error) = s.status();
    out["sink"] = Value::from(&*s.name);
    out["cursor"] = Value::from(s.cursor());
    out["lag"] = Value::from(sinks.lag(s).await);
    out["state"] = Value::from(state.as_str());
    out["last_error"] = last_error.map_or(Value::Null, Value::from);
    out["forwarded_total"] = Value::from(s.forwarded_total());
    out["gap_markers_total"] = Value::from(s.gap_markers_total());
    out["epoch"] = Value::from(s.epoch);
    out
}

async fn list_item(sinks: &Sinks, s: &Shared) -> Value {
    let d = s.def();
    json!({ "sink": &*s.name, "source": d.source, "kafka_topic": d.kafka_topic,
        "guarantee": d.guarantee.as_str(), "state": s.status().0.as_str(),
        "lag": sinks.lag(s).await, "forwarded_total": s.forwarded_total() })
}

/// Every sink's metric series (`/v0/metrics`).
pub async fn metric_rows(sinks: &Sinks) -> Vec<super::metrics::SinkRow> {
    let mut rows = Vec::new();
    for s in sinks.all() {
        rows.push(super::metrics::SinkRow {
            name: s.name.to_string(),
            lag: sinks.lag(&s).await,
            forwarded_total: s.forwarded_total(),
            gap_markers_total: s.gap_markers_total(),
            state: s.status().0.as_str(),
        });
    }
    rows
}
