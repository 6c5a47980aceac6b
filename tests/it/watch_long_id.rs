//! The longest valid `Last-Event-ID` (API.md §11, API.md §11): a watch session over the maximum
//! 256 topics with maximum-length (255-byte) names has an event id of ~90 KB, and ~95 KB with
//! 20-digit cursors. The server must accept such a header over HTTP/1.1 (what browsers and
//! reverse proxies speak upstream) and honour it: `docs/OPERATIONS.md` sizes proxy header
//! limits after this.

use crate::harness::sse::SseStream;
use crate::harness::Server;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn open(s: &Server, wid: &str, headers: &[(&str, &str)]) -> SseStream {
    let mut all = vec![("Accept", "text/event-stream")];
    all.extend_from_slice(headers);
    let sse = SseStream::open(s.addr, &format!("/v0/watch/{wid}"), &all);
    assert_eq!(sse.status, 200, "stream open failed");
    sse
}

/// Read until one `caught-up` per topic arrived; returns the `record` frames' (topic, seqs).
fn until_caught_up(sse: &mut SseStream, topics: usize) -> Vec<(String, Vec<u64>)> {
    let (mut caught_up, mut records) = (0, Vec::new());
    while caught_up < topics {
        let (event, data, _) = sse
            .next_event(T)
            .unwrap_or_else(|e| panic!("stream ended ({e:?}) after {caught_up} caught-up"));
        match event.as_str() {
            "caught-up" => caught_up += 1,
            "record" => {
                let seqs = data["records"].as_array().unwrap().iter();
                records.push((
                    data["topic"].as_str().unwrap().to_string(),
                    seqs.map(|r| r["$seq"].as_u64().unwrap()).collect(),
                ));
            }
            other => panic!("unexpected {other} event: {data}"),
        }
    }
    records
}

/// A server with 256 topics of 255-byte names, two records on the first and the last, and a
/// watch session over all of them; the topic names and the session's `wid`.
fn widest_session() -> (Server, Vec<String>, String) {
    let s = Server::start();
    let names: Vec<String> = (0..256)
        .map(|i| format!("{i:03}-{}", "x".repeat(251)))
        .collect();
    assert!(names.iter().all(|n| n.len() == 255));
    for name in &names {
        s.create(name, json!({}));
    }
    for name in [&names[0], &names[255]] {
        s.write(name, json!([{"data": 1}, {"data": 2}]));
    }
    let wid = s.watch_all(&names);
    (s, names, wid)
}

/// The widest id there is: every topic at a 20-digit cursor except the first, at 0.
fn widest_id(names: &[String]) -> String {
    let mut cursors: BTreeMap<&str, u64> = names.iter().map(|n| (n.as_str(), u64::MAX)).collect();
    cursors.insert(&names[0], 0);
    let id = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursors).unwrap());
    assert!(id.len() > 95_000, "id is {} bytes", id.len());
    id
}

#[test]
fn a_256_topic_last_event_id_of_95_kb_is_honoured_over_http1() {
    let (s, names, wid) = widest_session();
    let (first, last) = (&names[0], &names[255]);
    // Consume everything once: the session cursors are now 2 on `first` and `last`.
    let mut sse = open(&s, &wid, &[]);
    let got = until_caught_up(&mut sse, names.len());
    assert_eq!(
        got,
        [(first.clone(), vec![1, 2]), (last.clone(), vec![1, 2])]
    );
    drop(sse);
    // Resume with the widest id (no rewind but `first`: the cursor becomes min(session,
    // header)).
    let id = widest_id(&names);
    let mut sse = open(&s, &wid, &[("Last-Event-ID", &id)]);
    let got = until_caught_up(&mut sse, names.len());
    assert_eq!(
        got,
        [(first.clone(), vec![1, 2])],
        "the {}-byte Last-Event-ID rewound `first` and nothing else",
        id.len()
    );
}

/// A long id over HTTP/2 (h2c with prior knowledge, as Caddy's `versions h2c` upstream
/// speaks): a 35 KB `Last-Event-ID` naming 100 of the topics is accepted and honoured, where
/// hyper's default 16 KiB header-list limit would answer 431. (curl's HTTP/2 client will not
/// send a 90 KB header itself, so the 256-topic id is not tried here.) Uses curl; skipped with
/// a printed reason where curl has no HTTP/2.
#[test]
fn a_35_kb_last_event_id_is_honoured_over_http2() {
    let h2 = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("HTTP2"));
    if !h2 {
        eprintln!("watch_long_id: skipped: no curl with HTTP/2 on this machine");
        return;
    }
    let (s, names, wid) = widest_session();
    let cursors: BTreeMap<&str, u64> = names[..100].iter().map(|n| (n.as_str(), 0)).collect();
    let id = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursors).unwrap());
    assert!(id.len() > 34_000, "id is {} bytes", id.len());
    let url = format!("http://{}/v0/watch/{wid}", s.addr);
    let out = std::process::Command::new("curl")
        .args(["-sS", "-N", "--http2-prior-knowledge", "--max-time", "3"])
        .args(["-H", "Accept: text/event-stream", "-H"])
        .arg(format!("Last-Event-ID: {id}"))
        .args([
            "-w",
            "\nstatus=%{http_code} version=%{http_version}\n",
            &url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("status=200 version=2"), "{text}\n{err}");
    let first = format!(r#""topic":"{}""#, names[0]);
    assert!(
        text.contains("event: record") && text.contains(&first),
        "{text:.400}"
    );
}
