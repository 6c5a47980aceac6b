//! Log-stream cells: closed-loop writes and range reads against topics, Redis Streams,
//! NATS JetStream and a hello-world HTTP server, one JSON line per cell.
//!
//! Every cell has the same shape for every system: `conns` connections, each sending one
//! request (or one pipelined group of `batch` commands), waiting for the whole answer, and
//! sending the next, for `dur` seconds. All connections run on one generator thread (like
//! `wrk -t1`), so the generator takes at most one of the machine's cores. Latency is per
//! round trip; the rate counts records (a write of 100 records is 100).
//!
//!   load --system topics|redis|nats|hello --addr HOST:PORT --op write|read|get
//!        [--durability ephemeral|memory|disk|fsync] [--batch 1] [--conns 16] [--dur 4]
//!        [--topics 1] [--read-n 200000] [--server-pid PID] [--label TEXT]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{cpu_secs, loadavg1, pct, unique, Args, Res};

/// The record every system stores: ~100 bytes of JSON, the same bytes everywhere.
pub const RECORD: &str =
    r#"{"k":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","i":1}"#;

/// What one connection repeats. `Read` varies its start point over a prefilled range.
#[derive(Clone)]
enum Work {
    /// A fixed request, one of several targets picked round-robin (many-topic cells).
    Fixed(Vec<Vec<u8>>),
    TopicsDiff {
        path: String,
        n: u64,
        limit: u64,
    },
    RedisRange {
        key: String,
        n: u64,
        limit: u64,
    },
}

struct Tally {
    ok: u64,
    failed: u64,
    lat_us: Vec<u32>,
}

/// Wait for every connection's task and add up what they counted.
async fn join(tasks: Vec<tokio::task::JoinHandle<Res<Tally>>>) -> Res<Tally> {
    let mut total = Tally {
        ok: 0,
        failed: 0,
        lat_us: Vec::new(),
    };
    for t in tasks {
        let t = t.await??;
        total.ok += t.ok;
        total.failed += t.failed;
        total.lat_us.extend(t.lat_us);
    }
    Ok(total)
}

pub struct Cell {
    system: String,
    op: String,
    batch: u64,
    conns: usize,
    topics: usize,
    dur: Duration,
    addr: String,
}

pub async fn cmd_load(a: &Args) -> Res<()> {
    let cell = Cell {
        system: a.s("system", "topics"),
        op: a.s("op", "write"),
        batch: a.n("batch", 1).max(1),
        conns: a.n("conns", 16) as usize,
        topics: a.n("topics", 1).max(1) as usize,
        dur: Duration::from_secs_f64(a.s("dur", "4").parse()?),
        addr: a.s("addr", "127.0.0.1:4000"),
    };
    let pid = a.s("server-pid", "0");
    let durability = a.s("durability", "disk");
    let read_n = a.n("read-n", 200_000);

    // Setup is not timed: topics created, read ranges prefilled.
    let work = match cell.system.as_str() {
        "nats" => None,
        "topics" => Some(topics_work(&cell, &durability, read_n).await?),
        "redis" => Some(redis_work(&cell, read_n).await?),
        "hello" => Some((hello_work(&cell), Vec::new())),
        s => return Err(format!("unknown system {s}").into()),
    };

    let (srv0, gen0, t0) = (cpu_secs(&pid), cpu_secs("self"), Instant::now());
    let tally = match &work {
        Some((w, _)) => drive(&cell, w.clone()).await?,
        None => nats_publish(&cell).await?,
    };
    let wall = t0.elapsed().as_secs_f64();
    let (srv1, gen1) = (cpu_secs(&pid), cpu_secs("self"));
    let rss = rss_mib(&pid);
    if let Some((_, names)) = &work {
        forget(&cell, names).await?;
    }

    let mut lat = tally.lat_us;
    lat.sort_unstable();
    let per_req = if cell.op == "read" { 1 } else { cell.batch };
    let records = match cell.op.as_str() {
        // A read request returns `limit` records (the ranges never run past the end).
        "read" => tally.ok * cell.batch,
        _ => tally.ok * per_req,
    };
    let line = json!({
        "kind": "stream",
        "label": a.s("label", &cell.system),
        "system": cell.system,
        "op": cell.op,
        "durability": durability,
        "batch": cell.batch,
        "conns": cell.conns,
        "topics": cell.topics,
        "secs": wall,
        "requests": tally.ok,
        "failed": tally.failed,
        "records_per_s": records as f64 / wall,
        "requests_per_s": tally.ok as f64 / wall,
        "p50_ms": pct(&lat, 0.50),
        "p99_ms": pct(&lat, 0.99),
        "p999_ms": pct(&lat, 0.999),
        "max_ms": lat.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        "server_cpu_pct": 100.0 * (srv1 - srv0) / wall,
        "client_cpu_pct": 100.0 * (gen1 - gen0) / wall,
        "server_rss_mib": rss,
        "server_anon_mib": status_mib(&pid, "RssAnon:"),
        "server_file_mib": status_mib(&pid, "RssFile:"),
        "load1": loadavg1(),
    });
    println!("{line}");
    Ok(())
}

/// Resident set of a process in MiB (`VmRSS` of `/proc/PID/status`).
fn rss_mib(pid: &str) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// One `/proc/PID/status` memory field in MiB: `RssAnon` is the heap, `RssFile` file-backed
/// pages (mapped files: page cache the kernel can reclaim).
fn status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with(field))?;
            l.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

// ---------------------------------------------------------------- HTTP (topics, hello)

fn http_request(method: &str, path: &str, body: &str) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

fn write_body(n: u64) -> String {
    let one = format!(r#"{{"data":{RECORD}}}"#);
    let all: Vec<&str> = (0..n).map(|_| one.as_str()).collect();
    format!(r#"{{"records":[{}]}}"#, all.join(","))
}

/// The work and the paths of the topics it made (deleted after the cell).
async fn topics_work(cell: &Cell, durability: &str, read_n: u64) -> Res<(Work, Vec<String>)> {
    let mut c = crate::http::Client::connect(&cell.addr).await?;
    let cfg = json!({ "durability": durability });
    if cell.op == "read" {
        let name = unique("bench-read-");
        let path = format!("/v0/topics/{name}");
        c.request_json("PUT", &path, &cfg).await?;
        let body: Value = serde_json::from_str(&write_body(1000))?;
        for _ in 0..read_n.div_ceil(1000) {
            c.post_json_retry(&path, &body).await?;
        }
        let work = Work::TopicsDiff {
            path: format!("{path}/diff"),
            n: read_n,
            limit: cell.batch,
        };
        return Ok((work, vec![path]));
    }
    let body = write_body(cell.batch);
    let prefix = unique("bench-w-");
    let (mut reqs, mut paths) = (Vec::new(), Vec::new());
    for t in 0..cell.topics {
        let path = format!("/v0/topics/{prefix}-{t}");
        c.request_json("PUT", &path, &cfg).await?;
        reqs.push(http_request("POST", &path, &body));
        paths.push(path);
    }
    Ok((Work::Fixed(reqs), paths))
}

fn hello_work(cell: &Cell) -> Work {
    // `get` is the bare stack; `write` posts the same body a topics write of `batch` sends.
    let req = match cell.op.as_str() {
        "get" => http_request("GET", "/", ""),
        _ => http_request("POST", "/", &write_body(cell.batch)),
    };
    Work::Fixed(vec![req])
}

/// Reads one `Content-Length`-framed HTTP response; returns its status.
async fn http_response(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Res<u16> {
    buf.clear();
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(sock, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let status: u16 = head.get(9..12).ok_or("short status line")?.parse()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or("response without content-length")?;
    while buf.len() < head_end + len {
        fill(sock, buf).await?;
    }
    Ok(status)
}

// ---------------------------------------------------------------- Redis (RESP by hand)

fn resp_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// The work and the stream keys it made (deleted after the cell).
async fn redis_work(cell: &Cell, read_n: u64) -> Res<(Work, Vec<String>)> {
    let mut sock = TcpStream::connect(&cell.addr).await?;
    let mut buf = Vec::new();
    if cell.op == "read" {
        // Explicit ids 0-1..0-N, so a read can start anywhere without knowing the ids.
        let key = unique("bench-read-");
        for chunk in 0..read_n.div_ceil(1000) {
            let mut pipe = Vec::new();
            for i in chunk * 1000..(chunk + 1) * 1000 {
                let id = format!("0-{}", i + 1);
                pipe.extend(resp_command(&["XADD", &key, &id, "d", RECORD]));
            }
            sock.write_all(&pipe).await?;
            let errs = redis_replies(&mut sock, &mut buf, 1000).await?;
            if errs > 0 {
                return Err("redis prefill refused".into());
            }
        }
        let work = Work::RedisRange {
            key: key.clone(),
            n: read_n,
            limit: cell.batch,
        };
        return Ok((work, vec![key]));
    }
    let key = unique("bench-w-");
    let (mut reqs, mut keys) = (Vec::new(), Vec::new());
    for t in 0..cell.topics {
        let k = format!("{key}-{t}");
        let mut pipe = Vec::new();
        for _ in 0..cell.batch {
            pipe.extend(resp_command(&["XADD", &k, "*", "d", RECORD]));
        }
        reqs.push(pipe);
        keys.push(k);
    }
    Ok((Work::Fixed(reqs), keys))
}

/// Reads `n` complete RESP replies; returns how many were errors.
async fn redis_replies(sock: &mut TcpStream, buf: &mut Vec<u8>, n: u64) -> Res<u64> {
    buf.clear();
    let (mut at, mut seen, mut errs) = (0, 0, 0);
    while seen < n {
        match resp_skip(buf, at) {
            Some(end) => {
                errs += u64::from(buf[at] == b'-');
                at = end;
                seen += 1;
            }
            None => fill(sock, buf).await?,
        }
    }
    Ok(errs)
}

/// The end of the RESP value starting at `at`, or `None` while it is incomplete.
fn resp_skip(buf: &[u8], at: usize) -> Option<usize> {
    let line_end = at + find(buf.get(at..)?, b"\r\n")?;
    let num = || {
        std::str::from_utf8(&buf[at + 1..line_end])
            .ok()?
            .parse::<i64>()
            .ok()
    };
    match *buf.get(at)? {
        b'+' | b'-' | b':' => Some(line_end + 2),
        b'$' => {
            let len = num()?;
            if len < 0 {
                return Some(line_end + 2);
            }
            let end = line_end + 2 + len as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' => {
            let mut pos = line_end + 2;
            for _ in 0..num()?.max(0) {
                pos = resp_skip(buf, pos)?;
            }
            Some(pos)
        }
        _ => None,
    }
}

/// Deletes what a cell made, so later cells do not run against a fuller server.
async fn forget(cell: &Cell, names: &[String]) -> Res<()> {
    match cell.system.as_str() {
        "topics" => {
            let mut c = crate::http::Client::connect(&cell.addr).await?;
            for path in names {
                c.request_json("DELETE", path, &Value::Null).await?;
            }
        }
        "redis" => {
            let mut sock = TcpStream::connect(&cell.addr).await?;
            let mut buf = Vec::new();
            for key in names {
                sock.write_all(&resp_command(&["DEL", key])).await?;
                redis_replies(&mut sock, &mut buf, 1).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------- the closed loop

async fn drive(cell: &Cell, work: Work) -> Res<Tally> {
    let deadline = Instant::now() + cell.dur;
    let mut tasks = Vec::with_capacity(cell.conns);
    for i in 0..cell.conns {
        let sock = TcpStream::connect(&cell.addr).await?;
        sock.set_nodelay(true)?;
        let (work, system, batch) = (work.clone(), cell.system.clone(), cell.batch);
        tasks.push(tokio::spawn(async move {
            connection(sock, &system, batch, work, deadline, i as u64).await
        }));
    }
    join(tasks).await
}

async fn connection(
    mut sock: TcpStream,
    system: &str,
    batch: u64,
    work: Work,
    deadline: Instant,
    seed: u64,
) -> Res<Tally> {
    let mut t = Tally {
        ok: 0,
        failed: 0,
        lat_us: Vec::with_capacity(1 << 16),
    };
    let mut buf = Vec::with_capacity(256 << 10);
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = seed as usize;
    let redis = system == "redis";
    while Instant::now() < deadline {
        // xorshift: a cheap spread of read start points over the prefilled range.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let req = match &work {
            Work::Fixed(reqs) => {
                next = (next + 1) % reqs.len();
                std::borrow::Cow::Borrowed(&reqs[next])
            }
            Work::TopicsDiff { path, n, limit } => {
                let from = rng % n.saturating_sub(*limit).max(1);
                let body = format!(r#"{{"from_seq":{from},"limit":{limit}}}"#);
                std::borrow::Cow::Owned(http_request("POST", path, &body))
            }
            Work::RedisRange { key, n, limit } => {
                let from = format!("0-{}", 1 + rng % n.saturating_sub(*limit).max(1));
                let count = limit.to_string();
                let cmd = ["XRANGE", key, &from, "+", "COUNT", &count];
                std::borrow::Cow::Owned(resp_command(&cmd))
            }
        };
        let t0 = Instant::now();
        sock.write_all(&req).await?;
        let good = if redis {
            let replies = if matches!(work, Work::Fixed(_)) {
                batch
            } else {
                1
            };
            redis_replies(&mut sock, &mut buf, replies).await? == 0
        } else {
            http_response(&mut sock, &mut buf).await? == 200
        };
        t.lat_us.push(t0.elapsed().as_micros() as u32);
        if good {
            t.ok += 1;
        } else {
            t.failed += 1;
        }
    }
    Ok(t)
}

async fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Res<()> {
    let mut chunk = [0u8; 64 << 10];
    let n = sock.read(&mut chunk).await?;
    if n == 0 {
        return Err("connection closed by server".into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

// ---------------------------------------------------------------- NATS JetStream

/// Publishes with up to `batch` acks outstanding per connection: each "round trip" is one
/// window of `batch` publishes awaited together, like a pipelined XADD group.
async fn nats_publish(cell: &Cell) -> Res<Tally> {
    let client = async_nats::connect(&cell.addr).await?;
    let js = async_nats::jetstream::new(client);
    let stream = unique("benchw");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{stream}.>")],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let deadline = Instant::now() + cell.dur;
    let mut tasks = Vec::new();
    for i in 0..cell.conns {
        // One client per connection, as the other systems get.
        let js = async_nats::jetstream::new(async_nats::connect(&cell.addr).await?);
        let (subject, batch) = (format!("{stream}.{}", i % cell.topics), cell.batch);
        tasks.push(tokio::spawn(async move {
            let mut t = Tally {
                ok: 0,
                failed: 0,
                lat_us: Vec::new(),
            };
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let mut acks = Vec::with_capacity(batch as usize);
                for _ in 0..batch {
                    acks.push(js.publish(subject.clone(), RECORD.into()).await?);
                }
                let mut good = true;
                for ack in acks {
                    good &= ack.await.is_ok();
                }
                t.lat_us.push(t0.elapsed().as_micros() as u32);
                if good {
                    t.ok += 1;
                } else {
                    t.failed += 1;
                }
            }
            Ok::<_, crate::BoxErr>(t)
        }));
    }
    let total = join(tasks).await?;
    let _ = js.delete_stream(&stream).await;
    Ok(total)
}
