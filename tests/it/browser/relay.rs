//! A loopback TCP relay between the browser and the server that can swallow the server's
//! bytes from a chunk boundary on, cut every live connection, and strip or rewrite the
//! `Last-Event-ID` the browser sends.

use super::Ev;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the relay does to a `Last-Event-ID` request header on its way to the server.
#[derive(Clone, Default, PartialEq)]
pub(super) enum LastEventId {
    #[default]
    Pass,
    Strip,
    Replace(String),
}

struct Conn {
    client: TcpStream,
    server: TcpStream,
    /// Server bytes are swallowed instead of forwarded while set.
    frozen: Arc<AtomicBool>,
}

#[derive(Default)]
struct RelayState {
    conns: Mutex<Vec<Conn>>,
    /// Every request head the browser sent, as sent (before any rewrite).
    heads: Mutex<Vec<String>>,
    mode: Mutex<LastEventId>,
    /// Server bytes swallowed while frozen, per connection (raw HTTP/1.1, chunked).
    swallowed: Mutex<BTreeMap<usize, Vec<u8>>>,
    stop: AtomicBool,
}

/// A loopback TCP relay in front of the server. The browser only sends body-less GETs, so the
/// browser→server direction is handled as a sequence of request heads.
pub(super) struct Relay {
    pub(super) addr: SocketAddr,
    state: Arc<RelayState>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Relay {
    pub(super) fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(RelayState::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let frozen = Arc::new(AtomicBool::new(false));
                let conn = Conn {
                    client: client.try_clone().unwrap(),
                    server: server.try_clone().unwrap(),
                    frozen: frozen.clone(),
                };
                st.conns.lock().unwrap().push(conn);
                let up = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let st_up = st.clone();
                std::thread::spawn(move || pump_up(up.0, up.1, &st_up));
                let st_down = st.clone();
                std::thread::spawn(move || pump_down(server, client, &frozen, n, &st_down));
            }
        });
        Relay { addr, state }
    }

    /// Swallow the server's bytes on every open connection from now on.
    pub(super) fn freeze(&self) {
        for c in self.state.conns.lock().unwrap().iter() {
            c.frozen.store(true, Ordering::SeqCst);
        }
    }

    /// Close every open connection, both sides. Later connections relay normally.
    pub(super) fn cut(&self) {
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
    }

    pub(super) fn set_mode(&self, mode: LastEventId) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// The heads of the stream GETs for `wid`, in arrival order.
    pub(super) fn stream_heads(&self, wid: &str) -> Vec<String> {
        let prefix = format!("GET /v0/watch/{wid} ");
        let heads = self.state.heads.lock().unwrap();
        heads
            .iter()
            .filter(|h| h.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// SSE events the server sent while the relay swallowed them.
    pub(super) fn swallowed_events(&self) -> Vec<Ev> {
        let swallowed = self.state.swallowed.lock().unwrap();
        swallowed.values().flat_map(|raw| sse_events(raw)).collect()
    }

    pub(super) fn clear_swallowed(&self) {
        self.state.swallowed.lock().unwrap().clear();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        self.cut();
    }
}

fn pump_up(mut client: TcpStream, mut server: TcpStream, st: &RelayState) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = find(&pending, b"\r\n\r\n") {
            let head: Vec<u8> = pending.drain(..end + 4).collect();
            let head = String::from_utf8_lossy(&head).into_owned();
            st.heads.lock().unwrap().push(head.clone());
            let mode = st.mode.lock().unwrap().clone();
            let mut out = rewrite_head(&head, &mode);
            if !head.starts_with("GET /v0/watch/") {
                // One response per connection, so `pump_down` only ever tracks one.
                out = force_close(&out);
            }
            if server.write_all(out.as_bytes()).is_err() {
                return;
            }
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Where a response stream stands, so the relay starts swallowing only at a chunk boundary (a
/// whole number of SSE frames forwarded, none cut in two). Each connection carries a single
/// response: the relay asks for `Connection: close` on everything but stream GETs.
#[derive(Default)]
struct Chunks {
    /// The last bytes of the response head read so far; `None` once it ended.
    head: Option<Vec<u8>>,
    size_line: Vec<u8>,
    /// Bytes left of the current chunk, its CRLF included.
    left: usize,
}

impl Chunks {
    fn new() -> Chunks {
        Chunks {
            head: Some(Vec::new()),
            ..Chunks::default()
        }
    }

    fn at_boundary(&self) -> bool {
        self.head.is_none() && self.left == 0 && self.size_line.is_empty()
    }

    /// Consume `buf` up to the next chunk boundary (or all of it); returns the bytes consumed.
    fn advance(&mut self, buf: &[u8]) -> usize {
        for (i, &b) in buf.iter().enumerate() {
            if let Some(head) = &mut self.head {
                head.push(b);
                if head.ends_with(b"\r\n\r\n") {
                    self.head = None;
                    return i + 1;
                }
            } else if self.left > 0 {
                let take = self.left.min(buf.len() - i);
                self.left -= take;
                return i + take;
            } else {
                self.size_line.push(b);
                if self.size_line.ends_with(b"\r\n") {
                    let line = String::from_utf8_lossy(&self.size_line).into_owned();
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    // The last chunk (`0`) is followed by a CRLF only (no trailers here).
                    self.left = usize::from_str_radix(hex, 16).unwrap_or(0) + 2;
                    self.size_line.clear();
                }
            }
        }
        buf.len()
    }
}

fn pump_down(
    mut server: TcpStream,
    mut client: TcpStream,
    frozen: &AtomicBool,
    conn: usize,
    st: &RelayState,
) {
    let mut buf = [0u8; 64 * 1024];
    let mut chunks = Chunks::new();
    let mut swallowing = false;
    'read: loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut at = 0;
        while at < n {
            swallowing |= frozen.load(Ordering::SeqCst) && chunks.at_boundary();
            if swallowing {
                let mut swallowed = st.swallowed.lock().unwrap();
                swallowed
                    .entry(conn)
                    .or_default()
                    .extend_from_slice(&buf[at..n]);
                break;
            }
            let k = chunks.advance(&buf[at..n]);
            if client.write_all(&buf[at..at + k]).is_err() {
                break 'read;
            }
            at += k;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// `head` with its `Last-Event-ID` line kept, dropped or replaced.
fn rewrite_head(head: &str, mode: &LastEventId) -> String {
    let mut out = String::new();
    for line in head.split_inclusive("\r\n") {
        let is_leid = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("last-event-id"));
        match (is_leid, mode) {
            (true, LastEventId::Strip) => {}
            (true, LastEventId::Replace(id)) => out.push_str(&format!("Last-Event-ID: {id}\r\n")),
            _ => out.push_str(line),
        }
    }
    out
}

/// `head` asking the server to close the connection after its response.
fn force_close(head: &str) -> String {
    let mut out: String = head
        .split_inclusive("\r\n")
        .filter(|line| {
            !line
                .split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    out.insert_str(out.len() - 2, "Connection: close\r\n");
    out
}

pub(super) fn header_of(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// SSE events in raw server bytes that start at a chunk boundary (as the relay swallows them);
/// a response head, if any, is skipped and an incomplete tail ignored.
fn sse_events(raw: &[u8]) -> Vec<Ev> {
    let mut rest = match find(raw, b"\r\n\r\n") {
        Some(end) if raw.starts_with(b"HTTP/1.1") => &raw[end + 4..],
        _ => raw,
    };
    let mut body = Vec::new();
    while let Some(eol) = find(rest, b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let Some(size) = size else { break };
        if size == 0 || rest.len() < eol + 2 + size + 2 {
            break;
        }
        body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = &rest[eol + 2 + size + 2..];
    }
    let text = String::from_utf8_lossy(&body);
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut kind, mut id, mut data) = (None, String::new(), None);
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                kind = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = serde_json::from_str(v).ok();
            }
        }
        if let (Some(kind), Some(data)) = (kind, data) {
            out.push(Ev { kind, id, data });
        }
    }
    out
}

#[test]
fn relay_rewrites_heads_and_finds_chunk_boundaries() {
    assert_eq!(
        force_close("GET / HTTP/1.1\r\nConnection: keep-alive\r\nA: b\r\n\r\n"),
        "GET / HTTP/1.1\r\nA: b\r\nConnection: close\r\n\r\n"
    );
    // Chunk boundaries are found however the bytes are split across reads.
    let raw = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
    for step in 1..raw.len() {
        let (mut chunks, mut boundaries, mut at) = (Chunks::new(), Vec::new(), 0);
        for piece in raw.chunks(step) {
            let mut i = 0;
            while i < piece.len() {
                i += chunks.advance(&piece[i..]);
                if chunks.at_boundary() {
                    boundaries.push(at + i);
                }
            }
            at += piece.len();
        }
        boundaries.dedup();
        assert_eq!(boundaries, [25, 35, 43, 48], "step {step}");
    }
    let head = "GET /x HTTP/1.1\r\nHost: h\r\nlast-event-id: abc\r\n\r\n";
    assert_eq!(header_of(head, "Last-Event-ID").as_deref(), Some("abc"));
    assert_eq!(
        rewrite_head(head, &LastEventId::Strip),
        "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    );
    assert_eq!(
        rewrite_head(head, &LastEventId::Replace("z".into())),
        "GET /x HTTP/1.1\r\nHost: h\r\nLast-Event-ID: z\r\n\r\n"
    );
}
