//! Many watchers, a stalled watcher, wake-ups racing the end of drains, and shutdown.

use super::{collect_until, watch_open, write_each, T};
use crate::harness::sse::End;
use crate::harness::Server;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn one_writer_many_watchers_all_receive_everything_in_order() {
    let s = Server::start();
    s.write("x", json!([{ "data": 0 }]));
    s.write("y", json!([{ "data": 0 }]));
    let mut watchers: Vec<_> = (0..20)
        .map(|_| watch_open(&s, json!({ "topics": { "x": {}, "y": {} }, "limit": 7 })).1)
        .collect();
    for i in 0..40 {
        s.write("x", json!([{ "data": i }, { "data": i }]));
        s.write("y", json!([{ "data": i }]));
    }
    for sse in &mut watchers {
        let got = collect_until(sse, &[("x", 81), ("y", 41)]);
        assert_eq!(got["x"], (1..=81).collect::<Vec<u64>>());
        assert_eq!(got["y"], (1..=41).collect::<Vec<u64>>());
    }
}

#[test]
fn stalled_watcher_blocks_neither_the_writer_nor_other_watchers() {
    let s = Server::start();
    s.write("big", json!([{ "data": 0 }]));
    let (_, _stalled) = watch_open(&s, json!({ "topics": { "big": {} } })); // never read again
    let (_, mut live) = watch_open(&s, json!({ "topics": { "big": {} } }));
    let payload = "x".repeat(32 * 1024);
    let t0 = Instant::now();
    for _ in 0..300 {
        s.write("big", json!([{ "data": payload }])); // ~10 MB: far past any socket buffer
    }
    let wrote = t0.elapsed();
    let got = collect_until(&mut live, &[("big", 301)]);
    assert_eq!(got["big"], (1..=301).collect::<Vec<u64>>());
    assert!(wrote < Duration::from_secs(30), "writes took {wrote:?}");
    // A new watcher still gets everything while the stalled one holds its chunk.
    let (_, mut late) = watch_open(&s, json!({ "topics": { "big": { "from_seq": 290 } } }));
    assert_eq!(
        collect_until(&mut late, &[("big", 301)])["big"],
        (291..=301).collect::<Vec<u64>>()
    );
}

#[test]
fn appends_racing_the_end_of_drains_are_delivered_long_before_the_heartbeat() {
    let s = Server::start();
    s.write("r", json!([{ "data": 0 }]));
    let mut watchers: Vec<_> = (0..10)
        .map(|_| watch_open(&s, json!({ "topics": { "r": {} }, "heartbeat_ms": 60000 })).1)
        .collect();
    let mut head = 1;
    for round in 0..40 {
        // A burst: the last writes land while watchers are finishing the drains the first
        // ones caused. A wake-up lost there would surface only at the 60 s heartbeat.
        write_each(&s, "r", 3);
        head += 3;
        for (i, sse) in watchers.iter_mut().enumerate() {
            let t0 = Instant::now();
            loop {
                let (event, data, id) =
                    sse.next_event(Duration::from_secs(3)).unwrap_or_else(|e| {
                        panic!(
                            "round {round} watcher {i}: no frame for seq {head} within 3 s ({e:?})"
                        )
                    });
                if event == "caught-up" && super::cursor_of(&id)["r"] == head {
                    break;
                }
                assert!(data.is_object());
            }
            assert!(t0.elapsed() < Duration::from_secs(3));
        }
    }
}

#[test]
fn sigterm_ends_every_stream_with_the_error_frame_and_exits_promptly() {
    let mut s = Server::start();
    s.write("a", json!([{ "data": 1 }]));
    let mut streams: Vec<_> = (0..5)
        .map(|_| watch_open(&s, json!({ "topics": { "a": {} }, "heartbeat_ms": 60000 })).1)
        .collect();
    for sse in &mut streams {
        collect_until(sse, &[("a", 1)]);
        assert_eq!(sse.next_event(T).unwrap().0, "caught-up");
    }
    let t0 = Instant::now();
    let status = s.sigterm();
    let took = t0.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(5),
        "exit took {took:?} (drain is 10 s)"
    );
    for sse in &mut streams {
        let (event, data, id) = sse.next_event(T).unwrap();
        assert_eq!(event, "error");
        assert_eq!(data["code"], "server_shutting_down");
        assert!(data["message"].is_string());
        assert_eq!(super::cursor_of(&id)["a"], 1);
        assert_eq!(sse.next(T), Err(End::Eof));
    }
}

#[test]
fn sigterm_with_a_stalled_watcher_exits_by_the_drain_deadline() {
    let mut s = Server::start_with(&[], Some("[server]\ndrain_timeout_ms = 1500\n"));
    s.write("big", json!([{ "data": 0 }]));
    let (_, _stalled) = watch_open(&s, json!({ "topics": { "big": {} } })); // never read again
    let payload = "x".repeat(64 * 1024);
    for _ in 0..200 {
        s.write("big", json!([{ "data": payload }])); // fills the stalled socket's buffers
    }
    let t0 = Instant::now();
    let status = s.sigterm();
    let took = t0.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(6), "exit took {took:?}");
}
