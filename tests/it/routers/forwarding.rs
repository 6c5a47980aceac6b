//! Forwarding: order, filter, preserve flags, only records after creation, hop cap and the
//! loop between two mirrored topics, and back-pressure from a full `discard:"reject"` dest.

use super::{data_of, drive, put_router};
use crate::harness::{config_with, Server};
use serde_json::{json, Value};

#[test]
fn forwards_records_committed_after_creation_in_order_with_node_tag_and_meta() {
    let s = Server::start();
    s.write("src", json!([{"data": "before"}]));
    put_router(&s, "src->dst", json!({"source":"src","dest":"dst"})).expect(201);
    s.write_body(
        "src",
        json!({"node":"n1","records":[
        {"data":1,"tag":"t:1","meta":{"k":"v"}},{"data":2},{"data":{"x":[3]}}]}),
    );
    s.write("src", json!([{"data": 4}]));
    assert_eq!(drive(&s, "src->dst")["forwarded_total"], 4);
    let got = s.read_all("dst");
    let data: Vec<Value> = got.iter().map(|r| r["data"].clone()).collect();
    assert_eq!(data, [json!(1), json!(2), json!({"x":[3]}), json!(4)]);
    assert_eq!(
        (got[0]["$node"].clone(), got[0]["$tag"].clone()),
        (json!("n1"), json!("t:1"))
    );
    assert_eq!(got[0]["meta"], json!({"k":"v"}));
    // Fresh seqs in the dest.
    let seqs: Vec<u64> = got.iter().map(|r| r["$seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[test]
fn filter_and_preserve_flags_shape_the_copies() {
    let s = Server::start();
    let body = json!({"source":"src","dest":"dst","filter":"keep:*",
        "preserve_node":false,"preserve_tag":false});
    put_router(&s, "r", body).expect(201);
    s.write_body(
        "src",
        json!({"node":"n1","records":[
        {"data":1,"tag":"keep:a"},{"data":2,"tag":"drop"},{"data":3},{"data":4,"tag":"keep:b"}]}),
    );
    assert_eq!(drive(&s, "r")["forwarded_total"], 2);
    let got = s.read_all("dst");
    assert_eq!(
        got.iter().map(|r| r["data"].clone()).collect::<Vec<_>>(),
        [json!(1), json!(4)]
    );
    assert!(
        got.iter()
            .all(|r| r.get("$node").is_none() && r.get("$tag").is_none()),
        "{got:?}"
    );
}

/// Two topics standing for two nodes, mirrored both ways with `allow_cycle`. The hop cap (8)
/// ends the echo: a record written to `a` is copied 8 times in all — 4 copies in `b` (hops 1,
/// 3, 5, 7) and 4 back in `a` (hops 2, 4, 6, 8). Node filters keep a node's own records out
/// of its reads.
#[test]
fn mirrored_topics_echo_exactly_max_hops_copies_and_node_filters_hide_them() {
    let s = Server::start();
    put_router(
        &s,
        "a->b",
        json!({"source":"a","dest":"b","allow_cycle":true}),
    )
    .expect(201);
    put_router(
        &s,
        "b->a",
        json!({"source":"b","dest":"a","allow_cycle":true}),
    )
    .expect(201);
    s.write_body("a", json!({"node":"n1","records":[{"data":"hello"}]}));
    for _ in 0..10 {
        drive(&s, "a->b");
        drive(&s, "b->a");
    }
    assert_eq!(data_of(&s, "a"), vec![json!("hello"); 5]);
    assert_eq!(data_of(&s, "b"), vec![json!("hello"); 4]);
    assert_eq!(drive(&s, "a->b")["forwarded_total"], 4);
    assert_eq!(drive(&s, "b->a")["forwarded_total"], 4);
    // Node n1 reading b with its own node filter never gets its record back.
    let d = s.diff("b", json!({"node":"n1"}));
    assert_eq!(d["records"], json!([]));
    let d = s.diff("b", json!({"node":"n2"}));
    assert_eq!(d["records"].as_array().unwrap().len(), 4);
}

#[test]
fn a_full_reject_dest_stalls_the_router_without_loss_and_a_re_put_keeps_the_cursor() {
    let s = Server::start();
    s.create(
        "dst",
        config_with(json!({"cap_records":3,"discard":"reject"})),
    );
    put_router(&s, "r", json!({"source":"src","dest":"dst"})).expect(201);
    s.write("src", crate::harness::records(5));
    assert_eq!(drive(&s, "r")["forwarded_total"], 3);
    // Re-configuring while stalled neither skips the waiting records nor repeats any.
    put_router(
        &s,
        "r",
        json!({"source":"src","dest":"dst","preserve_tag":false}),
    )
    .expect(200);
    s.create(
        "dst",
        config_with(json!({"cap_records":0,"discard":"reject"})),
    );
    assert_eq!(drive(&s, "r")["forwarded_total"], 5);
    assert_eq!(
        data_of(&s, "dst"),
        (0..5).map(|i| json!(i)).collect::<Vec<_>>()
    );
}

#[test]
fn a_copy_larger_than_the_whole_dest_cap_is_skipped_and_not_counted() {
    let s = Server::start();
    s.create(
        "dst",
        config_with(json!({"cap_bytes":10,"discard":"reject"})),
    );
    put_router(&s, "r", json!({"source":"src","dest":"dst"})).expect(201);
    s.write(
        "src",
        json!([{"data":"a"},{"data":"far too long for the cap"},{"data":"b"}]),
    );
    assert_eq!(drive(&s, "r")["forwarded_total"], 2);
    assert_eq!(data_of(&s, "dst"), [json!("a"), json!("b")]);
}

/// Read-your-writes (API.md §12): a diff or state read of a dest first drives its routers to the
/// source head. With one record per step the router needs hundreds of steps, so a read that
/// did not drive it would see only part of the write.
#[test]
fn a_dest_read_first_drives_its_routers_to_the_source_head() {
    let s = Server::start_with(&[], Some("[router]\nbatch = 1\n"));
    put_router(&s, "r", json!({"source":"src","dest":"dst"})).expect(201);
    s.write("src", crate::harness::records(800));
    let d = s.diff("dst", json!({"limit": 1000}));
    assert_eq!(d["records"].as_array().unwrap().len(), 800);
    s.write("src", crate::harness::records(800));
    assert_eq!(s.state("dst")["head_seq"], 1600);
}

/// Source trim (API.md §12): records the source evicted before the router consumed them become
/// one hole seq each in the dest, read there as a `source_trim` tombstone and accounted in
/// `forwarded_total`; nothing after them is lost.
#[test]
fn records_the_source_evicted_before_forwarding_become_source_trim_holes() {
    let s = Server::start();
    s.create(
        "dst",
        config_with(json!({"cap_records":1,"discard":"reject"})),
    );
    s.create("src", config_with(json!({"cap_records":5})));
    put_router(&s, "r", json!({"source":"src","dest":"dst"})).expect(201);
    s.write("src", json!([{"data": 0}]));
    assert_eq!(drive(&s, "r")["forwarded_total"], 1);
    // The dest is full, so the router waits while the source evicts seqs 2..=16.
    let more: Vec<Value> = (1..=20).map(|i| json!({"data": i})).collect();
    s.write("src", Value::Array(more));
    s.create(
        "dst",
        config_with(json!({"cap_records":0,"discard":"reject"})),
    );
    assert_eq!(drive(&s, "r")["forwarded_total"], 1 + 15 + 5);
    let d = s.diff("dst", json!({"from_seq": 1}));
    let t = &d["tombstone"];
    assert_eq!(
        (&t["gap_from"], &t["gap_to"], &t["reason"]),
        (&json!(2), &json!(16), &json!("source_trim")),
        "{d}"
    );
    let data: Vec<&Value> = d["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["data"])
        .collect();
    assert_eq!(
        data,
        [16, 17, 18, 19, 20]
            .map(|i| json!(i))
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(s.state("dst")["head_seq"], 21);
}
