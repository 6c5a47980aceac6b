//! Stream frames (API.md §11, API.md §11): records per topic in order, `caught-up`, ids as the full
//! cursor map, include flags and node filter, resume, tombstones, heartbeats, deletes.

use super::{collect_until, cursor_of, expect_eof, open, watch, watch_open, T};
use crate::harness::sse::Item;
use crate::harness::{config_with, Server};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn watch_stream_drains_topics_in_name_order_then_reports_caught_up() {
    let s = Server::start();
    s.write("b", json!([{ "data": "b1" }, { "data": "b2" }]));
    s.write(
        "a",
        json!([{ "data": 1, "node": "n1", "tag": "t", "meta": { "m": 1 } },
                        { "data": 2, "node": "skip-me" }, { "data": 3 }]),
    );
    let body = json!({ "topics": { "b": {}, "a": { "from_seq": 0 } }, "limit": 1, "node": ["skip-me"],
                       "include_tags": true, "include_meta": false, "include_data": true });
    let (_, mut sse) = watch_open(&s, body);
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (event, data, id) = sse.next_event(T).unwrap();
        seen.push((event, data, cursor_of(&id)));
    }
    let r0 = json!({ "topic": "a", "from_seq": 0, "head_seq": 3, "to_seq": 1,
        "records": [{ "$seq": 1, "$ts": seen[0].1["records"][0]["$ts"], "$node": "n1", "$tag": "t", "data": 1 }] });
    assert_eq!((seen[0].0.as_str(), &seen[0].1), ("record", &r0),);
    assert_eq!(seen[0].2, map(&[("a", 1), ("b", 0)]));
    assert_eq!(seen[1].0, "record");
    assert_eq!(
        (seen[1].1["from_seq"].as_u64(), seen[1].1["to_seq"].as_u64()),
        (Some(1), Some(3))
    );
    let r1 = json!([{ "$seq": 3, "$ts": seen[1].1["records"][0]["$ts"], "data": 3 }]);
    assert_eq!(seen[1].1["records"], r1, "seq 2 is skipped by node");
    assert_eq!(seen[2].0, "caught-up");
    assert_eq!(seen[2].1, json!({ "topic": "a", "head_seq": 3 }));
    assert_eq!(seen[2].2, map(&[("a", 3), ("b", 0)]));
    assert_eq!(
        (seen[3].0.as_str(), seen[3].1["topic"].as_str()),
        ("record", Some("b"))
    );
    assert_eq!(seen[4].1["records"][0]["data"], "b2");
    assert_eq!(seen[5].1, json!({ "topic": "b", "head_seq": 2 }));
    assert_eq!(seen[5].2, map(&[("a", 3), ("b", 2)]));
    // Live: appends arrive as records, each batch followed by caught-up again.
    s.write("b", json!([{ "data": "b3" }]));
    let (event, data, _) = sse.next_event(T).unwrap();
    assert_eq!(
        (event.as_str(), data["records"][0]["data"].clone()),
        ("record", json!("b3"))
    );
    assert_eq!(sse.next_event(T).unwrap().0, "caught-up");
}

#[test]
fn watch_include_data_false_drops_data() {
    let s = Server::start();
    s.write("a", json!([{ "data": 1, "meta": { "m": 1 } }]));
    let (_, mut sse) = watch_open(&s, json!({ "topics": { "a": {} }, "include_data": false }));
    let (_, data, _) = sse.next_event(T).unwrap();
    let rec = &data["records"][0];
    assert_eq!(rec.get("data"), None, "{rec}");
    assert_eq!(rec["meta"], json!({ "m": 1 }));
}

#[test]
fn watch_resume_with_last_event_id_has_no_gap_and_no_duplicate() {
    let s = Server::start();
    super::write_each(&s, "a", 12);
    let wid = watch(&s, json!({ "topics": { "a": {} }, "limit": 3 }))["wid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut sse = open(&s, &wid, &[]);
    let (mut got, mut last_id) = (Vec::new(), String::new());
    while got.len() < 6 {
        let (_, data, id) = sse.next_event(T).unwrap();
        got.extend(
            data["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["$seq"].as_u64().unwrap()),
        );
        last_id = id;
    }
    drop(sse); // the server has sent more frames than the client read
    super::write_each(&s, "a", 3);
    let mut resumed = open(&s, &wid, &[("Last-Event-ID", &last_id)]);
    got.extend(&collect_until(&mut resumed, &[("a", 15)])["a"]);
    assert_eq!(got, (1..=15).collect::<Vec<u64>>());
    drop(resumed);
    // An undecodable Last-Event-ID is ignored: the session cursor (15) stands.
    let mut again = open(&s, &wid, &[("Last-Event-ID", "%%%not-base64")]);
    let (event, data, _) = again.next_event(T).unwrap();
    assert_eq!(
        (event.as_str(), data),
        ("caught-up", json!({ "topic": "a", "head_seq": 15 }))
    );
}

#[test]
fn watch_tombstone_precedes_the_batch_and_moves_the_cursor_to_gap_to() {
    let s = Server::start();
    s.create("capped", config_with(json!({ "cap_records": 5 })));
    super::write_each(&s, "capped", 20);
    let (_, mut sse) = watch_open(&s, json!({ "topics": { "capped": { "from_seq": 2 } } }));
    let (event, data, id) = sse.next_event(T).unwrap();
    assert_eq!(event, "tombstone");
    assert_eq!(
        data,
        json!({ "topic": "capped", "reason": "from_seq_too_old", "gap_from": 3,
                              "gap_to": 15, "earliest_seq": 16, "head_seq": 20 })
    );
    assert_eq!(cursor_of(&id), map(&[("capped", 15)]));
    let (event, data, id) = sse.next_event(T).unwrap();
    assert_eq!(
        (
            event.as_str(),
            data["from_seq"].as_u64(),
            data["to_seq"].as_u64()
        ),
        ("record", Some(2), Some(20))
    );
    assert_eq!(data["records"][0]["$seq"], 16);
    assert_eq!(cursor_of(&id), map(&[("capped", 20)]));
}

#[test]
fn watch_idle_stream_sends_heartbeat_comments_without_id() {
    let s = Server::start_with(&[], Some("[watch]\nheartbeat_ms_min = 100\n"));
    s.write("a", json!([{ "data": 1 }]));
    let (_, mut sse) = watch_open(&s, json!({ "topics": { "a": {} }, "heartbeat_ms": 150 }));
    assert_eq!(sse.next_event(T).unwrap().0, "record");
    assert_eq!(sse.next_event(T).unwrap().0, "caught-up");
    let t0 = Instant::now();
    for _ in 0..2 {
        assert_eq!(sse.next(T), Ok(Item::Comment("hb".into())));
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn watch_reports_deleted_topics_and_ends_when_none_remain() {
    let s = Server::start();
    s.write("a", json!([{ "data": 1 }]));
    s.write("b", json!([{ "data": 1 }]));
    let (_, mut sse) = watch_open(&s, json!({ "topics": { "a": {}, "b": {} } }));
    collect_until(&mut sse, &[("a", 1), ("b", 1)]);
    assert_eq!(sse.next_event(T).unwrap().0, "caught-up");
    let t0 = Instant::now();
    s.delete("/v0/topics/a").expect(200);
    let (event, data, id) = sse.next_event(T).unwrap();
    assert_eq!(
        (event.as_str(), data),
        (
            "topic-deleted",
            json!({ "topic": "a", "head_seq": 0, "reason": "deleted" })
        )
    );
    assert_eq!(cursor_of(&id), map(&[("b", 1)]));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the delete wakes the stream"
    );
    s.delete("/v0/topics/b").expect(200);
    assert_eq!(sse.next_event(T).unwrap().0, "topic-deleted");
    expect_eof(&mut sse);
}

#[test]
fn watch_slow_consumer_gets_a_tombstone_with_the_diff_reason_not_a_disconnect() {
    let s = Server::start();
    s.create("lossy", config_with(json!({ "cap_records": 5 })));
    s.write("lossy", json!([{ "data": 0 }]));
    let (_, mut sse) = watch_open(&s, json!({ "topics": { "lossy": {} } }));
    assert_eq!(sse.next_event(T).unwrap().0, "record");
    assert_eq!(sse.next_event(T).unwrap().0, "caught-up");
    // Not reading while ~13 MB arrive: the stream stops pulling, retention passes its cursor.
    let payload = "x".repeat(64 * 1024);
    for _ in 0..200 {
        s.write("lossy", json!([{ "data": payload }]));
    }
    let mut reasons = Vec::new();
    loop {
        let (event, data, id) = sse.next_event(T).unwrap();
        match event.as_str() {
            "tombstone" => reasons.push(data["reason"].as_str().unwrap().to_string()),
            "caught-up" if cursor_of(&id)["lossy"] == 201 => break,
            _ => {}
        }
    }
    assert!(!reasons.is_empty(), "the slow consumer fell behind the cap");
    assert!(reasons.iter().all(|r| r == "cap"), "{reasons:?}");
}
