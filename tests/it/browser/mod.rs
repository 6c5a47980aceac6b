//! The watch stream in a real browser `EventSource` (API.md §11): headless Chromium, driven
//! over ChromeDriver's plain HTTP/JSON WebDriver protocol with the harness's own HTTP client,
//! opens one `EventSource` on a session over 50 topics, sees every write, loses its connection
//! while frames are in flight and resumes by itself with `Last-Event-ID`: every written record
//! arrives exactly once, in seq order per topic.
//!
//! The browser reaches the server through a small TCP relay owned by the test, so the test can
//! (a) swallow the server's bytes for a while — frames the server sent (so its session cursor
//! moved past them) but the browser never saw — and (b) cut every live connection. Only the
//! browser's `Last-Event-ID` can then bring those records back. Two controls show the checks
//! bite: a stale `Last-Event-ID` (rewritten by the relay) must produce duplicates, a stripped
//! one must produce a gap.
//!
//! Chromium and ChromeDriver come from Debian (`chromium`, `chromium-driver`: `/usr/bin`, else
//! looked up on `PATH`); `TOPICS_CHROMIUM` and `TOPICS_CHROMEDRIVER` override the paths.
//! Without them the test prints `browser: skipped: chromium not installed` and passes, unless
//! `TOPICS_REQUIRE_BROWSER=1` (set by `.ci/run`) turns the skip into a failure.

/// The web console page, driven through the same `Browser`.
mod console;
mod relay;
mod webdriver;

use relay::{header_of, LastEventId, Relay};
use webdriver::{tools, Browser};

use crate::harness::http;
use crate::harness::Server;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TOPICS: usize = 50;
/// Generous bound for anything the browser has to receive (a reconnect alone takes 2 s).
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// What the page saw, and the audit
// ---------------------------------------------------------------------------------------------

/// One event the page recorded: `open`, `net-error`, or a server event with its `lastEventId`.
#[derive(Debug, Clone)]
struct Ev {
    kind: String,
    id: String,
    data: Value,
}

/// Injected once: one `EventSource` on the session (`arguments[0]`), every event pushed onto
/// `window.__ev`. With `arguments[1]` true the ids are left out of `__ev` (a 256-topic session
/// repeats a ~90 KB id on every frame) and only the newest is kept, in `window.__lastId`.
const OPEN_JS: &str = r#"
const [wid, compact] = arguments;
window.__ev = [];
window.__lastId = '';
const es = new EventSource('/v0/watch/' + wid);
window.__es = es;
es.addEventListener('open', () => window.__ev.push({kind: 'open', id: '', data: null}));
for (const kind of ['record', 'caught-up', 'tombstone', 'topic-deleted', 'error']) {
  es.addEventListener(kind, e => {
    if (e instanceof MessageEvent) {
      window.__lastId = e.lastEventId;
      const id = compact ? '' : e.lastEventId;
      window.__ev.push({kind, id, data: JSON.parse(e.data)});
    } else {
      window.__ev.push({kind: 'net-error', id: '', data: es.readyState});
    }
  });
}
return es.readyState;
"#;

/// The page's events, fetched incrementally.
struct Page<'a> {
    browser: &'a Browser,
    events: Vec<Ev>,
}

impl Page<'_> {
    fn poll(&mut self) {
        let new = self.browser.exec(
            "return window.__ev.slice(arguments[0]);",
            json!([self.events.len()]),
        );
        for e in new.as_array().expect("an array of events") {
            self.events.push(Ev {
                kind: e["kind"].as_str().unwrap_or_default().to_string(),
                id: e["id"].as_str().unwrap_or_default().to_string(),
                data: e["data"].clone(),
            });
        }
    }

    /// Poll until `check(events)` is `Ok`, or panic with `what` and its last `Err` after `WAIT`.
    fn wait(&mut self, what: &str, check: impl Fn(&[Ev]) -> Result<(), String>) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.poll();
            let Err(why) = check(&self.events) else {
                return;
            };
            assert!(
                Instant::now() < deadline,
                "browser: timed out waiting for {what}: {why}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }

    /// The `lastEventId` of the newest server event.
    fn last_id(&self) -> String {
        let last = self.events.iter().rev().find(|e| !e.id.is_empty());
        last.expect("no event with an id yet").id.clone()
    }
}

/// Record seqs per topic in arrival order, over `events`.
fn received(events: &[Ev]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "record") {
        let topic = e.data["topic"]
            .as_str()
            .expect("record frame without topic");
        let seqs = out.entry(topic.to_string()).or_default();
        for r in e.data["records"].as_array().expect("record frame records") {
            seqs.push(r["$seq"].as_u64().expect("record without $seq"));
        }
    }
    out
}

/// Everything wrong with `got` against `written` (topic → acknowledged seqs, ascending):
/// `duplicate`, `missing`, `unexpected` and `out-of-order` entries; empty when every written
/// record arrived exactly once and in order.
fn audit(got: &BTreeMap<String, Vec<u64>>, written: &BTreeMap<String, Vec<u64>>) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    let topics: BTreeSet<&String> = got.keys().chain(written.keys()).collect();
    for topic in topics {
        let got = got.get(topic).unwrap_or(&empty);
        let want = written.get(topic).unwrap_or(&empty);
        let mut seen = BTreeSet::new();
        for &s in got {
            if !seen.insert(s) {
                problems.push(format!("duplicate {topic}#{s}"));
            }
        }
        let want_set: BTreeSet<u64> = want.iter().copied().collect();
        for s in want_set.difference(&seen) {
            problems.push(format!("missing {topic}#{s}"));
        }
        for s in seen.difference(&want_set) {
            problems.push(format!("unexpected {topic}#{s}"));
        }
        if let Some(w) = got.windows(2).find(|w| w[1] <= w[0]) {
            problems.push(format!("out-of-order {topic}#{}..#{}", w[0], w[1]));
        }
    }
    problems
}

/// `Ok` once at least `n` events of `kind` arrived.
fn count_at_least(events: &[Ev], kind: &str, n: usize) -> Result<(), String> {
    let got = events.iter().filter(|e| e.kind == kind).count();
    if got >= n {
        return Ok(());
    }
    Err(format!("{got} of {n} `{kind}` events"))
}

/// `Ok` when `audit` finds nothing, else its first problems.
fn clean(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        return Ok(());
    }
    let shown = problems.len().min(12);
    Err(format!(
        "{} problems, first {shown}: {:?}",
        problems.len(),
        &problems[..shown]
    ))
}

/// Decode an event id: unpadded base64url JSON topic → cursor.
fn cursors(id: &str) -> BTreeMap<String, u64> {
    let bytes = URL_SAFE_NO_PAD
        .decode(id)
        .unwrap_or_else(|e| panic!("event id {id:?} is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("event id {id:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

/// Write `n` records to `topic` directly (not through the relay); returns their seqs.
fn write(addr: SocketAddr, topic: &str, n: usize, tag: &str) -> Vec<u64> {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"data": {"w": tag, "i": i}}))
        .collect();
    let body = serde_json::to_vec(&json!({ "records": records })).unwrap();
    let resp = http::request(
        addr,
        "POST",
        &format!("/v0/topics/{topic}"),
        &[("Content-Type", "application/json")],
        &body,
    );
    let v = resp.json();
    assert!(
        matches!(resp.status, 200 | 201),
        "write {topic}: {} {v}",
        resp.status
    );
    crate::harness::written_seqs(&v)
}

/// Wait until the relay swallowed a `record` frame reaching `heads[topic]` for every topic;
/// returns topic → the `to_seq` the server sent into the void.
fn wait_swallowed(relay: &Relay, heads: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut to: BTreeMap<String, u64> = BTreeMap::new();
        for e in relay.swallowed_events() {
            if e.kind == "record" {
                let topic = e.data["topic"].as_str().unwrap().to_string();
                let t = e.data["to_seq"].as_u64().unwrap();
                to.entry(topic)
                    .and_modify(|v| *v = (*v).max(t))
                    .or_insert(t);
            }
        }
        if heads.iter().all(|(t, h)| to.get(t) >= Some(h)) {
            return to;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stream the frozen writes: got {to:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn heads_of(written: &BTreeMap<String, Vec<u64>>) -> BTreeMap<String, u64> {
    written
        .iter()
        .map(|(t, s)| (t.clone(), *s.last().unwrap()))
        .collect()
}

#[test]
fn event_source_sees_every_write_and_resumes_with_last_event_id() {
    let Some((chromium, chromedriver)) = tools() else {
        return;
    };
    let started = Instant::now();
    let server = Server::start();
    let names: Vec<String> = (0..TOPICS)
        .map(|i| format!("browser:watch-{i:02}"))
        .collect();
    for name in &names {
        server.create(name, json!({}));
    }
    let relay = Relay::start(server.addr);
    let browser = Browser::launch(&chromium, &chromedriver);
    // Same origin as the stream, so the EventSource needs no CORS.
    browser.navigate(&format!("http://{}/v0/ready", relay.addr));

    let wid = server.watch_all(&names);
    browser.exec(OPEN_JS, json!([wid, false]));
    let mut page = Page {
        browser: &browser,
        events: Vec::new(),
    };
    page.wait(
        "the stream to open and report caught-up on every topic",
        |ev| count_at_least(ev, "caught-up", TOPICS),
    );

    // 1. Live: every write arrives, once, in order.
    let mut written: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for round in 0..2 {
        for (i, name) in names.iter().enumerate() {
            let seqs = write(server.addr, name, 1 + (i + round) % 3, "live");
            written.entry(name.clone()).or_default().extend(seqs);
        }
    }
    page.wait("every live write", |ev| {
        clean(audit(&received(ev), &written))
    });
    assert_eq!(page.count("open"), 1, "one connection so far");
    let live_id = page.last_id();

    // 2. In flight: the server streams one more record per topic, the relay swallows it (the
    //    session cursor moves past what the browser saw), then every connection is cut while
    //    writes go on. The browser reconnects by itself with `Last-Event-ID`.
    relay.freeze();
    for name in &names {
        let seqs = write(server.addr, name, 1, "frozen");
        written.get_mut(name).unwrap().extend(seqs);
    }
    let lost = wait_swallowed(&relay, &heads_of(&written));
    page.poll();
    let seen_id = page.last_id();
    assert_eq!(seen_id, live_id, "nothing reached the browser while frozen");
    let during: BTreeMap<String, Vec<u64>> = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            let until = Instant::now() + Duration::from_millis(3000);
            let mut i = 0;
            while Instant::now() < until {
                let name = &names[i % TOPICS];
                out.entry(name.clone())
                    .or_default()
                    .extend(write(server.addr, name, 1, "cut"));
                i += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            out
        });
        std::thread::sleep(Duration::from_millis(300));
        relay.cut();
        writer.join().unwrap()
    });
    for (name, seqs) in during {
        written.get_mut(&name).unwrap().extend(seqs);
    }
    page.wait("every write across the cut", |ev| {
        clean(audit(&received(ev), &written))
    });
    assert_eq!(
        page.count("open"),
        2,
        "exactly one reconnect: {:?}",
        page.events
            .iter()
            .filter(|e| e.kind != "record" && e.kind != "caught-up")
            .collect::<Vec<_>>()
    );
    let heads = relay.stream_heads(&wid);
    assert_eq!(heads.len(), 2, "two stream GETs: {heads:?}");
    assert_eq!(header_of(&heads[0], "last-event-id"), None);
    let resumed = header_of(&heads[1], "last-event-id")
        .unwrap_or_else(|| panic!("the reconnect carried no Last-Event-ID: {}", heads[1]));
    assert_eq!(
        resumed, seen_id,
        "the browser resumed from the last id it saw"
    );
    let resumed = cursors(&resumed);
    assert_eq!(resumed.len(), TOPICS, "the id covers every session topic");
    for (topic, to) in &lost {
        assert!(
            resumed[topic] < *to,
            "{topic}: resume cursor {} is not behind the swallowed to_seq {to}",
            resumed[topic]
        );
    }
    let total: usize = written.values().map(Vec::len).sum();
    println!(
        "browser: {total} records over {TOPICS} topics, each exactly once across a cut; \
         Last-Event-ID {} bytes",
        seen_id.len()
    );

    // 3. Control: a stale Last-Event-ID (the relay rewrites it) must show up as duplicates.
    relay.set_mode(LastEventId::Replace(live_id.clone()));
    let mark = page.events.len();
    relay.cut();
    let replayed: BTreeMap<String, Vec<u64>> = written
        .iter()
        .map(|(t, s)| {
            let from = cursors(&live_id)[t];
            (t.clone(), s.iter().copied().filter(|&q| q > from).collect())
        })
        .collect();
    page.wait("the replay after a stale Last-Event-ID", |ev| {
        clean(audit(&received(&ev[mark..]), &replayed))
    });
    let problems = audit(&received(&page.events), &written);
    let dups: Vec<&String> = problems
        .iter()
        .filter(|p| p.starts_with("duplicate "))
        .collect();
    let want: Vec<String> = replayed
        .iter()
        .flat_map(|(t, s)| s.iter().map(move |q| format!("duplicate {t}#{q}")))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        dups,
        want.iter().collect::<Vec<_>>(),
        "a stale id must show up as duplicates"
    );
    assert!(
        problems
            .iter()
            .all(|p| p.starts_with("duplicate ") || p.starts_with("out-of-order ")),
        "a stale id loses nothing: {problems:?}"
    );
    assert_eq!(page.count("open"), 3);

    // 4. Control: a stripped Last-Event-ID over swallowed frames must show up as a gap.
    relay.set_mode(LastEventId::Strip);
    relay.clear_swallowed();
    let mark = page.events.len();
    let mut after: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    relay.freeze();
    let mut gap = BTreeMap::new();
    for name in &names {
        gap.insert(name.clone(), write(server.addr, name, 1, "gap"));
    }
    wait_swallowed(&relay, &heads_of(&gap));
    relay.cut();
    page.wait("the third reconnect", |ev| count_at_least(ev, "open", 4));
    for name in &names {
        after.insert(name.clone(), write(server.addr, name, 1, "after"));
    }
    page.wait("the writes after the stripped reconnect", |ev| {
        let got = received(&ev[mark..]);
        match after
            .iter()
            .find(|(t, s)| !got.get(*t).is_some_and(|g| g.ends_with(s)))
        {
            None => Ok(()),
            Some((t, s)) => Err(format!("{t}: {s:?} not at the end of {:?}", got.get(t))),
        }
    });
    let mut expected = gap.clone();
    for (t, s) in &after {
        expected.get_mut(t).unwrap().extend(s);
    }
    let problems = audit(&received(&page.events[mark..]), &expected);
    let want: Vec<String> = gap
        .iter()
        .flat_map(|(t, s)| s.iter().map(move |q| format!("missing {t}#{q}")))
        .collect();
    assert_eq!(
        problems, want,
        "without Last-Event-ID the swallowed records must be a gap"
    );
    let heads = relay.stream_heads(&wid);
    assert!(
        header_of(&heads[3], "last-event-id").is_some(),
        "the browser did send an id (the relay stripped it)"
    );
    println!("browser: done in {:?}", started.elapsed());
}

/// The widest session there is: 256 topics with 255-byte names, so every frame carries a
/// ~90 KB id. Chromium keeps it and sends it back whole as `Last-Event-ID`, and the server
/// resumes from it (records swallowed before the cut arrive, once).
#[test]
fn a_90_kb_last_event_id_round_trips_through_the_browser() {
    let Some((chromium, chromedriver)) = tools() else {
        return;
    };
    let server = Server::start();
    let names: Vec<String> = (0..256)
        .map(|i| format!("{i:03}-{}", "x".repeat(251)))
        .collect();
    for name in &names {
        server.create(name, json!({}));
    }
    let (first, last) = (names[0].clone(), names[255].clone());
    let mut written = BTreeMap::from([(first.clone(), write(server.addr, &first, 2, "before"))]);
    let relay = Relay::start(server.addr);
    let browser = Browser::launch(&chromium, &chromedriver);
    browser.navigate(&format!("http://{}/v0/ready", relay.addr));
    let wid = server.watch_all(&names);
    browser.exec(OPEN_JS, json!([wid, true]));
    let mut page = Page {
        browser: &browser,
        events: Vec::new(),
    };
    page.wait("caught-up on all 256 topics", |ev| {
        count_at_least(ev, "caught-up", names.len())
    });
    page.wait("the records written before", |ev| {
        clean(audit(&received(ev), &written))
    });

    relay.freeze();
    for name in [&first, &last] {
        let seqs = write(server.addr, name, 1, "frozen");
        written.entry(name.clone()).or_default().extend(seqs);
    }
    wait_swallowed(&relay, &heads_of(&written));
    let seen_id = browser.exec("return window.__lastId;", json!([]));
    let seen_id = seen_id.as_str().unwrap().to_string();
    assert!(seen_id.len() > 85_000, "id is {} bytes", seen_id.len());
    relay.cut();
    page.wait("the swallowed records after the reconnect", |ev| {
        clean(audit(&received(ev), &written))
    });
    let heads = relay.stream_heads(&wid);
    assert_eq!(heads.len(), 2, "one reconnect");
    let resumed = header_of(&heads[1], "last-event-id");
    assert!(
        resumed.as_deref() == Some(seen_id.as_str()),
        "the reconnect must carry the whole {}-byte id; it carried {:?} bytes",
        seen_id.len(),
        resumed.map(|r| r.len())
    );
    assert_eq!(page.count("open"), 2);
    println!(
        "browser: a {}-byte Last-Event-ID round-tripped",
        seen_id.len()
    );
}

#[test]
fn audit_reports_gaps_duplicates_and_disorder() {
    let w = |v: &[u64]| BTreeMap::from([("t".to_string(), v.to_vec())]);
    assert!(audit(&w(&[1, 2, 3]), &w(&[1, 2, 3])).is_empty());
    assert_eq!(audit(&w(&[1, 3]), &w(&[1, 2, 3])), ["missing t#2"]);
    assert_eq!(
        audit(&w(&[1, 2, 2, 3]), &w(&[1, 2, 3])),
        ["duplicate t#2", "out-of-order t#2..#2"]
    );
    assert_eq!(
        audit(&w(&[2, 1, 3]), &w(&[1, 2, 3])),
        ["out-of-order t#2..#1"]
    );
    assert_eq!(audit(&w(&[1, 4]), &w(&[1])), ["unexpected t#4"]);
    let id = URL_SAFE_NO_PAD.encode(br#"{"a":1,"b":22}"#);
    assert_eq!(
        cursors(&id),
        BTreeMap::from([("a".into(), 1), ("b".into(), 22)])
    );
}
