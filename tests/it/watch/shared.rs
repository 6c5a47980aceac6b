//! The shared read of many caught-up watchers: one append wakes every watcher of a topic at
//! the same cursor, and they must not each put a read in the topic's mailbox (a writer would
//! then meet a full mailbox and get 429).

use super::{collect_until, watch_open, T};
use crate::harness::Server;
use serde_json::json;

/// Room for a couple of commands only: 300 per-watcher reads of one append would overflow it.
const SMALL_MAILBOX: &str = "[limits]\ntopic_mailbox = 4\n";

#[test]
fn a_writer_is_never_throttled_by_300_caught_up_watchers_of_its_topic() {
    let s = Server::start_with(&[], Some(SMALL_MAILBOX));
    s.write("hot", json!([{ "data": 0 }]));
    let mut watchers: Vec<_> = (0..300)
        .map(|_| watch_open(&s, json!({ "topics": { "hot": {} } })).1)
        .collect();
    for sse in &mut watchers {
        // Caught up before the writes start: every later append wakes all 300 at one cursor.
        loop {
            let (event, _, _) = sse.next_event(T).expect("initial drain");
            if event == "caught-up" {
                break;
            }
        }
    }
    let mut throttled = 0u64;
    for i in 0..60 {
        let r = s.send_json(
            "POST",
            "/v0/topics/hot",
            &json!({ "records": [{ "data": i }] }),
        );
        match r.status {
            200 => {}
            429 => throttled += 1,
            other => panic!("write {i}: {other} {}", r.text()),
        }
    }
    // One read per append for all 300 (not 300 reads) leaves the 4-slot mailbox free; a rare
    // extra read (a watcher whose wake-up outran the shared batch reads once on its own) can
    // still meet a write there on a loaded machine. Reads per watcher gave 16 of 60.
    assert!(
        throttled <= 5,
        "{throttled} of 60 writes throttled by watcher reads"
    );
    // The shared batches reach every watcher: seq 1 came with the initial drain, and every
    // write that was not throttled got the next seq.
    let head = 1 + (60 - throttled);
    for sse in watchers.iter_mut().step_by(37) {
        assert_eq!(
            collect_until(sse, &[("hot", head)])["hot"],
            (2..=head).collect::<Vec<u64>>()
        );
    }
}

#[test]
fn watchers_with_different_read_options_never_share_a_batch() {
    let s = Server::start();
    s.write("k", json!([{ "data": "x", "tag": "t" }]));
    let body = |extra: serde_json::Value| {
        let mut b = json!({ "topics": { "k": { "from_seq": 1 } } });
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        watch_open(&s, b).1
    };
    let mut plain = body(json!({}));
    let mut no_data = body(json!({ "include_data": false }));
    let mut tagged = body(json!({ "include_tags": true }));
    let mut limited = body(json!({ "limit": 1 }));
    s.write("k", json!([{ "data": "y", "tag": "t" }, { "data": "z" }]));
    let first = |sse: &mut crate::harness::sse::SseStream| loop {
        let (event, data, _) = sse.next_event(T).expect("record");
        if event == "record" {
            return data["records"].as_array().unwrap().clone();
        }
    };
    let p = first(&mut plain);
    assert_eq!(
        (p.len(), &p[0]["data"], p[0].get("$tag")),
        (2, &json!("y"), None)
    );
    let d = first(&mut no_data);
    assert_eq!((d.len(), d[0].get("data")), (2, None));
    assert_eq!(first(&mut tagged)[0]["$tag"], json!("t"));
    assert_eq!(first(&mut limited).len(), 1);
}
