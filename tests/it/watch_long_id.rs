//! The longest valid `Last-Event-ID` (contract §9.3, §9.5): a watch session over the maximum
//! 256 topics with maximum-length (255-byte) names has an event id of ~90 KB, and ~95 KB with
//! 20-digit cursors. The server must accept such a header over HTTP/1.1 (what browsers and
//! reverse proxies speak upstream) and honour it: `docs/OPERATIONS.md` sizes proxy header
//! limits after this.

use crate::harness::sse::SseStream;
use crate::harness::Server;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
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

#[test]
fn a_256_topic_last_event_id_of_95_kb_is_honoured_over_http1() {
    let s = Server::start();
    let names: Vec<String> = (0..256)
        .map(|i| format!("{i:03}-{}", "x".repeat(251)))
        .collect();
    assert!(names.iter().all(|n| n.len() == 255));
    for name in &names {
        s.create(name, json!({}));
    }
    let (first, last) = (&names[0], &names[255]);
    for name in [first, last] {
        s.write(name, json!([{"data": 1}, {"data": 2}]));
    }
    let topics: Map<String, Value> = names.iter().map(|n| (n.clone(), json!({}))).collect();
    let wid = s
        .post("/v0/watch", &json!({ "topics": topics }))
        .expect(200)["wid"]
        .as_str()
        .unwrap()
        .to_string();

    // Consume everything once: the session cursors are now 2 on `first` and `last`.
    let mut sse = open(&s, &wid, &[]);
    let got = until_caught_up(&mut sse, names.len());
    assert_eq!(
        got,
        [(first.clone(), vec![1, 2]), (last.clone(), vec![1, 2])]
    );
    drop(sse);

    // Resume with the widest id there is: every topic at a 20-digit cursor (no rewind, as the
    // cursor becomes min(session, header)) except `first`, rewound to 0.
    let mut cursors: BTreeMap<&str, u64> = names.iter().map(|n| (n.as_str(), u64::MAX)).collect();
    cursors.insert(first, 0);
    let id = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursors).unwrap());
    assert!(id.len() > 95_000, "id is {} bytes", id.len());
    let mut sse = open(&s, &wid, &[("Last-Event-ID", &id)]);
    let got = until_caught_up(&mut sse, names.len());
    assert_eq!(
        got,
        [(first.clone(), vec![1, 2])],
        "the {}-byte Last-Event-ID rewound `first` and nothing else",
        id.len()
    );
}
