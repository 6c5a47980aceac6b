//! Read-your-writes on router dests (API.md §12): every pass of a watch stream over a dest
//! first drives the routers feeding it to their source heads.

use super::{watch_open, T};
use crate::harness::sse::{Item, SseStream};
use crate::harness::{config_with, records, Server};
use serde_json::{json, Value};
use std::time::Instant;

/// The seqs of `dst` records until `upto` arrived; panics past `T` in all (heartbeats do not
/// extend the wait, unlike `collect_until`).
fn seqs_until(sse: &mut SseStream, upto: u64) -> Vec<u64> {
    let deadline = Instant::now() + T;
    let mut got = Vec::new();
    while got.last() < Some(&upto) {
        let left = deadline.saturating_duration_since(Instant::now());
        match sse.next(left) {
            Ok(Item::Event { event, data, .. }) if event == "record" => {
                let v: Value = serde_json::from_str(&data).unwrap();
                let recs = v["records"].as_array().unwrap().iter();
                got.extend(recs.map(|r| r["$seq"].as_u64().unwrap()));
            }
            Ok(_) => {}
            Err(e) => panic!("no record {upto} within {T:?} ({e:?}); got {got:?}"),
        }
    }
    got
}

/// The router is stalled on a full `discard:"reject"` dest, and with `router.tick_ms` at ten
/// minutes it retries on its own only long after the test gave up: whatever reaches the stream
/// was forwarded because a pass drove the router. The first pass (stream open) and a
/// heartbeat pass (nothing else wakes the stream) are both checked.
#[test]
fn each_pass_over_a_dest_drives_its_stalled_router_first() {
    let s = Server::start_with(&[], Some("[router]\ntick_ms = 600000\n"));
    let full = |cap: u64| config_with(json!({"cap_records": cap, "discard": "reject"}));
    s.create("dst", full(3));
    let router = json!({"source": "src", "dest": "dst"});
    s.put("/v0/routers/r", &router).expect(201);
    s.write("src", records(5));
    // A GET drives the router until it stalls: three copies fit.
    assert_eq!(s.get("/v0/routers/r").expect(200)["forwarded_total"], 3);
    s.create("dst", full(0));
    let body = json!({"topics": {"dst": {}}, "heartbeat_ms": 1000});
    let (_, mut sse) = watch_open(&s, body);
    assert_eq!(seqs_until(&mut sse, 5), [1, 2, 3, 4, 5]);

    // Room for one more copy: the router forwards it and stalls again, the stream's wake-up
    // pass drives it into the same wall. Then the cap goes, and only the heartbeat pass can
    // move the router before its ten-minute backoff ends.
    s.create("dst", full(6));
    s.write("src", records(3));
    assert_eq!(seqs_until(&mut sse, 6), [6]);
    s.create("dst", full(0));
    assert_eq!(seqs_until(&mut sse, 8), [7, 8]);
}
