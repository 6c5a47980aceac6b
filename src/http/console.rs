//! The web console (docs/OPERATIONS.md, "Web console"): a hand-written page, its scripts and
//! its stylesheet, embedded in the binary and served at `/` and `/console/…`.
//! Invariant: the assets hold no data, so they are served to anyone (`auth.rs` lets exactly
//! these paths through); every data call the page makes is an ordinary API request that
//! carries the key the user typed in.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Strong validator, fixed at compile time: a new binary with a changed console is
    /// fetched again, an unchanged one answers `304`.
    etag: u64,
}

const fn asset(path: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        path,
        content_type,
        body,
        etag: fnv1a(body),
    }
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: [Asset; 6] = [
    asset(
        "/",
        "text/html; charset=utf-8",
        include_bytes!("console/index.html"),
    ),
    asset(
        "/console/console.css",
        "text/css; charset=utf-8",
        include_bytes!("console/console.css"),
    ),
    asset(
        "/console/console.js",
        JS,
        include_bytes!("console/console.js"),
    ),
    asset("/console/api.js", JS, include_bytes!("console/api.js")),
    asset("/console/tail.js", JS, include_bytes!("console/tail.js")),
    asset(
        "/console/charts.js",
        JS,
        include_bytes!("console/charts.js"),
    ),
];

/// Same origin only, no inline script or style, no framing: the page needs nothing else.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The console's routes: GET (and so HEAD) only; other methods get the router's canonical 405.
/// Literal paths, so the OpenAPI route test can read them; a file name that is not one of
/// the embedded files is the router's canonical `404 route_not_found`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve(&ASSETS[0], &h) }),
        )
        .route("/console/{file}", get(console_file))
}

async fn console_file(Path(file): Path<String>, h: HeaderMap) -> Response {
    let path = format!("/console/{file}");
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => serve(a, &h),
        None => ApiError::route_not_found().into_response(),
    }
}

/// Is `path` one of the console's files? (`auth::check` serves these without a key.)
pub fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

fn serve(a: &Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", a.etag);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = match fresh {
        true => Response::new(axum::body::Body::empty()),
        false => Response::new(axum::body::Body::from(a.body)),
    };
    if fresh {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    // Revalidate every time: the files change with the binary, and the ETag makes it cheap.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// 64-bit FNV-1a, usable in a `const`.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_embedded_files_count_as_console_paths() {
        for a in &ASSETS {
            assert!(is_asset(a.path), "{}", a.path);
            assert!(!a.body.is_empty(), "{}", a.path);
        }
        for path in [
            "",
            "/console",
            "/console/",
            "/console/x.js",
            "/v0/topics",
            "//",
        ] {
            assert!(!is_asset(path), "{path}");
        }
    }

    #[test]
    fn a_matching_etag_answers_not_modified_without_a_body() {
        let a = &ASSETS[0];
        let full = serve(a, &HeaderMap::new());
        assert_eq!(full.status(), StatusCode::OK);
        let etag = full.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        let again = serve(a, &h);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(serve(a, &h).status(), StatusCode::OK);
    }

    /// The page must load while the log replays: its readiness badge shows the progress.
    #[tokio::test]
    async fn the_page_is_served_during_replay() {
        use crate::storage::{health::StorageHealth, recovery::ReplayProgress};
        use tower::ServiceExt;
        let progress = std::sync::Arc::new(ReplayProgress::default());
        let config = std::sync::Arc::new(crate::config::Config::default());
        let state = super::super::AppState::new(config, progress, StorageHealth::new());
        assert!(!state.is_ready());
        let app = super::super::router(state, None);
        let req = axum::http::Request::get("/").body(axum::body::Body::empty());
        let resp = app.oneshot(req.unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[test]
    fn every_script_the_page_loads_is_served() {
        // The page loads its entry script; the entry imports the others by relative path.
        let page = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert!(page.contains("src=\"/console/console.js\""));
        assert!(page.contains("href=\"/console/console.css\""));
        let entry = std::str::from_utf8(ASSETS[2].body).unwrap();
        for module in ["./api.js", "./tail.js", "./charts.js"] {
            assert!(entry.contains(module), "{module}");
            assert!(is_asset(&format!("/console/{}", &module[2..])));
        }
    }
}
