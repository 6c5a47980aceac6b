//! What the process-level benches share: spawning the real release binary on a free loopback
//! port and speaking plain HTTP/1.1 to it without a client library in the way.

// Each bench binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// ~100-byte record, the shape the shared harness writes.
pub const RECORD: &str = r#"{"data":{"k":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","i":1}}"#;

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Spawns the server on `dir` and waits for `/v0/ready`; returns it with the time to ready.
    pub fn start(dir: &Path) -> (Server, Duration) {
        Server::start_with(dir, None)
    }

    /// Like [`Server::start`], with a TOML config file.
    pub fn start_with(dir: &Path, config: Option<&Path>) -> (Server, Duration) {
        let t0 = Instant::now();
        // TOPICS_BIN runs another build (an older commit, for a before/after).
        let bin =
            std::env::var("TOPICS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_topics").into());
        let mut cmd = Command::new(bin);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("RUST_LOG", "warn,topics::app=info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn topics");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("server exited").expect("stderr");
            if let Some(a) = line.split("listening on ").nth(1) {
                break a.trim().parse().expect("address");
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        while request(addr, "GET", "/v0/ready", "").0 != 200 {
            std::thread::sleep(Duration::from_millis(2));
        }
        (Server { child, addr }, t0.elapsed())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait: a clean stop with its final checkpoint.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bench that panics (or returns early) must not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One request on a fresh connection; returns status and the whole response text.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body.as_bytes()))
        .is_err()
    {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

/// A numeric environment variable, or `default`.
pub fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Write `records` [`RECORD`]s into `topic` in batches of 1000 from 4 client threads (the
/// load is not what is measured).
pub fn load(addr: SocketAddr, topic: &str, records: usize) {
    const BATCH: usize = 1000;
    let body = write_body(BATCH);
    let path = format!("/v0/topics/{topic}");
    let per = records.div_ceil(BATCH).div_ceil(4);
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..per {
                    assert_eq!(request(addr, "POST", &path, &body).0, 200);
                }
            });
        }
    });
}

/// A write body of `n` copies of [`RECORD`].
pub fn write_body(n: usize) -> String {
    format!(r#"{{"records":[{}]}}"#, vec![RECORD; n].join(","))
}

/// User+system CPU seconds of a process, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0 // USER_HZ is 100 on Linux
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, or `RssAnon` for the heap alone).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The benches are plain binaries: `cargo test --benches` runs them with `--list`/`--test`.
pub fn listing_only() -> bool {
    std::env::args().any(|a| a == "--list" || a == "--test")
}
