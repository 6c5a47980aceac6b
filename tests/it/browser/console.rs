//! The web console (docs/OPERATIONS.md, "Web console") in headless Chromium against a server
//! with an API key: the page asks for the key (a refused one asks again), lists the topics,
//! queue counters and router lag, tails a topic live, draws a tombstone as a gap row with its
//! exact range, and writes through its form. Same skip policy as the `EventSource` test.
//!
//! With `TOPICS_CONSOLE_SCREENSHOT=1` it keeps writing for a few seconds so the charts move,
//! then saves `docs/console.png`.

use super::webdriver::{tools, Browser};
use super::WAIT;
use crate::harness::http::Response;
use crate::harness::Server;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KEY: &str = "console-key";

/// A server that requires `KEY`, and requests that carry it.
struct Authed {
    server: Server,
}

impl Authed {
    fn start() -> Authed {
        Authed {
            server: Server::start_with_keys(KEY),
        }
    }

    /// A request with the key; expects 2xx.
    fn send(&self, method: &str, path: &str, body: Value) -> Response {
        let auth = format!("Bearer {KEY}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let r = self
            .server
            .req(method, path, &headers, body.to_string().as_bytes());
        let status = r.status;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {}",
            r.text()
        );
        r
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        self.send(method, path, body).json()
    }

    /// Write one record per item of `data`; returns the write's answer.
    fn write(&self, topic: &str, data: &[Value]) -> Value {
        let records: Vec<Value> = data.iter().map(|d| json!({ "data": d })).collect();
        self.call(
            "POST",
            &format!("/v0/topics/{topic}"),
            json!({ "records": records }),
        )
    }
}

/// Run `script` in the page until it returns something other than `null`/`false`; returns it.
fn wait_for(browser: &Browser, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = browser.exec(script, json!([]));
        if !v.is_null() && v != false {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "console: timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A script answering the text of `selector`'s first match, or `null`.
fn text_of(selector: &str) -> String {
    format!("const e = document.querySelector({selector:?}); return e ? e.textContent : null;")
}

/// Wait until `selector`'s text equals `want`.
fn wait_text(browser: &Browser, selector: &str, want: &str) {
    let script = format!(
        "const e = document.querySelector({selector:?}); \
         return e && e.textContent === {want:?} ? true : null;"
    );
    let what = format!(
        "{selector} to read {want:?} (it reads {:?})",
        browser.exec(&text_of(selector), json!([]))
    );
    wait_for(browser, &what, &script);
}

fn seed(s: &Authed) {
    s.call("PUT", "/v0/topics/orders", json!({ "durability": "fsync" }));
    s.call("PUT", "/v0/topics/sensor", json!({ "cap_records": 3 }));
    let queue = json!({ "type": "queue", "dead_letter": "jobs.dead", "max_deliveries": 3 });
    s.call("PUT", "/v0/topics/jobs", queue);
    let router = json!({ "source": "orders", "dest": "audit" });
    s.call("PUT", "/v0/routers/orders-%3Eaudit", router);
    s.write(
        "orders",
        &[
            json!({ "order": 1 }),
            json!({ "order": 2 }),
            json!({ "order": 3 }),
        ],
    );
    s.write("jobs", &[json!("a"), json!("b"), json!("c"), json!("d")]);
    s.call(
        "POST",
        "/v0/topics/jobs/claim",
        json!({ "node": "worker-1", "max": 1 }),
    );
}

/// The key dialog: a wrong key is refused and asked for again; the right one is kept.
fn enter_key(browser: &Browser) {
    wait_for(
        browser,
        "the key dialog",
        "return document.getElementById('key-dialog').open;",
    );
    browser.type_into("#key-input", "not-the-key");
    browser.click("#key-save");
    wait_for(
        browser,
        "the dialog to ask again after a refused key",
        "return document.getElementById('key-dialog').open \
         && document.getElementById('key-error').textContent !== '' ? true : null;",
    );
    browser.type_into("#key-input", KEY);
    browser.click("#key-save");
    wait_for(
        browser,
        "the dialog to close",
        "return !document.getElementById('key-dialog').open;",
    );
    let kept = browser.exec("return sessionStorage.getItem('topics.key');", json!([]));
    assert_eq!(kept, KEY, "the key is kept in session storage");
}

/// Topic list, queue counters and router lag as the page shows them.
fn check_panels(browser: &Browser) {
    let expected = [
        (
            r#"#topics tr[data-topic="orders"] td[data-col="class"]"#,
            "fsync",
        ),
        (
            r#"#topics tr[data-topic="orders"] td[data-col="head"]"#,
            "3",
        ),
        (
            r#"#topics tr[data-topic="sensor"] td[data-col="retention"]"#,
            "cap 3 rec",
        ),
        (
            r#"#topics tr[data-topic="jobs"] td[data-col="type"]"#,
            "queue",
        ),
        (r#"#queues tr[data-topic="jobs"] td[data-col="ready"]"#, "3"),
        (
            r#"#queues tr[data-topic="jobs"] td[data-col="in_flight"]"#,
            "1",
        ),
        (
            r#"#queues tr[data-topic="jobs"] td[data-col="dead_letter"]"#,
            "jobs.dead",
        ),
        (
            r#"#routers tr[data-router="orders->audit"] td[data-col="lag"]"#,
            "0",
        ),
        ("#ready", "ready"),
    ];
    for (selector, text) in expected {
        wait_text(browser, selector, text);
    }
}

/// Start the tail form on `topic` from `from` (empty: the head).
fn tail(browser: &Browser, topic: &str, from: &str) {
    browser.type_into("#tail-topic", topic);
    browser.type_into("#tail-from", from);
    browser.click("#tail-start");
    wait_for(
        browser,
        &format!("the tail of {topic} to catch up"),
        "return document.getElementById('tail-status').dataset.state === 'caught-up' ? true : null;",
    );
}

/// The texts of the tail's rows, in order: `#<seq> <data>` for records, the gap's text for gaps.
fn tail_rows(browser: &Browser) -> Vec<String> {
    let rows = browser.exec(
        "return [...document.querySelectorAll('#tail-log tr')].map(r => r.classList.contains('gap') \
         ? `gap ${r.dataset.gapFrom}-${r.dataset.gapTo} ${r.textContent}` \
         : `#${r.dataset.seq} ${r.querySelector('.data').textContent}`);",
        json!([]),
    );
    serde_json::from_value(rows).expect("an array of strings")
}

fn wait_rows(browser: &Browser, what: &str, want: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = tail_rows(browser);
        if rows == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "console: {what}: tail shows {rows:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The write form, on `sensor` while the tail shows `before`: its record (a number no double
/// holds) arrives after them as seq 11, and on the server, every digit kept.
fn write_through_form(s: &Authed, browser: &Browser, before: &[&str]) {
    browser.type_into("#write-topic", "sensor");
    browser.type_into(
        "#write-data",
        r#"{"via": "form", "n": 12345678901234567890}"#,
    );
    browser.click("#write-send");
    let result = wait_for(
        browser,
        "the write result",
        "const e = document.getElementById('write-result'); \
         return e.dataset.state === 'ok' || e.dataset.state === 'error' ? e.textContent : null;",
    );
    assert!(
        result.as_str().unwrap().contains(r#""first_seq": 11"#),
        "{result}"
    );
    // The number keeps every digit, through the server and on the page.
    let want = [before, &[r#"#11 {"via":"form","n":12345678901234567890}"#]].concat();
    wait_rows(browser, "the form's write", &want);
    let read = s.send("POST", "/v0/topics/sensor/diff", json!({ "from_seq": 10 }));
    let stored = r#""data":{"via":"form","n":12345678901234567890}"#;
    assert!(read.text().contains(stored), "{}", read.text());
}

#[test]
fn console_tails_live_writes_shows_gaps_and_writes_with_a_key() {
    let Some((chromium, chromedriver)) = tools() else {
        return;
    };
    let started = Instant::now();
    let s = Authed::start();
    seed(&s);
    let browser = Browser::launch(&chromium, &chromedriver);
    browser.set_window_size(1400, 1050);
    let url = format!("http://{}/", s.server.addr);
    browser.navigate(&url);
    enter_key(&browser);
    check_panels(&browser);

    // Live: tailing from the head shows nothing old, then the record the test writes.
    tail(&browser, "orders", "");
    assert_eq!(
        tail_rows(&browser),
        Vec::<String>::new(),
        "a tail from the head starts empty"
    );
    s.write("orders", &[json!({ "from": "test" })]);
    wait_rows(&browser, "the live write", &[r#"#4 {"from":"test"}"#]);

    // The charts: the scrape interval holding that write (to an `fsync` topic) saw a record and
    // at least one sync.
    for chart in ["chart-rate", "chart-fsync"] {
        let script = format!("return Number(document.getElementById('{chart}').dataset.peak) > 0;");
        wait_for(&browser, &format!("{chart} to show the write"), &script);
    }

    // A gap: 10 records into a topic that keeps 3, tailed from seq 0.
    let data: Vec<Value> = (1..=10).map(|i| json!(i)).collect();
    s.write("sensor", &data);
    tail(&browser, "sensor", "0");
    let gap = [
        "gap 1-7 seqs 1–7 lost: from_seq_too_old",
        "#8 8",
        "#9 9",
        "#10 10",
    ];
    wait_rows(&browser, "the gap", &gap);
    write_through_form(&s, &browser, &gap);

    // The key survives a reload of the tab: no dialog, data straight away.
    browser.navigate(&url);
    wait_text(
        &browser,
        r#"#topics tr[data-topic="sensor"] td[data-col="head"]"#,
        "11",
    );
    let open = browser.exec(
        "return document.getElementById('key-dialog').open;",
        json!([]),
    );
    assert_eq!(open, false, "no second key prompt in the same tab");

    if std::env::var("TOPICS_CONSOLE_SCREENSHOT").as_deref() == Ok("1") {
        screenshot(&s, &browser);
    }
    println!("console: done in {:?}", started.elapsed());
}

/// A representative picture for the docs: charts fed by uneven traffic, and a tail started
/// late from seq 0, so it opens with a gap and then receives live records.
fn screenshot(s: &Authed, browser: &Browser) {
    browser.set_window_size(1400, 1100);
    browser.type_into("#write-topic", "orders");
    browser.type_into("#write-data", r#"{"order": 77, "total": 19.9}"#);
    browser.type_into("#write-tag", "cust-42");
    let start = Instant::now();
    let mut tailing = false;
    for i in 0u64.. {
        let elapsed = start.elapsed();
        if elapsed > Duration::from_secs(24) {
            break;
        }
        if !tailing && elapsed > Duration::from_secs(19) {
            tail(browser, "sensor", "0");
            tailing = true;
        }
        // Bursts every few rounds, so the rate chart has a shape.
        let batch: Vec<Value> = (0..1 + (i % 7) * (i % 3))
            .map(|k| json!({ "order": 100 + i, "line": k, "total": 12.5 }))
            .collect();
        s.write("orders", &batch);
        if i % 3 == 0 {
            let reading = json!({ "probe": "p-7", "celsius": 20.0 + (i % 17) as f64 / 10.0 });
            let body = json!({ "records": [{ "data": reading, "tag": "hall-b" }] });
            s.call("POST", "/v0/topics/sensor", body);
        }
        if i % 5 == 0 {
            s.write("jobs", &[json!({ "job": i })]);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let png = browser.screenshot();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console.png");
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("console: screenshot saved to {}", path.display());
}
