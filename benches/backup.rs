//! Online backup: how fast `POST /v0/backup` streams, and what it does to writes meanwhile.
//! A `disk` topic gets `RECORDS` records (default 2,000,000, ~100-byte JSON, batches of
//! 1000) and its seals settle; then one client writes single records back to back for
//! `PROBE_SECS` (3) seconds alone, and again while a backup streams to a reader that throws
//! the bytes away. Prints the archive size, the backup's wall time and MB/s, the server CPU it
//! took, and the single-record write latency (p50, p99, max) without and with the backup.
//! `cargo bench --bench backup` (env `RECORDS`, `PROBE_SECS`).

mod common;

use common::{cpu_seconds, env_usize, listing_only, load, request, Server, RECORD};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Single-record writes back to back until `stop` (or `secs`), each on a fresh connection;
/// their latencies in ms.
fn probe(addr: SocketAddr, secs: u64, stop: Option<Arc<AtomicBool>>) -> Vec<f64> {
    let body = format!(r#"{{"records":[{RECORD}]}}"#);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut lat = Vec::new();
    while Instant::now() < end && stop.as_ref().is_none_or(|s| !s.load(Ordering::Relaxed)) {
        let t = Instant::now();
        assert_eq!(request(addr, "POST", "/v0/topics/p", &body).0, 200);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat
}

fn summary(mut lat: Vec<f64>) -> String {
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    format!(
        "{} writes, p50 {:.3} ms, p99 {:.3} ms, max {:.2} ms",
        lat.len(),
        q(0.5),
        q(0.99),
        lat[lat.len() - 1]
    )
}

/// The whole backup response, counted and dropped: (archive bytes, seconds).
fn backup(addr: SocketAddr) -> (u64, f64) {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let head =
        "POST /v0/backup HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    s.write_all(head.as_bytes()).expect("request");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => panic!("backup read: {e}"),
        }
    }
    (total, t.elapsed().as_secs_f64())
}

fn main() {
    if listing_only() {
        return;
    }
    let records = env_usize("RECORDS", 2_000_000);
    let secs = env_usize("PROBE_SECS", 3) as u64;
    let dir = std::env::temp_dir().join(format!("topics-bench-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (server, _) = Server::start(&dir);
    let addr = server.addr;
    request(addr, "PUT", "/v0/topics/b", r#"{"durability":"disk"}"#);
    request(addr, "PUT", "/v0/topics/p", r#"{"durability":"disk"}"#);
    let t = Instant::now();
    load(addr, "b", records);
    println!(
        "loaded {records} records in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(3)); // seals settle
    println!("alone:          {}", summary(probe(addr, secs, None)));

    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        std::thread::spawn(move || probe(addr, 600, Some(stop)))
    };
    let cpu0 = cpu_seconds(server.pid());
    let (bytes, took) = backup(addr);
    let cpu = cpu_seconds(server.pid()) - cpu0;
    stop.store(true, Ordering::Relaxed);
    let during = prober.join().expect("prober");
    println!(
        "backup: {:.1} MB in {took:.2} s = {:.0} MB/s, server CPU {cpu:.2} s (incl. the prober's writes)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / took
    );
    println!("during backup:  {}", summary(during));
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
