//! The HTTP surface (axum only): one file per resource, plus body/query helpers and response
//! rendering. Handlers extract, call a topic handle or the registry, and render; they never
//! touch storage.

pub mod access;
pub mod access_line;
pub mod auth;
mod backup;
mod body;
pub mod caps;
mod console;
mod delete;
mod diff;
pub mod fast;
mod metrics;
mod openapi;
mod probes;
mod queue;
mod render;
mod routers;
#[cfg(feature = "kafka")]
mod sinks;
mod topics;
mod watch;
mod work;
mod write;

use crate::clock::{Clock, ManualClock};
use crate::config::Config;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::storage::health::StorageHealth;
use crate::storage::recovery::ReplayProgress;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Shared>,
}

pub struct Shared {
    pub config: Arc<Config>,
    /// Set once recovery has installed every topic.
    pub registry: OnceLock<Arc<Registry>>,
    /// Set with the registry, before ready.
    pub routers: OnceLock<Arc<crate::router::Routers>>,
    /// Set with the registry, before ready.
    pub queues: OnceLock<Arc<crate::queue::Queues>>,
    /// Set with the registry, before ready (feature `kafka`).
    #[cfg(feature = "kafka")]
    pub sinks: OnceLock<Arc<crate::sink::Sinks>>,
    /// Set with the registry, before ready (online backups take a checkpoint).
    pub checkpointer: OnceLock<Arc<crate::checkpoint::Checkpointer>>,
    pub ready: AtomicBool,
    pub progress: Arc<ReplayProgress>,
    pub health: Arc<StorageHealth>,
    pub started: Instant,
    /// Flips to `true` when shutdown starts; parked long-polls answer at once.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Watch sessions by `wid`.
    pub watch: Arc<crate::watch::Sessions>,
    /// API keys (digests); empty = auth disabled (dev mode).
    /// Shared, so a request's `Caller` holds a key without copying it.
    pub keys: Vec<Arc<crate::model::auth::ApiKey>>,
    /// Per-key request and stream counts.
    pub key_caps: caps::KeyCaps,
    /// Requests by route and status, latency by route (for `/v0/metrics`).
    pub request_stats: Arc<access::RequestStats>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        progress: Arc<ReplayProgress>,
        health: Arc<StorageHealth>,
    ) -> Self {
        AppState {
            inner: Arc::new(Shared {
                registry: OnceLock::new(),
                routers: OnceLock::new(),
                queues: OnceLock::new(),
                #[cfg(feature = "kafka")]
                sinks: OnceLock::new(),
                checkpointer: OnceLock::new(),
                ready: AtomicBool::new(false),
                progress,
                health,
                started: Instant::now(),
                shutdown: tokio::sync::watch::channel(false).0,
                keys: crate::model::auth::parse_keys(&config.auth.api_keys)
                    .unwrap_or_default()
                    .into_iter()
                    .map(Arc::new)
                    .collect(),
                key_caps: caps::KeyCaps::default(),
                request_stats: Arc::default(),
                watch: Arc::new(crate::watch::Sessions::new(
                    std::time::Duration::from_millis(config.watch.session_ttl_ms),
                    config.limits.max_watch_sessions,
                    config.limits.max_sse_connections,
                )),
                config,
            }),
        }
    }

    /// Wake every parked long-poll and end every watch stream (with its `error` frame) so the
    /// drain finishes promptly.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    pub fn shutdown_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn keys(&self) -> &[Arc<crate::model::auth::ApiKey>] {
        &self.inner.keys
    }

    /// The registry, or 503 `not_ready` while replay runs. Every data handler calls this
    /// before anything else, so readiness outranks every other error (a per-request check
    /// instead of a middleware layer, which cost boxed futures on every request).
    pub fn registry(&self) -> Result<&Arc<Registry>, ApiError> {
        self.inner
            .registry
            .get()
            .ok_or_else(|| ApiError::not_ready(self.inner.progress.fraction()))
    }

    pub fn set_routers(&self, routers: Arc<crate::router::Routers>) {
        let _ = self.inner.routers.set(routers);
    }

    /// The router set; `503 not_ready` during replay, like `registry()`.
    pub fn routers(&self) -> Result<&Arc<crate::router::Routers>, ApiError> {
        self.registry()?;
        self.inner
            .routers
            .get()
            .ok_or_else(|| ApiError::not_ready(self.inner.progress.fraction()))
    }

    pub fn set_queues(&self, queues: Arc<crate::queue::Queues>) {
        let _ = self.inner.queues.set(queues);
    }

    /// The queue set; `503 not_ready` during replay, like `registry()`.
    pub fn queues(&self) -> Result<&Arc<crate::queue::Queues>, ApiError> {
        self.registry()?;
        self.inner
            .queues
            .get()
            .ok_or_else(|| ApiError::not_ready(self.inner.progress.fraction()))
    }

    #[cfg(feature = "kafka")]
    pub fn set_sinks(&self, sinks: Arc<crate::sink::Sinks>) {
        let _ = self.inner.sinks.set(sinks);
    }

    /// The sink set; `503 not_ready` during replay, like `registry()`.
    #[cfg(feature = "kafka")]
    pub fn sinks(&self) -> Result<&Arc<crate::sink::Sinks>, ApiError> {
        self.registry()?;
        self.inner
            .sinks
            .get()
            .ok_or_else(|| ApiError::not_ready(self.inner.progress.fraction()))
    }

    pub fn set_checkpointer(&self, checkpointer: Arc<crate::checkpoint::Checkpointer>) {
        let _ = self.inner.checkpointer.set(checkpointer);
    }

    /// The checkpointer; `503 not_ready` during replay, like `registry()`.
    pub fn checkpointer(&self) -> Result<&Arc<crate::checkpoint::Checkpointer>, ApiError> {
        self.registry()?;
        self.inner
            .checkpointer
            .get()
            .ok_or_else(|| ApiError::not_ready(self.inner.progress.fraction()))
    }

    pub fn set_ready(&self, registry: Arc<Registry>) {
        let _ = self.inner.registry.set(registry);
        self.inner.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }
}

/// The HTTP surface: every route, behind the write shortcut of [`fast`].
pub fn router(state: AppState, test_clock: Option<Arc<ManualClock>>) -> fast::Service {
    fast::Service::new(routes(state.clone(), test_clock), state)
}

fn routes(state: AppState, test_clock: Option<Arc<ManualClock>>) -> Router {
    let data = Router::new()
        .route("/v0/topics", get(topics::list))
        .route(
            "/v0/topics/{topic}",
            get(topics::get_state)
                .put(topics::put)
                .delete(topics::delete)
                .post(write::write),
        )
        .route("/v0/topics/{topic}/diff", post(diff::diff))
        .route("/v0/topics/{topic}/delete", post(delete::delete_records))
        .route("/v0/topics/{topic}/claim", post(queue::claim))
        .route("/v0/topics/{topic}/ack", post(queue::ack))
        .route("/v0/topics/{topic}/nack", post(queue::nack))
        .route("/v0/topics/{topic}/extend", post(queue::extend))
        .route("/v0/topics/{topic}/work", get(work::work))
        .route("/v0/routers", get(routers::list))
        .route(
            "/v0/routers/{router}",
            get(routers::get).put(routers::put).delete(routers::delete),
        )
        .route("/v0/watch", post(watch::create))
        .route("/v0/watch/{wid}", get(watch::stream))
        .route("/v0/backup", post(backup::backup));
    // Without the `kafka` feature `/v0/sinks` is an unknown path (`404 not_found`).
    #[cfg(feature = "kafka")]
    let data = data.route("/v0/sinks", get(sinks::list)).route(
        "/v0/sinks/{sink}",
        get(sinks::get).put(sinks::put).delete(sinks::delete),
    );
    let mut root = Router::new();
    if let Some(clock) = test_clock {
        root = root.route(
            "/v0/_test/clock",
            post(move |b: axum::body::Bytes| move_test_clock(clock.clone(), b)),
        );
    }
    root.route("/v0/health", get(probes::health))
        .route("/healthz", get(probes::health))
        .route("/v0/ready", get(probes::ready))
        .route("/readyz", get(probes::ready))
        .route("/v0/metrics", get(metrics::metrics))
        .route("/v0/openapi.json", get(openapi::document))
        .merge(data)
        .merge(console::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(State(state): State<AppState>) -> ApiError {
    if !state.is_ready() {
        return ApiError::not_ready(state.inner.progress.fraction());
    }
    ApiError::route_not_found()
}

/// Test-only: `{"advance_ms": n}` or `{"set_ms": t}` moves the manual clock; answers `{now_ms}`.
async fn move_test_clock(clock: Arc<ManualClock>, body: axum::body::Bytes) -> Response {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(ms) = v.get("advance_ms").and_then(serde_json::Value::as_i64) {
        clock.advance(ms);
    }
    if let Some(ms) = v.get("set_ms").and_then(serde_json::Value::as_i64) {
        clock.set(ms);
    }
    render::json_value(
        axum::http::StatusCode::OK,
        &serde_json::json!({ "now_ms": clock.now_ms() }),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn not_ready_app() -> (fast::Service, Arc<ReplayProgress>) {
        let progress = Arc::new(ReplayProgress::default());
        progress.total_bytes.store(4, Ordering::Relaxed);
        progress.done_bytes.store(1, Ordering::Relaxed);
        let state = AppState::new(
            Arc::new(Config::default()),
            progress.clone(),
            StorageHealth::new(),
        );
        (router(state, None), progress)
    }

    async fn call(
        app: &fast::Service,
        method: &str,
        uri: &str,
    ) -> (StatusCode, Option<String>, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            retry,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }

    use axum::http::StatusCode;

    #[tokio::test]
    async fn data_routes_answer_not_ready_during_replay_with_progress() {
        let (app, _) = not_ready_app();
        for (method, uri) in [
            ("GET", "/v0/topics"),
            ("GET", "/v0/topics/a"),
            ("PUT", "/v0/topics/a"),
            ("DELETE", "/v0/topics/a"),
            ("POST", "/v0/topics/a/diff"),
            ("POST", "/v0/topics/a"),
            ("POST", "/v0/topics/a/delete"),
            ("POST", "/v0/watch"),
            ("GET", "/v0/watch/wid_x"),
            // Readiness outranks validation: a bad name or body is not looked at yet.
            ("PUT", "/v0/topics/bad%20name"),
            ("GET", "/v0/unknown"),
        ] {
            let (status, retry, body) = call(&app, method, uri).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}");
            assert_eq!(retry.as_deref(), Some("1"));
            assert_eq!(body["error"]["code"], "not_ready");
            assert_eq!(body["error"]["detail"]["replay_progress"], 0.25);
        }
        let (status, _, body) = call(&app, "GET", "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "not_ready");
    }

    #[tokio::test]
    async fn readiness_reports_poisoned_storage_and_liveness_stays_up() {
        use crate::storage::health::StoreError;
        let health = StorageHealth::new();
        let progress = Arc::new(ReplayProgress::default());
        let state = AppState::new(Arc::new(Config::default()), progress, health.clone());
        let app = router(state, None);
        let (status, _, _) = call(&app, "GET", "/v0/ready").await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready before replay"
        );
        health.poison(&StoreError::failed("shard 0: WAL fdatasync failed: EIO"));
        let (status, retry, body) = call(&app, "GET", "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["error"]["code"], "not_ready");
        assert!(body["error"]["detail"]["storage_error"]
            .as_str()
            .unwrap()
            .contains("EIO"));
        let (status, _, _) = call(&app, "GET", "/v0/health").await;
        assert_eq!(status, StatusCode::OK, "liveness is unaffected");
    }

    #[tokio::test]
    async fn health_is_up_during_replay() {
        let (app, _) = not_ready_app();
        for uri in ["/v0/health", "/healthz"] {
            let (status, _, body) = call(&app, "GET", uri).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["status"], "ok");
        }
    }
}
