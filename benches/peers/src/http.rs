//! A minimal HTTP/1.1 keep-alive client: one TCP connection, one request at a time,
//! JSON bodies, `Content-Length` or chunked responses. Enough for the bench, nothing more.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Res;

pub struct Client {
    sock: TcpStream,
    host: String,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: &str) -> Res<Client> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        Ok(Client {
            sock,
            host: addr.to_string(),
            buf: Vec::with_capacity(16 << 10),
        })
    }

    pub async fn post_json(&mut self, path: &str, body: &Value) -> Res<Value> {
        self.request_json("POST", path, body).await
    }

    /// Like `request_json`, but a `429` (back-pressure) is retried after a short pause and
    /// counted in `THROTTLED`, so the bench reports it instead of dying on it.
    pub async fn post_json_retry(&mut self, path: &str, body: &Value) -> Res<Value> {
        loop {
            match self.send("POST", path, body).await? {
                (429, _) => {
                    THROTTLED.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                (status, resp) => return parse("POST", path, status, resp),
            }
        }
    }

    /// Sends one request (no body when `body` is null) and returns the parsed JSON body.
    /// A status outside 2xx is an error carrying the body.
    pub async fn request_json(&mut self, method: &str, path: &str, body: &Value) -> Res<Value> {
        let (status, resp) = self.send(method, path, body).await?;
        parse(method, path, status, resp)
    }

    async fn send(&mut self, method: &str, path: &str, body: &Value) -> Res<(u16, Vec<u8>)> {
        let payload = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body)?
        };
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            payload.len()
        )
        .into_bytes();
        req.extend_from_slice(&payload);
        self.sock.write_all(&req).await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> Res<()> {
        let mut tmp = [0u8; 16 << 10];
        let n = self.sock.read(&mut tmp).await?;
        if n == 0 {
            return Err("connection closed by server".into());
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    async fn read_response(&mut self) -> Res<(u16, Vec<u8>)> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_string();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or("bad status line")?;
        let (mut len, mut chunked) = (None, false);
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                len = Some(v.parse::<usize>()?);
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
        if chunked {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    self.fill().await?;
                };
                let size_txt = String::from_utf8_lossy(&self.buf[..line_end]).to_string();
                let size = usize::from_str_radix(size_txt.split(';').next().unwrap().trim(), 16)?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill().await?;
                }
                body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    return Ok((status, body));
                }
            }
        }
        let len = len.unwrap_or(0);
        while self.buf.len() < len {
            self.fill().await?;
        }
        let body = self.buf.drain(..len).collect();
        Ok((status, body))
    }
}

/// Requests answered `429` and retried, all clients of this process.
pub static THROTTLED: AtomicU64 = AtomicU64::new(0);

fn parse(method: &str, path: &str, status: u16, resp: Vec<u8>) -> Res<Value> {
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&resp);
        return Err(format!("{method} {path}: HTTP {status}: {text}").into());
    }
    if resp.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&resp)?)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}
