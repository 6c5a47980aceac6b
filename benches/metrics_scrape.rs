//! The cost of one `GET /v0/metrics` scrape with many topics: the server gathers every topic's
//! state (and every queue's counters) per scrape. Drives the real release binary over
//! loopback HTTP. Run with `cargo bench --bench metrics_scrape` (env `TOPICS`, default 1000,
//! of which every tenth is a queue; `SCRAPES`, default 200).

mod common;

use common::{cpu_seconds, request, write_body, Server};
use std::time::{Duration, Instant};

fn env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn main() {
    if common::listing_only() {
        return;
    }
    let topics = env("TOPICS", 1000);
    let scrapes = env("SCRAPES", 200);
    let dir = std::env::temp_dir().join(format!("topics-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (s, _) = Server::start(&dir);
    let body = write_body(10);
    for i in 0..topics {
        let name = format!("t{i:05}");
        let config = match i % 10 {
            0 => r#"{"type":"queue"}"#,
            _ => r#"{"durability":"memory"}"#,
        };
        assert_eq!(
            request(s.addr, "PUT", &format!("/v0/topics/{name}"), config).0,
            201
        );
        let status = request(s.addr, "POST", &format!("/v0/topics/{name}"), &body).0;
        assert!(matches!(status, 200 | 201), "write: {status}");
    }
    // Start every queue actor once, so the first timed scrape is not the one that does.
    let (status, first) = request(s.addr, "GET", "/v0/metrics", "");
    assert_eq!(status, 200);
    let series = first.lines().filter(|l| l.contains("{topic=")).count();
    let mut times = Vec::with_capacity(scrapes);
    let cpu0 = cpu_seconds(s.pid());
    let t0 = Instant::now();
    let mut bytes = 0;
    for _ in 0..scrapes {
        let t = Instant::now();
        let (status, text) = request(s.addr, "GET", "/v0/metrics", "");
        times.push(t.elapsed());
        assert_eq!(status, 200);
        bytes = text.len();
    }
    let wall = t0.elapsed();
    let cpu = cpu_seconds(s.pid()) - cpu0;
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| topics | per-topic series | body (KiB) | p50 (ms) | p99 (ms) | max (ms) | server CPU per scrape (ms) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {topics} | {series} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        bytes / 1024,
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(*times.last().unwrap()),
        cpu * 1000.0 / scrapes as f64,
    );
    eprintln!("{scrapes} scrapes in {:.0} ms", ms(wall));
    s.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
