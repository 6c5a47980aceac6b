//! Reads of a topic that writes outrun: `WRITERS` (8) clients write batches of 1000 ~100-byte
//! records into one `disk` topic as fast as it takes them for `DUR` (8) seconds, so its seals
//! fall behind and writes wait for them (`seal::Backlog`); meanwhile one client reads 100
//! records from a random cursor of that topic, back to back, each on a fresh connection.
//! Prints the write rate and the read latency (p50, p99, p99.9, max, how many took over
//! 50 ms).
//! `cargo bench --bench read_under_load` (env `WRITERS`, `DUR`; `TOPICS_BIN` for another
//! build).

mod common;

use common::{env_usize, listing_only, request, write_body, Server};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

/// A small xorshift: cursors spread over what exists, no dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn main() {
    if listing_only() {
        return;
    }
    let writers = env_usize("WRITERS", 8);
    let dur = Duration::from_secs(env_usize("DUR", 8) as u64);
    let dir = std::env::temp_dir().join(format!("topics-bench-rul-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (server, _) = Server::start(&dir);
    let addr = server.addr;
    request(addr, "PUT", "/v0/topics/h", r#"{"durability":"disk"}"#);
    let body = write_body(BATCH);
    for _ in 0..100 {
        assert_eq!(request(addr, "POST", "/v0/topics/h", &body).0, 200);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..writers {
        let (stop, written, body) = (stop.clone(), written.clone(), body.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if request(addr, "POST", "/v0/topics/h", &body).0 == 200 {
                    written.fetch_add(BATCH as u64, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut lat = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    while started.elapsed() < dur {
        let head = 100_000 + written.load(Ordering::Relaxed);
        let from = next(&mut rng) % head;
        let q = format!(r#"{{"from_seq":{from},"limit":100}}"#);
        let t = Instant::now();
        assert_eq!(request(addr, "POST", "/v0/topics/h/diff", &q).0, 200);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let slow = lat.iter().filter(|&&l| l > 50.0).count();
    println!(
        "writes {:.0} records/s; reads: {} in {secs:.1} s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.1} ms, max {:.1} ms, over 50 ms: {slow}",
        written.load(Ordering::Relaxed) as f64 / secs,
        lat.len(),
        q(0.5),
        q(0.99),
        q(0.999),
        lat[lat.len() - 1],
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
