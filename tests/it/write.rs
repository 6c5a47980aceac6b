//! Write (API.md §5): seq assignment, response fields, auto-create rules, per-record limits.

use crate::harness::*;
use serde_json::{json, Value};

/// Small limits so boundary tests are cheap.
const SMALL_LIMITS: &str = "[limits]
max_batch_records = 3
max_record_bytes = 64
max_tag_bytes = 8
max_node_bytes = 8
max_meta_bytes = 32
max_meta_keys = 2
";

#[test]
fn batch_gets_contiguous_seqs_in_array_order() {
    let s = Server::start();
    let first = s.post(
        "/v0/topics/t",
        &json!({"records": [{"data": "a"}, {"data": "b"}, {"data": "c"}]}),
    );
    let body = first.expect(201);
    assert_eq!(body["topic"], "t");
    assert_eq!(body["first_seq"], 1);
    assert_eq!(body["last_seq"], 3);
    assert_eq!(body["seqs"], json!([1, 2, 3]));
    assert_eq!(body["head_seq"], 3);
    assert_eq!(body["count"], 3);
    assert_eq!(body["created"], true);
    assert_eq!(body["deduped"], false);
    assert_performance(&body);
    let second = s
        .post(
            "/v0/topics/t",
            &json!({"records": [{"data": "d"}, {"data": "e"}]}),
        )
        .expect(200);
    assert_eq!(second["seqs"], json!([4, 5]));
    assert_eq!(
        (second["first_seq"].as_u64(), second["last_seq"].as_u64()),
        (Some(4), Some(5))
    );
    assert_eq!(second["head_seq"], 5);
    assert_eq!(second["count"], 2);
    assert_eq!(second["created"], false);
    let d = s.diff("t", json!({}));
    let data = data_of(&d);
    assert_eq!(
        data,
        [
            &json!("a"),
            &json!("b"),
            &json!("c"),
            &json!("d"),
            &json!("e")
        ]
    );
    assert_eq!(seqs_of(&d), vec![1, 2, 3, 4, 5]);
}

#[test]
fn concurrent_writers_get_disjoint_contiguous_seqs() {
    let s = Server::start();
    s.create("t", json!({}));
    let all: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = &s;
                scope.spawn(move || {
                    (0..10)
                        .map(|_| {
                            let w = s.write("t", records(3));
                            let seqs = written_seqs(&w);
                            assert_eq!(seqs[2] - seqs[0], 2, "one batch is contiguous: {w}");
                            seqs
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut seqs: Vec<u64> = all.into_iter().flatten().collect();
    seqs.sort();
    assert_eq!(seqs, (1..=120).collect::<Vec<u64>>());
    assert_eq!(s.state("t")["head_seq"], 120);
}

#[test]
fn write_to_existing_topic_is_200_created_false() {
    let s = Server::start();
    s.create("t", json!({}));
    let body = s
        .post("/v0/topics/t", &json!({"records": [{"data": 1}]}))
        .expect(200);
    assert_eq!(body["created"], false);
    assert_eq!(body["seqs"], json!([1]));
}

#[test]
fn data_may_be_null_and_any_json() {
    let s = Server::start();
    let values = [
        json!(null),
        json!(0),
        json!(-1.5),
        json!("s"),
        json!([1, {"a": []}]),
        json!({"x": {"y": null}}),
        json!(true),
    ];
    let recs: Vec<Value> = values.iter().map(|v| json!({"data": v})).collect();
    s.write("t", Value::Array(recs));
    let d = s.diff("t", json!({}));
    let got: Vec<Value> = d["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"].clone())
        .collect();
    assert_eq!(got, values);
    assert!(
        d["records"][0].as_object().unwrap().contains_key("data"),
        "data present even when null"
    );
}

#[test]
fn performance_fields_follow_the_durability_class() {
    let s = Server::start();
    for (class, fsync_positive) in [
        ("ephemeral", false),
        ("memory", false),
        ("disk", false),
        ("fsync", true),
    ] {
        s.create(class, json!({"durability": class}));
        let body = s.write(class, records(2));
        let perf = &body["performance"];
        let wal = perf["wal_append_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{class}: wal_append_ms: {body}"));
        let fsync = perf["fsync_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{class}: fsync_ms: {body}"));
        assert!(
            perf["server_total_ms"].as_f64().is_some(),
            "{class}: {body}"
        );
        assert!(wal >= 0.0 && fsync >= 0.0, "{class}: {body}");
        if class == "ephemeral" {
            assert_eq!(wal, 0.0, "ephemeral never touches the WAL: {body}");
        }
        if fsync_positive {
            assert!(fsync > 0.0, "fsync class measures the real wait: {body}");
        } else {
            assert_eq!(
                fsync, 0.0,
                "{class}: fsync_ms is 0.0 unless class fsync: {body}"
            );
        }
        assert!(
            perf.get("throttle_wait_ms").is_none(),
            "reserved, never emitted: {body}"
        );
    }
}

#[test]
fn return_seqs_false_omits_seqs_only() {
    let s = Server::start();
    s.create("t", json!({}));
    for (q, has) in [
        ("return_seqs=false", false),
        ("return_seqs=0", false),
        ("return_seqs=true", true),
        ("return_seqs=1", true),
        ("return_seqs=junk", true),
    ] {
        let body = s
            .post(
                &format!("/v0/topics/t?{q}"),
                &json!({"records": [{"data": 1}, {"data": 2}]}),
            )
            .expect(200);
        assert_eq!(body.get("seqs").is_some(), has, "{q}: {body}");
        let first = body["first_seq"].as_u64().unwrap();
        assert_eq!(body["last_seq"].as_u64(), Some(first + 1), "{q}");
        assert_eq!(body["head_seq"].as_u64(), Some(first + 1), "{q}");
        assert_eq!(body["count"], 2, "{q}");
    }
}

#[test]
fn create_false_on_absent_topic_is_404_and_creates_nothing() {
    let s = Server::start();
    let resp = s.post(
        "/v0/topics/t",
        &json!({"create": false, "records": [{"data": 1}]}),
    );
    let err = assert_error(&resp, 404, "topic_not_found");
    assert_eq!(err["detail"], json!({"topic": "t"}));
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
    // On an existing topic `create` is irrelevant.
    s.create("t", json!({}));
    let body = s
        .post(
            "/v0/topics/t",
            &json!({"create": false, "records": [{"data": 1}]}),
        )
        .expect(200);
    assert_eq!(body["seqs"], json!([1]));
}

#[test]
fn inline_config_auto_create_false_prevents_creation_unless_create_true() {
    let s = Server::start();
    let resp = s.post(
        "/v0/topics/t",
        &json!({"config": {"auto_create": false}, "records": [{"data": 1}]}),
    );
    assert_error(&resp, 404, "topic_not_found");
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
    let body = s
        .post(
            "/v0/topics/t",
            &json!({"create": true, "config": {"auto_create": false}, "records": [{"data": 1}]}),
        )
        .expect(201);
    assert_eq!(body["created"], true);
    assert_eq!(s.state("t")["config"]["auto_create"], false);
}

#[test]
fn inline_config_is_used_only_when_the_write_creates_the_topic() {
    let s = Server::start();
    let cfg = json!({"durability": "ephemeral", "priority": 4, "dedupe_node": false});
    s.post(
        "/v0/topics/t",
        &json!({"config": cfg, "records": [{"data": 1}]}),
    )
    .expect(201);
    let want = config_with(json!({"durability": "ephemeral", "priority": 4, "dedupe_node": false}));
    assert_eq!(s.state("t")["config"], want);
    s.post(
        "/v0/topics/t",
        &json!({"config": {"priority": 99}, "records": [{"data": 2}]}),
    )
    .expect(200);
    assert_eq!(
        s.state("t")["config"],
        want,
        "config on an existing topic is ignored"
    );
}

#[test]
fn invalid_inline_config_is_400_and_creates_nothing() {
    let s = Server::start();
    let resp = s.post(
        "/v0/topics/t",
        &json!({"config": {"durability": "lots"}, "records": [{"data": 1}]}),
    );
    assert_error(&resp, 400, "invalid_request");
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
}

#[test]
fn auto_create_with_invalid_name_is_400_invalid_request() {
    let s = Server::start();
    let long = "x".repeat(256);
    for name in [
        "-a",
        "_a",
        ".a",
        "a%2Fb",
        "a%20b",
        "%C3%A9",
        "a%3Eb",
        long.as_str(),
    ] {
        let resp = s.post(
            &format!("/v0/topics/{name}"),
            &json!({"records": [{"data": 1}]}),
        );
        assert_error(&resp, 400, "invalid_request");
    }
    assert_eq!(s.get("/v0/topics").expect(200)["topics"], json!([]));
    let ok = "y".repeat(255);
    s.post(
        &format!("/v0/topics/{ok}"),
        &json!({"records": [{"data": 1}]}),
    )
    .expect(201);
}

#[test]
fn node_tag_and_meta_round_trip_with_record_node_overriding_batch_node() {
    let s = Server::start();
    let body = json!({"node": "eu-1", "records": [
        {"data": 1, "tag": "cust-42:order-9001", "meta": {"trace": "a1b2"}},
        {"data": 2, "node": "us-2"},
        {"data": 3},
    ]});
    s.write_body("t", body);
    s.write("t", json!([{"data": 4}]));
    let d = s.diff("t", json!({"include_tags": true}));
    let r = d["records"].as_array().unwrap();
    assert_eq!(r[0]["$node"], "eu-1");
    assert_eq!(r[0]["$tag"], "cust-42:order-9001");
    assert_eq!(r[0]["meta"], json!({"trace": "a1b2"}));
    assert_eq!(r[1]["$node"], "us-2");
    assert_eq!(r[2]["$node"], "eu-1");
    // Absent optional keys are omitted, never null.
    for (i, rec) in r.iter().enumerate() {
        let obj = rec.as_object().unwrap();
        for (k, v) in obj {
            assert!(
                !v.is_null() || k == "data",
                "record {i} has null {k}: {rec}"
            );
        }
    }
    assert!(
        r[1].get("$tag").is_none() && r[1].get("meta").is_none(),
        "{}",
        r[1]
    );
    let last = r[3].as_object().unwrap();
    let mut keys: Vec<&str> = last.keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["$seq", "$ts", "data"],
        "a bare record has only $seq, $ts, data: {}",
        r[3]
    );
}

#[test]
fn tag_node_and_meta_limits_are_inclusive_and_over_is_400_invalid_request() {
    let s = Server::start_with(&[], Some(SMALL_LIMITS));
    let ok = [
        json!({"records": [{"data": 1, "tag": "12345678"}]}),
        json!({"node": "12345678", "records": [{"data": 1}]}),
        json!({"records": [{"data": 1, "node": "12345678"}]}),
        json!({"records": [{"data": 1, "meta": {"a": 1, "b": 2}}]}),
        // Serialised meta exactly 32 bytes: "\"" + 30 x + "\"".
        json!({"records": [{"data": 1, "meta": "x".repeat(30)}]}),
    ];
    s.create("t", json!({}));
    for body in ok {
        s.post("/v0/topics/t", &body).expect(200);
    }
    let head = s.state("t")["head_seq"].as_u64().unwrap();
    assert_eq!(head, 5);
    let bad = [
        json!({"records": [{"data": 1, "tag": "123456789"}]}),
        json!({"node": "123456789", "records": [{"data": 1}]}),
        json!({"records": [{"data": 1, "node": "123456789"}]}),
        json!({"records": [{"data": 1, "meta": {"a": 1, "b": 2, "c": 3}}]}),
        json!({"records": [{"data": 1, "meta": "x".repeat(31)}]}),
        // Multi-byte characters count in bytes: 5 × 'é' = 10 bytes.
        json!({"records": [{"data": 1, "tag": "ééééé"}]}),
    ];
    for body in bad {
        assert_error(&s.post("/v0/topics/t", &body), 400, "invalid_request");
    }
    assert_eq!(
        s.state("t")["head_seq"],
        head,
        "rejected writes append nothing"
    );
}

#[test]
fn default_tag_and_node_limits_are_256_and_128_bytes() {
    let s = Server::start();
    s.write(
        "t",
        json!([{"data": 1, "tag": "t".repeat(256), "node": "n".repeat(128)}]),
    );
    assert_error(
        &s.post(
            "/v0/topics/t",
            &json!({"records": [{"data": 1, "tag": "t".repeat(257)}]}),
        ),
        400,
        "invalid_request",
    );
    assert_error(
        &s.post(
            "/v0/topics/t",
            &json!({"records": [{"data": 1, "node": "n".repeat(129)}]}),
        ),
        400,
        "invalid_request",
    );
    assert_error(
        &s.post(
            "/v0/topics/t",
            &json!({"node": "n".repeat(129), "records": [{"data": 1}]}),
        ),
        400,
        "invalid_request",
    );
    let meta: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!(1))).collect();
    assert_error(
        &s.post(
            "/v0/topics/t",
            &json!({"records": [{"data": 1, "meta": meta}]}),
        ),
        400,
        "invalid_request",
    );
    let meta: serde_json::Map<String, Value> =
        (0..64).map(|i| (format!("k{i}"), json!(1))).collect();
    s.write("t", json!([{"data": 1, "meta": meta}]));
    // 16384-byte serialised meta passes, 16385 fails.
    s.write("t", json!([{"data": 1, "meta": "m".repeat(16382)}]));
    assert_error(
        &s.post(
            "/v0/topics/t",
            &json!({"records": [{"data": 1, "meta": "m".repeat(16383)}]}),
        ),
        400,
        "invalid_request",
    );
    assert_eq!(s.state("t")["head_seq"], 3);
}

#[test]
fn batch_over_max_batch_records_is_400_batch_too_large() {
    let s = Server::start_with(&[], Some(SMALL_LIMITS));
    s.write("t", records(3));
    assert_error(
        &s.post("/v0/topics/t", &json!({"records": records(4)})),
        400,
        "batch_too_large",
    );
    assert_eq!(s.state("t")["head_seq"], 3);
}

#[test]
fn record_over_max_record_bytes_is_400_record_too_large_and_batch_is_atomic() {
    let s = Server::start_with(&[], Some(SMALL_LIMITS));
    // data "x"*62 serialises to 64 bytes: exactly the limit.
    s.write("t", json!([{"data": "x".repeat(62)}]));
    // data (32) + meta (32) = 64 bytes.
    s.write(
        "t",
        json!([{"data": "x".repeat(30), "meta": "y".repeat(30)}]),
    );
    assert_error(
        &s.post(
            "/v0/topics/t",
            &json!({"records": [{"data": "x".repeat(63)}]}),
        ),
        400,
        "record_too_large",
    );
    let both = json!({"records": [{"data": "x".repeat(31), "meta": "y".repeat(30)}]});
    assert_error(&s.post("/v0/topics/t", &both), 400, "record_too_large");
    let mixed = json!({"records": [{"data": 1}, {"data": "x".repeat(100)}]});
    assert_error(&s.post("/v0/topics/t", &mixed), 400, "record_too_large");
    assert_eq!(
        s.state("t")["head_seq"],
        2,
        "nothing of a rejected batch is appended"
    );
    assert_eq!(s.state("t")["count"], 2);
}

#[test]
fn default_max_record_bytes_is_1_mib() {
    let s = Server::start();
    s.write("t", json!([{"data": "x".repeat((1 << 20) - 2)}]));
    let resp = s.post(
        "/v0/topics/t",
        &json!({"records": [{"data": "x".repeat((1 << 20) - 1)}]}),
    );
    assert_error(&resp, 400, "record_too_large");
    assert_eq!(s.state("t")["head_seq"], 1);
}

#[test]
fn record_checks_run_before_topic_lookup() {
    let s = Server::start_with(&[], Some(SMALL_LIMITS));
    // Absent topic with create:false: the record check still wins over 404.
    let resp = s.post(
        "/v0/topics/t",
        &json!({"create": false, "records": [{"data": "x".repeat(100)}]}),
    );
    assert_error(&resp, 400, "record_too_large");
    let resp = s.post(
        "/v0/topics/t",
        &json!({"create": false, "records": [{"data": 1, "tag": "123456789"}]}),
    );
    assert_error(&resp, 400, "invalid_request");
    let resp = s.post(
        "/v0/topics/t",
        &json!({"create": false, "records": records(4)}),
    );
    assert_error(&resp, 400, "batch_too_large");
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
}

#[test]
fn rejected_writes_on_absent_topic_create_nothing() {
    let s = Server::start_with(&[], Some(SMALL_LIMITS));
    assert_error(
        &s.post(
            "/v0/topics/t",
            &json!({"records": [{"data": "x".repeat(100)}]}),
        ),
        400,
        "record_too_large",
    );
    assert_error(
        &s.post("/v0/topics/t", &json!({"records": []})),
        400,
        "invalid_request",
    );
    assert_error(
        &s.post("/v0/topics/t", &json!({"records": records(4)})),
        400,
        "batch_too_large",
    );
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
}

#[test]
fn malformed_records_are_400_invalid_request() {
    let s = Server::start();
    s.create("t", json!({}));
    for body in [
        json!({"records": []}),
        json!({}),
        json!({"records": null}),
        json!({"records": "x"}),
        json!({"records": {"data": 1}}),
        json!({"records": [1]}),
        json!({"records": [{"tag": "no data"}]}),
        json!({"records": [{"data": 1, "tag": 5}]}),
        json!({"records": [{"data": 1, "node": ["a"]}]}),
        json!({"node": 1, "records": [{"data": 1}]}),
        json!({"create": "yes", "records": [{"data": 1}]}),
        json!({"config": "fsync", "records": [{"data": 1}]}),
        json!({"idempotency_key": 5, "records": [{"data": 1}]}),
    ] {
        assert_error(&s.post("/v0/topics/t", &body), 400, "invalid_request");
    }
    assert_eq!(s.state("t")["head_seq"], 0);
}

#[test]
fn unknown_body_fields_and_disable_backpressure_are_ignored() {
    let s = Server::start();
    let body = json!({"disable_backpressure": true, "flavour": 1,
                      "records": [{"data": 1, "colour": "red"}]});
    let resp = s.post("/v0/topics/t", &body).expect(201);
    assert_eq!(resp["seqs"], json!([1]));
    let d = s.diff("t", json!({}));
    assert!(
        d["records"][0].get("colour").is_none(),
        "unknown record fields are not stored: {d}"
    );
}

#[test]
fn ts_is_server_commit_time_and_non_decreasing_in_seq() {
    let s = Server::start();
    let before = now_ms();
    for _ in 0..5 {
        s.write("t", records(2));
    }
    let after = now_ms();
    let d = s.diff("t", json!({}));
    let ts: Vec<i64> = d["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["$ts"].as_i64().unwrap())
        .collect();
    assert_eq!(ts.len(), 10);
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "$ts non-decreasing: {ts:?}"
    );
    assert!(
        ts[0] >= before - 1000 && ts[9] <= after + 1000,
        "$ts near now: {ts:?} vs [{before}, {after}]"
    );
}

#[test]
fn large_batch_at_default_max_batch_records_is_accepted() {
    let s = Server::start();
    let body = s.write("t", records(10_000));
    assert_eq!(
        (body["first_seq"].as_u64(), body["last_seq"].as_u64()),
        (Some(1), Some(10_000))
    );
    assert_eq!(body["seqs"].as_array().unwrap().len(), 10_000);
    assert_error(
        &s.post("/v0/topics/t", &json!({"records": records(10_001)})),
        400,
        "batch_too_large",
    );
    assert_eq!(s.state("t")["count"], 10_000);
}

#[test]
fn readers_never_see_a_partial_batch() {
    let s = Server::start();
    s.create("t", json!({}));
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..40 {
                s.write("t", records(10));
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
            let d = s.diff("t", json!({"limit": 1000}));
            let head = d["head_seq"].as_u64().unwrap();
            assert_eq!(head % 10, 0, "head_seq inside a batch: {head}");
            assert_eq!(
                seqs_of(&d),
                (1..=head).collect::<Vec<u64>>(),
                "records up to the head, no partial batch"
            );
            let st = s.state("t");
            let (h, c) = (
                st["head_seq"].as_u64().unwrap(),
                st["count"].as_u64().unwrap(),
            );
            assert!(
                h % 10 == 0 && c % 10 == 0,
                "state mid-batch: head {h} count {c}"
            );
            reads += 1;
        }
    });
    assert_eq!(s.state("t")["head_seq"], 400);
}

#[test]
fn create_true_on_existing_topic_is_a_plain_200_write() {
    let s = Server::start();
    s.create("t", json!({"priority": 1}));
    let body = s
        .post(
            "/v0/topics/t",
            &json!({"create": true, "config": {"priority": 2}, "records": [{"data": 1}]}),
        )
        .expect(200);
    assert_eq!(body["created"], false);
    assert_eq!(s.state("t")["config"]["priority"], 1);
}
