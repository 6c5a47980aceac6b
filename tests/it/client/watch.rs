//! `topics watch`: two topics as one NDJSON stream, each line a record plus its topic; after
//! the connection is cut it resumes with `Last-Event-ID`, losing and repeating nothing.

use super::{cli, Running};
use crate::harness::Server;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A TCP relay on loopback in front of the server whose open connections a test can cut,
/// as a network failure would (the server and the watch session stay up). While `drop_down`
/// is set it swallows what the server sends: events the server counts as sent that never
/// reach the client, which only `Last-Event-ID` can recover.
struct Relay {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    drop_down: Arc<AtomicBool>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::<Mutex<Vec<TcpStream>>>::default();
        let stop = Arc::new(AtomicBool::new(false));
        let drop_down = Arc::new(AtomicBool::new(false));
        let (c, st, dd) = (conns.clone(), stop.clone(), drop_down.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((down, _)) => pipe(down, upstream, &c, &dd),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay {
            addr,
            conns,
            stop,
            drop_down,
        }
    }

    /// Close every open connection (both sides).
    fn cut(&self) {
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}

fn pipe(
    down: TcpStream,
    upstream: SocketAddr,
    conns: &Mutex<Vec<TcpStream>>,
    drop_down: &Arc<AtomicBool>,
) {
    down.set_nonblocking(false).unwrap();
    let Ok(up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut all = conns.lock().unwrap();
    all.push(down.try_clone().unwrap());
    all.push(up.try_clone().unwrap());
    let (mut from, mut to) = (down.try_clone().unwrap(), up.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
    let (mut from, mut to, drop_down) = (up, down, drop_down.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !drop_down.load(Ordering::Relaxed) && to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Every line's `$seq`, per topic, in arrival order.
fn by_topic(lines: &[String]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let topic = v["topic"]
            .as_str()
            .unwrap_or_else(|| panic!("no topic: {l}"));
        out.entry(topic.to_string())
            .or_default()
            .push(v["$seq"].as_u64().unwrap());
    }
    out
}

#[test]
fn watch_multiplexes_two_topics_and_resumes_after_a_cut_connection() {
    let s = Server::start();
    s.write("a", json!([{"data": "a1"}]));
    s.write("b", json!([{"data": "b1"}, {"data": "b2"}]));
    let relay = Relay::start(s.addr);
    let mut cmd = cli(&s, &["watch", "a", "b=1"]);
    cmd.env("TOPICS_URL", format!("http://{}", relay.addr));
    let watch = Running::spawn(cmd);
    // `a` from its head (nothing old), `b` after seq 1.
    let first = watch.wait_stdout(1, Duration::from_secs(10));
    assert_eq!(
        serde_json::from_str::<Value>(&first[0]).unwrap(),
        json!({"topic": "b", "$seq": 2, "$ts": serde_json::from_str::<Value>(&first[0]).unwrap()["$ts"], "data": "b2"})
    );
    s.write("a", json!([{"data": "a2"}]));
    s.write("b", json!([{"data": "b3"}]));
    watch.wait_stdout(3, Duration::from_secs(10));

    // The server sends a3 but the client never gets it; then the connection dies.
    relay.drop_down.store(true, Ordering::Relaxed);
    s.write("a", json!([{"data": "a3"}]));
    std::thread::sleep(Duration::from_millis(300));
    relay.cut();
    relay.drop_down.store(false, Ordering::Relaxed);
    s.write("a", json!([{"data": "a4"}]));
    s.write("b", json!([{"data": "b4"}]));
    let lines = watch.wait_stdout(6, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(300)); // any duplicate would arrive by now
    let lines = if watch.stdout().len() > lines.len() {
        watch.stdout()
    } else {
        lines
    };
    let got = by_topic(&lines);
    assert_eq!(
        got["a"],
        vec![2, 3, 4],
        "nothing lost or repeated: {lines:?}"
    );
    assert_eq!(
        got["b"],
        vec![2, 3, 4],
        "nothing lost or repeated: {lines:?}"
    );
    assert!(
        watch.stderr().iter().any(|l| l.contains("reconnecting")),
        "the cut is reported: {:?}",
        watch.stderr()
    );
}

#[test]
fn watch_of_a_missing_topic_fails_at_once() {
    let s = Server::start();
    s.write("a", json!([{"data": 1}]));
    let (status, _, err) = super::run(cli(&s, &["watch", "a", "missing"]));
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("error: topic_not_found"), "{err}");
    let (status, _, err) = super::run(cli(&s, &["watch", "a=x"]));
    assert_eq!(status.code(), Some(2), "{err}");
}
