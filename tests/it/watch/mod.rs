//! Watch — multiplexed SSE (API.md §11): sessions, stream frames, resume, fan-out, shutdown.
//! Streams are read with the harness's SSE parser (`harness::sse`).

mod api;
mod fanout;
mod frames;
mod routers;
mod shared;

use crate::harness::sse::{End, Item, SseStream};
use crate::harness::Server;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub const T: Duration = Duration::from_secs(10);

/// Create a session; expects 200 and returns the body.
pub fn watch(s: &Server, body: Value) -> Value {
    s.post("/v0/watch", &body).expect(200)
}

/// Open the session's stream (Accept: text/event-stream) and consume the `retry` line.
pub fn open(s: &Server, wid: &str, extra: &[(&str, &str)]) -> SseStream {
    let mut headers = vec![("Accept", "text/event-stream")];
    headers.extend_from_slice(extra);
    let mut sse = SseStream::open(s.addr, &format!("/v0/watch/{wid}"), &headers);
    assert_eq!(sse.status, 200, "stream open failed");
    assert_eq!(
        sse.next(T),
        Ok(Item::Retry(2000)),
        "the stream starts with retry"
    );
    sse
}

/// Session + stream over `body`.
pub fn watch_open(s: &Server, body: Value) -> (String, SseStream) {
    let wid = watch(s, body)["wid"].as_str().unwrap().to_string();
    let sse = open(s, &wid, &[]);
    (wid, sse)
}

/// Decode an event id into its cursor map.
pub fn cursor_of(id: &str) -> BTreeMap<String, u64> {
    let raw = URL_SAFE_NO_PAD
        .decode(id)
        .unwrap_or_else(|e| panic!("id {id:?}: {e}"));
    serde_json::from_slice(&raw).unwrap()
}

/// Collect `record` seqs per topic until every topic in `want` reached its seq.
pub fn collect_until(sse: &mut SseStream, want: &[(&str, u64)]) -> BTreeMap<String, Vec<u64>> {
    let mut got: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let done = |got: &BTreeMap<String, Vec<u64>>| {
        want.iter()
            .all(|(t, seq)| got.get(*t).and_then(|v| v.last()) >= Some(seq))
    };
    while !done(&got) {
        let (event, data, _) = sse
            .next_event(T)
            .unwrap_or_else(|e| panic!("stream ended ({e:?}) with {got:?}, want {want:?}"));
        if event == "record" {
            let topic = data["topic"].as_str().unwrap().to_string();
            let seqs = data["records"].as_array().unwrap().iter();
            got.entry(topic)
                .or_default()
                .extend(seqs.map(|r| r["$seq"].as_u64().unwrap()));
        }
    }
    got
}

/// Write `n` records `{"data": i}` to `topic` one request per record.
pub fn write_each(s: &Server, topic: &str, n: usize) {
    for i in 0..n {
        s.write(topic, json!([{ "data": i }]));
    }
}

/// Expect the stream to end (EOF) within `T`, skipping nothing.
pub fn expect_eof(sse: &mut SseStream) {
    assert_eq!(sse.next(T), Err(End::Eof));
}
