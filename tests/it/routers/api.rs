//! The router endpoints: bodies, status codes, error codes and their check order.

use super::{drive, path, put_router};
use crate::harness::{assert_error, assert_performance, Server};
use serde_json::json;

#[test]
fn put_creates_then_updates_and_get_echoes_every_field() {
    let s = Server::start();
    let r = put_router(&s, "a->b", json!({"source":"a","dest":"b","filter":"x:*"}));
    let body = r.expect(201);
    assert_performance(&body);
    assert_eq!(body["created"], true);
    assert_eq!(body["filter"], json!(["tag", "Glob", "x:*"]));
    assert_eq!(
        (body["preserve_node"].clone(), body["preserve_tag"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(body["allow_cycle"], false);
    assert_eq!(body["guarantee"], "at_least_once");
    // Source and dest were auto-created with the default config.
    s.state("a");
    s.state("b");
    let again = put_router(
        &s,
        "a->b",
        json!({"source":"a","dest":"b","preserve_tag":false}),
    );
    let again = again.expect(200);
    assert_eq!(
        (again["created"].clone(), again["filter"].clone()),
        (json!(false), json!(null))
    );
    let got = drive(&s, "a->b");
    assert_eq!(got["preserve_tag"], false);
    assert_eq!(got["forwarded_total"], 0);
    assert!(got.get("created").is_none());
}

#[test]
fn body_checks_run_in_contract_order() {
    let s = Server::start();
    let bad = |name: &str, body| assert_error(&put_router(&s, name, body), 400, "invalid_request");
    bad(">r", json!({"source":"a","dest":"a"})); // router name before source == dest
    let e = bad("r", json!({"source":"a","dest":"a"}));
    assert!(e["message"].as_str().unwrap().contains("differ"), "{e}");
    bad("r", json!({"source":"a/","dest":"b"}));
    bad("r", json!({"source":"a","dest":"b/"}));
    bad("r", json!({"source":"a"}));
    bad("r", json!({"source":"a","dest":"b","allow_cycle":"yes"}));
    let e = bad("r", json!({"source":"a","dest":"b","guarantee":"twice"}));
    assert_eq!(e["detail"]["field"], "guarantee");
    // None of the refused bodies created a topic or a router.
    assert_eq!(s.get("/v0/topics").expect(200)["topics"], json!([]));
    assert_eq!(s.get("/v0/routers").expect(200)["routers"], json!([]));
    // create_dest:false with no dest.
    let e = assert_error(
        &put_router(
            &s,
            "r",
            json!({"source":"a","dest":"b","create_dest":false}),
        ),
        404,
        "topic_not_found",
    );
    assert_eq!(e["detail"], json!({"topic":"b"}));
}

#[test]
fn fan_in_and_repoint_are_refused_with_their_reasons() {
    let s = Server::start();
    put_router(&s, "a->c", json!({"source":"a","dest":"c"})).expect(201);
    let e = assert_error(
        &put_router(&s, "b->c", json!({"source":"b","dest":"c"})),
        409,
        "topic_exists_incompatible",
    );
    assert_eq!(
        e["detail"],
        json!({"topic":"c","reason":"router_dest_fan_in"})
    );
    let e = assert_error(
        &put_router(&s, "a->c", json!({"source":"a","dest":"d"})),
        409,
        "topic_exists_incompatible",
    );
    assert_eq!(
        e["detail"],
        json!({"router":"a->c","reason":"router_repoint_forbidden",
            "existing_source":"a","existing_dest":"c"})
    );
    // A second router from the same source into the same dest is allowed.
    put_router(&s, "a->c.2", json!({"source":"a","dest":"c"})).expect(201);
}

#[test]
fn a_cycle_is_refused_with_its_path_unless_allowed() {
    let s = Server::start();
    put_router(&s, "a->b", json!({"source":"a","dest":"b"})).expect(201);
    put_router(&s, "b->c", json!({"source":"b","dest":"c"})).expect(201);
    let e = assert_error(
        &put_router(&s, "c->a", json!({"source":"c","dest":"a"})),
        409,
        "router_cycle",
    );
    assert_eq!(e["detail"], json!({"cycle":["c","a","b","c"]}));
    assert_eq!(s.get(&path("c->a")).status, 404);
    put_router(
        &s,
        "c->a",
        json!({"source":"c","dest":"a","allow_cycle":true}),
    )
    .expect(201);
}

#[test]
fn max_routers_refuses_new_routers_but_not_updates() {
    let s = Server::start_with(&[], Some("[limits]\nmax_routers = 1\n"));
    put_router(&s, "r1", json!({"source":"a","dest":"b"})).expect(201);
    let r = put_router(&s, "r2", json!({"source":"a","dest":"c"}));
    let e = assert_error(&r, 429, "throttled");
    assert_eq!(e["detail"], json!({"limit":"max_routers","max":1}));
    assert_eq!(r.header("retry-after"), Some("1"));
    // Checked before auto-creation: c was not created.
    assert_eq!(s.get("/v0/topics/c").status, 404);
    put_router(
        &s,
        "r1",
        json!({"source":"a","dest":"b","preserve_node":false}),
    )
    .expect(200);
}

#[test]
fn get_list_and_delete() {
    let s = Server::start();
    let e = assert_error(&s.get("/v0/routers/nope"), 404, "router_not_found");
    assert_eq!(e["detail"], json!({"router":"nope"}));
    put_router(&s, "x2", json!({"source":"a","dest":"b"})).expect(201);
    put_router(&s, "x1", json!({"source":"a","dest":"c"})).expect(201);
    put_router(&s, "y", json!({"source":"c","dest":"d"})).expect(201);
    let names = |q: &str| -> Vec<String> {
        let l = s.get(&format!("/v0/routers{q}")).expect(200);
        l["routers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["router"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(""), ["x1", "x2", "y"]);
    assert_eq!(names("?prefix=x"), ["x1", "x2"]);
    assert_eq!(names("?source=a"), ["x1", "x2"]);
    assert_eq!(names("?dest=d"), ["y"]);
    let page = s.get("/v0/routers?page_size=2").expect(200);
    assert_eq!(
        page["routers"][0],
        json!({"router":"x1","source":"a","dest":"c",
        "guarantee":"at_least_once","forwarded_total":0})
    );
    let next = page["next_cursor"].as_str().unwrap();
    assert_eq!(
        names(&format!(
            "?page_size=2&cursor={}",
            crate::harness::query_escape(next)
        )),
        ["y"]
    );
    let d = s.delete("/v0/routers/x1").expect(200);
    assert_eq!(
        (d["router"].clone(), d["deleted"].clone()),
        (json!("x1"), json!(true))
    );
    assert_eq!(s.delete("/v0/routers/x1").expect(200)["deleted"], false);
    assert_eq!(names(""), ["x2", "y"]);
}

#[test]
fn deleting_a_topic_removes_the_routers_that_read_or_feed_it() {
    let s = Server::start();
    put_router(&s, "a->b", json!({"source":"a","dest":"b"})).expect(201);
    put_router(&s, "b->c", json!({"source":"b","dest":"c"})).expect(201);
    put_router(&s, "c->d", json!({"source":"c","dest":"d"})).expect(201);
    let d = s.delete("/v0/topics/b").expect(200);
    assert_eq!(d["routers_removed"], json!(["a->b", "b->c"]));
    let l = s.get("/v0/routers").expect(200);
    assert_eq!(l["routers"].as_array().unwrap().len(), 1);
    // Gone for good, also after a restart.
    let mut s = s;
    s.restart();
    assert_eq!(s.get(&path("a->b")).status, 404);
    drive(&s, "c->d");
}
