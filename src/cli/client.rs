//! A small async HTTP/1.1 client for the `topics` API, shared by every client subcommand.
//!
//! It owns the base URL and the bearer key, turns the canonical error body
//! `{"error":{"code","message","detail"}}` into a typed [`ApiFailure`], and hands out either a
//! whole JSON answer ([`Client::call`]), a raw answer of any status ([`Client::send`]) or a
//! streaming body ([`Client::open`], for event streams and large downloads). Plain `http://`
//! only: the server speaks no TLS, so a remote server is reached directly or through an SSH
//! tunnel. It never retries by itself; callers decide, with [`ClientError::retry_after`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// The largest whole body `send` reads: above the server's largest diff page (8 MiB) and
/// topic-list page, so a well-formed answer always fits and a runaway one cannot eat memory.
const BODY_BYTES_MAX: usize = 64 << 20;
/// A server that accepts no connection within this is reported, not waited for.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for an answer's headers, or for a whole body in `send`: above the longest
/// long-poll the server allows (30 s), so only a silent server or network trips it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);
/// `Retry-After` of a `429`/`503` without a usable header (API.md §1 promises `1`).
const RETRY_AFTER_DEFAULT: Duration = Duration::from_secs(1);

/// A handle on one server: cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    /// `http://host:port` without a trailing slash; request paths start with `/v0/`.
    base_url: String,
    /// `Authorization: Bearer` value, when a key was given.
    token: Option<HeaderValue>,
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

/// A whole answer of any status.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A non-2xx answer, read from the canonical error body.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: StatusCode,
    /// The stable error code (`topic_not_found`, `throttled`, ...); `http_<status>` when the
    /// body was not the canonical one (a proxy's page, say).
    pub code: String,
    pub message: String,
    pub detail: Option<Value>,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
}

#[derive(Debug)]
pub enum ClientError {
    /// The base URL or a token cannot be used (exit code 2).
    Usage(String),
    /// No answer: connection refused or dropped, a body cut short.
    Transport(String),
    /// The server answered with an error.
    Api(ApiFailure),
    /// A 2xx answer whose body is not what the contract says.
    Decode(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Usage(m) => write!(f, "usage: {m}"),
            ClientError::Transport(m) => write!(f, "connection: {m}"),
            ClientError::Api(a) => write!(f, "{}: {}", a.code, a.message),
            ClientError::Decode(m) => write!(f, "bad_response: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// How long to wait before the same request may succeed: `Retry-After` for `429`/`503`,
    /// a short pause for a lost connection; `None` when retrying cannot help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Api(a)
                if matches!(
                    a.status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) =>
            {
                Some(a.retry_after.unwrap_or(RETRY_AFTER_DEFAULT))
            }
            ClientError::Transport(_) => Some(Duration::from_millis(500)),
            _ => None,
        }
    }

    /// The error code of an API failure.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api(a) => Some(&a.code),
            _ => None,
        }
    }
}

impl Client {
    /// A client for `base_url` (`http://host[:port]`, no path). `https://` is refused: the
    /// server has no TLS, and this client carries no TLS stack.
    pub fn new(base_url: &str, token: Option<&str>) -> Result<Client, ClientError> {
        let base_url = check_base_url(base_url)?;
        let token = match token.filter(|t| !t.is_empty()) {
            Some(t) => Some(
                HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| ClientError::Usage("the token holds invalid characters".into()))?,
            ),
            None => None,
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client {
            base_url,
            token,
            http,
        })
    }

    /// Send a request and return the answer with its body still streaming, whatever its
    /// status. `json` is sent as `application/json`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Response<Incoming>, ClientError> {
        let uri: Uri = format!("{}{path}", self.base_url)
            .parse()
            .map_err(|e| ClientError::Usage(format!("bad request path {path:?}: {e}")))?;
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = &self.token {
            req = req.header(AUTHORIZATION, token.clone());
        }
        if json.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let req = req
            .body(Full::new(json.unwrap_or_default()))
            .map_err(|e| ClientError::Usage(format!("cannot build the request: {e}")))?;
        match tokio::time::timeout(ANSWER_TIMEOUT, self.http.request(req)).await {
            Ok(answer) => answer.map_err(|e| ClientError::Transport(error_chain(&e))),
            Err(_) => Err(ClientError::Transport(format!(
                "no answer within {} s",
                ANSWER_TIMEOUT.as_secs()
            ))),
        }
    }

    /// A request whose whole answer (of any status) is read into memory.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
    ) -> Result<Reply, ClientError> {
        let resp = self.request(method, path, json, &[]).await?;
        let (parts, body) = resp.into_parts();
        let body = read_body(body).await?;
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// A JSON request whose 2xx answer is decoded as `T`; any other status is an
    /// [`ClientError::Api`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        json: Option<&Value>,
    ) -> Result<T, ClientError> {
        let body = json.map(|v| Bytes::from(v.to_string()));
        let reply = self.send(method, path, body).await?;
        let body = success_body(reply)?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    /// Like [`Client::call`] with a body already serialised (spliced JSON bytes).
    pub async fn call_bytes<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        json: Bytes,
    ) -> Result<T, ClientError> {
        let reply = self.send(method, path, Some(json)).await?;
        let body = success_body(reply)?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    /// Open a streaming answer (an event stream, a download): a 2xx answer is returned with
    /// its body unread; any other status is read and returned as [`ClientError::Api`].
    /// `accept` is sent as the `Accept` header.
    pub async fn open(
        &self,
        method: Method,
        path: &str,
        json: Option<Bytes>,
        accept: &'static str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Response<Incoming>, ClientError> {
        let mut all = vec![(ACCEPT, HeaderValue::from_static(accept))];
        all.extend(headers.iter().cloned());
        let resp = self.request(method, path, json, &all).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let (parts, body) = resp.into_parts();
        let body = read_body(body).await?;
        Err(ClientError::Api(api_failure(
            parts.status,
            &parts.headers,
            &body,
        )))
    }
}

/// The body of a 2xx reply, or the failure it reports.
pub fn success_body(reply: Reply) -> Result<Bytes, ClientError> {
    if reply.status.is_success() {
        Ok(reply.body)
    } else {
        Err(ClientError::Api(api_failure(
            reply.status,
            &reply.headers,
            &reply.body,
        )))
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, ClientError> {
    let collect = Limited::new(body, BODY_BYTES_MAX).collect();
    match tokio::time::timeout(ANSWER_TIMEOUT, collect).await {
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) => Err(ClientError::Transport(format!("reading the answer: {e}"))),
        Err(_) => Err(ClientError::Transport("the answer stalled".into())),
    }
}

/// Read a non-2xx answer. A body that is not the canonical error object still yields a
/// failure named after the status, so a proxy's error page is reported, not misparsed.
pub fn api_failure(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiFailure {
    let retry_after = headers
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let code = text("code").unwrap_or_else(|| format!("http_{}", status.as_u16()));
    let message = text("message").unwrap_or_else(|| {
        let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]);
        format!("HTTP {status}: {}", snippet.trim())
    });
    ApiFailure {
        status,
        code,
        message,
        detail: error.and_then(|e| e.get("detail")).cloned(),
        retry_after,
    }
}

/// `http://host[:port]` with any trailing `/` removed; anything else is a usage error.
fn check_base_url(url: &str) -> Result<String, ClientError> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("https://") {
        return Err(ClientError::Usage(format!(
            "{url}: https is not supported; the server speaks plain HTTP, so connect to it \
             directly or through an SSH tunnel (ssh -L 4000:127.0.0.1:4000 HOST)"
        )));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(ClientError::Usage(format!(
            "{url}: the server URL must start with http:// (for example http://127.0.0.1:4000)"
        )));
    };
    if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('@') {
        return Err(ClientError::Usage(format!(
            "{url}: expected http://HOST[:PORT] with no path"
        )));
    }
    url.parse::<Uri>()
        .map_err(|e| ClientError::Usage(format!("{url}: {e}")))?;
    Ok(url.to_string())
}

/// An error and its sources on one line: hyper's outer error alone ("client error
/// (Connect)") does not say what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Percent-encode one path segment (a topic name): only unreserved bytes and `:` pass.
pub fn segment(name: &str) -> String {
    encode(name, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':')
    })
}

/// Percent-encode a query value.
pub fn query_value(value: &str) -> String {
    encode(value, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
    })
}

fn encode(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/v0/topics/NAME` plus `suffix` (`""`, `/diff`, `/claim`, ...).
pub fn topic_path(topic: &str, suffix: &str) -> String {
    format!("/v0/topics/{}{suffix}", segment(topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_plain_http_without_a_path() {
        assert_eq!(
            check_base_url("http://127.0.0.1:4000/").ok().as_deref(),
            Some("http://127.0.0.1:4000")
        );
        assert!(check_base_url("http://localhost").is_ok());
        for bad in [
            "https://x:4000",
            "127.0.0.1:4000",
            "http://",
            "http://h/v0",
            "ftp://h",
        ] {
            assert!(
                matches!(check_base_url(bad), Err(ClientError::Usage(_))),
                "{bad}"
            );
        }
        let Err(ClientError::Usage(m)) = check_base_url("https://x") else {
            panic!("https accepted")
        };
        assert!(m.contains("SSH tunnel"), "{m}");
    }

    #[test]
    fn canonical_error_body_becomes_a_typed_failure() {
        let mut h = HeaderMap::new();
        h.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("3"));
        let body = br#"{"error":{"code":"throttled","message":"slow down","detail":{"max":1}}}"#;
        let f = api_failure(StatusCode::TOO_MANY_REQUESTS, &h, body);
        assert_eq!(f.code, "throttled");
        assert_eq!(f.message, "slow down");
        assert_eq!(f.detail, Some(serde_json::json!({"max": 1})));
        assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
        let e = ClientError::Api(f);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(e.to_string(), "throttled: slow down");
    }

    #[test]
    fn a_foreign_error_page_is_named_after_its_status() {
        let f = api_failure(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>bad</html>",
        );
        assert_eq!(f.code, "http_502");
        assert!(f.message.contains("502"), "{}", f.message);
        assert_eq!(ClientError::Api(f).retry_after(), None);
    }

    #[test]
    fn names_are_percent_encoded_in_paths_and_queries() {
        assert_eq!(
            topic_path("tenant:orders", "/diff"),
            "/v0/topics/tenant:orders/diff"
        );
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(query_value("a+b/="), "a%2Bb%2F%3D");
    }
}
