//! Topic lifecycle (API.md §4): PUT create/replace, GET state, DELETE, list + pagination.

use crate::harness::*;
use base64::Engine as _;
use serde_json::{json, Value};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ---- PUT ----

#[test]
fn put_absent_topic_with_empty_body_creates_it_with_201_and_full_default_config() {
    let s = Server::start();
    // Empty body means `{}` for PUT, no Content-Type needed (API.md §1).
    let resp = s.req("PUT", "/v0/topics/orders", &[], b"");
    let body = resp.expect(201);
    assert!(
        resp.is_json(),
        "content-type {:?}",
        resp.header("content-type")
    );
    assert_eq!(body["topic"], "orders");
    assert_eq!(body["created"], true);
    assert_eq!(
        body["config"],
        default_config(),
        "all 17 fields with their defaults"
    );
    assert_eq!(body["config"].as_object().unwrap().len(), 17);
    assert_performance(&body);
}

#[test]
fn put_with_json_empty_object_creates_topic() {
    let s = Server::start();
    let body = s.put("/v0/topics/a", &json!({})).expect(201);
    assert_eq!(body["created"], true);
    assert_eq!(body["config"], default_config());
    assert_eq!(s.state("a")["config"], default_config());
}

#[test]
fn put_echoes_given_fields_and_spec_example_config() {
    let s = Server::start();
    let req =
        json!({"ttl_ms": 86400000, "cap_records": 1000000, "durability": "fsync", "priority": 10});
    let body = s.put("/v0/topics/orders", &req).expect(201);
    let want = config_with(json!({
        "ttl_ms": 86400000, "cap_records": 1000000, "durability": "fsync", "durable": true, "priority": 10
    }));
    assert_eq!(body["config"], want);
    assert_eq!(s.state("orders")["config"], want);
}

#[test]
fn put_existing_topic_replaces_config_and_omitted_fields_revert_to_defaults() {
    let s = Server::start();
    let first = json!({"ttl_ms": 5000, "priority": 7, "dedupe_node": false, "durability": "fsync",
                       "auto_create": false, "max_deliveries": 3});
    s.put("/v0/topics/t", &first).expect(201);
    let body = s
        .put("/v0/topics/t", &json!({"cap_records": 10}))
        .expect(200);
    assert_eq!(body["created"], false);
    assert_eq!(body["topic"], "t");
    let want = config_with(json!({"cap_records": 10}));
    assert_eq!(
        body["config"], want,
        "nothing is merged with the stored values"
    );
    assert_eq!(s.state("t")["config"], want);
}

#[test]
fn put_replace_keeps_records_and_head() {
    let s = Server::start();
    s.write("t", records(3));
    s.put("/v0/topics/t", &json!({"priority": 1})).expect(200);
    let st = s.state("t");
    assert_eq!(
        (st["head_seq"].as_u64(), st["count"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(seqs_of(&s.diff("t", json!({}))), vec![1, 2, 3]);
}

#[test]
fn identical_put_is_a_200_no_op() {
    let s = Server::start();
    let cfg = json!({"ttl_ms": 1000, "priority": -3});
    let created = s.put("/v0/topics/t", &cfg).expect(201);
    let again = s.put("/v0/topics/t", &cfg).expect(200);
    assert_eq!(again["created"], false);
    assert_eq!(again["config"], created["config"]);
}

#[test]
fn durable_and_durability_are_normalised_both_ways() {
    let s = Server::start();
    let cases = [
        (json!({}), "disk", false),
        (json!({"durable": true}), "fsync", true),
        (json!({"durable": false}), "disk", false),
        (json!({"durability": "fsync"}), "fsync", true),
        (json!({"durability": "disk"}), "disk", false),
        (json!({"durability": "memory"}), "memory", false),
        (json!({"durability": "ephemeral"}), "ephemeral", false),
        // Explicit durability wins over the alias.
        (
            json!({"durability": "disk", "durable": true}),
            "disk",
            false,
        ),
        (
            json!({"durability": "fsync", "durable": false}),
            "fsync",
            true,
        ),
        (
            json!({"durability": "ephemeral", "durable": true}),
            "ephemeral",
            false,
        ),
    ];
    for (i, (input, durability, durable)) in cases.iter().enumerate() {
        let topic = format!("t{i}");
        let body = s.put(&format!("/v0/topics/{topic}"), input).expect(201);
        assert_eq!(body["config"]["durability"], *durability, "input {input}");
        assert_eq!(body["config"]["durable"], *durable, "input {input}");
        let st = s.state(&topic);
        assert_eq!(
            st["config"]["durability"], *durability,
            "stored, input {input}"
        );
        assert_eq!(st["config"]["durable"], *durable, "stored, input {input}");
    }
}

#[test]
fn put_can_change_durability_class() {
    let s = Server::start();
    s.put("/v0/topics/t", &json!({"durability": "ephemeral"}))
        .expect(201);
    let body = s.put("/v0/topics/t", &json!({"durable": true})).expect(200);
    assert_eq!(body["config"]["durability"], "fsync");
    assert_eq!(body["config"]["durable"], true);
}

#[test]
fn lease_and_jitter_are_stored_clamped_but_priority_is_not() {
    let s = Server::start();
    let body = s
        .put(
            "/v0/topics/lo",
            &json!({"lease_ms": 5, "claim_jitter_ms": 99999, "priority": 5000}),
        )
        .expect(201);
    assert_eq!(body["config"]["lease_ms"], 100);
    assert_eq!(body["config"]["claim_jitter_ms"], 5000);
    assert_eq!(
        body["config"]["priority"], 5000,
        "priority is stored as given"
    );
    let body = s
        .put(
            "/v0/topics/hi",
            &json!({"lease_ms": 1_000_000_000_000u64, "priority": -5000}),
        )
        .expect(201);
    assert_eq!(body["config"]["lease_ms"], 86_400_000);
    assert_eq!(body["config"]["priority"], -5000);
    assert_eq!(s.state("lo")["config"]["lease_ms"], 100);
}

#[test]
fn queue_only_fields_are_accepted_and_echoed_on_a_log() {
    let s = Server::start();
    let input = json!({"lease_ms": 1234, "claim_jitter_ms": 50, "max_deliveries": 5,
                       "dead_letter": "t.dlq", "leases_durable": true, "idempotency_window_ms": 0,
                       "auto_priority": false, "cap_bytes": 99, "discard": "reject"});
    let body = s.put("/v0/topics/t", &input).expect(201);
    assert_eq!(body["config"], config_with(input));
}

#[test]
fn invalid_dead_letter_name_is_400_with_detail_and_creates_nothing() {
    let s = Server::start();
    let resp = s.put("/v0/topics/t", &json!({"dead_letter": "bad name"}));
    let err = assert_error(&resp, 400, "invalid_request");
    assert_eq!(
        err["detail"]["dead_letter"], "bad name",
        "detail {{dead_letter}}: {err}"
    );
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
}

#[test]
fn type_change_is_409_topic_exists_incompatible_and_changes_nothing() {
    let s = Server::start();
    s.put("/v0/topics/t", &json!({"ttl_ms": 777})).expect(201);
    let resp = s.put("/v0/topics/t", &json!({"type": "queue"}));
    let err = assert_error(&resp, 409, "topic_exists_incompatible");
    let detail = &err["detail"];
    assert_eq!(detail["topic"], "t", "{err}");
    assert_eq!(detail["existing_type"], "log", "{err}");
    assert_eq!(detail["requested_type"], "queue", "{err}");
    let st = s.state("t");
    assert_eq!(
        st["config"],
        config_with(json!({"ttl_ms": 777})),
        "a rejected PUT changes nothing"
    );
    assert_eq!(st["type"], "log");
}

#[test]
fn rejected_put_on_absent_topic_creates_nothing() {
    let s = Server::start();
    for bad in [
        json!({"durability": "sometimes"}),
        json!({"type": "stream"}),
        json!({"discard": "new"}),
        json!({"ttl_ms": -1}),
        json!({"priority": "high"}),
    ] {
        assert_error(&s.put("/v0/topics/t", &bad), 400, "invalid_request");
        assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
    }
    let list = s.get("/v0/topics").expect(200);
    assert_eq!(list["topics"], json!([]));
}

#[test]
fn unknown_config_fields_are_ignored() {
    let s = Server::start();
    let body = s
        .put("/v0/topics/t", &json!({"flavour": "vanilla", "ttl_ms": 5}))
        .expect(201);
    assert_eq!(body["config"], config_with(json!({"ttl_ms": 5})));
}

#[test]
fn valid_names_at_the_edges_are_accepted() {
    let s = Server::start();
    let long = "x".repeat(255);
    for name in ["a", "Z", "9", "tenant42:orders", "a.b_c-d:e", long.as_str()] {
        let body = s
            .req("PUT", &format!("/v0/topics/{name}"), &[], b"")
            .expect(201);
        assert_eq!(body["topic"], name);
        assert_eq!(s.state(name)["topic"], name);
    }
}

#[test]
fn percent_encoded_name_is_decoded_once() {
    let s = Server::start();
    let body = s
        .req("PUT", "/v0/topics/tenant%3Aorders", &[], b"")
        .expect(201);
    assert_eq!(body["topic"], "tenant:orders");
    assert_eq!(s.state("tenant:orders")["topic"], "tenant:orders");
    assert_eq!(
        s.get("/v0/topics/tenant%3aorders?touch=false").expect(200)["topic"],
        "tenant:orders"
    );
}

#[test]
fn names_are_case_sensitive() {
    let s = Server::start();
    s.create("Orders", json!({}));
    assert_error(&s.get("/v0/topics/orders"), 404, "topic_not_found");
    s.create("orders", json!({"priority": 1}));
    assert_eq!(s.state("Orders")["config"]["priority"], Value::Null);
    assert_eq!(s.state("orders")["config"]["priority"], 1);
}

#[test]
fn max_topics_cap_is_429_throttled_with_detail_for_put_and_write() {
    let s = Server::start_with(&[], Some("[limits]\nmax_topics = 2\n"));
    s.create("a", json!({}));
    s.write("b", records(1));
    let resp = s.put("/v0/topics/c", &json!({}));
    let err = assert_error(&resp, 429, "throttled");
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(err["detail"], json!({"limit": "max_topics", "max": 2}));
    let resp = s.post("/v0/topics/c", &json!({"records": [{"data": 1}]}));
    let err = assert_error(&resp, 429, "throttled");
    assert_eq!(err["detail"], json!({"limit": "max_topics", "max": 2}));
    assert_error(&s.get("/v0/topics/c"), 404, "topic_not_found");
    // Existing topics still take writes and config replacement.
    s.write("a", records(1));
    s.put("/v0/topics/a", &json!({"priority": 2})).expect(200);
    // Deleting frees a slot.
    assert_eq!(s.delete("/v0/topics/a").expect(200)["deleted"], true);
    s.put("/v0/topics/c", &json!({})).expect(201);
}

// ---- GET state ----

#[test]
fn state_of_fresh_topic_has_every_field() {
    let s = Server::start();
    s.create("t", json!({}));
    let st = s.state("t");
    assert_eq!(st["topic"], "t");
    assert_eq!(st["type"], "log");
    assert_eq!(st["head_seq"], 0);
    assert_eq!(st["earliest_seq"], 1, "head_seq + 1 when no records");
    assert_eq!(st["next_seq"], 1);
    assert_eq!(st["count"], 0);
    assert_eq!(st["bytes"], 0);
    assert_eq!(st["config"], default_config());
    assert_eq!(st["effective_priority"], 0);
    assert_eq!(st["last_write_ts"], Value::Null);
    assert_eq!(st["last_read_ts"], Value::Null);
    assert!(st.get("queue").is_none(), "no queue object on a log: {st}");
    assert_performance(&st);
}

#[test]
fn state_after_writes_reports_watermarks_count_and_compact_bytes() {
    let s = Server::start();
    let before = now_ms();
    // Whitespace inside data/meta must not count: bytes are compact JSON of data + meta.
    let raw = br#"{"records": [ {"data": {"a": 1}, "meta": {"k": "v"}}, {"data": null}, {"data": [1, 2]} ]}"#;
    s.send_raw_json("POST", "/v0/topics/t", raw).expect(201);
    let st = s.state("t");
    assert_eq!(st["head_seq"], 3);
    assert_eq!(st["earliest_seq"], 1);
    assert_eq!(st["next_seq"], 4);
    assert_eq!(st["count"], 3);
    // {"a":1} = 7, {"k":"v"} = 9, null = 4, [1,2] = 5
    assert_eq!(st["bytes"], 25);
    let ts = st["last_write_ts"]
        .as_i64()
        .unwrap_or_else(|| panic!("last_write_ts: {st}"));
    assert!(
        ts >= before - 1000 && ts <= now_ms() + 1000,
        "last_write_ts {ts} not near now"
    );
}

#[test]
fn get_state_touch_stamps_last_read_ts_and_touch_false_does_not() {
    let s = Server::start();
    s.create("t", json!({}));
    assert_eq!(
        s.get("/v0/topics/t?touch=false").expect(200)["last_read_ts"],
        Value::Null
    );
    assert_eq!(
        s.get("/v0/topics/t?touch=0").expect(200)["last_read_ts"],
        Value::Null
    );
    let before = now_ms();
    s.get("/v0/topics/t").expect(200);
    let ts = s.state("t")["last_read_ts"]
        .as_i64()
        .expect("last_read_ts set by a touching GET");
    assert!(
        ts >= before - 1000 && ts <= now_ms() + 1000,
        "last_read_ts {ts}"
    );
}

#[test]
fn get_state_with_unparseable_touch_uses_default_true() {
    let s = Server::start();
    s.create("t", json!({}));
    s.get("/v0/topics/t?touch=maybe").expect(200);
    assert!(
        s.state("t")["last_read_ts"].is_i64(),
        "touch=maybe must mean the default (true)"
    );
}

#[test]
fn diff_stamps_last_read_ts() {
    let s = Server::start();
    s.create("t", json!({}));
    s.diff("t", json!({}));
    assert!(s.state("t")["last_read_ts"].is_i64());
}

#[test]
fn effective_priority_is_explicit_clamped_or_auto_after_consumption() {
    let s = Server::start();
    s.create("p10", json!({"priority": 10}));
    s.create("p5000", json!({"priority": 5000}));
    s.create("pneg", json!({"priority": -5000}));
    s.create("auto", json!({}));
    s.create("noauto", json!({"auto_priority": false}));
    assert_eq!(s.state("p10")["effective_priority"], 10);
    assert_eq!(s.state("p5000")["effective_priority"], 1000);
    assert_eq!(s.state("pneg")["effective_priority"], -1000);
    assert_eq!(s.state("auto")["effective_priority"], 0, "never consumed");
    for t in ["auto", "noauto", "p10"] {
        s.diff(t, json!({}));
    }
    let auto = s.state("auto")["effective_priority"].as_i64().unwrap();
    assert!(
        (400..=500).contains(&auto),
        "just consumed: ~500·2^(−idle/30000), got {auto}"
    );
    assert_eq!(s.state("noauto")["effective_priority"], 0);
    assert_eq!(
        s.state("p10")["effective_priority"],
        10,
        "explicit priority disables auto"
    );
}

#[test]
fn get_absent_topic_is_404_topic_not_found_with_detail_and_never_creates() {
    let s = Server::start();
    let err = assert_error(&s.get("/v0/topics/nope"), 404, "topic_not_found");
    assert_eq!(err["detail"], json!({"topic": "nope"}));
    assert_eq!(s.get("/v0/topics").expect(200)["topics"], json!([]));
}

#[test]
fn lookups_do_not_validate_names() {
    let s = Server::start();
    // A bad name on a lookup is just not found (API.md §1), not a routing 404 or a 400.
    assert_error(&s.get("/v0/topics/a%2Fb"), 404, "topic_not_found");
    assert_error(&s.get("/v0/topics/-x"), 404, "topic_not_found");
    assert_error(
        &s.req("POST", "/v0/topics/a%20b/diff", &[], b""),
        404,
        "topic_not_found",
    );
    let body = s.delete("/v0/topics/-x").expect(200);
    assert_eq!(body["deleted"], false);
}

// ---- DELETE ----

#[test]
fn delete_existing_topic_removes_it() {
    let s = Server::start();
    s.write("t", records(3));
    let body = s.delete("/v0/topics/t").expect(200);
    assert_eq!(body["topic"], "t");
    assert_eq!(body["deleted"], true);
    assert_eq!(body["routers_removed"], json!([]));
    assert_performance(&body);
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
    assert_error(
        &s.post("/v0/topics/t/diff", &json!({})),
        404,
        "topic_not_found",
    );
    assert_eq!(s.get("/v0/topics").expect(200)["topics"], json!([]));
}

#[test]
fn delete_absent_topic_is_200_deleted_false_and_idempotent() {
    let s = Server::start();
    let body = s.delete("/v0/topics/ghost").expect(200);
    assert_eq!(body["topic"], "ghost");
    assert_eq!(body["deleted"], false);
    assert_eq!(body["routers_removed"], json!([]));
    s.create("t", json!({}));
    assert_eq!(s.delete("/v0/topics/t").expect(200)["deleted"], true);
    assert_eq!(s.delete("/v0/topics/t").expect(200)["deleted"], false);
}

#[test]
fn delete_if_empty_on_non_empty_topic_is_409_topic_not_empty_and_keeps_it() {
    let s = Server::start();
    s.write("t", records(2));
    for q in ["if_empty=true", "if_empty=1"] {
        let resp = s.delete(&format!("/v0/topics/t?{q}"));
        let err = assert_error(&resp, 409, "topic_not_empty");
        assert_eq!(err["detail"], json!({"topic": "t", "count": 2}), "{q}");
    }
    assert_eq!(s.state("t")["count"], 2);
    // if_empty=false (or unparseable → default false) deletes anyway.
    assert_eq!(
        s.delete("/v0/topics/t?if_empty=false").expect(200)["deleted"],
        true
    );
}

#[test]
fn delete_if_empty_on_empty_topic_deletes_it() {
    let s = Server::start();
    s.create("t", json!({}));
    assert_eq!(
        s.delete("/v0/topics/t?if_empty=true").expect(200)["deleted"],
        true
    );
    assert_error(&s.get("/v0/topics/t"), 404, "topic_not_found");
}

#[test]
fn recreate_after_delete_starts_a_new_instance_at_seq_1_with_new_config() {
    let s = Server::start();
    s.create("t", json!({"priority": 3}));
    s.write("t", records(5));
    s.delete("/v0/topics/t").expect(200);
    let body = s.put("/v0/topics/t", &json!({})).expect(201);
    assert_eq!(body["created"], true);
    assert_eq!(body["config"], default_config());
    let st = s.state("t");
    assert_eq!(
        (st["head_seq"].as_u64(), st["count"].as_u64()),
        (Some(0), Some(0))
    );
    let w = s.write("t", records(1));
    assert_eq!(w["seqs"], json!([1]));
    assert_eq!(seqs_of(&s.diff("t", json!({}))), vec![1]);
}

#[test]
fn write_after_delete_auto_creates_a_fresh_topic() {
    let s = Server::start();
    s.write("t", records(4));
    s.delete("/v0/topics/t").expect(200);
    let resp = s.post("/v0/topics/t", &json!({"records": [{"data": "new"}]}));
    let body = resp.expect(201);
    assert_eq!(
        (body["first_seq"].as_u64(), body["created"].as_bool()),
        (Some(1), Some(true))
    );
    let d = s.diff("t", json!({}));
    assert_eq!(d["records"].as_array().unwrap().len(), 1);
    assert_eq!(d["records"][0]["data"], "new");
}

// ---- list ----

fn list_names(body: &Value) -> Vec<String> {
    body["topics"]
        .as_array()
        .unwrap_or_else(|| panic!("no topics array: {body}"))
        .iter()
        .map(|t| t["topic"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn list_returns_items_in_ascending_byte_order_with_item_fields() {
    let s = Server::start();
    let names = [
        "b", "B", "a:1", "a-1", "a.1", "a1", "Z", "0x", "a_1", "aa", "a",
    ];
    for n in names {
        s.create(n, json!({}));
    }
    s.create("fs", json!({"durable": true}));
    s.write("a1", json!([{"data": "xyz"}, {"data": 1}]));
    let body = s.get("/v0/topics").expect(200);
    assert_performance(&body);
    assert!(
        body.get("next_cursor").is_none(),
        "single page has no next_cursor: {body}"
    );
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.push("fs".into());
    want.sort(); // String order is byte order
    assert_eq!(list_names(&body), want);
    let items = body["topics"].as_array().unwrap();
    let a1 = items.iter().find(|t| t["topic"] == "a1").unwrap();
    assert_eq!(
        *a1,
        json!({"topic": "a1", "head_seq": 2, "earliest_seq": 1, "count": 2, "bytes": 6,
               "durable": false, "effective_priority": 0}),
        "item fields"
    );
    let fs = items.iter().find(|t| t["topic"] == "fs").unwrap();
    assert_eq!(fs["durable"], true);
    assert_eq!(fs["head_seq"], 0);
    assert_eq!(fs["earliest_seq"], 1);
}

#[test]
fn list_prefix_filters_by_byte_prefix() {
    let s = Server::start();
    for n in [
        "pay",
        "payments",
        "payments.refunds",
        "Pay",
        "pa",
        "orders",
        "pay:x",
    ] {
        s.create(n, json!({}));
    }
    let body = s.get("/v0/topics?prefix=pay").expect(200);
    assert_eq!(
        list_names(&body),
        ["pay", "pay:x", "payments", "payments.refunds"]
    );
    let body = s.get("/v0/topics?prefix=payments.").expect(200);
    assert_eq!(list_names(&body), ["payments.refunds"]);
    let body = s.get("/v0/topics?prefix=zzz").expect(200);
    assert_eq!(body["topics"], json!([]));
    assert!(body.get("next_cursor").is_none());
}

#[test]
fn list_pagination_walks_every_item_once_with_base64_after_cursor() {
    let s = Server::start();
    let mut names: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
    names.push("other".into());
    for n in &names {
        s.create(n, json!({}));
    }
    let mut seen = Vec::new();
    let mut path = "/v0/topics?page_size=2".to_string();
    for page in 0.. {
        assert!(page < 10, "pagination does not terminate");
        let body = s.get(&path).expect(200);
        let got = list_names(&body);
        assert!(!got.is_empty() && got.len() <= 2, "page {page}: {got:?}");
        seen.extend(got.iter().cloned());
        match body.get("next_cursor") {
            None => break,
            Some(c) => {
                let c = c.as_str().expect("next_cursor is a string");
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(c)
                    .unwrap_or_else(|e| {
                        panic!("next_cursor {c:?} is not standard padded base64: {e}")
                    });
                let v: Value = serde_json::from_slice(&decoded).expect("cursor decodes to JSON");
                assert_eq!(v, json!({"after": got.last().unwrap()}), "cursor content");
                path = format!("/v0/topics?page_size=2&cursor={}", query_escape(c));
            }
        }
    }
    let mut want = names.clone();
    want.sort();
    assert_eq!(seen, want);
    // Exactly 8 items with page_size 2: the 4th page is the last and has no cursor.
}

#[test]
fn list_next_cursor_absent_when_page_exactly_exhausts_items() {
    let s = Server::start();
    for n in ["a", "b", "c", "d"] {
        s.create(n, json!({}));
    }
    let first = s.get("/v0/topics?page_size=2").expect(200);
    let c = first["next_cursor"]
        .as_str()
        .expect("more items exist")
        .to_string();
    let second = s
        .get(&format!(
            "/v0/topics?page_size=2&cursor={}",
            query_escape(&c)
        ))
        .expect(200);
    assert_eq!(list_names(&second), ["c", "d"]);
    assert!(
        second.get("next_cursor").is_none(),
        "no more items: {second}"
    );
}

#[test]
fn list_pagination_combines_with_prefix() {
    let s = Server::start();
    for n in ["p1", "p2", "p3", "q1", "o1"] {
        s.create(n, json!({}));
    }
    let first = s.get("/v0/topics?prefix=p&page_size=2").expect(200);
    assert_eq!(list_names(&first), ["p1", "p2"]);
    let c = first["next_cursor"].as_str().unwrap().to_string();
    let second = s
        .get(&format!(
            "/v0/topics?prefix=p&page_size=2&cursor={}",
            query_escape(&c)
        ))
        .expect(200);
    assert_eq!(list_names(&second), ["p3"]);
    assert!(second.get("next_cursor").is_none());
}

#[test]
fn list_cursor_rules_empty_missing_after_arbitrary_after_and_undecodable() {
    let s = Server::start();
    for n in ["a", "b", "c"] {
        s.create(n, json!({}));
    }
    assert_eq!(
        list_names(&s.get("/v0/topics?cursor=").expect(200)),
        ["a", "b", "c"],
        "empty cursor = first page"
    );
    let no_after = query_escape(&b64(r#"{"x":1}"#));
    assert_eq!(
        list_names(&s.get(&format!("/v0/topics?cursor={no_after}")).expect(200)),
        ["a", "b", "c"]
    );
    // `after` need not be an existing name: items strictly after it in byte order.
    let after_ab = query_escape(&b64(r#"{"after":"ab"}"#));
    assert_eq!(
        list_names(&s.get(&format!("/v0/topics?cursor={after_ab}")).expect(200)),
        ["b", "c"]
    );
    let after_b = query_escape(&b64(r#"{"after":"b"}"#));
    assert_eq!(
        list_names(&s.get(&format!("/v0/topics?cursor={after_b}")).expect(200)),
        ["c"]
    );
    for bad in [
        "not-base64!".to_string(),
        query_escape(&b64("hello")),
        "%25%25%25".to_string(),
    ] {
        assert_error(
            &s.get(&format!("/v0/topics?cursor={bad}")),
            400,
            "invalid_request",
        );
    }
}

#[test]
fn list_page_size_is_clamped_and_unparseable_means_default() {
    let s = Server::start();
    for i in 0..5 {
        s.create(&format!("t{i}"), json!({}));
    }
    let one = s.get("/v0/topics?page_size=0").expect(200);
    assert_eq!(list_names(&one), ["t0"], "page_size 0 is clamped to 1");
    assert!(one["next_cursor"].is_string());
    let all = s.get("/v0/topics?page_size=abc").expect(200);
    assert_eq!(
        list_names(&all).len(),
        5,
        "unparseable page_size means default 100"
    );
    assert!(all.get("next_cursor").is_none());
    let all = s.get("/v0/topics?page_size=999999").expect(200);
    assert_eq!(list_names(&all).len(), 5);
}

#[test]
fn list_default_page_is_100_and_max_page_is_1000() {
    let s = Server::start_with(&[], Some("[limits]\nmax_topics = 2000\n"));
    // 1001 ephemeral topics, created from a few threads to keep this test short.
    std::thread::scope(|scope| {
        for w in 0..4 {
            let s = &s;
            scope.spawn(move || {
                for i in (w..1001).step_by(4) {
                    s.req("PUT", &format!("/v0/topics/t{i:04}"), &[], b"")
                        .expect(201);
                }
            });
        }
    });
    let page = s.get("/v0/topics").expect(200);
    let names = list_names(&page);
    assert_eq!(names.len(), 100, "default page_size");
    assert_eq!(names[0], "t0000");
    assert_eq!(names[99], "t0099");
    assert!(page["next_cursor"].is_string());
    let page = s.get("/v0/topics?page_size=5000").expect(200);
    let names = list_names(&page);
    assert_eq!(names.len(), 1000, "page_size clamped to 1000");
    let c = page["next_cursor"]
        .as_str()
        .expect("one item left")
        .to_string();
    let last = s
        .get(&format!(
            "/v0/topics?page_size=5000&cursor={}",
            query_escape(&c)
        ))
        .expect(200);
    assert_eq!(list_names(&last), ["t1000"]);
    assert!(last.get("next_cursor").is_none());
    assert_eq!(s.get("/v0/ready").expect(200)["topics"], 1001);
}

#[test]
fn list_touch_default_false_does_not_stamp_last_read() {
    let s = Server::start();
    s.create("t", json!({}));
    s.get("/v0/topics").expect(200);
    assert_eq!(s.state("t")["last_read_ts"], Value::Null);
}

#[test]
fn every_data_and_control_2xx_body_has_performance() {
    let s = Server::start();
    let bodies = [
        s.req("PUT", "/v0/topics/t", &[], b"").expect(201),
        s.post("/v0/topics/t", &json!({"records": [{"data": 1}]}))
            .expect(200),
        s.get("/v0/topics/t").expect(200),
        s.get("/v0/topics").expect(200),
        s.post("/v0/topics/t/diff", &json!({})).expect(200),
        s.delete("/v0/topics/t").expect(200),
        s.delete("/v0/topics/t").expect(200),
    ];
    for body in &bodies {
        assert_performance(body);
        assert!(body.get("error").is_none(), "{body}");
    }
    assert!(bodies[4]["performance"]["records_scanned"].is_u64());
}

#[test]
fn list_touch_true_stamps_last_consumed_for_auto_priority() {
    let s = Server::start();
    s.create("t", json!({}));
    let before = s.get("/v0/topics").expect(200);
    assert_eq!(before["topics"][0]["effective_priority"], 0);
    s.get("/v0/topics?touch=true").expect(200);
    let after = s.get("/v0/topics").expect(200);
    let p = after["topics"][0]["effective_priority"].as_i64().unwrap();
    assert!(
        (400..=500).contains(&p),
        "touch=true stamps last_consumed: {after}"
    );
}
