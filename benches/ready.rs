//! Time-to-ready after `kill -9` as a function of total history and of the WAL tail written
//! since the last checkpoint, plus resident memory per stored record. Drives the real release
//! binary over loopback HTTP. Run with `cargo bench --bench ready` (env `HISTORY` and `TAILS`,
//! comma-separated record counts, override the defaults).

mod common;

use common::{listing_only, request, status_kib, write_body, Server};
use std::time::Duration;

const BATCH: usize = 1000;

fn load(s: &Server, records: usize) {
    let body = write_body(BATCH);
    for _ in 0..records.div_ceil(BATCH) {
        assert_eq!(request(s.addr, "POST", "/v0/topics/h", &body).0, 200);
    }
}

fn counts(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    if listing_only() {
        return;
    }
    println!("| history records | WAL tail records | ready after kill -9 (ms) | RSS (MiB) | anon RSS (MiB) | anon RSS per 1M records (MiB) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for history in counts("HISTORY", "100000,1000000") {
        for tail in counts("TAILS", "0,100000,500000") {
            let dir = std::env::temp_dir().join(format!(
                "topics-ready-{}-{history}-{tail}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let (s, _) = Server::start(&dir);
            assert_eq!(
                request(s.addr, "PUT", "/v0/topics/h", r#"{"durability":"disk"}"#).0,
                201
            );
            load(&s, history);
            // A clean stop checkpoints the history; the tail is then WAL only.
            s.stop();
            let (s2, _) = Server::start(&dir);
            load(&s2, tail);
            let rss = status_kib(s2.pid(), "VmRSS:") as f64 / 1024.0;
            let anon = status_kib(s2.pid(), "RssAnon:") as f64 / 1024.0;
            std::thread::sleep(Duration::from_millis(100));
            s2.kill9();
            let (s3, ready) = Server::start(&dir);
            let per_m = anon / ((history + tail) as f64 / 1e6);
            println!(
                "| {history} | {tail} | {} | {rss:.0} | {anon:.0} | {per_m:.0} |",
                ready.as_millis()
            );
            s3.kill9();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
