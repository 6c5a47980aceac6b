//! Request bodies and queries: the size cap (413, after draining the body so the client sees
//! the status instead of a reset), the media-type check (415), JSON parsing into strict types
//! (400) after the JSON limits of `model::json::limits`, path-name decoding and the contract's query-boolean rule.

use crate::error::ApiError;
use crate::model::json::limits;
use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderMap};
use axum::BoxError;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

/// A request body as the handlers read it: axum's boxed `Body`, or hyper's own body type
/// when the write shortcut (`super::fast`) hands it over without boxing it.
pub trait RequestBody: HttpBody<Data = Bytes, Error: Into<BoxError> + Send> + Unpin + Send {}

impl<B: HttpBody<Data = Bytes, Error: Into<BoxError> + Send> + Unpin + Send> RequestBody for B {}

/// Past the cap we still read (and drop) this much more so the client gets the 413.
const DRAIN_MAX_BYTES: u64 = 1 << 30;

/// Largest body buffer reserved up front from `Content-Length`.
const PRESIZE_MAX: u64 = 256 << 10;

/// Read the whole body within `max` bytes. `empty_as_object` turns an empty body into `{}`
/// without needing a content type (PUT topic, diff).
pub async fn read_json<B: RequestBody>(
    headers: &HeaderMap,
    body: B,
    max: u64,
    empty_as_object: bool,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        drain(body, 0).await;
        return Err(ApiError::payload_too_large(max));
    }
    let bytes = collect(body, max, declared.unwrap_or(0)).await?;
    if bytes.is_empty() && empty_as_object {
        return Ok(Bytes::from_static(b"{}"));
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json_type {
        return Err(ApiError::unsupported_media_type());
    }
    Ok(bytes)
}

/// Copies the body into one buffer of its own, sized from `Content-Length` (up to
/// `PRESIZE_MAX`, so a claimed length alone reserves little): the frames are slices of
/// hyper's connection read buffer, and stored records keep their body alive.
async fn collect<B: RequestBody>(mut body: B, max: u64, declared: u64) -> Result<Bytes, ApiError> {
    let mut buf = Vec::with_capacity(declared.min(max).min(PRESIZE_MAX) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let e: BoxError = e.into();
            ApiError::invalid(format!("could not read the request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() as u64 + data.len() as u64 > max {
                drain(body, buf.len() as u64 + data.len() as u64).await;
                return Err(ApiError::payload_too_large(max));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

async fn drain<B: RequestBody>(mut body: B, mut seen: u64) {
    while seen < DRAIN_MAX_BYTES {
        match body.frame().await {
            Some(Ok(f)) => seen += f.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

/// Validate UTF-8 once for the whole body, then hand out a `&str` for borrowing parsers.
pub fn as_json_text(bytes: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|_| ApiError::invalid("request body is not valid UTF-8"))
}

/// Parse a JSON object body into `T`; a non-object top level is rejected first so
/// `null`/arrays/strings never reach type defaults.
pub fn parse<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, ApiError> {
    parse_within(text, 0)
}

/// [`parse`], for a body that wraps the values the nesting limit is about in `envelope`
/// levels of its own (a write's records). Every body passes the JSON limits before serde
/// sees it: serde skips borrowed raw values and ignored fields without any limit.
pub fn parse_within<'a, T: serde::Deserialize<'a>>(
    text: &'a str,
    envelope: u32,
) -> Result<T, ApiError> {
    check_object(text)?;
    limits::check(text.as_bytes(), envelope)?;
    serde_json::from_str(text).map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))
}

/// Read (size cap, media type) and parse a body into an owned `T` in one step.
pub async fn json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    max: u64,
    empty_as_object: bool,
) -> Result<T, ApiError> {
    let bytes = read_json(headers, body, max, empty_as_object).await?;
    parse(as_json_text(&bytes)?)
}

fn check_object(text: &str) -> Result<(), ApiError> {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => Ok(()),
        _ => Err(ApiError::invalid("request body must be a JSON object")),
    }
}

/// Query pairs, form-decoded.
pub type QueryPairs = Vec<(String, String)>;

pub fn query_value<'a>(q: &'a QueryPairs, key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `true`/`1`, `false`/`0`; anything else is the default.
pub fn query_bool(q: &QueryPairs, key: &str, default: bool) -> bool {
    match query_value(q, key) {
        Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        _ => default,
    }
}
