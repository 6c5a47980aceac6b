//! Overload: far more concurrent writers than a small topic mailbox and WAL queue absorb get
//! `429 throttled` with `Retry-After: 1` (never a 5xx, never a hang), and every acknowledged
//! record is present afterwards.

use crate::harness::{http, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const TIGHT: &str = "[limits]\ntopic_mailbox = 2\n[storage]\nwal_queue_frames = 2\n";

#[test]
fn excess_writers_get_429_and_no_acked_write_is_lost() {
    let s = Server::start_with(&[], Some(TIGHT));
    s.create("t", json!({ "durability": "fsync" }));
    let addr = s.addr;
    let results: Vec<(Vec<(u64, Value)>, usize)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..24)
            .map(|w| {
                sc.spawn(move || {
                    let (mut acked, mut throttled) = (Vec::new(), 0);
                    for i in 0..40 {
                        let data = json!([w, i]);
                        let body =
                            serde_json::to_vec(&json!({ "records": [{ "data": data }] })).unwrap();
                        let r = http::request(
                            addr,
                            "POST",
                            "/v0/topics/t",
                            &[("Content-Type", "application/json")],
                            &body,
                        );
                        match r.status {
                            200 => acked.push((r.json()["first_seq"].as_u64().unwrap(), data)),
                            429 => {
                                assert_eq!(r.header("retry-after"), Some("1"));
                                assert_eq!(r.json()["error"]["code"], "throttled");
                                throttled += 1;
                            }
                            other => panic!("unexpected {other}: {}", r.text()),
                        }
                    }
                    (acked, throttled)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let throttled: usize = results.iter().map(|r| r.1).sum();
    let acked: BTreeMap<u64, Value> = results.into_iter().flat_map(|r| r.0).collect();
    assert!(
        throttled > 0,
        "24 writers against a mailbox of 2 must see back-pressure"
    );
    assert!(!acked.is_empty());
    let stored: BTreeMap<u64, Value> = s
        .read_all("t")
        .into_iter()
        .map(|r| (r["$seq"].as_u64().unwrap(), r["data"].clone()))
        .collect();
    for (seq, data) in &acked {
        assert_eq!(stored.get(seq), Some(data), "acked seq {seq}");
    }
    assert_eq!(
        stored.len(),
        acked.len(),
        "nothing but acked writes is visible"
    );
    assert_eq!(s.get("/v0/health").status, 200);
}
