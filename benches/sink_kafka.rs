//! Kafka sink cost (feature `kafka`; docs/BENCHMARKS.md "Kafka sinks"): records/s a sink
//! forwards into librdkafka's mock cluster, and the server CPU a sink adds per record.
//!
//! The mock cluster runs in its own process (`topics-kafka-mock`), so its CPU is not counted.
//! Per guarantee, three cells on fresh data directories:
//! - `writes`: N records written in batches of 1000 with no sink: the server's CPU for them;
//! - `live`: the same writes with a sink defined first, until the sink has them all: the
//!   server's CPU minus the `writes` cell is the sink's added CPU per record;
//! - `backlog`: N records written first, then the sink is defined: time until it has them all
//!   is the forwarding rate by itself.
//!
//! `SINK_BENCH_RECORDS` (default 200000) sets N; `SINK_BENCH_BATCH` the sink's
//! `batch_max_records` (default 500).

mod common;

use common::{cpu_seconds, request, write_body, Server};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const WRITE_BATCH: usize = 1000;

fn env_or(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The mock cluster process; killed when dropped.
struct Mock {
    child: Child,
    stdin: ChildStdin,
    replies: std::io::Lines<BufReader<std::process::ChildStdout>>,
    bootstrap: String,
}

impl Mock {
    fn start() -> Mock {
        let mut child = Command::new(env!("CARGO_BIN_EXE_topics-kafka-mock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn topics-kafka-mock");
        let stdin = child.stdin.take().expect("stdin");
        let mut replies = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = replies.next().expect("mock output").expect("mock line");
        let bootstrap = first.trim_start_matches("bootstrap ").to_string();
        Mock {
            child,
            stdin,
            replies,
            bootstrap,
        }
    }

    fn create(&mut self, topic: &str) {
        writeln!(self.stdin, "create {topic} 1").expect("mock stdin");
        let reply = self.replies.next().expect("mock reply").expect("mock line");
        assert_eq!(reply, "ok", "create {topic}");
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_all(addr: SocketAddr, n: usize) {
    let body = write_body(WRITE_BATCH);
    for _ in 0..n.div_ceil(WRITE_BATCH) {
        let (status, _) = request(addr, "POST", "/v0/topics/src", &body);
        assert!(status == 200 || status == 201, "write: {status}");
    }
}

fn put_sink(addr: SocketAddr, mock: &Mock, topic: &str, guarantee: &str, batch: usize) {
    let body = format!(
        r#"{{"source":"src","bootstrap_servers":"{}","kafka_topic":"{topic}","guarantee":"{guarantee}","progress_replication":1,"batch_max_records":{batch},"linger_ms":0}}"#,
        mock.bootstrap
    );
    let (status, text) = request(addr, "PUT", "/v0/sinks/s", &body);
    assert_eq!(status, 201, "PUT sink: {text}");
}

/// Wait until the sink's cursor reaches `n` (bounded).
fn wait_cursor(addr: SocketAddr, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let want = format!("\"cursor\":{n},");
    while !request(addr, "GET", "/v0/sinks/s", "").1.contains(&want) {
        assert!(Instant::now() < deadline, "sink never reached {n}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One cell on a fresh server: (server CPU seconds, wall seconds) of what it measures.
fn cell(kind: &str, guarantee: &str, n: usize, batch: usize, mock: &mut Mock) -> (f64, f64) {
    let dir = std::env::temp_dir().join(format!(
        "sink-bench-{}-{kind}-{guarantee}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let (server, _) = Server::start(&dir);
    let addr = server.addr;
    let topic = format!("bench-{kind}-{guarantee}");
    mock.create(&topic);
    if kind == "live" {
        put_sink(addr, mock, &topic, guarantee, batch);
    }
    let (cpu0, t0) = (cpu_seconds(server.pid()), Instant::now());
    write_all(addr, n);
    let measured = match kind {
        "writes" => (cpu_seconds(server.pid()) - cpu0, t0.elapsed().as_secs_f64()),
        "live" => {
            wait_cursor(addr, n);
            (cpu_seconds(server.pid()) - cpu0, t0.elapsed().as_secs_f64())
        }
        _ => {
            let (cpu1, t1) = (cpu_seconds(server.pid()), Instant::now());
            put_sink(addr, mock, &topic, guarantee, batch);
            wait_cursor(addr, n);
            (cpu_seconds(server.pid()) - cpu1, t1.elapsed().as_secs_f64())
        }
    };
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    measured
}

fn main() {
    if common::listing_only() {
        return;
    }
    let n = env_or("SINK_BENCH_RECORDS", 200_000);
    let batch = env_or("SINK_BENCH_BATCH", 500);
    let mut mock = Mock::start();
    mock.create("__topics_sink_progress");
    println!("N = {n} records of ~100 B, writes of {WRITE_BATCH}, sink batch_max_records {batch}");
    println!("| guarantee | writes: server CPU µs/rec | live: server CPU µs/rec | added by the sink µs/rec | live: records/s end to end | backlog: records/s forwarded | backlog: server CPU µs/rec |");
    println!("|---|---|---|---|---|---|---|");
    for guarantee in ["at_least_once", "exactly_once"] {
        let (w_cpu, _) = cell("writes", guarantee, n, batch, &mut mock);
        let (l_cpu, l_wall) = cell("live", guarantee, n, batch, &mut mock);
        let (b_cpu, b_wall) = cell("backlog", guarantee, n, batch, &mut mock);
        let per = |cpu: f64| cpu / n as f64 * 1e6;
        println!(
            "| {guarantee} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2} |",
            per(w_cpu),
            per(l_cpu),
            per(l_cpu - w_cpu),
            n as f64 / l_wall,
            n as f64 / b_wall,
            per(b_cpu),
        );
    }
}
