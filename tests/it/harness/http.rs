//! Minimal blocking HTTP/1.1 client over `std::net::TcpStream`: one request per connection
//! (`Connection: close`), bounded by socket timeouts, decoding `Content-Length` and chunked
//! bodies. Enough to pin the wire contract byte for byte, nothing more.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Socket read/write timeout: longer than any long-poll a test uses, short enough that a hung
/// server fails the test instead of the whole run.
const IO_TIMEOUT: Duration = Duration::from_secs(40);

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the raw body if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}: {}",
                self.status,
                self.text()
            )
        })
    }

    /// Assert the status and return the JSON body (with context on failure).
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self.json()
    }

    /// Whether `Content-Type` is `application/json` (parameters allowed).
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
    }
}

/// Assert a canonical error response: the status, a JSON content type, and exactly
/// `{"error":{"code","message",["detail"]}}` with `detail` an object when present. Returns the
/// `error` object so callers can check `detail`.
#[track_caller]
pub fn assert_error(resp: &Response, status: u16, code: &str) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected {status} {code}; body: {}",
        resp.text()
    );
    assert!(
        resp.is_json(),
        "error content-type {:?}; body: {}",
        resp.header("content-type"),
        resp.text()
    );
    let body = resp.json();
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("error body not an object: {body}"));
    assert_eq!(
        obj.len(),
        1,
        "error body must have only `error` (no performance): {body}"
    );
    let err = &body["error"];
    assert!(err.is_object(), "no error object: {body}");
    assert_eq!(err["code"], code, "wrong error code: {body}");
    assert!(
        err["message"].is_string(),
        "error.message must be a string: {body}"
    );
    if let Some(detail) = err.get("detail") {
        assert!(
            detail.is_object(),
            "error.detail must be an object when present: {body}"
        );
    }
    err.clone()
}

/// Open a connection with timeouts set.
pub fn connect(addr: SocketAddr) -> TcpStream {
    try_connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

fn try_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Like `request`, but a refused connection or a connection closed without a complete response
/// is an `Err` (for requests racing a shutdown or a crash).
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let mut stream = try_connect(addr).map_err(|e| format!("connect: {e}"))?;
    try_send_on(&mut stream, addr, method, path, headers, body, true)
}

/// Send one request on a fresh connection (`Connection: close`) and read the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    send_on(&mut connect(addr), addr, method, path, headers, body, true)
}

/// Send one request on an open connection and read its response. Without `close` the
/// connection stays usable for the next request (HTTP/1.1 keep-alive). A `Transfer-Encoding`
/// header in `headers` means `body` is already framed, so no `Content-Length` is added.
pub fn send_on(
    stream: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Response {
    try_send_on(stream, addr, method, path, headers, body, close)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn try_send_on(
    stream: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Result<Response, String> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if close {
        head.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let framed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
    if !framed && (!body.is_empty() || !matches!(method, "GET" | "HEAD")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");

    // A server may answer (e.g. 413) before reading the whole body; a failed write is then
    // not fatal as long as a complete response can still be read.
    let write_result = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .and_then(|_| stream.flush());
    read_response(stream, method == "HEAD")
        .map_err(|e| format!("no complete response ({e}); write result: {write_result:?}"))
}

fn read_response(stream: &mut TcpStream, head_only: bool) -> Result<Response, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if let Some(resp) = try_parse(&buf, head_only)? {
            return Ok(resp);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return try_parse_at_eof(&buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // A reset after a complete response is fine; otherwise report what we got.
                return try_parse(&buf, head_only)?.ok_or_else(|| {
                    format!(
                        "read error {e} after {} bytes: {:?}",
                        buf.len(),
                        String::from_utf8_lossy(&buf)
                    )
                });
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    body_start: usize,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|e| format!("non-UTF-8 head: {e}"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Some(Head {
        status,
        headers,
        body_start: end + 4,
    }))
}

/// A complete response if `buf` holds one (by Content-Length or chunked framing).
fn try_parse(buf: &[u8], head_only: bool) -> Result<Option<Response>, String> {
    let Some(head) = parse_head(buf)? else {
        return Ok(None);
    };
    let get = |name: &str| {
        head.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let rest = &buf[head.body_start..];
    let no_body =
        head_only || head.status == 204 || head.status == 304 || (100..200).contains(&head.status);
    let body = if no_body {
        Some(Vec::new())
    } else if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        decode_chunked(rest)?
    } else if let Some(len) = get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad content-length {len:?}"))?;
        (rest.len() >= len).then(|| rest[..len].to_vec())
    } else {
        None // delimited by EOF
    };
    Ok(body.map(|body| Response {
        status: head.status,
        headers: head.headers,
        body,
    }))
}

fn try_parse_at_eof(buf: &[u8]) -> Result<Response, String> {
    if let Some(resp) = try_parse(buf, false)? {
        return Ok(resp);
    }
    let head = parse_head(buf)?
        .ok_or_else(|| format!("EOF before end of head: {:?}", String::from_utf8_lossy(buf)))?;
    let framed = head
        .headers
        .iter()
        .any(|(k, _)| k == "content-length" || k == "transfer-encoding");
    if framed {
        return Err(format!(
            "EOF inside a framed body: {:?}",
            String::from_utf8_lossy(buf)
        ));
    }
    Ok(Response {
        status: head.status,
        headers: head.headers,
        body: buf[head.body_start..].to_vec(),
    })
}

/// Decode a chunked body; `None` if it is not complete yet.
fn decode_chunked(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let size_line =
            std::str::from_utf8(&rest[..eol]).map_err(|_| "bad chunk size line".to_string())?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_line:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            // Trailers (ignored) end with an empty line.
            loop {
                let Some(eol) = find(rest, b"\r\n") else {
                    return Ok(None);
                };
                if eol == 0 {
                    return Ok(Some(body));
                }
                rest = &rest[eol + 2..];
            }
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        if &rest[size..size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_across_chunks_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
        let resp = try_parse(raw, false).unwrap().unwrap();
        assert_eq!(resp.body, b"abcde");
        assert_eq!(resp.header("x-a"), Some("b"));
        assert!(try_parse(&raw[..raw.len() - 2], false).unwrap().is_none());
    }

    #[test]
    fn content_length_bodies_wait_for_all_bytes() {
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nabcd";
        assert!(try_parse(&raw[..raw.len() - 1], false).unwrap().is_none());
        let resp = try_parse(raw, false).unwrap().unwrap();
        assert_eq!((resp.status, resp.body.as_slice()), (404, &b"abcd"[..]));
    }
}
