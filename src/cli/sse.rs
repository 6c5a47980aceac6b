//! Server-sent events read from a streaming body: `id`, `event` and `data` fields, blank line
//! ends an event; comments (`: hb`) and `retry:` are skipped. The parser is pure
//! ([`Parser`]) so its framing rules are unit-tested without a socket; [`SseReader`] feeds it
//! from a hyper body.

use super::client::ClientError;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// A line longer than this ends the stream with an error: the server's largest event (an
/// 8 MiB record batch) fits several times over, a runaway stream does not grow memory.
const LINE_BYTES_MAX: usize = 32 << 20;

/// One complete event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `id:` of this event, if it had one.
    pub id: Option<String>,
    /// `event:` (`message` when absent, as in the SSE standard).
    pub name: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental SSE framing over bytes as they arrive.
#[derive(Default)]
pub struct Parser {
    buf: BytesMut,
    id: Option<String>,
    name: Option<String>,
    data: Option<String>,
}

impl Parser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event in what was pushed so far.
    pub fn next_event(&mut self) -> Result<Option<Event>, ClientError> {
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line = self.buf.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            let line = String::from_utf8(line.to_vec())
                .map_err(|_| ClientError::Decode("event stream line is not UTF-8".into()))?;
            if let Some(event) = self.take_line(&line) {
                return Ok(Some(event));
            }
        }
        if self.buf.len() > LINE_BYTES_MAX {
            return Err(ClientError::Decode(format!(
                "event stream line over {LINE_BYTES_MAX} bytes"
            )));
        }
        Ok(None)
    }

    /// Apply one line; a blank line completes the event being built, if it has data.
    fn take_line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(Event {
                id: self.id.take(),
                name: self.name.take().unwrap_or_else(|| "message".into()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => self.id = Some(value.to_string()),
            "event" => self.name = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }
}

/// Events read from a streaming HTTP body.
pub struct SseReader {
    body: Incoming,
    parser: Parser,
}

impl SseReader {
    pub fn new(body: Incoming) -> SseReader {
        SseReader {
            body,
            parser: Parser::default(),
        }
    }

    /// The next event; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(Some(event));
            }
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            let frame = frame.map_err(|e| ClientError::Transport(format!("event stream: {e}")))?;
            if let Ok(mut data) = frame.into_data() {
                let chunk: Bytes = data.copy_to_bytes(data.remaining());
                self.parser.push(&chunk);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[&str]) -> Vec<Event> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for chunk in input {
            p.push(chunk.as_bytes());
            while let Some(e) = p.next_event().expect("valid stream") {
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn events_are_framed_across_chunks_and_comments_are_skipped() {
        let got = events(&[
            "retry: 2000\n\n: hb\n\nid: abc\nevent: rec",
            "ord\ndata: {\"a\":1}\n",
            "\nevent: caught-up\r\ndata: x\r\ndata: y\r\n\r\n",
        ]);
        assert_eq!(
            got,
            vec![
                Event {
                    id: Some("abc".into()),
                    name: "record".into(),
                    data: "{\"a\":1}".into()
                },
                Event {
                    id: None,
                    name: "caught-up".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }

    #[test]
    fn an_unfinished_event_is_not_returned() {
        assert!(events(&["id: 1\nevent: record\ndata: {}\n"]).is_empty());
    }

    #[test]
    fn a_non_utf8_line_is_an_error_not_a_panic() {
        let mut p = Parser::default();
        p.push(b"data: \xff\n\n");
        assert!(p.next_event().is_err());
    }
}
