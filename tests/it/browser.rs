//! The watch stream in a real browser `EventSource` (contract §9): headless Chromium, driven
//! over ChromeDriver's plain HTTP/JSON WebDriver protocol with the harness's own HTTP client,
//! opens one `EventSource` on a session over 50 topics, sees every write, loses its connection
//! while frames are in flight and resumes by itself with `Last-Event-ID`: every written record
//! arrives exactly once, in seq order per topic.
//!
//! The browser reaches the server through a small TCP relay owned by the test, so the test can
//! (a) swallow the server's bytes for a while — frames the server sent (so its session cursor
//! moved past them) but the browser never saw — and (b) cut every live connection. Only the
//! browser's `Last-Event-ID` can then bring those records back. Two controls show the checks
//! bite: a stale `Last-Event-ID` (rewritten by the relay) must produce duplicates, a stripped
//! one must produce a gap.
//!
//! Chromium and ChromeDriver come from Debian (`chromium`, `chromium-driver`: `/usr/bin`, else
//! looked up on `PATH`); `TOPICS_CHROMIUM` and `TOPICS_CHROMEDRIVER` override the paths.
//! Without them the test prints `browser: skipped: chromium not installed` and passes, unless
//! `TOPICS_REQUIRE_BROWSER=1` (set by `.ci/run`) turns the skip into a failure.

use crate::harness::http::{self, Response};
use crate::harness::{Server, TempDir};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOPICS: usize = 50;
/// Generous bound for anything the browser has to receive (a reconnect alone takes 2 s).
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Tools and skipping
// ---------------------------------------------------------------------------------------------

/// (chromium, chromedriver), or `None` after printing why the test is skipped.
fn tools() -> Option<(PathBuf, PathBuf)> {
    // `$VAR` if set, else the Debian path, else the first `name` on `PATH`.
    let find = |var: &str, default: &str| {
        if let Some(path) = std::env::var_os(var) {
            let path = PathBuf::from(path);
            return path.is_file().then_some(path);
        }
        let name = Path::new(default).file_name().unwrap();
        let path_dirs = std::env::var_os("PATH").unwrap_or_default();
        std::iter::once(PathBuf::from(default))
            .chain(std::env::split_paths(&path_dirs).map(|d| d.join(name)))
            .find(|p| p.is_file())
    };
    match (
        find("TOPICS_CHROMIUM", "/usr/bin/chromium"),
        find("TOPICS_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ => {
            let reason = "chromium not installed (apt-get install chromium chromium-driver, \
                          or set TOPICS_CHROMIUM / TOPICS_CHROMEDRIVER)";
            assert!(
                std::env::var("TOPICS_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "browser: TOPICS_REQUIRE_BROWSER=1 but {reason}"
            );
            println!("browser: skipped: {reason}");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

// ---------------------------------------------------------------------------------------------
// WebDriver
// ---------------------------------------------------------------------------------------------

/// A ChromeDriver process and one headless Chromium session. Drop ends the session, then kills
/// by PID whatever is left of the processes it started (ChromeDriver, its descendants, anything
/// still running on this test's profile dir), even when the test failed.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: Option<String>,
    profile: TempDir,
}

impl Browser {
    fn launch(chromium: &Path, chromedriver: &Path) -> Browser {
        let profile = TempDir::new();
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", chromedriver.display()));
        let mut browser = Browser {
            driver,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: None,
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = http::try_request(browser.addr, "GET", "/status", &[], b"")
                .ok()
                .filter(|r| r.status == 200)
                .is_some_and(|r| r.json()["value"]["ready"] == true);
            if ready {
                break;
            }
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "chromedriver not ready in 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        let user_data = browser.profile.path().join("profile");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", user_data.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let value = browser.call("POST", "/session", Some(&caps));
        let session = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId: {value}"));
        browser.session = Some(session.to_string());
        browser
    }

    /// One WebDriver command; returns `value`, panics with the WebDriver error otherwise.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        let resp: Response = http::request(
            self.addr,
            method,
            path,
            &[("Content-Type", "application/json; charset=utf-8")],
            bytes.as_deref().unwrap_or_default(),
        );
        let mut body = resp.json();
        assert_eq!(resp.status, 200, "WebDriver {method} {path}: {body}");
        body["value"].take()
    }

    fn session_call(&self, method: &str, sub: &str, body: Option<&Value>) -> Value {
        let sid = self.session.as_deref().expect("no WebDriver session");
        self.call(method, &format!("/session/{sid}{sub}"), body)
    }

    fn navigate(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Run `script` as a function body in the page with `args`; returns what it returns.
    fn exec(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.session_call("POST", "/execute/sync", Some(&body))
    }

    /// Every process to reap: ChromeDriver's descendants and anything on our profile dir.
    fn leftovers(&self) -> Vec<i32> {
        let profile = self.profile.path().to_string_lossy().into_owned();
        let mut parent = BTreeMap::new();
        let mut on_profile = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after the last ')'.
            if let Some(ppid) = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok())
            {
                parent.insert(pid, ppid);
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&profile) {
                on_profile.push(pid);
            }
        }
        let mut out = BTreeSet::from_iter(on_profile);
        let mut todo = vec![self.driver.id() as i32];
        while let Some(p) = todo.pop() {
            for (&child, &pp) in &parent {
                if pp == p && out.insert(child) {
                    todo.push(child);
                }
            }
        }
        out.into_iter().collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(sid) = self.session.take() {
            // Quits Chromium cleanly.
            let _ = http::try_request(self.addr, "DELETE", &format!("/session/{sid}"), &[], b"");
        }
        for pid in self.leftovers() {
            // SAFETY: kill(2) on a PID this test started (or a descendant of it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Relay
// ---------------------------------------------------------------------------------------------

/// What the relay does to a `Last-Event-ID` request header on its way to the server.
#[derive(Clone, Default, PartialEq)]
enum LastEventId {
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
struct Relay {
    addr: SocketAddr,
    state: Arc<RelayState>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
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
    fn freeze(&self) {
        for c in self.state.conns.lock().unwrap().iter() {
            c.frozen.store(true, Ordering::SeqCst);
        }
    }

    /// Close every open connection, both sides. Later connections relay normally.
    fn cut(&self) {
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
    }

    fn set_mode(&self, mode: LastEventId) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// The heads of the stream GETs for `wid`, in arrival order.
    fn stream_heads(&self, wid: &str) -> Vec<String> {
        let prefix = format!("GET /v0/watch/{wid} ");
        let heads = self.state.heads.lock().unwrap();
        heads
            .iter()
            .filter(|h| h.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// SSE events the server sent while the relay swallowed them.
    fn swallowed_events(&self) -> Vec<Ev> {
        let swallowed = self.state.swallowed.lock().unwrap();
        swallowed.values().flat_map(|raw| sse_events(raw)).collect()
    }

    fn clear_swallowed(&self) {
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

fn header_of(head: &str, name: &str) -> Option<String> {
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

// ---------------------------------------------------------------------------------------------
// What the page saw, and the audit
// ---------------------------------------------------------------------------------------------

/// One event the page recorded: `open`, `net-error`, or a server event with its `lastEventId`.
#[derive(Debug, Clone)]
struct Ev {
    kind: String,
    id: String,
    data: Value,
}

/// Injected once: one `EventSource` on the session (`arguments[0]`), every event pushed onto
/// `window.__ev`. With `arguments[1]` true the ids are left out of `__ev` (a 256-topic session
/// repeats a ~90 KB id on every frame) and only the newest is kept, in `window.__lastId`.
const OPEN_JS: &str = r#"
const [wid, compact] = arguments;
window.__ev = [];
window.__lastId = '';
const es = new EventSource('/v0/watch/' + wid);
window.__es = es;
es.addEventListener('open', () => window.__ev.push({kind: 'open', id: '', data: null}));
for (const kind of ['record', 'caught-up', 'tombstone', 'topic-deleted', 'error']) {
  es.addEventListener(kind, e => {
    if (e instanceof MessageEvent) {
      window.__lastId = e.lastEventId;
      const id = compact ? '' : e.lastEventId;
      window.__ev.push({kind, id, data: JSON.parse(e.data)});
    } else {
      window.__ev.push({kind: 'net-error', id: '', data: es.readyState});
    }
  });
}
return es.readyState;
"#;

/// The page's events, fetched incrementally.
struct Page<'a> {
    browser: &'a Browser,
    events: Vec<Ev>,
}

impl Page<'_> {
    fn poll(&mut self) {
        let new = self.browser.exec(
            "return window.__ev.slice(arguments[0]);",
            json!([self.events.len()]),
        );
        for e in new.as_array().expect("an array of events") {
            self.events.push(Ev {
                kind: e["kind"].as_str().unwrap_or_default().to_string(),
                id: e["id"].as_str().unwrap_or_default().to_string(),
                data: e["data"].clone(),
            });
        }
    }

    /// Poll until `check(events)` is `Ok`, or panic with `what` and its last `Err` after `WAIT`.
    fn wait(&mut self, what: &str, check: impl Fn(&[Ev]) -> Result<(), String>) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.poll();
            let Err(why) = check(&self.events) else {
                return;
            };
            assert!(
                Instant::now() < deadline,
                "browser: timed out waiting for {what}: {why}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }

    /// The `lastEventId` of the newest server event.
    fn last_id(&self) -> String {
        let last = self.events.iter().rev().find(|e| !e.id.is_empty());
        last.expect("no event with an id yet").id.clone()
    }
}

/// Record seqs per topic in arrival order, over `events`.
fn received(events: &[Ev]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "record") {
        let topic = e.data["topic"]
            .as_str()
            .expect("record frame without topic");
        let seqs = out.entry(topic.to_string()).or_default();
        for r in e.data["records"].as_array().expect("record frame records") {
            seqs.push(r["$seq"].as_u64().expect("record without $seq"));
        }
    }
    out
}

/// Everything wrong with `got` against `written` (topic → acknowledged seqs, ascending):
/// `duplicate`, `missing`, `unexpected` and `out-of-order` entries; empty when every written
/// record arrived exactly once and in order.
fn audit(got: &BTreeMap<String, Vec<u64>>, written: &BTreeMap<String, Vec<u64>>) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    let topics: BTreeSet<&String> = got.keys().chain(written.keys()).collect();
    for topic in topics {
        let got = got.get(topic).unwrap_or(&empty);
        let want = written.get(topic).unwrap_or(&empty);
        let mut seen = BTreeSet::new();
        for &s in got {
            if !seen.insert(s) {
                problems.push(format!("duplicate {topic}#{s}"));
            }
        }
        let want_set: BTreeSet<u64> = want.iter().copied().collect();
        for s in want_set.difference(&seen) {
            problems.push(format!("missing {topic}#{s}"));
        }
        for s in seen.difference(&want_set) {
            problems.push(format!("unexpected {topic}#{s}"));
        }
        if let Some(w) = got.windows(2).find(|w| w[1] <= w[0]) {
            problems.push(format!("out-of-order {topic}#{}..#{}", w[0], w[1]));
        }
    }
    problems
}

/// `Ok` once at least `n` events of `kind` arrived.
fn count_at_least(events: &[Ev], kind: &str, n: usize) -> Result<(), String> {
    let got = events.iter().filter(|e| e.kind == kind).count();
    if got >= n {
        return Ok(());
    }
    Err(format!("{got} of {n} `{kind}` events"))
}

/// `Ok` when `audit` finds nothing, else its first problems.
fn clean(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        return Ok(());
    }
    let shown = problems.len().min(12);
    Err(format!(
        "{} problems, first {shown}: {:?}",
        problems.len(),
        &problems[..shown]
    ))
}

/// Decode an event id: unpadded base64url JSON topic → cursor.
fn cursors(id: &str) -> BTreeMap<String, u64> {
    let bytes = URL_SAFE_NO_PAD
        .decode(id)
        .unwrap_or_else(|e| panic!("event id {id:?} is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("event id {id:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

/// Write `n` records to `topic` directly (not through the relay); returns their seqs.
fn write(addr: SocketAddr, topic: &str, n: usize, tag: &str) -> Vec<u64> {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"data": {"w": tag, "i": i}}))
        .collect();
    let body = serde_json::to_vec(&json!({ "records": records })).unwrap();
    let resp = http::request(
        addr,
        "POST",
        &format!("/v0/topics/{topic}"),
        &[("Content-Type", "application/json")],
        &body,
    );
    let v = resp.json();
    assert!(
        matches!(resp.status, 200 | 201),
        "write {topic}: {} {v}",
        resp.status
    );
    crate::harness::written_seqs(&v)
}

/// Wait until the relay swallowed a `record` frame reaching `heads[topic]` for every topic;
/// returns topic → the `to_seq` the server sent into the void.
fn wait_swallowed(relay: &Relay, heads: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut to: BTreeMap<String, u64> = BTreeMap::new();
        for e in relay.swallowed_events() {
            if e.kind == "record" {
                let topic = e.data["topic"].as_str().unwrap().to_string();
                let t = e.data["to_seq"].as_u64().unwrap();
                to.entry(topic)
                    .and_modify(|v| *v = (*v).max(t))
                    .or_insert(t);
            }
        }
        if heads.iter().all(|(t, h)| to.get(t) >= Some(h)) {
            return to;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stream the frozen writes: got {to:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn heads_of(written: &BTreeMap<String, Vec<u64>>) -> BTreeMap<String, u64> {
    written
        .iter()
        .map(|(t, s)| (t.clone(), *s.last().unwrap()))
        .collect()
}

#[test]
fn event_source_sees_every_write_and_resumes_with_last_event_id() {
    let Some((chromium, chromedriver)) = tools() else {
        return;
    };
    let started = Instant::now();
    let server = Server::start();
    let names: Vec<String> = (0..TOPICS)
        .map(|i| format!("browser:watch-{i:02}"))
        .collect();
    for name in &names {
        server.create(name, json!({}));
    }
    let relay = Relay::start(server.addr);
    let browser = Browser::launch(&chromium, &chromedriver);
    // Same origin as the stream, so the EventSource needs no CORS.
    browser.navigate(&format!("http://{}/v0/ready", relay.addr));

    let topics: Map<String, Value> = names.iter().map(|n| (n.clone(), json!({}))).collect();
    let wid = server
        .post("/v0/watch", &json!({ "topics": topics }))
        .expect(200)["wid"]
        .as_str()
        .unwrap()
        .to_string();
    browser.exec(OPEN_JS, json!([wid, false]));
    let mut page = Page {
        browser: &browser,
        events: Vec::new(),
    };
    page.wait(
        "the stream to open and report caught-up on every topic",
        |ev| count_at_least(ev, "caught-up", TOPICS),
    );

    // 1. Live: every write arrives, once, in order.
    let mut written: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for round in 0..2 {
        for (i, name) in names.iter().enumerate() {
            let seqs = write(server.addr, name, 1 + (i + round) % 3, "live");
            written.entry(name.clone()).or_default().extend(seqs);
        }
    }
    page.wait("every live write", |ev| {
        clean(audit(&received(ev), &written))
    });
    assert_eq!(page.count("open"), 1, "one connection so far");
    let live_id = page.last_id();

    // 2. In flight: the server streams one more record per topic, the relay swallows it (the
    //    session cursor moves past what the browser saw), then every connection is cut while
    //    writes go on. The browser reconnects by itself with `Last-Event-ID`.
    relay.freeze();
    for name in &names {
        let seqs = write(server.addr, name, 1, "frozen");
        written.get_mut(name).unwrap().extend(seqs);
    }
    let lost = wait_swallowed(&relay, &heads_of(&written));
    page.poll();
    let seen_id = page.last_id();
    assert_eq!(seen_id, live_id, "nothing reached the browser while frozen");
    let during: BTreeMap<String, Vec<u64>> = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let until = Instant::now() + Duration::from_millis(3000);
            let mut i = 0;
            while Instant::now() < until {
                let name = &names[i % TOPICS];
                out.entry(name.clone())
                    .or_default()
                    .extend(write(server.addr, name, 1, "cut"));
                i += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            out
        });
        std::thread::sleep(Duration::from_millis(300));
        relay.cut();
        writer.join().unwrap()
    });
    for (name, seqs) in during {
        written.get_mut(&name).unwrap().extend(seqs);
    }
    page.wait("every write across the cut", |ev| {
        clean(audit(&received(ev), &written))
    });
    assert_eq!(
        page.count("open"),
        2,
        "exactly one reconnect: {:?}",
        page.events
            .iter()
            .filter(|e| e.kind != "record" && e.kind != "caught-up")
            .collect::<Vec<_>>()
    );
    let heads = relay.stream_heads(&wid);
    assert_eq!(heads.len(), 2, "two stream GETs: {heads:?}");
    assert_eq!(header_of(&heads[0], "last-event-id"), None);
    let resumed = header_of(&heads[1], "last-event-id")
        .unwrap_or_else(|| panic!("the reconnect carried no Last-Event-ID: {}", heads[1]));
    assert_eq!(
        resumed, seen_id,
        "the browser resumed from the last id it saw"
    );
    let resumed = cursors(&resumed);
    assert_eq!(resumed.len(), TOPICS, "the id covers every session topic");
    for (topic, to) in &lost {
        assert!(
            resumed[topic] < *to,
            "{topic}: resume cursor {} is not behind the swallowed to_seq {to}",
            resumed[topic]
        );
    }
    let total: usize = written.values().map(Vec::len).sum();
    println!(
        "browser: {total} records over {TOPICS} topics, each exactly once across a cut; \
         Last-Event-ID {} bytes",
        seen_id.len()
    );

    // 3. Control: a stale Last-Event-ID (the relay rewrites it) must show up as duplicates.
    relay.set_mode(LastEventId::Replace(live_id.clone()));
    let mark = page.events.len();
    relay.cut();
    let replayed: BTreeMap<String, Vec<u64>> = written
        .iter()
        .map(|(t, s)| {
            let from = cursors(&live_id)[t];
            (t.clone(), s.iter().copied().filter(|&q| q > from).collect())
        })
        .collect();
    page.wait("the replay after a stale Last-Event-ID", |ev| {
        clean(audit(&received(&ev[mark..]), &replayed))
    });
    let problems = audit(&received(&page.events), &written);
    let dups: Vec<&String> = problems
        .iter()
        .filter(|p| p.starts_with("duplicate "))
        .collect();
    let want: Vec<String> = replayed
        .iter()
        .flat_map(|(t, s)| s.iter().map(move |q| format!("duplicate {t}#{q}")))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        dups,
        want.iter().collect::<Vec<_>>(),
        "a stale id must show up as duplicates"
    );
    assert!(
        problems
            .iter()
            .all(|p| p.starts_with("duplicate ") || p.starts_with("out-of-order ")),
        "a stale id loses nothing: {problems:?}"
    );
    assert_eq!(page.count("open"), 3);

    // 4. Control: a stripped Last-Event-ID over swallowed frames must show up as a gap.
    relay.set_mode(LastEventId::Strip);
    relay.clear_swallowed();
    let mark = page.events.len();
    let mut after: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    relay.freeze();
    let mut gap = BTreeMap::new();
    for name in &names {
        gap.insert(name.clone(), write(server.addr, name, 1, "gap"));
    }
    wait_swallowed(&relay, &heads_of(&gap));
    relay.cut();
    page.wait("the third reconnect", |ev| count_at_least(ev, "open", 4));
    for name in &names {
        after.insert(name.clone(), write(server.addr, name, 1, "after"));
    }
    page.wait("the writes after the stripped reconnect", |ev| {
        let got = received(&ev[mark..]);
        match after
            .iter()
            .find(|(t, s)| !got.get(*t).is_some_and(|g| g.ends_with(s)))
        {
            None => Ok(()),
            Some((t, s)) => Err(format!("{t}: {s:?} not at the end of {:?}", got.get(t))),
        }
    });
    let mut expected = gap.clone();
    for (t, s) in &after {
        expected.get_mut(t).unwrap().extend(s);
    }
    let problems = audit(&received(&page.events[mark..]), &expected);
    let want: Vec<String> = gap
        .iter()
        .flat_map(|(t, s)| s.iter().map(move |q| format!("missing {t}#{q}")))
        .collect();
    assert_eq!(
        problems, want,
        "without Last-Event-ID the swallowed records must be a gap"
    );
    let heads = relay.stream_heads(&wid);
    assert!(
        header_of(&heads[3], "last-event-id").is_some(),
        "the browser did send an id (the relay stripped it)"
    );
    println!("browser: done in {:?}", started.elapsed());
}

/// The widest session there is: 256 topics with 255-byte names, so every frame carries a
/// ~90 KB id. Chromium keeps it and sends it back whole as `Last-Event-ID`, and the server
/// resumes from it (records swallowed before the cut arrive, once).
#[test]
fn a_90_kb_last_event_id_round_trips_through_the_browser() {
    let Some((chromium, chromedriver)) = tools() else {
        return;
    };
    let server = Server::start();
    let names: Vec<String> = (0..256)
        .map(|i| format!("{i:03}-{}", "x".repeat(251)))
        .collect();
    for name in &names {
        server.create(name, json!({}));
    }
    let (first, last) = (names[0].clone(), names[255].clone());
    let mut written = BTreeMap::from([(first.clone(), write(server.addr, &first, 2, "before"))]);
    let relay = Relay::start(server.addr);
    let browser = Browser::launch(&chromium, &chromedriver);
    browser.navigate(&format!("http://{}/v0/ready", relay.addr));
    let topics: Map<String, Value> = names.iter().map(|n| (n.clone(), json!({}))).collect();
    let wid = server
        .post("/v0/watch", &json!({ "topics": topics }))
        .expect(200)["wid"]
        .as_str()
        .unwrap()
        .to_string();
    browser.exec(OPEN_JS, json!([wid, true]));
    let mut page = Page {
        browser: &browser,
        events: Vec::new(),
    };
    page.wait("caught-up on all 256 topics", |ev| {
        count_at_least(ev, "caught-up", names.len())
    });
    page.wait("the records written before", |ev| {
        clean(audit(&received(ev), &written))
    });

    relay.freeze();
    for name in [&first, &last] {
        let seqs = write(server.addr, name, 1, "frozen");
        written.entry(name.clone()).or_default().extend(seqs);
    }
    wait_swallowed(&relay, &heads_of(&written));
    let seen_id = browser.exec("return window.__lastId;", json!([]));
    let seen_id = seen_id.as_str().unwrap().to_string();
    assert!(seen_id.len() > 85_000, "id is {} bytes", seen_id.len());
    relay.cut();
    page.wait("the swallowed records after the reconnect", |ev| {
        clean(audit(&received(ev), &written))
    });
    let heads = relay.stream_heads(&wid);
    assert_eq!(heads.len(), 2, "one reconnect");
    let resumed = header_of(&heads[1], "last-event-id");
    assert!(
        resumed.as_deref() == Some(seen_id.as_str()),
        "the reconnect must carry the whole {}-byte id; it carried {:?} bytes",
        seen_id.len(),
        resumed.map(|r| r.len())
    );
    assert_eq!(page.count("open"), 2);
    println!(
        "browser: a {}-byte Last-Event-ID round-tripped",
        seen_id.len()
    );
}

#[test]
fn audit_reports_gaps_duplicates_and_disorder() {
    let w = |v: &[u64]| BTreeMap::from([("t".to_string(), v.to_vec())]);
    assert!(audit(&w(&[1, 2, 3]), &w(&[1, 2, 3])).is_empty());
    assert_eq!(audit(&w(&[1, 3]), &w(&[1, 2, 3])), ["missing t#2"]);
    assert_eq!(
        audit(&w(&[1, 2, 2, 3]), &w(&[1, 2, 3])),
        ["duplicate t#2", "out-of-order t#2..#2"]
    );
    assert_eq!(
        audit(&w(&[2, 1, 3]), &w(&[1, 2, 3])),
        ["out-of-order t#2..#1"]
    );
    assert_eq!(audit(&w(&[1, 4]), &w(&[1])), ["unexpected t#4"]);
    let id = URL_SAFE_NO_PAD.encode(br#"{"a":1,"b":22}"#);
    assert_eq!(
        cursors(&id),
        BTreeMap::from([("a".into(), 1), ("b".into(), 22)])
    );
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
