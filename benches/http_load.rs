//! The project's own HTTP load benchmark: drives the real release binary over loopback with
//! keep-alive HTTP/1.1 connections from one generator thread (like `wrk -t1`), so the
//! headline cells of docs/BENCHMARKS.md can be reproduced without the shared scripts.
//!
//! `cargo bench --bench http_load` runs the default cells; env knobs:
//! `CELLS` (comma-separated `class:batch` for writes, `diff:limit` for reads; default
//! `ephemeral:1,disk:1,fsync:1,disk:100,fsync:100,diff:1000`), `CONNS` (16), `DUR` (seconds
//! per cell, 4), `READ_N` (records prefilled for diff cells, 200000), `ADDR` (load a server
//! that is already running instead of starting one; `SERVER_PID` for its CPU column).
//!
//! Each cell reports records/s, latency percentiles and the CPU the server and this generator
//! used, as a share of one core: on a 2-core machine the two compete, and a rate means little
//! without them.

mod common;

use common::{cpu_seconds, listing_only, request, write_body, Server};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one connection sends over and over; `diff` varies its `from_seq`.
#[derive(Clone)]
enum Work {
    Write { path: String, body: String },
    Diff { path: String, n: u64, limit: u64 },
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    latencies_us: Vec<u32>,
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.into())
}

fn main() {
    if listing_only() {
        return;
    }
    let cells = env_or(
        "CELLS",
        "ephemeral:1,disk:1,fsync:1,disk:100,fsync:100,diff:1000",
    );
    let conns: usize = env_or("CONNS", "16").parse().expect("CONNS");
    let dur = Duration::from_secs(env_or("DUR", "4").parse().expect("DUR"));
    let read_n: u64 = env_or("READ_N", "200000").parse().expect("READ_N");

    let dir = std::env::temp_dir().join(format!("topics-http-load-{}", std::process::id()));
    let target = Target::new(&dir);
    println!(
        "{conns} connections, {} s per cell, server {} pid {}",
        dur.as_secs(),
        target.addr,
        target.pid
    );
    println!("| cell | records/s | requests/s | p50 ms | p99 ms | failed | srv CPU% | gen CPU% |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for cell in cells.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let (kind, n) = cell.split_once(':').expect("cell is kind:number");
        let n: u64 = n.parse().expect("cell number");
        let work = prepare(target.addr, kind, n, read_n);
        let srv0 = cpu_seconds(target.pid);
        let gen0 = cpu_seconds(std::process::id());
        let t0 = Instant::now();
        let tally = drive(target.addr, &work, conns, dur);
        let wall = t0.elapsed().as_secs_f64();
        let srv = 100.0 * (cpu_seconds(target.pid) - srv0) / wall;
        let gen = 100.0 * (cpu_seconds(std::process::id()) - gen0) / wall;
        report(cell, n, &tally, wall, srv, gen);
    }
    if let Some(server) = target.owned {
        server.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The server under load: one this bench started, or (env `ADDR`, optional `SERVER_PID` for
/// its CPU figure) one already running — under a profiler, say.
struct Target {
    addr: SocketAddr,
    pid: u32,
    owned: Option<Server>,
}

impl Target {
    fn new(dir: &std::path::Path) -> Target {
        if let Ok(addr) = std::env::var("ADDR") {
            return Target {
                addr: addr.parse().expect("ADDR is host:port"),
                pid: env_or("SERVER_PID", "0").parse().expect("SERVER_PID"),
                owned: None,
            };
        }
        let _ = std::fs::remove_dir_all(dir);
        let (server, _) = Server::start(dir);
        Target {
            addr: server.addr,
            pid: server.pid(),
            owned: Some(server),
        }
    }
}

/// Creates the cell's topic (prefilling it for diff cells) and returns the request to repeat.
fn prepare(addr: SocketAddr, kind: &str, n: u64, read_n: u64) -> Work {
    if kind == "diff" {
        let path = "/v0/topics/bench-read";
        if request(addr, "GET", path, "").0 == 404 {
            put_topic(addr, path, "disk");
            let body = write_body(1000);
            for _ in 0..read_n.div_ceil(1000) {
                assert_eq!(request(addr, "POST", path, &body).0, 200, "prefill");
            }
        }
        return Work::Diff {
            path: format!("{path}/diff"),
            n: read_n,
            limit: n,
        };
    }
    let path = format!("/v0/topics/bench-{kind}-{n}");
    put_topic(addr, &path, kind);
    Work::Write {
        path,
        body: write_body(n as usize),
    }
}

fn put_topic(addr: SocketAddr, path: &str, durability: &str) {
    let body = format!(r#"{{"durability":"{durability}"}}"#);
    let (status, text) = request(addr, "PUT", path, &body);
    assert!(status == 201 || status == 200, "create {path}: {text}");
}

/// Runs `conns` keep-alive connections on one generator thread for `dur`.
fn drive(addr: SocketAddr, work: &Work, conns: usize, dur: Duration) -> Tally {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let deadline = Instant::now() + dur;
        let tasks: Vec<_> = (0..conns)
            .map(|i| tokio::spawn(connection(addr, work.clone(), deadline, i as u64)))
            .collect();
        let mut total = Tally::default();
        for t in tasks {
            let t = t.await.expect("connection task");
            total.ok += t.ok;
            total.failed += t.failed;
            total.latencies_us.extend(t.latencies_us);
        }
        total
    })
}

async fn connection(addr: SocketAddr, work: Work, deadline: Instant, seed: u64) -> Tally {
    let mut tally = Tally::default();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while Instant::now() < deadline {
        let req = match &work {
            Work::Write { path, body } => render("POST", path, body),
            Work::Diff { path, n, limit } => {
                // xorshift: a cheap spread of start points over the prefilled range.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let from = rng % n.saturating_sub(*limit).max(1);
                render(
                    "POST",
                    path,
                    &format!(r#"{{"from_seq":{from},"limit":{limit}}}"#),
                )
            }
        };
        let t0 = Instant::now();
        stream.write_all(&req).await.expect("send");
        let status = read_response(&mut stream, &mut buf).await;
        tally.latencies_us.push(t0.elapsed().as_micros() as u32);
        if status == 200 {
            tally.ok += 1;
        } else {
            tally.failed += 1;
        }
    }
    tally
}

fn render(method: &str, path: &str, body: &str) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// Reads one `Content-Length`-framed response (all our handlers frame that way); returns
/// its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await;
    };
    let head = std::str::from_utf8(&buf[..head_end]).expect("ascii head");
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("content-length");
    while buf.len() < head_end + len {
        fill(stream, buf).await;
    }
    assert_eq!(
        buf.len(),
        head_end + len,
        "no pipelining: nothing after the body"
    );
    status
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await.expect("read");
    assert!(n > 0, "server closed the connection");
    buf.extend_from_slice(&chunk[..n]);
}

fn report(cell: &str, per_req: u64, t: &Tally, wall: f64, srv: f64, gen: f64) {
    let mut lat = t.latencies_us.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    let reqs = t.ok as f64 / wall;
    println!(
        "| {cell} | {:.0} | {reqs:.0} | {:.3} | {:.2} | {} | {srv:.0} | {gen:.0} |",
        reqs * per_req as f64,
        pct(0.50),
        pct(0.99),
        t.failed,
    );
}
