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
    route: usize,
    method: Method,
    /// Kept as is (a cheap clone); redacted and formatted only when a line is written.
    uri: Uri,
    key: Option<[u8; 4]>,
    started: Instant,
}

impl Entry {
    pub fn new(id: String, method: &Method, uri: &Uri, key: Option<&[u8; 32]>) -> Entry {
        Entry {
            id,
            route: route_of(method, uri.path()),
            method: method.clone(),
            uri: uri.clone(),
            key: key.map(|d| [d[0], d[1], d[2], d[3]]),
            started: Instant::now(),
        }
    }

    /// Stamp the response with the id, count it in `stats` and, when on, log the line.
    pub fn finish(self, mut resp: Response, log: bool, stats: &RequestStats) -> Response {
        let us = self.started.elapsed().as_micros() as u64;
        stats.record(self.route, resp.status().as_u16(), us);
        if let Some(t) = resp.extensions().get::<crate::error::ThrottledBy>() {
            stats.record_throttle(t.0);
        }
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
            let mut hex = [0u8; 8];
            let key = match &self.key {
                Some(k) => hex8(k, &mut hex),
                None => "-",
            };
            let (path, ms) = (redacted(&self.uri), format!("{ms:.3}"));
            let status = resp.status().as_u16();
            let line = super::access_line::Line {
                id: &self.id,
                method: self.method.as_str(),
                path: &path,
                status,
                bytes,
                ms: &ms,
                key,
            };
            if !super::access_line::try_write(&line) {
                tracing::info!(target: "access", id = %self.id, method = %self.method,
                    path = %path, status, bytes, ms, key, "request");
            }
        }
        resp
    }
}

/// The path and query, with the value of every `token` parameter replaced by `REDACTED`.
fn redacted(uri: &Uri) -> std::borrow::Cow<'_, str> {
    let Some(q) = uri.query() else {
        return uri.path().into();
    };
    let parts: Vec<String> = q
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == "token" => format!("{k}=REDACTED"),
            _ => p.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), parts.join("&")).into()
}

/// The key fingerprint as 8 lowercase hex digits, without allocating.
fn hex8<'a>(k: &[u8; 4], out: &'a mut [u8; 8]) -> &'a str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in k.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    std::str::from_utf8(out).unwrap_or("-")
}

/// Routes grouped for the request metrics (bounded label values).
pub const ROUTES: [&str; 11] = [
    "write", "diff", "delete", "topics", "queue", "work", "watch", "routers", "probes", "metrics",
    "other",
];

/// Request latency histogram bounds, microseconds.
pub const LATENCY_BUCKETS_US: [u64; 10] = [
    100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000, 1000000,
];

/// Status codes counted one by one; anything else counts as "other".
pub const STATUSES: [u16; 14] = [
    200, 201, 400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429, 503,
];

/// Requests by route and status, and latency by route, as relaxed atomic counters.
pub struct RequestStats {
    /// [route][status index; last = other]
    counts: Vec<[AtomicU64; STATUSES.len() + 1]>,
    /// [route][bucket; last = +Inf], and the sum of microseconds per route.
    buckets: Vec<[AtomicU64; LATENCY_BUCKETS_US.len() + 1]>,
    sums_us: Vec<AtomicU64>,
    /// `429`s by the cap that refused them (rare: a lock is fine).
    throttled: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            counts: ROUTES.iter().map(|_| Default::default()).collect(),
            buckets: ROUTES.iter().map(|_| Default::default()).collect(),
            sums_us: ROUTES.iter().map(|_| AtomicU64::new(0)).collect(),
            throttled: Default::default(),
        }
    }
}

impl RequestStats {
    pub fn record(&self, route: usize, status: u16, us: u64) {
        let s = STATUSES
            .iter()
            .position(|&c| c == status)
            .unwrap_or(STATUSES.len());
        self.counts[route][s].fetch_add(1, Ordering::Relaxed);
        let b = LATENCY_BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[route][b].fetch_add(1, Ordering::Relaxed);
        self.sums_us[route].fetch_add(us, Ordering::Relaxed);
    }

    pub fn record_throttle(&self, cap: &'static str) {
        let mut t = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        *t.entry(cap).or_default() += 1;
    }

    /// `429`s by cap so far.
    pub fn throttled(&self) -> Vec<(&'static str, u64)> {
        let t = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        t.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// (route, status label, count) for every non-zero cell.
    pub fn counts(&self) -> Vec<(&'static str, String, u64)> {
        let mut out = Vec::new();
        for (r, row) in self.counts.iter().enumerate() {
            for (i, c) in row.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let label = STATUSES
                        .get(i)
                        .map_or("other".to_string(), |s| s.to_string());
                    out.push((ROUTES[r], label, n));
                }
            }
        }
        out
    }

    /// Per route: cumulative bucket counts (the last is +Inf = count) and the sum in µs.
    pub fn latency(&self, route: usize) -> (Vec<u64>, u64) {
        let mut acc = 0;
        let cum = self.buckets[route]
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        (cum, self.sums_us[route].load(Ordering::Relaxed))
    }
}

/// The route group of a request path (percent-encoding does not matter for the groups).
pub fn route_of(method: &Method, path: &str) -> usize {
    // Up to five segments, without allocating (this runs for every request).
    let mut buf = [""; 5];
    let mut n = 0;
    for part in path.trim_start_matches('/').split('/') {
        if n == buf.len() {
            n += 1;
            break;
        }
        buf[n] = part;
        n += 1;
    }
    let seg = &buf[..n.min(buf.len())];
    let name = match (method.as_str(), seg) {
        (_, ["v0", "health"] | ["healthz"] | ["v0", "ready"] | ["readyz"]) => "probes",
        (_, ["v0", "metrics"]) => "metrics",
        ("POST", ["v0", "topics", _]) => "write",
        (_, ["v0", "topics", _, "diff"]) => "diff",
        (_, ["v0", "topics", _, "delete"]) => "delete",
        (_, ["v0", "topics", _, "claim" | "ack" | "nack" | "extend"]) => "queue",
        (_, ["v0", "topics", _, "work"]) => "work",
        (_, ["v0", "topics"] | ["v0", "topics", _]) => "topics",
        (_, ["v0", "watch", ..]) => "watch",
        (_, ["v0", "routers", ..]) => "routers",
        _ => "other",
    };
    ROUTES
        .iter()
        .position(|r| *r == name)
        .unwrap_or(ROUTES.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_grouped_without_regard_to_depth_beyond_five_segments() {
        let g = |m: Method, p: &str| ROUTES[route_of(&m, p)];
        assert_eq!(g(Method::POST, "/v0/topics/t"), "write");
        assert_eq!(g(Method::GET, "/v0/topics/t"), "topics");
        assert_eq!(g(Method::POST, "/v0/topics/t/claim"), "queue");
        assert_eq!(g(Method::GET, "/v0/watch/wid_x"), "watch");
        assert_eq!(g(Method::GET, "/v0/routers/a/b/c/d/e/f"), "routers");
        assert_eq!(g(Method::POST, "/v0/topics/t/diff/x/y/z"), "other");
        assert_eq!(g(Method::GET, "/healthz"), "probes");
    }

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

    #[test]
    fn key_fingerprints_are_eight_lowercase_hex_digits() {
        let mut out = [0u8; 8];
        assert_eq!(hex8(&[0x0b, 0x3f, 0xa9, 0xc1], &mut out), "0b3fa9c1");
        assert_eq!(hex8(&[0, 0xff, 0x10, 0x01], &mut out), "00ff1001");
        let u: Uri = "/v0/topics/t".parse().unwrap();
        assert_eq!(redacted(&u), "/v0/topics/t");
    }
}
