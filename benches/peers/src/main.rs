//! Load generator for the side-by-side runs of `run.sh` beside this crate: topics next to
//! Redis Streams, NATS JetStream and a hello-world HTTP server on the same machine.
//!
//! Log cells (writes, range reads) live in `stream.rs`; the disk probe in `disk.rs`. For the
//! lease-queue cells below, every cell has the same shape for every system: preload N jobs, then W worker tasks,
//! each on its own connection, loop `claim(batch)` → `ack(all claimed)` until N jobs are
//! acked. The drain is timed from the first claim to the ack that completes the N-th job.
//!
//! Subcommands (each prints one JSON line on stdout):
//!   drain   --system topics|redis|nats --addr HOST:PORT [--durability disk|fsync]
//!           [--leases-durable] [--workers 16] [--batch 1] [--jobs 50000]
//!           [--server-pid PID] [--label TEXT] [--nats-ack double|plain]
//!   poison  --addr HOST:PORT [--workers 10] [--batch 1] [--jobs 10000] [--poison 0|1]
//!           [--max-deliveries 5] [--server-pid PID]   (topics only)
//!   load    ... (see stream.rs)                         (one write or read cell)
//!   hello   --port PORT                                (the hello-world ceiling server)
//!   disk    --dir DIR [--n 3000]                       (4 KiB write + fdatasync latency)
//!   summary FILE                                       (markdown tables from the JSON lines)
//!   freeport                                           (prints a free loopback TCP port)

mod disk;
mod hello;
mod http;
mod stream;
mod stream_summary;
mod summary;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{json, Value};

type BoxErr = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxErr>;

/// Same payload bytes for every system.
fn payload(i: u64) -> String {
    format!("{{\"job\":{i},\"pad\":\"0123456789abcdef\"}}")
}

struct Args(HashMap<String, String>);

impl Args {
    fn parse(v: &[String]) -> Args {
        let mut m = HashMap::new();
        let mut i = 0;
        while i < v.len() {
            let k = v[i].trim_start_matches("--").to_string();
            if i + 1 < v.len() && !v[i + 1].starts_with("--") {
                m.insert(k, v[i + 1].clone());
                i += 2;
            } else {
                m.insert(k, "true".into());
                i += 1;
            }
        }
        Args(m)
    }
    fn s(&self, k: &str, d: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| d.to_string())
    }
    fn n(&self, k: &str, d: u64) -> u64 {
        self.0.get(k).map(|v| v.parse().expect(k)).unwrap_or(d)
    }
    fn flag(&self, k: &str) -> bool {
        self.0.get(k).is_some_and(|v| v == "true" || v == "1")
    }
}

/// utime + stime of a process in seconds (Linux `/proc`, USER_HZ = 100).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime/stime are fields 14/15.
    let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| {
        f.get(i)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (t(11) + t(12)) / 100.0
}

fn loadavg1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .map(|x| x.parse().unwrap_or(f64::NAN))
        })
        .unwrap_or(f64::NAN)
}

fn unique(prefix: &str) -> String {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}{}", std::process::id(), ns % 1_000_000_000)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

// ---------------------------------------------------------------- backends

/// A claimed job, whatever the system.
enum Job {
    Topics {
        seq: u64,
        lease: String,
        poison: bool,
    },
    Redis(String),
    Nats(Box<async_nats::jetstream::Message>),
}

enum Worker {
    Topics {
        c: http::Client,
        topic: String,
        node: String,
    },
    Redis {
        con: redis::aio::MultiplexedConnection,
        key: String,
        consumer: String,
    },
    Nats {
        consumer: Box<async_nats::jetstream::consumer::PullConsumer>,
        double: bool,
    },
}

impl Worker {
    async fn claim(&mut self, batch: usize) -> Res<Vec<Job>> {
        match self {
            Worker::Topics { c, topic, node } => {
                let body = json!({"node": node, "max": batch, "lease_ms": 30000});
                let v = c
                    .post_json_retry(&format!("/v0/topics/{topic}/claim"), &body)
                    .await?;
                let mut out = Vec::new();
                for j in v["claimed"].as_array().ok_or("claim: no claimed[]")? {
                    out.push(Job::Topics {
                        seq: j["$seq"].as_u64().ok_or("claim: no $seq")?,
                        lease: j["lease_id"].as_str().unwrap_or("").to_string(),
                        poison: j["data"]["poison"].as_bool().unwrap_or(false),
                    });
                }
                Ok(out)
            }
            Worker::Redis { con, key, consumer } => {
                let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("g")
                    .arg(&*consumer)
                    .arg("COUNT")
                    .arg(batch)
                    .arg("BLOCK")
                    .arg(20)
                    .arg("STREAMS")
                    .arg(&*key)
                    .arg(">")
                    .query_async(con)
                    .await?;
                let mut out = Vec::new();
                if let Some(r) = reply {
                    for k in r.keys {
                        out.extend(k.ids.into_iter().map(|i| Job::Redis(i.id)));
                    }
                }
                Ok(out)
            }
            Worker::Nats { consumer, .. } => {
                let mut msgs = consumer
                    .fetch()
                    .max_messages(batch)
                    .messages()
                    .await
                    .map_err(|e| format!("fetch: {e}"))?;
                let mut out = Vec::new();
                while let Some(m) = msgs.next().await {
                    out.push(Job::Nats(Box::new(
                        m.map_err(|e| format!("fetch msg: {e}"))?,
                    )));
                }
                Ok(out)
            }
        }
    }

    /// Acks every job; poison jobs (topics only) are nacked instead. Returns jobs acked.
    async fn ack(&mut self, jobs: Vec<Job>) -> Res<u64> {
        match self {
            Worker::Topics { c, topic, node } => {
                let (mut seqs, mut leases, mut bad) = (vec![], vec![], vec![]);
                for j in jobs {
                    if let Job::Topics { seq, lease, poison } = j {
                        if poison {
                            POISON_SEEN.fetch_add(1, Ordering::Relaxed);
                            bad.push(seq);
                        } else {
                            seqs.push(seq);
                            leases.push(lease);
                        }
                    }
                }
                if !bad.is_empty() {
                    let body = json!({"node": node, "seqs": bad});
                    c.post_json_retry(&format!("/v0/topics/{topic}/nack"), &body)
                        .await?;
                }
                if seqs.is_empty() {
                    return Ok(0);
                }
                let body = json!({"node": node, "seqs": seqs, "lease_ids": leases});
                let v = c
                    .post_json_retry(&format!("/v0/topics/{topic}/ack"), &body)
                    .await?;
                Ok(v["acked"].as_u64().ok_or("ack: no acked")?)
            }
            Worker::Redis { con, key, .. } => {
                let mut cmd = redis::cmd("XACK");
                cmd.arg(&*key).arg("g");
                for j in &jobs {
                    if let Job::Redis(id) = j {
                        cmd.arg(id);
                    }
                }
                let n: u64 = cmd.query_async(con).await?;
                Ok(n)
            }
            Worker::Nats { double, .. } => {
                let double = *double;
                let futs = jobs.into_iter().map(|j| async move {
                    match j {
                        Job::Nats(m) if double => m.double_ack().await.map(|_| 1u64),
                        Job::Nats(m) => m.ack().await.map(|_| 1u64),
                        _ => Ok(0),
                    }
                });
                let mut n = 0;
                for r in futures_util::future::join_all(futs).await {
                    n += r.map_err(|e| format!("ack: {e}"))?;
                }
                Ok(n)
            }
        }
    }
}

// ---------------------------------------------------------------- setup / preload

struct Cell {
    system: String,
    addr: String,
    name: String,
    workers: usize,
    batch: usize,
    jobs: u64,
    nats_double: bool,
}

async fn topics_create(addr: &str, name: &str, cfg: Value) -> Res<()> {
    let mut c = http::Client::connect(addr).await?;
    c.request_json("PUT", &format!("/v0/topics/{name}"), &cfg)
        .await?;
    Ok(())
}

async fn topics_preload(addr: &str, name: &str, n: u64, poison: bool) -> Res<()> {
    let mut c = http::Client::connect(addr).await?;
    let mut recs: Vec<Value> = Vec::new();
    if poison {
        recs.push(json!({"data": {"poison": true}}));
    }
    let mut i = 0;
    while i < n || !recs.is_empty() {
        while i < n && recs.len() < 1000 {
            let d: Value = serde_json::from_str(&payload(i)).unwrap();
            recs.push(json!({ "data": d }));
            i += 1;
        }
        let body = json!({ "records": std::mem::take(&mut recs) });
        c.post_json_retry(&format!("/v0/topics/{name}?return_seqs=false"), &body)
            .await?;
    }
    Ok(())
}

async fn setup(cell: &Cell, a: &Args) -> Res<Vec<Worker>> {
    let mut ws = Vec::new();
    match cell.system.as_str() {
        "topics" => {
            let cfg = json!({
                "type": "queue",
                "durability": a.s("durability", "disk"),
                "leases_durable": a.flag("leases-durable"),
            });
            topics_create(&cell.addr, &cell.name, cfg).await?;
            topics_preload(&cell.addr, &cell.name, cell.jobs, false).await?;
            for w in 0..cell.workers {
                ws.push(Worker::Topics {
                    c: http::Client::connect(&cell.addr).await?,
                    topic: cell.name.clone(),
                    node: format!("w{w}"),
                });
            }
        }
        "redis" => {
            let client = redis::Client::open(format!("redis://{}/", cell.addr))?;
            let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(None);
            let mut con = client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?;
            let mut i = 0;
            while i < cell.jobs {
                let mut p = redis::pipe();
                while i < cell.jobs && p.len() < 1000 {
                    p.cmd("XADD")
                        .arg(&cell.name)
                        .arg("*")
                        .arg("d")
                        .arg(payload(i))
                        .ignore();
                    i += 1;
                }
                p.query_async::<()>(&mut con).await?;
            }
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&cell.name)
                .arg("g")
                .arg("0")
                .query_async::<()>(&mut con)
                .await?;
            for w in 0..cell.workers {
                ws.push(Worker::Redis {
                    con: client
                        .get_multiplexed_async_connection_with_config(&cfg)
                        .await?,
                    key: cell.name.clone(),
                    consumer: format!("w{w}"),
                });
            }
        }
        "nats" => {
            use async_nats::jetstream::{self, consumer, stream};
            let nc = async_nats::connect(format!("nats://{}", cell.addr)).await?;
            let js = jetstream::new(nc);
            js.create_stream(stream::Config {
                name: cell.name.clone(),
                subjects: vec![cell.name.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("create stream: {e}"))?;
            let mut i = 0;
            while i < cell.jobs {
                let mut acks = Vec::new();
                while i < cell.jobs && acks.len() < 1000 {
                    let f = js
                        .publish(cell.name.clone(), payload(i).into())
                        .await
                        .map_err(|e| format!("publish: {e}"))?;
                    acks.push(f);
                    i += 1;
                }
                for f in acks {
                    f.await.map_err(|e| format!("publish ack: {e}"))?;
                }
            }
            let st = js
                .get_stream(&cell.name)
                .await
                .map_err(|e| format!("{e}"))?;
            st.create_consumer(consumer::pull::Config {
                durable_name: Some("w".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 100_000,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("create consumer: {e}"))?;
            for _ in 0..cell.workers {
                let nc = async_nats::connect(format!("nats://{}", cell.addr)).await?;
                let js = jetstream::new(nc);
                let st = js
                    .get_stream(&cell.name)
                    .await
                    .map_err(|e| format!("{e}"))?;
                let c: consumer::PullConsumer = st
                    .get_consumer("w")
                    .await
                    .map_err(|e| format!("get consumer: {e}"))?;
                ws.push(Worker::Nats {
                    consumer: Box::new(c),
                    double: cell.nats_double,
                });
            }
        }
        s => return Err(format!("unknown system {s}").into()),
    }
    Ok(ws)
}

async fn cleanup(cell: &Cell) -> Res<()> {
    match cell.system.as_str() {
        "topics" => {
            let mut c = http::Client::connect(&cell.addr).await?;
            c.request_json("DELETE", &format!("/v0/topics/{}", cell.name), &Value::Null)
                .await?;
            let _ = c
                .request_json(
                    "DELETE",
                    &format!("/v0/topics/{}.dlq", cell.name),
                    &Value::Null,
                )
                .await;
        }
        "redis" => {
            let client = redis::Client::open(format!("redis://{}/", cell.addr))?;
            let mut con = client.get_multiplexed_async_connection().await?;
            redis::cmd("DEL")
                .arg(&cell.name)
                .query_async::<()>(&mut con)
                .await?;
        }
        "nats" => {
            let nc = async_nats::connect(format!("nats://{}", cell.addr)).await?;
            let js = async_nats::jetstream::new(nc);
            js.delete_stream(&cell.name)
                .await
                .map_err(|e| format!("{e}"))?;
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------- the timed drain

/// No ack for this long ends a drain (reported with `"stalled": true`).
const STALL: Duration = Duration::from_secs(15);

struct Drain {
    stalled: bool,
    secs: f64,
    per_worker: Vec<u64>,
    claim_lat_us: Vec<u32>,
    empty_claims: u64,
    srv_cpu: f64,
    cli_cpu: f64,
    load: f64,
}

/// Runs the workers until `target` jobs are acked (and, if `until` is set, until it returns
/// true too). The clock stops at the ack that reaches `target`.
async fn drain(
    workers: Vec<Worker>,
    batch: usize,
    target: u64,
    server_pid: &str,
    until: Option<Arc<AtomicBool>>,
) -> Res<Drain> {
    let acked = Arc::new(AtomicU64::new(0));
    let end: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let (srv0, cli0) = (cpu_secs(server_pid), cpu_secs("self"));
    let t0 = Instant::now();
    // A drain that makes no progress for STALL ends anyway and is reported as stalled.
    let stalled = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (acked, stalled, finished) = (acked.clone(), stalled.clone(), finished.clone());
        tokio::spawn(async move {
            let (mut last, mut since) = (0, Instant::now());
            while !finished.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let now = acked.load(Ordering::Relaxed);
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() > STALL {
                    stalled.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    };
    let mut handles = Vec::new();
    for mut w in workers {
        let (acked, end, until) = (acked.clone(), end.clone(), until.clone());
        let stalled = stalled.clone();
        handles.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(1 << 14);
            let (mut mine, mut empty) = (0u64, 0u64);
            loop {
                let more = until.as_ref().is_some_and(|u| !u.load(Ordering::Relaxed));
                if (acked.load(Ordering::Relaxed) >= target && !more)
                    || stalled.load(Ordering::Relaxed)
                {
                    break;
                }
                let t = Instant::now();
                let jobs = w.claim(batch).await?;
                let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                if jobs.is_empty() {
                    empty += 1;
                    if matches!(w, Worker::Topics { .. }) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    continue;
                }
                lat.push(us);
                let n = w.ack(jobs).await?;
                mine += n;
                let prev = acked.fetch_add(n, Ordering::Relaxed);
                if prev < target && prev + n >= target {
                    *end.lock().unwrap() = Some(Instant::now());
                }
            }
            Ok::<_, BoxErr>((mine, lat, empty))
        }));
    }
    let mut d = Drain {
        stalled: false,
        secs: 0.0,
        per_worker: vec![],
        claim_lat_us: vec![],
        empty_claims: 0,
        srv_cpu: 0.0,
        cli_cpu: 0.0,
        load: loadavg1(),
    };
    for h in handles {
        let (mine, lat, empty) = h.await??;
        d.per_worker.push(mine);
        d.claim_lat_us.extend(lat);
        d.empty_claims += empty;
    }
    finished.store(true, Ordering::Relaxed);
    let _ = monitor.await;
    d.stalled = stalled.load(Ordering::Relaxed);
    let t_end = end.lock().unwrap().unwrap_or_else(Instant::now);
    d.secs = (t_end - t0).as_secs_f64();
    let wall = t0.elapsed().as_secs_f64();
    d.srv_cpu = (cpu_secs(server_pid) - srv0) / wall * 100.0;
    d.cli_cpu = (cpu_secs("self") - cli0) / wall * 100.0;
    d.load = d.load.max(loadavg1());
    d.claim_lat_us.sort_unstable();
    Ok(d)
}

fn share_stats(per_worker: &[u64], total: u64) -> (f64, f64) {
    let fair = total as f64 / per_worker.len() as f64;
    let max = *per_worker.iter().max().unwrap_or(&0) as f64;
    let min = *per_worker.iter().min().unwrap_or(&0) as f64;
    (max / fair, min / fair)
}

async fn cmd_drain(a: &Args) -> Res<()> {
    let system = a.s("system", "topics");
    let cell = Cell {
        name: unique("qb"),
        addr: a.s("addr", "127.0.0.1:4000"),
        workers: a.n("workers", 16) as usize,
        batch: a.n("batch", 1) as usize,
        jobs: a.n("jobs", 50_000),
        nats_double: a.s("nats-ack", "double") == "double",
        system,
    };
    let ws = setup(&cell, a).await?;
    let d = drain(ws, cell.batch, cell.jobs, &a.s("server-pid", "0"), None).await?;
    cleanup(&cell).await?;
    let total: u64 = d.per_worker.iter().sum();
    let (max_share, min_share) = share_stats(&d.per_worker, total);
    let out = json!({
        "kind": "drain",
        "label": a.s("label", &cell.system),
        "system": cell.system,
        "workers": cell.workers,
        "batch": cell.batch,
        "jobs": cell.jobs,
        "acked": total,
        "stalled": d.stalled,
        "secs": d.secs,
        "jobs_per_s": cell.jobs as f64 / d.secs,
        "claims": d.claim_lat_us.len(),
        "empty_claims": d.empty_claims,
        "claim_p50_ms": pct(&d.claim_lat_us, 0.50),
        "claim_p99_ms": pct(&d.claim_lat_us, 0.99),
        "server_cpu_pct": d.srv_cpu,
        "client_cpu_pct": d.cli_cpu,
        "load1": d.load,
        "max_share": max_share,
        "throttled_429": http::THROTTLED.load(Ordering::Relaxed),
        "min_share": min_share,
        "per_worker": d.per_worker,
    });
    println!("{out}");
    Ok(())
}

/// Good jobs plus (optionally) one job that every worker nacks, on a queue with
/// `max_deliveries` and a dead-letter topic. Measures good-job throughput and how often the
/// poison job was handed out before it was dead-lettered.
async fn cmd_poison(a: &Args) -> Res<()> {
    let addr = a.s("addr", "127.0.0.1:4000");
    let name = unique("qp");
    let dlq = format!("{name}.dlq");
    let workers = a.n("workers", 10) as usize;
    let batch = a.n("batch", 1) as usize;
    let jobs = a.n("jobs", 10_000);
    let poison = a.n("poison", 1) == 1;
    let maxd = a.n("max-deliveries", 5);
    let cfg = json!({
        "type": "queue",
        "durability": a.s("durability", "disk"),
        "max_deliveries": maxd,
        "dead_letter": dlq,
    });
    topics_create(&addr, &name, cfg).await?;
    topics_preload(&addr, &name, jobs, poison).await?;
    let mut ws = Vec::new();
    for w in 0..workers {
        ws.push(Worker::Topics {
            c: http::Client::connect(&addr).await?,
            topic: name.clone(),
            node: format!("w{w}"),
        });
    }
    // Keep draining after the good jobs until the poison job has left the queue.
    let gone = Arc::new(AtomicBool::new(!poison));
    let watcher = {
        let (gone, addr, name) = (gone.clone(), addr.clone(), name.clone());
        tokio::spawn(async move {
            let mut c = http::Client::connect(&addr).await?;
            let t0 = Instant::now();
            while !gone.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let v = c
                    .request_json("GET", &format!("/v0/topics/{name}"), &Value::Null)
                    .await?;
                if v["queue"]["dead_lettered"].as_u64().unwrap_or(0) >= 1 {
                    gone.store(true, Ordering::Relaxed);
                }
                if t0.elapsed() > Duration::from_secs(120) {
                    gone.store(true, Ordering::Relaxed);
                }
            }
            Ok::<_, BoxErr>(())
        })
    };
    let d = drain(ws, batch, jobs, &a.s("server-pid", "0"), Some(gone)).await?;
    watcher.await??;
    let mut c = http::Client::connect(&addr).await?;
    let st = c
        .request_json("GET", &format!("/v0/topics/{name}"), &Value::Null)
        .await?;
    let mut dl_deliveries = Value::Null;
    if poison {
        let body = json!({"from_seq": 0, "limit": 10});
        if let Ok(v) = c.post_json(&format!("/v0/topics/{dlq}/diff"), &body).await {
            if let Some(r) = v["records"].as_array().and_then(|r| r.first()) {
                dl_deliveries = r["meta"]["$dead_letter_deliveries"].clone();
            }
        }
    }
    // Poison deliveries = claims that returned it = nacks sent; counted by the server as
    // the `deliveries` of the job, which the claim response carries.
    let out = json!({
        "kind": "poison",
        "poison": poison,
        "workers": workers,
        "batch": batch,
        "jobs": jobs,
        "max_deliveries": maxd,
        "stalled": d.stalled,
        "good_acked": d.per_worker.iter().sum::<u64>(),
        "secs": d.secs,
        "good_jobs_per_s": jobs as f64 / d.secs,
        "claim_p99_ms": pct(&d.claim_lat_us, 0.99),
        "claims": d.claim_lat_us.len(),
        "queue_after": st["queue"],
        "dead_letter_meta_deliveries": dl_deliveries,
        "poison_deliveries": POISON_SEEN.load(Ordering::Relaxed),
        "server_cpu_pct": d.srv_cpu,
        "load1": d.load,
        "throttled_429": http::THROTTLED.load(Ordering::Relaxed),
    });
    let mut c = http::Client::connect(&addr).await?;
    c.request_json("DELETE", &format!("/v0/topics/{name}"), &Value::Null)
        .await?;
    let _ = c
        .request_json("DELETE", &format!("/v0/topics/{dlq}"), &Value::Null)
        .await;
    println!("{out}");
    Ok(())
}

/// How many times any worker was handed the poison job.
static POISON_SEEN: AtomicU64 = AtomicU64::new(0);

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        eprintln!("usage: peers load|hello|disk|drain|poison|summary|freeport ...");
        std::process::exit(2);
    };
    let a = Args::parse(&argv[1..]);
    // A load cell runs on one thread (like `wrk -t1`): the generator takes at most one of
    // the two cores. The servers and the queue workers get a runtime per core.
    let rt = match cmd.as_str() {
        "load" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .expect("tokio runtime");
    let r = rt.block_on(async {
        match cmd.as_str() {
            "load" => stream::cmd_load(&a).await,
            "hello" => hello::cmd_hello(&a).await,
            "disk" => disk::cmd_disk(&a),
            "drain" => cmd_drain(&a).await,
            "poison" => cmd_poison(&a).await,
            "summary" => summary::run(argv.get(1).map(String::as_str).unwrap_or("-")),
            "freeport" => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| println!("{}", a.port()))
                .map_err(Into::into),
            c => Err(format!("unknown subcommand {c}").into()),
        }
    });
    if let Err(e) = r {
        eprintln!("peers {cmd}: {e}");
        std::process::exit(1);
    }
}
