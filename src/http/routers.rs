//! Routers (API.md §12): PUT, GET, list and DELETE of `/v0/routers`. Parse, check, call the
//! router set, render; forwarding itself runs in `router/`.

use super::body::{self, query_value, QueryPairs};
use super::render::{json_value, performance};
use super::topics::{list_page, lookup_path, query_pairs, topic_path, Page};
use super::AppState;
use crate::error::ApiError;
use crate::model::predicate::TagPredicate;
use crate::model::router::{parse_def, RouterDef};
use crate::router::Shared;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// Longest wait of a read (`GET /v0/routers/:router`, a dest's diff, state or watch pass) for
/// a router to reach its source head; a router that stalls ends the wait at once.
pub const SYNC_WAIT: Duration = Duration::from_secs(2);

pub async fn put(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let started = Instant::now();
    let routers = state.routers()?; // 503 during replay, before any other check
    let name = topic_path(path)?;
    let max = state.config().limits.max_body_bytes;
    let body: Map<String, Value> = body::json(&parts.headers, body, max, true).await?;
    // The allowlist on source and dest comes before every other body check (API.md §12).
    let caller = super::auth::Caller::of(&parts);
    if let Some((source, dest)) = crate::model::router::endpoints(&body) {
        caller.check_topic(source)?;
        caller.check_topic(dest)?;
    }
    let def = parse_def(&name, &body)?;
    let created = routers
        .put(&name, def.clone())
        .await
        .map_err(|e| ApiError::from_router_put(&name, e))?;
    let mut out = def_body(&name, &def);
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
    let routers = state.routers()?;
    let name = lookup_path(path);
    let shared = routers
        .get(&name)
        .ok_or_else(|| ApiError::router_not_found(&name))?;
    check_existing(&caller, Some(&shared))?;
    routers.sync(&shared, SYNC_WAIT).await;
    let mut out = def_body(&name, &shared.def());
    out["forwarded_total"] = Value::from(shared.forwarded_total());
    out["performance"] = performance(started, &[]);
    Ok(json_value(StatusCode::OK, &out))
}

pub async fn list(
    State(state): State<AppState>,
    caller: super::auth::Caller,
    query: Result<Query<QueryPairs>, QueryRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let routers = state.routers()?;
    let q = query_pairs(query);
    let read = &state.config().read;
    let Page {
        size: page_size,
        after,
        prefix,
    } = Page::of(&q, read)?;
    let (source, dest) = (query_value(&q, "source"), query_value(&q, "dest"));
    let mut matching = routers.all().into_iter().filter(|s| {
        let d = s.def();
        s.name.starts_with(prefix)
            && visible(&caller, &s.name, &d)
            && after.as_deref().is_none_or(|a| &*s.name > a)
            && source.is_none_or(|x| x == d.source)
            && dest.is_none_or(|x| x == d.dest)
    });
    let page: Vec<_> = matching.by_ref().take(page_size).collect();
    let items = page.iter().map(|s| list_item(s)).collect();
    let more = matching.next().is_some();
    let last = page.last().filter(|_| more).map(|s| &*s.name);
    Ok(list_page("routers", items, last, started))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: super::auth::Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let routers = state.routers()?;
    let name = lookup_path(path);
    check_existing(&caller, routers.get(&name).as_deref())?;
    let deleted = routers
        .delete(&name)
        .await
        .map_err(|e| ApiError::from_topic(&name, e))?;
    let out =
        json!({ "router": name, "deleted": deleted, "performance": performance(started, &[]) });
    Ok(json_value(StatusCode::OK, &out))
}

/// A key sees a router only when its name, source and dest are all inside its allowlist.
fn visible(caller: &super::auth::Caller, name: &str, d: &RouterDef) -> bool {
    caller.allows(name) && caller.allows(&d.source) && caller.allows(&d.dest)
}

/// GET or DELETE of an existing router: its source and dest must be allowed too (API.md §1).
fn check_existing(
    caller: &super::auth::Caller,
    shared: Option<&crate::router::Shared>,
) -> Result<(), ApiError> {
    if let Some(s) = shared {
        let d = s.def();
        caller.check_topic(&d.source)?;
        caller.check_topic(&d.dest)?;
    }
    Ok(())
}

fn def_body(name: &str, d: &RouterDef) -> Value {
    json!({ "router": name, "source": d.source, "dest": d.dest,
        "preserve_node": d.preserve_node, "preserve_tag": d.preserve_tag,
        "filter": d.filter.as_ref().map(TagPredicate::to_wire), "allow_cycle": d.allow_cycle,
        "guarantee": d.guarantee.as_str() })
}

fn list_item(s: &Shared) -> Value {
    let d = s.def();
    json!({ "router": &*s.name, "source": d.source, "dest": d.dest,
        "guarantee": d.guarantee.as_str(), "forwarded_total": s.forwarded_total() })
}
