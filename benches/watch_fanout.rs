//! Watch fan-out benchmark: drives the real release binary over loopback.
//!
//! `cargo bench --bench watch_fanout` runs two parts:
//! - **fan-out**: one paced writer (`RATE` writes/s of `BATCH` records, 100 × 100) into one
//!   topic watched by `WATCHERS` (100) SSE streams. Each record carries its write time (µs
//!   since the bench started); a watcher stamps receipt, so a delivery's latency is write
//!   start → the record parsed by its watcher. Reports deliveries/s (records × watchers) and
//!   latency p50/p99.
//! - **idle watchers**: writer p99 (one keep-alive connection, 1 record per request, closed
//!   loop for `DUR` s) with no watchers, then with `IDLE` (1000) open streams on 10 other
//!   topics, then with `IDLE` streams caught up on the writer's own topic (each write wakes
//!   all of them; the reader pool drains them).
//!
//! Env: `PARTS` (`fanout,idle`), `WATCHERS`, `RATE`, `BATCH`, `IDLE`, `DUR` (seconds per cell,
//! 4), `REPS` (3: fan-out runs, and interleaved none/idle pairs whose median p99s give the
//! ratio), `READERS` (2: generator threads reading the watchers, streams dealt round-robin).
//! The writer runs on a thread of its own; the same reader pool serves every cell. The server
//! and the generator share the machine's cores, so the CPU columns matter as much as the
//! rates.

mod common;

use common::{cpu_seconds, listing_only, request, Server};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_or(var: &str, default: u64) -> u64 {
    std::env::var(var).map_or(default, |v| v.parse().expect(var))
}

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

fn main() {
    if listing_only() {
        return;
    }
    now_us();
    let dur = Duration::from_secs(env_or("DUR", 4));
    let dir = std::env::temp_dir().join(format!("topics-watch-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (server, _) = Server::start(&dir);
    let addr = server.addr;
    println!("server {addr} pid {}", server.pid());
    let reps = env_or("REPS", 3);
    let parts = std::env::var("PARTS").unwrap_or_else(|_| "fanout,idle".into());
    if parts.contains("fanout") {
        fanout(addr, server.pid(), dur, reps);
    }
    if parts.contains("idle") {
        idle(addr, server.pid(), dur, reps);
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

fn put_topic(addr: SocketAddr, name: &str) {
    let (status, text) = request(addr, "PUT", &format!("/v0/topics/{name}"), "{}");
    assert!(status == 201 || status == 200, "create {name}: {text}");
}

/// A session on `topic` from its head; returns the wid.
fn session(addr: SocketAddr, topic: &str) -> String {
    let body = format!(r#"{{"topics":{{"{topic}":{{"tail":true}}}}}}"#);
    let (status, text) = request(addr, "POST", "/v0/watch", &body);
    assert_eq!(status, 200, "watch: {text}");
    let body = text.split("\r\n\r\n").nth(1).expect("body");
    let v: serde_json::Value = serde_json::from_str(body).expect("json");
    v["wid"].as_str().expect("wid").to_string()
}

/// Deliveries seen by watchers and their latencies (µs).
#[derive(Default)]
struct Seen {
    records: AtomicU64,
    latencies: std::sync::Mutex<Vec<u32>>,
}

/// Open the stream of `wid` and count `"t":<µs>` stamps until `stop`.
async fn watch_stream(addr: SocketAddr, wid: String, seen: Arc<Seen>, stop: Arc<AtomicBool>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req =
        format!("GET /v0/watch/{wid} HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let (mut buf, mut chunk, mut lat) = (Vec::new(), vec![0u8; 64 * 1024], Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let read = tokio::time::timeout(Duration::from_millis(200), s.read(&mut chunk)).await;
        let Ok(Ok(n)) = read else { continue };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        // Only whole events: a record never straddles the cut.
        let Some(end) = memchr::memmem::rfind(&buf, b"\n\n") else {
            continue;
        };
        let now = now_us();
        let n = stamps(&buf[..end], |t| lat.push(now.saturating_sub(t) as u32));
        seen.records.fetch_add(n, Ordering::Relaxed);
        buf.drain(..end + 2);
    }
    seen.latencies.lock().unwrap().extend(lat);
}

/// Every `"t":<digits>` in `text` (the records' write stamps), without a JSON parser: the
/// generator reads ~1 M records/s, so this must cost little.
fn stamps(text: &[u8], mut each: impl FnMut(u64)) -> u64 {
    let mut n = 0;
    for p in memchr::memmem::find_iter(text, b"\"t\":") {
        let digits = text[p + 4..].iter().take_while(|c| c.is_ascii_digit());
        each(digits.fold(0u64, |v, c| v * 10 + u64::from(c - b'0')));
        n += 1;
    }
    n
}

/// The reader pool: streams for `wids`, dealt round-robin over `READERS` threads (each a
/// single-threaded runtime); returns the stop flag and the threads' joins.
fn spawn_readers(addr: SocketAddr, wids: Vec<String>, seen: Arc<Seen>) -> Readers {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = env_or("READERS", 2).max(1) as usize;
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); threads];
    for (i, w) in wids.into_iter().enumerate() {
        shares[i % threads].push(w);
    }
    let joins = shares
        .into_iter()
        .map(|share| {
            let (seen, flag) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    let tasks: Vec<_> = share
                        .into_iter()
                        .map(|w| tokio::spawn(watch_stream(addr, w, seen.clone(), flag.clone())))
                        .collect();
                    for t in tasks {
                        t.await.expect("reader");
                    }
                });
            })
        })
        .collect();
    Readers { stop, joins }
}

struct Readers {
    stop: Arc<AtomicBool>,
    joins: Vec<std::thread::JoinHandle<()>>,
}

impl Readers {
    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for j in self.joins {
            j.join().expect("readers");
        }
    }
}

fn pct(lat: &mut [u32], p: f64) -> f64 {
    lat.sort_unstable();
    let i = ((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1));
    lat.get(i).map_or(0.0, |us| *us as f64 / 1000.0)
}

fn fanout(addr: SocketAddr, pid: u32, dur: Duration, reps: u64) {
    let cfg = (
        env_or("WATCHERS", 100),
        env_or("RATE", 100),
        env_or("BATCH", 100),
    );
    put_topic(addr, "fan");
    println!(
        "\nfan-out: {} watchers, {} writes/s × {} records, {} s, {} reader threads",
        cfg.0,
        cfg.1,
        cfg.2,
        dur.as_secs(),
        env_or("READERS", 2).max(1)
    );
    println!("| records written | deliveries | expected | deliveries/s | p50 ms | p99 ms | max ms | writer p99 ms | srv CPU% | gen CPU% |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for _ in 0..reps {
        fanout_cell(addr, pid, dur, cfg);
    }
}

/// One fan-out run with fresh sessions at the head of `fan`.
fn fanout_cell(addr: SocketAddr, pid: u32, dur: Duration, cfg: (u64, u64, u64)) {
    let (watchers, rate, batch) = cfg;
    let wids = (0..watchers).map(|_| session(addr, "fan")).collect();
    let seen = Arc::new(Seen::default());
    let readers = spawn_readers(addr, wids, seen.clone());
    std::thread::sleep(Duration::from_millis(500)); // streams open and caught up
    let (srv0, gen0, t0) = (
        cpu_seconds(pid),
        cpu_seconds(std::process::id()),
        Instant::now(),
    );
    let (written, mut wl) = writer(addr, "fan", batch, Some(rate), dur);
    std::thread::sleep(Duration::from_millis(300)); // the last batch's deliveries
    let wall = t0.elapsed().as_secs_f64();
    let srv = 100.0 * (cpu_seconds(pid) - srv0) / wall;
    let gen = 100.0 * (cpu_seconds(std::process::id()) - gen0) / wall;
    readers.finish();
    let got = seen.records.load(Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *seen.latencies.lock().unwrap());
    println!(
        "| {written} | {got} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {srv:.0} | {gen:.0} |",
        written * watchers,
        got as f64 / dur.as_secs_f64(),
        pct(&mut lat, 0.50),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0),
        pct(&mut wl, 0.99),
    );
}

/// One keep-alive writer to `topic`: `batch` stamped records per request, paced at `rate`
/// requests/s or closed loop; returns records acknowledged and request latencies (µs).
fn writer(
    addr: SocketAddr,
    topic: &str,
    batch: u64,
    rate: Option<u64>,
    dur: Duration,
) -> (u64, Vec<u32>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let (mut buf, mut lat, mut written) = (Vec::new(), Vec::new(), 0);
        let t0 = Instant::now();
        let mut next = tokio::time::Instant::now();
        while t0.elapsed() < dur {
            if let Some(r) = rate {
                tokio::time::sleep_until(next).await;
                next += Duration::from_micros(1_000_000 / r);
            }
            let sent = Instant::now();
            let rec = format!(r#"{{"data":{{"t":{},"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}}}"#, now_us());
            let body = format!(r#"{{"records":[{}]}}"#, vec![rec.as_str(); batch as usize].join(","));
            let head = format!(
                "POST /v0/topics/{topic} HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(format!("{head}{body}").as_bytes()).await.expect("send");
            let status = response(&mut s, &mut buf).await;
            lat.push(sent.elapsed().as_micros() as u32);
            assert_eq!(status, 200, "write: {}", String::from_utf8_lossy(&buf));
            written += batch;
        }
        (written, lat)
    })
}

/// One `Content-Length`-framed response; its status.
async fn response(s: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
            let len: usize = head
                .split("content-length:")
                .nth(1)
                .and_then(|v| v.lines().next()?.trim().parse().ok())
                .expect("content-length");
            if buf.len() >= h + 4 + len {
                return head
                    .get(9..12)
                    .and_then(|c| c.parse().ok())
                    .expect("status");
            }
        }
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn idle(addr: SocketAddr, pid: u32, dur: Duration, reps: u64) {
    let n = env_or("IDLE", 1000);
    put_topic(addr, "w");
    let others: Vec<String> = (0..10).map(|i| format!("other-{i}")).collect();
    others.iter().for_each(|t| put_topic(addr, t));
    println!(
        "\nwriter latency, 1 record per request, closed loop, {} s per cell, interleaved",
        dur.as_secs()
    );
    println!("| cell | writes/s | p50 ms | p99 ms | deliveries | srv CPU% | gen CPU% |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (mut none, mut idle) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        none.push(idle_cell(addr, pid, dur, "no watchers", Vec::new()));
        let wids = (0..n)
            .map(|i| session(addr, &others[i as usize % 10]))
            .collect();
        idle.push(idle_cell(
            addr,
            pid,
            dur,
            &format!("{n} idle on 10 other topics"),
            wids,
        ));
    }
    let wids = (0..n).map(|_| session(addr, "w")).collect();
    idle_cell(
        addr,
        pid,
        dur,
        &format!("{n} caught up on this topic"),
        wids,
    );
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (med(&mut none), med(&mut idle));
    println!(
        "\nmedian writer p99: none {a:.3} ms, {n} idle {b:.3} ms, ratio {:.2}",
        b / a
    );
}

/// Writer latency with `wids` streaming (read on their own thread); returns the p99 in ms.
fn idle_cell(addr: SocketAddr, pid: u32, dur: Duration, name: &str, wids: Vec<String>) -> f64 {
    let seen = Arc::new(Seen::default());
    let readers = spawn_readers(addr, wids, seen.clone());
    std::thread::sleep(Duration::from_secs(1)); // every stream open and parked
    let (srv0, gen0, t0) = (
        cpu_seconds(pid),
        cpu_seconds(std::process::id()),
        Instant::now(),
    );
    let (written, mut lat) = writer(addr, "w", 1, None, dur);
    let wall = t0.elapsed().as_secs_f64();
    let p99 = pct(&mut lat, 0.99);
    println!(
        "| {name} | {:.0} | {:.3} | {p99:.3} | {} | {:.0} | {:.0} |",
        written as f64 / wall,
        pct(&mut lat, 0.50),
        seen.records.load(Ordering::Relaxed),
        100.0 * (cpu_seconds(pid) - srv0) / wall,
        100.0 * (cpu_seconds(std::process::id()) - gen0) / wall,
    );
    readers.finish();
    p99
}
