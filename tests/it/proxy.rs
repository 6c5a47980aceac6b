//! The reverse proxy of `docs/OPERATIONS.md`, for real: the nginx block of that document
//! (TLS lines dropped, ports filled in, a 1 KiB body limit) runs in front of the server, and
//! watch and `/work` streams pass through it unbuffered, heartbeats included; errors stay JSON,
//! also nginx's own (body too large, server down).
//! Needs Debian's `nginx`; prints a skip reason without it, and fails instead when
//! `TOPICS_REQUIRE_NGINX=1` (as `.ci/run` sets after installing it).

use crate::harness::sse::SseStream;
use crate::harness::{assert_error, Server, TempDir};
use serde_json::json;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx; killed (by PID) when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<String> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        let required = std::env::var("TOPICS_REQUIRE_NGINX").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "nginx is required (TOPICS_REQUIRE_NGINX=1) but not installed"
        );
        eprintln!("proxy: skipped: nginx not installed (apt-get install nginx)");
    }
    found.map(String::from)
}

/// The documented server block, made local: no TLS, no basic auth, our ports.
fn documented_config(upstream: SocketAddr, port: u16) -> String {
    let doc = include_str!("../../docs/OPERATIONS.md");
    let start = doc
        .find("```nginx\n")
        .expect("an nginx block in OPERATIONS.md")
        + 9;
    let block = &doc[start..start + doc[start..].find("```").unwrap()];
    block
        .lines()
        .filter(|l| !l.contains("ssl_") && !l.contains("http2 on"))
        .map(|l| {
            l.replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port};"))
                .replace("server 127.0.0.1:4000;", &format!("server {upstream};"))
                // Small enough for a test to exceed.
                .replace("client_max_body_size 64m;", "client_max_body_size 1k;")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn start_nginx(bin: &str, upstream: SocketAddr) -> Nginx {
    let dir = TempDir::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
         events {{}}\nhttp {{\naccess_log off;\nclient_body_temp_path {p}/body;\n\
         proxy_temp_path {p}/proxy;\nfastcgi_temp_path {p}/fcgi;\nuwsgi_temp_path {p}/uwsgi;\n\
         scgi_temp_path {p}/scgi;\n{}\n}}\n",
        documented_config(upstream, port)
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-e")
        .arg(dir.path().join("stderr.log"))
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not listen: {}",
            log(&dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
        addr,
        _dir: dir,
    }
}

fn log(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
}

/// Events written after the stream opened arrive through the proxy at once (a buffering
/// proxy would hold these few hundred bytes back), and so does the heartbeat.
#[test]
fn watch_streams_pass_the_documented_nginx_unbuffered_with_heartbeats() {
    let Some(bin) = nginx_binary() else { return };
    let s = Server::start();
    let nginx = start_nginx(&bin, s.addr);
    s.write("orders", json!([{"data": 0}]));
    let body = json!({"topics": {"orders": {"from_seq": 0}}, "heartbeat_ms": 1000});
    let wid = crate::harness::http::request(
        nginx.addr,
        "POST",
        "/v0/watch",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .expect(200)["wid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut sse = SseStream::open(nginx.addr, &format!("/v0/watch/{wid}"), &[]);
    assert_eq!(sse.status, 200);
    let quick = Duration::from_millis(1500);
    let (event, data, _) = sse.next_event(quick).unwrap();
    assert_eq!(
        (event.as_str(), &data["records"][0]["data"]),
        ("record", &json!(0))
    );
    for i in 1..=3 {
        s.write("orders", json!([{"data": i}]));
        loop {
            let (event, data, _) = sse
                .next_event(quick)
                .expect("an event held back by the proxy");
            if event == "record" {
                assert_eq!(data["records"][0]["data"], i);
                break;
            }
        }
    }
    let t0 = Instant::now();
    loop {
        match sse
            .next(Duration::from_secs(3))
            .expect("no heartbeat through the proxy")
        {
            crate::harness::sse::Item::Comment(c) if c == "hb" => break,
            _ => assert!(t0.elapsed() < Duration::from_secs(3)),
        }
    }
}

#[test]
fn work_streams_and_errors_pass_the_documented_nginx() {
    let Some(bin) = nginx_binary() else { return };
    let s = Server::start();
    let nginx = start_nginx(&bin, s.addr);
    s.put("/v0/topics/jobs", &json!({"type": "queue"}))
        .expect(201);
    let mut work = SseStream::open(nginx.addr, "/v0/topics/jobs/work?node=w&max=2", &[]);
    assert_eq!(work.status, 200);
    s.write("jobs", json!([{"data": "a"}]));
    let (event, data, _) = work.next_event(Duration::from_millis(1500)).unwrap();
    assert_eq!((event.as_str(), &data["data"]), ("job", &json!("a")));
    let missing = crate::harness::http::request(nginx.addr, "GET", "/v0/topics/nope", &[], b"");
    assert_error(&missing, 404, "topic_not_found");
}

#[test]
fn the_proxy_answers_its_own_refusals_as_json() {
    let Some(bin) = nginx_binary() else { return };
    let mut s = Server::start();
    let nginx = start_nginx(&bin, s.addr);
    let h = [("Content-Type", "application/json")];
    let big = format!(r#"{{"records":[{{"data":"{}"}}]}}"#, "x".repeat(4096));
    let r = crate::harness::http::request(nginx.addr, "POST", "/v0/topics/t", &h, big.as_bytes());
    assert_error(&r, 413, "payload_too_large");
    s.kill9();
    let r = crate::harness::http::request(nginx.addr, "GET", "/v0/topics", &[], b"");
    assert_error(&r, 503, "not_ready");
    assert_eq!(r.header("retry-after"), Some("1"));
}

/// Writes and a long-poll through the documented proxy: the long-poll parked in the server
/// is woken by a write sent through the same proxy.
#[test]
fn writes_and_long_polls_pass_the_documented_nginx() {
    let Some(bin) = nginx_binary() else { return };
    let s = Server::start();
    let nginx = start_nginx(&bin, s.addr);
    let h = [("Content-Type", "application/json")];
    let post = |path: &str, body: serde_json::Value| {
        crate::harness::http::request(nginx.addr, "POST", path, &h, body.to_string().as_bytes())
    };
    assert_eq!(
        post("/v0/topics/t", json!({"records":[{"data":1}]})).status,
        201
    );
    std::thread::scope(|sc| {
        let poll = sc.spawn(|| post("/v0/topics/t/diff", json!({"from_seq":1,"wait_ms":10000})));
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        assert_eq!(
            post("/v0/topics/t", json!({"records":[{"data":2}]})).status,
            200
        );
        let d = poll.join().unwrap().expect(200);
        assert_eq!(d["records"][0]["data"], 2);
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the long-poll was not woken"
        );
    });
}
