//! Access log and request ids: every request gets an id (the client's `X-Request-Id` when it
//! is short and printable, else a new one), echoed in the response's `X-Request-Id`, carried
//! by every log line written while the request is handled (a `request` span), and — unless
//! `server.access_log` is off — one log line (target `access`) once its response head is
//! ready: method, path with any `token` query value redacted, status, body bytes (when known),
//! duration, id, and the key's fingerprint (first 8 hex digits of its digest; never the key).

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The id for a request: the client's, when usable.
pub fn request_id(headers: &HeaderMap) -> String {
    let theirs = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()));
    match theirs {
        Some(v) => v.to_string(),
        None => format!(
            "r{:x}-{:x}",
            boot_tag(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ),
    }
}

/// A per-process tag so ids of two runs do not collide in one log.
fn boot_tag() -> u32 {
    static TAG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_secs() as u32) ^ std::process::id().rotate_left(16)
    })
}

/// What the log line needs from the request, taken before the request moves on.
pub struct Entry {
    pub id: String,
    method: Method,
    path: String,
    key: Option<String>,
    started: Instant,
}

impl Entry {
    pub fn new(id: String, method: &Method, uri: &Uri, key: Option<&[u8; 32]>) -> Entry {
        Entry {
            id,
            method: method.clone(),
            path: redacted(uri),
            key: key.map(|d| d[..4].iter().map(|b| format!("{b:02x}")).collect()),
            started: Instant::now(),
        }
    }

    /// Stamp the response with the id and, when on, log the line.
    pub fn finish(self, mut resp: Response, log: bool) -> Response {
        if let Ok(v) = HeaderValue::from_str(&self.id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        if log {
            let ms = self.started.elapsed().as_secs_f64() * 1000.0;
            // The body's size when it is known up front (streams have none: "-").
            let bytes = resp
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info!(target: "access", id = %self.id, method = %self.method,
                path = %self.path, status = resp.status().as_u16(), bytes, ms = format!("{ms:.3}"),
                key = self.key.as_deref().unwrap_or("-"), "request");
        }
        resp
    }
}

/// The path and query, with the value of every `token` parameter replaced by `REDACTED`.
fn redacted(uri: &Uri) -> String {
    let Some(q) = uri.query() else {
        return uri.path().to_string();
    };
    let parts: Vec<String> = q
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == "token" => format!("{k}=REDACTED"),
            _ => p.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_and_ids_are_the_clients_when_usable() {
        let u: Uri = "/v0/watch/wid_x?a=1&token=secret&b=2".parse().unwrap();
        assert_eq!(redacted(&u), "/v0/watch/wid_x?a=1&token=REDACTED&b=2");
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert("x-request-id", HeaderValue::from_static("has space"));
        assert_ne!(request_id(&h), "has space");
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }
}
