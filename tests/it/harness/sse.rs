//! A blocking `text/event-stream` reader for the watch tests: sends one GET, reads the head,
//! then decodes the chunked body incrementally and parses it per the SSE spec — `event:`,
//! `data:` (several lines join with `\n`), `id:`, `retry:`, and `:` comments, with LF, CRLF or
//! CR line ends. Comments and `retry` are returned as items so tests can see heartbeats.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One parsed SSE item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A dispatched event; `event` defaults to `message`; `id` is the last-event-id buffer.
    Event {
        event: String,
        data: String,
        id: Option<String>,
    },
    /// A `:` comment line, without the colon and one leading space.
    Comment(String),
    /// A `retry:` field with a valid integer.
    Retry(u64),
}

/// Why no item came.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The server ended the body (or closed the connection).
    Eof,
    Timeout,
}

pub struct SseStream {
    stream: TcpStream,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Undecoded chunked bytes.
    raw: Vec<u8>,
    /// Decoded body bytes not yet split into lines.
    text: Vec<u8>,
    body_done: bool,
    /// A CR ended the last line: a following LF belongs to it.
    skip_lf: bool,
    event: String,
    data: Option<String>,
    last_id: Option<String>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl SseStream {
    /// `GET path` with extra headers; returns once the response head arrived.
    pub fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseStream {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).ok();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).expect("send GET");
        let mut sse = SseStream {
            stream,
            status: 0,
            headers: Vec::new(),
            raw: Vec::new(),
            text: Vec::new(),
            body_done: false,
            skip_lf: false,
            event: String::new(),
            data: None,
            last_id: None,
        };
        sse.read_head();
        sse
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn read_head(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let end = loop {
            if let Some(end) = find(&self.raw, b"\r\n\r\n") {
                break end;
            }
            assert!(self.fill(deadline), "no response head: {:?}", self.raw);
        };
        let head = String::from_utf8(self.raw[..end].to_vec()).expect("UTF-8 head");
        self.raw.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        self.status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                self.headers
                    .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }

    /// Read more bytes; `false` on EOF or timeout.
    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.stream.set_read_timeout(Some(left)).ok();
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
        }
    }

    /// The whole non-streaming body (for error responses), as JSON.
    pub fn error_json(mut self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.decode_chunks();
            if self.body_done {
                break;
            }
            if let Some(len) = self.header("content-length").and_then(|v| v.parse().ok()) {
                if self.raw.len() >= len {
                    self.text = self.raw[..len].to_vec();
                    break;
                }
            }
            if !self.fill(deadline) {
                break;
            }
        }
        serde_json::from_slice(&self.text).unwrap_or_else(|e| panic!("{e}: {:?}", self.text))
    }

    /// Move complete chunks from `raw` to `text`.
    fn decode_chunks(&mut self) {
        while !self.body_done {
            let Some(eol) = find(&self.raw, b"\r\n") else {
                return;
            };
            let line = String::from_utf8_lossy(&self.raw[..eol]).to_string();
            let size_hex = line.split(';').next().unwrap_or_default().trim();
            let Ok(size) = usize::from_str_radix(size_hex, 16) else {
                return;
            };
            if size == 0 {
                self.body_done = true;
                return;
            }
            if self.raw.len() < eol + 2 + size + 2 {
                return;
            }
            let chunk = self.raw[eol + 2..eol + 2 + size].to_vec();
            self.text.extend_from_slice(&chunk);
            self.raw.drain(..eol + 2 + size + 2);
        }
    }

    /// The next complete line of the body, if any is buffered.
    fn next_line(&mut self) -> Option<String> {
        if self.text.is_empty() {
            return None;
        }
        if std::mem::take(&mut self.skip_lf) && self.text[0] == b'\n' {
            self.text.remove(0);
        }
        let end = self.text.iter().position(|b| *b == b'\n' || *b == b'\r')?;
        let line = String::from_utf8_lossy(&self.text[..end]).to_string();
        self.skip_lf = self.text[end] == b'\r';
        self.text.drain(..=end);
        Some(line)
    }

    /// Apply one line; an item when it completes one.
    fn apply(&mut self, line: &str) -> Option<Item> {
        if line.is_empty() {
            let data = self.data.take()?;
            let event = std::mem::take(&mut self.event);
            return Some(Item::Event {
                event: if event.is_empty() {
                    "message".into()
                } else {
                    event
                },
                data,
                id: self.last_id.clone(),
            });
        }
        if let Some(c) = line.strip_prefix(':') {
            return Some(Item::Comment(c.strip_prefix(' ').unwrap_or(c).to_string()));
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "event" => self.event = value.to_string(),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            "retry" => return value.parse().ok().map(Item::Retry),
            _ => {}
        }
        None
    }

    /// The next item within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Result<Item, End> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(line) = self.next_line() {
                if let Some(item) = self.apply(&line) {
                    return Ok(item);
                }
            }
            let before = self.text.len();
            self.decode_chunks();
            if self.text.len() > before {
                continue;
            }
            if self.body_done {
                return Err(End::Eof);
            }
            if !self.fill(deadline) {
                return Err(match Instant::now() >= deadline {
                    true => End::Timeout,
                    false => End::Eof,
                });
            }
        }
    }

    /// The next event (skipping comments and `retry`), as (name, JSON data, id).
    pub fn next_event(
        &mut self,
        timeout: Duration,
    ) -> Result<(String, serde_json::Value, String), End> {
        loop {
            if let Item::Event { event, data, id } = self.next(timeout)? {
                let json = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("event {event} data is not JSON ({e}): {data}"));
                return Ok((event, json, id.unwrap_or_default()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> SseStream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .unwrap();
            let body = "retry: 2000\n\n: hb\n\nid: 1\nevent: x\ndata: a\ndata:b\r\n\r\ndata: c\r\rid\n: c2\ndata: d\n\n";
            let (a, b) = body.split_at(20);
            for part in [a, b] {
                s.write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes())
                    .unwrap();
            }
            s.write_all(b"0\r\n\r\n").unwrap();
        });
        let sse = SseStream::open(addr, "/", &[]);
        t.join().unwrap();
        sse
    }

    #[test]
    fn parses_fields_comments_multiline_data_and_all_line_ends() {
        let mut sse = parser();
        let t = Duration::from_secs(5);
        assert_eq!(sse.next(t), Ok(Item::Retry(2000)));
        assert_eq!(sse.next(t), Ok(Item::Comment("hb".into())));
        let ev = |event: &str, data: &str, id: Option<&str>| Item::Event {
            event: event.into(),
            data: data.into(),
            id: id.map(String::from),
        };
        assert_eq!(sse.next(t), Ok(ev("x", "a\nb", Some("1"))));
        assert_eq!(sse.next(t), Ok(ev("message", "c", Some("1"))));
        assert_eq!(sse.next(t), Ok(Item::Comment("c2".into())));
        assert_eq!(sse.next(t), Ok(ev("message", "d", Some(""))));
        assert_eq!(sse.next(t), Err(End::Eof));
    }
}
