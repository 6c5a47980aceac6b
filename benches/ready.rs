//! Time-to-ready after `kill -9` as a function of total history and of the WAL tail written
//! since the last checkpoint, plus resident memory per stored record. Drives the real release
//! binary over loopback HTTP. Run with `cargo bench --bench ready` (env `HISTORY` and `TAILS`,
//! comma-separated record counts, override the defaults).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

struct Server {
    child: Child,
    addr: SocketAddr,
}

fn start(dir: &std::path::Path) -> (Server, Duration) {
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_topics"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn,topics::app=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn topics");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").expect("stderr");
        if let Some(a) = line.split("listening on ").nth(1) {
            break a.trim().parse().expect("address");
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    while request(addr, "GET", "/v0/ready", "").0 != 200 {
        std::thread::sleep(Duration::from_millis(2));
    }
    (Server { child, addr }, t0.elapsed())
}

fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body.as_bytes()))
        .is_err()
    {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

fn load(s: &Server, records: usize) {
    let rec = r#"{"data":{"k":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","i":1}}"#;
    let body = format!(r#"{{"records":[{}]}}"#, vec![rec; BATCH].join(","));
    for _ in 0..records.div_ceil(BATCH) {
        assert_eq!(request(s.addr, "POST", "/v0/topics/h", &body).0, 200);
    }
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, or `RssAnon` for the heap alone).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn counts(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // not a criterion/libtest bench: nothing to list under `cargo test --benches`
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
            let (mut s, _) = start(&dir);
            assert_eq!(
                request(s.addr, "PUT", "/v0/topics/h", r#"{"durability":"disk"}"#).0,
                201
            );
            load(&s, history);
            // A clean stop checkpoints the history; the tail is then WAL only.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(s.child.id().to_string())
                .status();
            let _ = s.child.wait();
            let (mut s2, _) = start(&dir);
            load(&s2, tail);
            let rss = status_kib(s2.child.id(), "VmRSS:") as f64 / 1024.0;
            let anon = status_kib(s2.child.id(), "RssAnon:") as f64 / 1024.0;
            std::thread::sleep(Duration::from_millis(100));
            s2.child.kill().unwrap();
            s2.child.wait().unwrap();
            let (mut s3, ready) = start(&dir);
            let per_m = anon / ((history + tail) as f64 / 1e6);
            println!(
                "| {history} | {tail} | {} | {rss:.0} | {anon:.0} | {per_m:.0} |",
                ready.as_millis()
            );
            s3.child.kill().unwrap();
            s3.child.wait().unwrap();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
