//! Spawning and stopping the real binary. A `Server` owns its child process (killed on drop),
//! the data dir it runs on (a `TempDir` removed on drop, unless the test passed its own) and the
//! stderr lines the server logged, drained by a background thread.

use super::http::{self, Response};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_topics");
const START_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A directory under cargo's per-target temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "it-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A base `Command` for the binary with every `TOPICS_*` and logging variable cleared, so the
/// developer's environment cannot change what a test runs.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TOPICS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd.stdin(Stdio::null());
    cmd
}

/// Run the binary to completion (bounded); returns (status, stdout, stderr).
pub fn run_to_exit(mut cmd: Command) -> (ExitStatus, String, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn topics");
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let Some(status) = wait_bounded(&mut child, EXIT_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "topics did not exit within {EXIT_TIMEOUT:?}; stderr: {}",
            err.join().unwrap()
        );
    };
    (status, out.join().unwrap(), err.join().unwrap())
}

/// `topics verify --data-dir DIR`: (exit code, stdout and stderr together).
pub fn verify(data_dir: &Path) -> (i32, String) {
    let mut cmd = command();
    cmd.arg("verify").arg("--data-dir").arg(data_dir);
    let (status, out, err) = run_to_exit(cmd);
    (status.code().unwrap_or(-1), format!("{out}{err}"))
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Remove ANSI escape sequences (in case the log formatter colours its output).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address in a `listening on 127.0.0.1:PORT` log line (text or JSON format).
fn parse_listen_line(line: &str) -> Option<SocketAddr> {
    let at = line.find("listening on")?;
    let after = &line[at + "listening on".len()..];
    let token: String = after
        .trim_start_matches([' ', '"', '='])
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    token
        .parse()
        .ok()
        .or_else(|| line.split_whitespace().last()?.parse().ok())
}

/// A running (or stopped) server process.
pub struct Server {
    pub addr: SocketAddr,
    child: Option<Child>,
    data_dir: PathBuf,
    args: Vec<String>,
    config: Option<PathBuf>,
    /// Extra environment variables for the child.
    envs: Vec<(String, String)>,
    /// When set, only `args` and `envs` are passed (no `--listen`/`--data-dir`/`--config`).
    raw: bool,
    logs: Arc<Mutex<Vec<String>>>,
    /// When the last stderr line arrived (see `logs`).
    last_line: Arc<Mutex<Option<Instant>>>,
    /// The thread copying the running process's stderr into `logs`: joined once the process
    /// exited, so every line it wrote is in `logs` before a test reads them.
    log_reader: Option<std::thread::JoinHandle<()>>,
    /// Owns the temp dir (data dir + config file) when the harness created it.
    _tmp: Option<TempDir>,
}

impl Server {
    /// A server with default settings on a fresh temp data dir.
    pub fn start() -> Server {
        Server::start_with(&[], None)
    }

    /// A server on a fresh temp data dir with extra flags and an optional TOML config file.
    pub fn start_with(args: &[&str], config_toml: Option<&str>) -> Server {
        let tmp = TempDir::new();
        let data_dir = tmp.path().join("data");
        let config = config_toml.map(|text| {
            let path = tmp.path().join("config.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut server = Server::start_in(&data_dir, args, config);
        server._tmp = Some(tmp);
        server
    }

    /// A server with API keys (`TOPICS_API_KEYS`, API.md §1) on a temp data dir it owns.
    pub fn start_with_keys(keys: &str) -> Server {
        let tmp = TempDir::new();
        let dir = tmp.path().join("data");
        let args = ["--data-dir", dir.to_str().unwrap()];
        let mut server = Server::start_raw(&args, &[("TOPICS_API_KEYS", keys)], &dir);
        server._tmp = Some(tmp);
        server
    }

    /// A server on a data dir the caller owns.
    pub fn start_in(data_dir: &Path, args: &[&str], config: Option<PathBuf>) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let mut server = Server {
            addr: "127.0.0.1:0".parse().unwrap(),
            child: None,
            data_dir: data_dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            config,
            envs: Vec::new(),
            raw: false,
            logs: Arc::default(),
            last_line: Arc::default(),
            log_reader: None,
            _tmp: None,
        };
        server.start_again();
        server
    }

    /// A server started with exactly these flags and environment variables (plus the cleared
    /// environment of `command()`); `data_dir` is what the test expects it to use.
    pub fn start_raw(args: &[&str], envs: &[(&str, &str)], data_dir: &Path) -> Server {
        let mut server = Server {
            addr: "127.0.0.1:0".parse().unwrap(),
            child: None,
            data_dir: data_dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            config: None,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            raw: true,
            logs: Arc::default(),
            last_line: Arc::default(),
            log_reader: None,
            _tmp: None,
        };
        server.start_again();
        server
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The sealed segment files in the data directory, sorted.
    pub fn segment_files(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.data_dir.join("segments")) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        files.sort();
        files
    }

    /// Wait (at most 10 s) until at least `n` segment files exist: seals run in the
    /// background, so a write that crosses a seal trigger returns before its segment exists.
    pub fn wait_for_segments(&self, n: usize) -> Vec<PathBuf> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let files = self.segment_files();
            if files.len() >= n {
                return files;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{n} segment file(s) never appeared: {files:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Add a flag for every later start on this data dir.
    pub fn add_arg(&mut self, arg: &str) {
        self.args.push(arg.to_string());
    }

    /// The `Command` this server runs (flags, config, cleared env).
    pub fn command(&self) -> Command {
        let mut cmd = command();
        if !self.raw {
            cmd.arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--data-dir")
                .arg(&self.data_dir);
            if let Some(config) = &self.config {
                cmd.arg("--config").arg(config);
            }
        }
        cmd.args(&self.args);
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// (Re)start the process on the same data dir, args and config; waits for readiness.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server still running");
        let mut cmd = self.command();
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn topics");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let logs = Arc::clone(&self.logs);
        let last_line = Arc::clone(&self.last_line);
        let generation = self.logs.lock().unwrap().len();
        self.log_reader = Some(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                if let Some(addr) = parse_listen_line(&line) {
                    let _ = tx.send(addr);
                }
                logs.lock().unwrap().push(line);
                *last_line.lock().unwrap() = Some(Instant::now());
            }
        }));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(addr) => break addr,
                Err(_) => {
                    let exited = self.child.as_mut().unwrap().try_wait().unwrap();
                    if let Some(status) = exited {
                        self.child = None;
                        std::thread::sleep(Duration::from_millis(100)); // let the drain finish
                        panic!(
                            "topics exited ({status}) before listening; stderr:\n{}",
                            self.logs_since(generation)
                        );
                    }
                    if Instant::now() >= deadline {
                        panic!(
                            "no `listening on` line within {START_TIMEOUT:?}; stderr:\n{}",
                            self.logs_since(generation)
                        );
                    }
                }
            }
        };
        self.addr = addr;
        self.wait_ready(deadline);
    }

    fn wait_ready(&mut self, deadline: Instant) {
        loop {
            let resp = http::request(self.addr, "GET", "/v0/ready", &[], b"");
            // 401: the probes need a key (`auth.probe_auth`); the test checks readiness itself.
            if resp.status == 200 || resp.status == 401 {
                return;
            }
            assert_eq!(
                resp.status,
                503,
                "/v0/ready answered {}: {}",
                resp.status,
                resp.text()
            );
            assert!(
                Instant::now() < deadline,
                "not ready within {START_TIMEOUT:?}: {}",
                resp.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs_since(&self, from: usize) -> String {
        self.logs.lock().unwrap()[from..].join("\n")
    }

    /// Every stderr line so far (across restarts), once the log has been quiet for a moment: the server writes
    /// its log from a thread of its own a few milliseconds after the event, so a line about
    /// something the test just saw over HTTP may still be on its way.
    pub fn logs(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let quiet = Duration::from_millis(50);
        let busy = || {
            let last = *self.last_line.lock().unwrap();
            last.is_some_and(|t| t.elapsed() < quiet)
        };
        std::thread::sleep(quiet);
        while busy() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.logs.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// Send SIGTERM and wait (bounded) for the exit status.
    pub fn sigterm(&mut self) -> ExitStatus {
        let pid = self.pid().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM {pid} failed");
        self.wait_exit()
    }

    /// Wait (bounded) for the process to exit after a signal sent by the test.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server not running");
        let status = wait_bounded(&mut child, EXIT_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no exit within {EXIT_TIMEOUT:?} of the signal; stderr:\n{}",
                self.logs_since(0)
            );
        });
        // The pipe closed with the process: the reader ends once it has every line.
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        status
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("server not running");
        child.kill().expect("kill -9");
        child.wait().expect("wait after kill -9");
    }

    /// Graceful stop (asserting exit status 0), then start again on the same data dir.
    pub fn restart(&mut self) {
        let status = self.sigterm();
        assert!(
            status.success(),
            "SIGTERM exit status {status}; stderr:\n{}",
            self.logs_since(0)
        );
        self.start_again();
    }

    /// Crash (kill -9), then start again on the same data dir.
    pub fn crash_restart(&mut self) {
        self.kill9();
        self.start_again();
    }

    // ---- HTTP ----

    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        http::request(self.addr, method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> Response {
        self.req("GET", path, &[], b"")
    }

    pub fn delete(&self, path: &str) -> Response {
        self.req("DELETE", path, &[], b"")
    }

    /// A request with a JSON body and `Content-Type: application/json`.
    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> Response {
        let bytes = serde_json::to_vec(body).unwrap();
        self.req(
            method,
            path,
            &[("Content-Type", "application/json")],
            &bytes,
        )
    }

    /// A request with raw body bytes and `Content-Type: application/json`.
    pub fn send_raw_json(&self, method: &str, path: &str, body: &[u8]) -> Response {
        self.req(method, path, &[("Content-Type", "application/json")], body)
    }

    pub fn put(&self, path: &str, body: &Value) -> Response {
        self.send_json("PUT", path, body)
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.send_json("POST", path, body)
    }

    // ---- domain helpers (assert success) ----

    /// PUT a topic config; expects 200 or 201 and returns the body.
    pub fn create(&self, topic: &str, config: Value) -> Value {
        let resp = self.put(&format!("/v0/topics/{topic}"), &config);
        assert!(
            matches!(resp.status, 200 | 201),
            "PUT {topic}: {} {}",
            resp.status,
            resp.text()
        );
        resp.json()
    }

    /// Write records (a JSON array); expects 200 or 201 and returns the body.
    pub fn write(&self, topic: &str, records: Value) -> Value {
        self.write_body(topic, serde_json::json!({ "records": records }))
    }

    /// Write a full request body; expects 200 or 201.
    pub fn write_body(&self, topic: &str, body: Value) -> Value {
        let resp = self.post(&format!("/v0/topics/{topic}"), &body);
        assert!(
            matches!(resp.status, 200 | 201),
            "write {topic}: {} {}",
            resp.status,
            resp.text()
        );
        resp.json()
    }

    /// Diff with a JSON body; expects 200.
    pub fn diff(&self, topic: &str, body: Value) -> Value {
        self.post(&format!("/v0/topics/{topic}/diff"), &body)
            .expect(200)
    }

    /// Every record from seq 0 (tags included), following `next_from_seq` to the head.
    pub fn read_all(&self, topic: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut from = 0u64;
        for _ in 0..10_000 {
            let d = self.diff(
                topic,
                serde_json::json!({ "from_seq": from, "limit": 1000, "include_tags": true }),
            );
            out.extend(d["records"].as_array().unwrap().iter().cloned());
            from = d["next_from_seq"].as_u64().unwrap();
            if d["caught_up"] == true {
                return out;
            }
        }
        panic!("read_all({topic}) did not catch up");
    }

    /// A watch session over `topics`, each from seq 0; its `wid`.
    pub fn watch_all(&self, topics: &[String]) -> String {
        let map: serde_json::Map<String, Value> = topics
            .iter()
            .map(|t| (t.clone(), serde_json::json!({})))
            .collect();
        let body = serde_json::json!({ "topics": map });
        let created = self.post("/v0/watch", &body).expect(200);
        created["wid"].as_str().unwrap().to_string()
    }

    /// Topic state without stamping reads (`touch=false`); expects 200.
    pub fn state(&self, topic: &str) -> Value {
        self.get(&format!("/v0/topics/{topic}?touch=false"))
            .expect(200)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let logs = self.logs.lock().map(|l| l.clone()).unwrap_or_default();
            let tail = &logs[logs.len().saturating_sub(40)..];
            eprintln!(
                "---- server stderr (last {} lines) ----\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_line_parses_in_text_and_json_formats() {
        let text = "2026-01-01T00:00:00Z  INFO topics::app: listening on 127.0.0.1:41234";
        assert_eq!(
            parse_listen_line(text),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        let json = r#"{"level":"INFO","fields":{"message":"listening on 127.0.0.1:5"}}"#;
        assert_eq!(
            parse_listen_line(json),
            Some("127.0.0.1:5".parse().unwrap())
        );
        assert_eq!(strip_ansi("\u{1b}[32m INFO\u{1b}[0m x"), " INFO x");
    }
}
