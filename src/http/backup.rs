//! `POST /v0/backup` (admin): an online backup streamed as a tar archive (see `crate::backup`).
//! Everything that can fail before the first byte — readiness, the key, the checkpoint, a
//! missing file — is an ordinary error response; a failure while streaming cuts the
//! response off, so a client never mistakes a partial archive for a whole one.

use super::auth::Caller;
use super::AppState;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;

pub async fn backup(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    state.registry()?;
    // A backup holds every topic: a key limited to some names may not take one.
    if caller.0.as_ref().is_some_and(|k| !k.prefixes.is_empty()) {
        return Err(ApiError::forbidden(
            "a backup holds every topic: it needs an admin key without a name prefix",
        ));
    }
    if state.inner.health.is_poisoned() {
        return Err(ApiError::internal(format!(
            "storage failed; no backup can be taken: {}",
            state.inner.health.error()
        )));
    }
    let checkpointer = state.checkpointer()?;
    let point = checkpointer
        .run_for_backup()
        .await
        .map_err(|f| match f.no_space {
            true => ApiError::insufficient_storage(),
            false => ApiError::internal(format!("backup checkpoint failed: {}", f.message)),
        })?;
    let data_dir = state.config().server.data_dir.clone();
    let plan = tokio::task::spawn_blocking(move || crate::backup::plan(&data_dir, point))
        .await
        .map_err(|e| ApiError::internal(format!("backup task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("backup cannot list its files: {e}")))?;
    tracing::info!(
        snapshot = plan.snapshot,
        files = plan.files,
        bytes = plan.bytes,
        "backup started"
    );
    let snapshot = plan.snapshot;
    let chunks = crate::backup::stream(plan);
    let body = futures_util::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"topics-backup-{snapshot}.tar\""),
        )
        .header("x-topics-snapshot", snapshot.to_string())
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal(format!("backup response: {e}")))
}
