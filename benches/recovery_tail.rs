//! The first seconds after `kill -9` with a long WAL tail: a `disk` topic gets `TAIL` records
//! (default 3,000,000, ~100-byte JSON, batches of 1000) with checkpoints off, so all of them
//! are replayed from the WAL into RAM at the next start; the server is killed, restarted, and
//! from the moment it is ready one client alternates a `diff` of 1000 records from a random
//! cursor and a single-record write for `PROBE_SECS` (10) seconds, each on a fresh
//! connection. Prints time to ready, the latency of every probe request (p50, p99, max and how
//! many took over 50 ms), and the server's memory each second: heap (`RssAnon`) and
//! file-backed pages (`RssFile`: mapped segments, reclaimable page cache) apart.
//! `cargo bench --bench recovery_tail` (env `TAIL`, `PROBE_SECS`).

mod common;

use common::{env_usize, listing_only, load, request, status_kib, Server, RECORD};
use std::time::{Duration, Instant};

const SLOW_MS: f64 = 50.0;

/// Checkpoints effectively off: the whole tail stays in the WAL.
const CONFIG: &str =
    "[storage]\nsnapshot_wal_bytes = 1099511627776\nsnapshot_max_interval_ms = 86400000\n";

fn mib(pid: u32, field: &str) -> f64 {
    status_kib(pid, field) as f64 / 1024.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if listing_only() {
        return;
    }
    let tail = env_usize("TAIL", 3_000_000);
    let secs = env_usize("PROBE_SECS", 10) as u64;
    let dir = std::env::temp_dir().join(format!("topics-recovery-tail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.with_extension("toml");
    std::fs::write(&config, CONFIG).unwrap();
    let data = dir.join("data");
    let (s, _) = Server::start_with(&data, Some(&config));
    let put = request(s.addr, "PUT", "/v0/topics/h", r#"{"durability":"disk"}"#);
    assert_eq!(put.0, 201);
    load(s.addr, "h", tail);
    std::thread::sleep(Duration::from_millis(300)); // the disk class's WAL write lands
    s.kill9();
    let (s, ready) = Server::start_with(&data, Some(&config));
    let pid = s.pid();
    let anon_at_ready = mib(pid, "RssAnon:");
    let file_at_ready = mib(pid, "RssFile:");
    let one = format!(r#"{{"records":[{RECORD}]}}"#);
    let (mut lat, mut mem) = (Vec::new(), Vec::new());
    let (t0, mut next_sample, mut k) = (Instant::now(), 0u64, 0u64);
    let mut failed = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        if t0.elapsed() >= Duration::from_secs(next_sample) {
            mem.push((next_sample, mib(pid, "RssAnon:"), mib(pid, "RssFile:")));
            next_sample += 1;
        }
        k += 1;
        // A cheap spread of cursors over the whole recovered range.
        let from = (k * 7_919_993) % tail as u64;
        let t = Instant::now();
        let status = if k % 2 == 0 {
            let body = format!(r#"{{"from_seq":{from},"limit":1000}}"#);
            request(s.addr, "POST", "/v0/topics/h/diff", &body).0
        } else {
            request(s.addr, "POST", "/v0/topics/h", &one).0
        };
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        failed += u64::from(status != 200);
    }
    mem.push((secs, mib(pid, "RssAnon:"), mib(pid, "RssFile:")));
    let slow = lat.iter().filter(|&&l| l > SLOW_MS).count();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!("WAL tail {tail} records: ready after kill -9 in {} ms; at ready: heap (RssAnon) {anon_at_ready:.0} MiB, file-backed (RssFile) {file_at_ready:.0} MiB", ready.as_millis());
    println!();
    println!("| first {secs} s after ready | requests | failed | p50 ms | p99 ms | max ms | over {SLOW_MS} ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| diff limit 1000 and write b1, alternating | {} | {failed} | {:.2} | {:.2} | {:.2} | {slow} |",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1]
    );
    println!();
    println!("| seconds after ready | heap (RssAnon) MiB | file-backed (RssFile) MiB |");
    println!("|---:|---:|---:|");
    for (t, anon, file) in mem {
        println!("| {t} | {anon:.0} | {file:.0} |");
    }
    s.kill9();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&config);
}
