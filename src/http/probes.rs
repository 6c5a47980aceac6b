//! Liveness and readiness probes (API.md §8).

use super::render::json_value;
use super::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn health(State(state): State<AppState>) -> Response {
    let uptime_ms = state.inner.started.elapsed().as_millis() as u64;
    json_value(
        StatusCode::OK,
        &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "uptime_ms": uptime_ms }),
    )
}

/// 503 during replay, and after a storage failure (the process can still serve reads, but a
/// load balancer should stop sending it writes). Damaged sealed data keeps it ready (readers
/// get `corrupt` tombstones); `detail` counts what was found. A full disk keeps it ready too
/// (reads and `ephemeral` writes work, durable writes answer 507 and resume by themselves);
/// `detail.disk_full` says so.
pub async fn ready(State(state): State<AppState>) -> Response {
    // A storage failure outranks replay progress: it needs an operator, not patience.
    if state.inner.health.is_poisoned() {
        let err = state.inner.health.error();
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "storage failed; restart required",
        )
        .with_detail(json!({
            "replay_progress": state.inner.progress.fraction(),
            "storage_error": err.to_string()
        }))
        .into_response();
    }
    if !state.is_ready() {
        return ApiError::not_ready(state.inner.progress.fraction()).into_response();
    }
    let Ok(registry) = state.registry() else {
        return ApiError::not_ready(state.inner.progress.fraction()).into_response();
    };
    let damage = registry.integrity();
    json_value(
        StatusCode::OK,
        &json!({
            "status": "ready",
            "wal_replay_complete": true,
            "topics": registry.len(),
            "detail": {
                "corrupt_records": damage.corrupt_records(),
                "corrupt_segments": damage.corrupt_segments(),
                "disk_full": state.inner.health.is_full(),
            }
        }),
    )
}
