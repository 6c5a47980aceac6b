use super::*;
use serde_json::json;

fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

fn minimal() -> Value {
    json!({"source": "orders", "bootstrap_servers": "127.0.0.1:9092", "kafka_topic": "orders"})
}

fn with(extra: Value) -> Map<String, Value> {
    let mut b = body(minimal());
    b.extend(body(extra));
    b
}

#[test]
fn a_minimal_body_takes_every_default() {
    let d = parse_def("s1", &body(minimal())).unwrap();
    assert_eq!(d.key, KeyChoice::None);
    assert_eq!(d.guarantee, Guarantee::AtLeastOnce);
    assert_eq!(d.progress_topic, DEFAULT_PROGRESS_TOPIC);
    assert_eq!(d.progress_replication, -1);
    assert_eq!((d.batch_max_records, d.linger_ms, d.from_seq), (500, 5, 0));
    assert!(d.properties.is_empty());
}

#[test]
fn every_field_is_read() {
    let d = parse_def(
        "s1",
        &with(
            json!({"key": {"field": "customer.id"}, "guarantee": "exactly_once",
            "properties": {"security.protocol": "SASL_SSL", "sasl.password": "p"},
            "progress_topic": "prog", "progress_replication": 1, "batch_max_records": 7,
            "linger_ms": 0, "from_seq": 42}),
        ),
    )
    .unwrap();
    assert_eq!(
        d.key,
        KeyChoice::Field(vec!["customer".into(), "id".into()])
    );
    assert_eq!(d.guarantee, Guarantee::ExactlyOnce);
    assert_eq!(d.properties["security.protocol"], "SASL_SSL");
    assert_eq!(
        (d.progress_topic.as_str(), d.progress_replication),
        ("prog", 1)
    );
    assert_eq!((d.batch_max_records, d.linger_ms, d.from_seq), (7, 0, 42));
}

#[test]
fn bad_fields_name_the_field() {
    let cases = [
        (json!({"source": 1}), "source"),
        (json!({"bootstrap_servers": " "}), "bootstrap_servers"),
        (json!({"kafka_topic": "a/b"}), "kafka_topic"),
        (json!({"kafka_topic": ".."}), "kafka_topic"),
        (json!({"key": "value"}), "key"),
        (json!({"key": {"field": "a..b"}}), "key"),
        (json!({"key": {"field": "a", "x": 1}}), "key"),
        (json!({"guarantee": "twice"}), "guarantee"),
        (json!({"properties": []}), "properties"),
        (json!({"properties": {"linger.ms": 5}}), "properties"),
        (json!({"progress_topic": "orders"}), "progress_topic"),
        (json!({"progress_replication": 0}), "progress_replication"),
        (json!({"batch_max_records": 0}), "batch_max_records"),
        (json!({"batch_max_records": 10001}), "batch_max_records"),
        (json!({"linger_ms": -1}), "linger_ms"),
        (json!({"from_seq": 1.5}), "from_seq"),
    ];
    for (extra, name) in cases {
        match parse_def("s", &with(extra.clone())) {
            Err(SinkDefError::Field(f, _)) => assert_eq!(f, name, "{extra}"),
            other => panic!("{extra}: {other:?}"),
        }
    }
    assert!(matches!(
        parse_def("s", &body(json!({"source": "a"}))),
        Err(SinkDefError::Field("bootstrap_servers", _))
    ));
}

#[test]
fn properties_the_sink_owns_are_refused_by_name() {
    for p in [
        "transactional.id",
        "enable.idempotence",
        "isolation.level",
        "bootstrap.servers",
        "Bootstrap.Servers",
        "acks",
        "plugin.library.paths",
        "sasl.kerberos.kinit.cmd",
    ] {
        let r = parse_def("s", &with(json!({"properties": {p: "x"}})));
        assert_eq!(r, Err(SinkDefError::Property(p.to_string())), "{p}");
    }
}

#[test]
fn names_are_checked_after_the_fields() {
    assert_eq!(
        parse_def("a/b", &body(minimal())),
        Err(SinkDefError::SinkName)
    );
    assert_eq!(
        parse_def(&"x".repeat(SINK_NAME_MAX_BYTES + 1), &body(minimal())),
        Err(SinkDefError::SinkName)
    );
    assert!(parse_def(&"x".repeat(SINK_NAME_MAX_BYTES), &body(minimal())).is_ok());
    let bad_source = with(json!({"source": "-x"}));
    assert_eq!(parse_def("s", &bad_source), Err(SinkDefError::SourceName));
}

#[test]
fn secret_looking_values_are_redacted_and_others_shown() {
    let props: BTreeMap<String, String> = [
        ("sasl.password", "hunter2"),
        ("ssl.key.password", "k"),
        ("ssl.key.pem", "PEM"),
        ("sasl.oauthbearer.client.secret", "s"),
        ("sasl.oauthbearer.config", "principal=x secret=y"),
        ("security.protocol", "SASL_SSL"),
        ("sasl.username", "alice"),
        ("ssl.ca.location", "/etc/ca.pem"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let shown = redacted(&props);
    for secret in [
        "sasl.password",
        "ssl.key.password",
        "ssl.key.pem",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
    ] {
        assert_eq!(shown[secret], REDACTED, "{secret}");
    }
    assert_eq!(shown["security.protocol"], "SASL_SSL");
    assert_eq!(shown["sasl.username"], "alice");
    assert_eq!(shown["ssl.ca.location"], "/etc/ca.pem");
}

#[test]
fn the_stored_form_parses_back_to_the_same_definition() {
    let d = parse_def(
        "s",
        &with(json!({"key": "tag", "properties": {"sasl.password": "p"}, "from_seq": 3})),
    )
    .unwrap();
    let stored = def_to_json(&d, false);
    assert_eq!(stored["properties"]["sasl.password"], "p");
    assert_eq!(parse_def("s", stored.as_object().unwrap()).unwrap(), d);
    assert_eq!(
        def_to_json(&d, true)["properties"]["sasl.password"],
        REDACTED
    );
}

#[test]
fn keys_come_from_the_tag_or_a_data_field() {
    let data = br#"{"customer":{"id":"c-7","n":12,"none":null}}"#;
    assert_eq!(KeyChoice::None.key_of(Some("t"), data), None);
    assert_eq!(KeyChoice::Tag.key_of(Some("t"), data), Some(b"t".to_vec()));
    assert_eq!(KeyChoice::Tag.key_of(None, data), None);
    let field = |p: &str| KeyChoice::Field(p.split('.').map(String::from).collect());
    assert_eq!(
        field("customer.id").key_of(None, data),
        Some(b"c-7".to_vec())
    );
    assert_eq!(field("customer.n").key_of(None, data), Some(b"12".to_vec()));
    assert_eq!(
        field("customer").key_of(None, data),
        Some(br#"{"id":"c-7","n":12,"none":null}"#.to_vec())
    );
    assert_eq!(field("customer.none").key_of(None, data), None);
    assert_eq!(field("missing.x").key_of(None, data), None);
    assert_eq!(field("a").key_of(None, b"[1,2]"), None);
}

#[test]
fn a_re_put_may_not_repoint_the_sink() {
    let old = parse_def("s", &body(minimal())).unwrap();
    let same = parse_def(
        "s",
        &with(json!({"linger_ms": 9, "bootstrap_servers": "b:1"})),
    )
    .unwrap();
    assert_eq!(repoint(&old, &same), None);
    for (extra, name) in [
        (json!({"source": "other"}), "source"),
        (json!({"kafka_topic": "other"}), "kafka_topic"),
        (json!({"guarantee": "exactly_once"}), "guarantee"),
        (json!({"progress_topic": "p2"}), "progress_topic"),
    ] {
        let new = parse_def("s", &with(extra)).unwrap();
        assert_eq!(repoint(&old, &new), Some(name));
    }
}
