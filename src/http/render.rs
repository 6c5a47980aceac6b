//! Response rendering. Record bodies are spliced from stored bytes, never re-serialized.

pub use crate::model::json::records::{push_records, Include};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::time::Instant;

/// Milliseconds since `t` as the `performance` fields want them.
pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// `{"server_total_ms": …}` plus extra fields.
pub fn performance(started: Instant, extra: &[(&str, Value)]) -> Value {
    let mut p = serde_json::Map::new();
    // Microsecond resolution, like `push_performance`: `1.178`, not `1.1780689999999998`.
    let total = (ms(started) * 1000.0).round() / 1000.0;
    p.insert("server_total_ms".into(), json!(total));
    for (k, v) in extra {
        p.insert((*k).into(), v.clone());
    }
    Value::Object(p)
}

/// Append a `performance` object of millisecond fields (plus `records_scanned` when given)
/// without building a `Value` — it is on every write and read response.
pub fn push_performance(out: &mut Vec<u8>, fields: &[(&str, f64)], records_scanned: Option<u64>) {
    out.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Keys are our own field names: nothing to escape.
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        crate::model::json::push_millis(out, *v);
    }
    if let Some(n) = records_scanned {
        out.extend_from_slice(b",\"records_scanned\":");
        crate::model::json::push_u64(out, n);
    }
    out.push(b'}');
}

/// A JSON response from already-rendered bytes.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    // Built directly: `(status, Vec<u8>).into_response()` would first set an
    // `application/octet-stream` type for this to overwrite.
    let mut resp = Response::new(axum::body::Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `201 Created` when the request created its resource, else `200 OK`.
pub fn created_status(created: bool) -> StatusCode {
    match created {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    }
}

/// A JSON response from a `Value`.
pub fn json_value(status: StatusCode, v: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(v).unwrap_or_default())
}

/// A `text/event-stream` response over `chunks` (API.md §11 headers: no caching, no proxy
/// buffering); the stream ends the body when it returns `None`.
pub fn event_stream<S>(chunks: S) -> Response
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static,
{
    use axum::http::{header, HeaderValue};
    let mut resp = Response::new(axum::body::Body::from_stream(chunks));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn performance_renders_as_the_value_would() {
        let mut out = Vec::new();
        push_performance(
            &mut out,
            &[("server_total_ms", 0.25), ("fsync_ms", 0.0)],
            Some(7),
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({ "server_total_ms": 0.25, "fsync_ms": 0.0, "records_scanned": 7 })
        );
    }
}
