//! Bearer authentication and scopes (API.md §1), in front of every route (the write
//! shortcut included): console-file, probe, watch-stream and API-document bypass → authenticate (`401`) → route scope
//! (`403`) → path-name prefix (`403`); the handler then checks names in bodies and filters
//! listings with the `Caller` this leaves in the request's extensions.
//! Invariant: with keys configured no request reaches a handler without passing here, and a
//! token never appears in a log line or an error.

use super::AppState;
use crate::error::ApiError;
use crate::model::auth::{self, ApiKey, Need};
use axum::http::{header, HeaderMap, Method, Uri};
use std::sync::Arc;

/// Who is calling: `None` in dev mode (no keys configured) or on an open route.
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Arc<ApiKey>>);

impl Caller {
    /// The caller `check` left in a request's extensions (none in handler unit tests).
    pub fn of(parts: &axum::http::request::Parts) -> Caller {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_default()
    }

    /// Is `name` inside this caller's prefix allowlist? (Always, without a key.)
    pub fn allows(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|k| k.allows(name))
    }

    /// `403 {topic}` unless `name` is allowed (body-name checks, API.md §1).
    pub fn check_topic(&self, name: &str) -> Result<(), ApiError> {
        match self.allows(name) {
            true => Ok(()),
            false => Err(ApiError::forbidden_topic(name)),
        }
    }

    pub fn has(&self, scopes: u8) -> bool {
        self.0.as_ref().is_none_or(|k| k.has(scopes))
    }
}

/// Handlers take the caller as an argument; never fails.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller::of(parts))
    }
}

/// Authenticate and authorize one request (everything before its handler).
pub fn check(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let keys = state.keys();
    if keys.is_empty() {
        return Ok(Caller(None));
    }
    // The console's files hold no data; its data calls carry the key like any client's.
    // The API description is public: a client reads it before it has a key.
    let public_doc = method == Method::GET && uri.path() == super::openapi::PATH;
    if super::console::is_asset(uri.path()) || public_doc {
        return Ok(Caller(None));
    }
    let path = auth::percent_decode(uri.path());
    let need = auth::need(method.as_str(), &path, state.config().auth.probe_auth);
    if need == Need::Open {
        return Ok(Caller(None));
    }
    let query_token = match sse_get(method, &path) {
        true => query_token(uri),
        false => None,
    };
    let token = bearer(headers).or(query_token.as_deref());
    let key = token
        .and_then(|t| auth::authenticate(keys, t))
        .ok_or_else(|| {
            ApiError::unauthorized("a valid API key is required (Authorization: Bearer <key>)")
        })?;
    if let Need::Scopes { scopes, name } = need {
        if !key.has(scopes) {
            return Err(ApiError::forbidden(
                "this key lacks the scope this route needs",
            ));
        }
        if let Some(name) = name.filter(|n| !key.allows(n)) {
            return Err(if path.starts_with("/v0/routers/") {
                ApiError::forbidden(format!("this key may not use router {name:?}"))
                    .with_detail(serde_json::json!({ "router": name }))
            } else if path.starts_with("/v0/sinks/") {
                ApiError::forbidden_sink(&name)
            } else {
                ApiError::forbidden_topic(&name)
            });
        }
    }
    Ok(Caller(Some(key.clone())))
}

/// The two SSE GETs, the only routes that take `?token=` (API.md §1).
pub fn sse_get(method: &Method, path: &str) -> bool {
    method == Method::GET
        && (path.starts_with("/v0/watch/")
            || (path.starts_with("/v0/topics/") && path.ends_with("/work")))
}

/// `Authorization: Bearer <token>`, trimmed; any other scheme counts as missing.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The first `token` query parameter, form-decoded.
pub fn query_token(uri: &Uri) -> Option<String> {
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

/// The key a watch stream GET presents (header first, then `?token=`), for the session's
/// creator binding (API.md §11).
pub fn presented_key<'a>(
    state: &'a AppState,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<&'a ApiKey> {
    let q = query_token(uri);
    let token = bearer(headers).or(q.as_deref())?;
    auth::authenticate(state.keys(), token).map(|k| k.as_ref())
}
