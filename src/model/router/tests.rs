use super::*;
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("test bodies are objects"),
    }
}

fn def(source: &str, dest: &str) -> RouterDef {
    parse_def("r", &body(json!({"source": source, "dest": dest}))).expect("valid")
}

fn edge<'a>(router: &'a str, source: &'a str, dest: &'a str) -> Edge<'a> {
    Edge {
        router,
        source,
        dest,
    }
}

fn rec(hops: u8, node: Option<&str>, tag: Option<&str>) -> Record {
    Record {
        seq: 7,
        ts: 1,
        node: node.map(Arc::from),
        tag: tag.map(Arc::from),
        data: Bytes::from_static(b"{\"a\":1}"),
        meta: Some(Bytes::from_static(b"{\"m\":2}")),
        hops,
    }
}

#[test]
fn defaults_follow_the_contract() {
    let d = def("a", "b");
    assert!(d.preserve_node && d.preserve_tag && d.create_dest);
    assert!(!d.allow_cycle);
    assert_eq!(d.filter, None);
    assert_eq!(d.guarantee, Guarantee::AtLeastOnce);
}

#[test]
fn every_field_is_parsed_with_strict_types() {
    let d = parse_def(
        "a->b",
        &body(
            json!({"source":"a","dest":"b","preserve_node":false,"preserve_tag":false,
            "create_dest":false,"allow_cycle":true,"filter":"x:*","guarantee":"exactly_once"}),
        ),
    )
    .expect("valid");
    assert!(!d.preserve_node && !d.preserve_tag && !d.create_dest && d.allow_cycle);
    assert_eq!(d.filter, Some(TagPredicate::Prefix("x:".into())));
    assert_eq!(d.guarantee, Guarantee::ExactlyOnce);
    for (k, v) in [
        ("preserve_node", json!(1)),
        ("allow_cycle", json!("true")),
        ("guarantee", json!("at_most_once")),
        ("filter", json!(["tag", "Glob", "x"])),
    ] {
        let mut b = body(json!({"source":"a","dest":"b"}));
        b.insert(k.into(), v);
        assert!(
            matches!(parse_def("r", &b), Err(DefError::Field(f, _)) if f == k),
            "{k}"
        );
    }
}

#[test]
fn name_checks_run_in_contract_order() {
    // Router name before source == dest, before the topic names.
    let p = |name: &str, s: &str, d: &str| parse_def(name, &body(json!({"source":s,"dest":d})));
    assert_eq!(p(">bad", "a", "a"), Err(DefError::RouterName));
    assert_eq!(p("r", "a/", "a/"), Err(DefError::SameTopic));
    assert_eq!(p("r", "a/", "b/"), Err(DefError::SourceName));
    assert_eq!(p("r", "a", "b>"), Err(DefError::DestName));
    assert!(p("a->b", "a", "b").is_ok());
    assert!(matches!(
        parse_def("r", &body(json!({"source":"a"}))),
        Err(DefError::Field("dest", _))
    ));
}

#[test]
fn fan_in_is_refused_and_names_the_dest() {
    let edges = [edge("a->c", "a", "c")];
    assert_eq!(
        check_shape(&edges, "b->c", &def("b", "c")),
        Err(GraphError::FanIn { topic: "c".into() })
    );
    // A second router from the same source into the same dest is not fan-in.
    assert_eq!(check_shape(&edges, "a->c2", &def("a", "c")), Ok(()));
}

#[test]
fn repoint_is_refused_but_a_same_edge_update_passes() {
    let edges = [edge("r", "a", "b")];
    assert_eq!(check_shape(&edges, "r", &def("a", "b")), Ok(()));
    assert_eq!(
        check_shape(&edges, "r", &def("a", "c")),
        Err(GraphError::Repoint {
            existing_source: "a".into(),
            existing_dest: "b".into()
        })
    );
}

#[test]
fn cycle_path_runs_from_source_back_to_source() {
    let edges = [edge("a->b", "a", "b")];
    assert_eq!(
        find_cycle(&edges, "b->a", "b", "a"),
        Some(vec!["b".into(), "a".into(), "b".into()])
    );
    let chain = [
        edge("1", "a", "b"),
        edge("2", "b", "c"),
        edge("3", "c", "d"),
    ];
    assert_eq!(
        find_cycle(&chain, "4", "d", "a"),
        Some(["d", "a", "b", "c", "d"].map(String::from).to_vec())
    );
    assert_eq!(find_cycle(&chain, "4", "a", "d"), None);
}

#[test]
fn cycle_check_ignores_the_router_being_reconfigured() {
    let edges = [edge("a->b", "a", "b"), edge("b->a", "b", "a")];
    // Re-PUT of b->a sees only a->b, which does not lead from a back to b.
    assert_eq!(
        find_cycle(&edges, "b->a", "b", "a").map(|p| p.len()),
        Some(3)
    );
    assert_eq!(find_cycle(&edges[..1], "a->b", "a", "b"), None);
}

#[test]
fn forwarding_keeps_bytes_and_counts_a_hop() {
    let copy = forward(&def("a", "b"), &rec(0, Some("n1"), Some("t")), 8).expect("forwarded");
    assert_eq!(copy.hops, 1);
    assert_eq!(copy.node.as_deref(), Some("n1"));
    assert_eq!(copy.tag.as_deref(), Some("t"));
    assert_eq!(&copy.data[..], b"{\"a\":1}");
    assert_eq!(copy.meta.as_deref(), Some(&b"{\"m\":2}"[..]));
}

#[test]
fn forwarding_skips_at_the_hop_cap_and_on_filter_miss() {
    let d = def("a", "b");
    assert!(forward(&d, &rec(7, None, None), 8).is_some());
    assert!(forward(&d, &rec(8, None, None), 8).is_none());
    let mut f = d.clone();
    f.filter = Some(TagPredicate::Eq("t".into()));
    assert!(forward(&f, &rec(0, None, Some("t")), 8).is_some());
    assert!(forward(&f, &rec(0, None, Some("u")), 8).is_none());
    // Untagged records never match a filter.
    assert!(forward(&f, &rec(0, None, None), 8).is_none());
}

#[test]
fn preserve_flags_drop_node_and_tag() {
    let mut d = def("a", "b");
    d.preserve_node = false;
    d.preserve_tag = false;
    let copy = forward(&d, &rec(0, Some("n1"), Some("t")), 8).expect("forwarded");
    assert_eq!((copy.node, copy.tag), (None, None));
}

#[test]
fn the_stored_form_parses_back_to_the_same_definition() {
    let d = parse_def(
        "r",
        &body(
            json!({"source":"a","dest":"b","preserve_tag":false,"filter":"x:*","allow_cycle":true}),
        ),
    )
    .expect("valid");
    let Value::Object(stored) = def_to_json(&d) else {
        panic!("an object")
    };
    assert_eq!(parse_def("r", &stored), Ok(d));
}
