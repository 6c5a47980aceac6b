//! `GET /v0/metrics` (API.md §8): Prometheus text by default, JSON on request; aggregate
//! and WAL families always present, per-topic series for existing topics.

use crate::harness::sse::SseStream;
use crate::harness::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A parsed text exposition: sample (`name{labels}` as written) → value, and the families
/// declared by `# TYPE`.
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample {series}; have {:?}", self.samples.keys()))
    }

    fn topic(&self, family: &str, topic: &str) -> Option<f64> {
        self.samples
            .get(&format!("{family}{{topic=\"{topic}\"}}"))
            .copied()
    }

    /// Topics that have a sample of `family`.
    fn topics_of(&self, family: &str) -> BTreeSet<String> {
        let prefix = format!("{family}{{topic=\"");
        self.samples
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix)?.strip_suffix("\"}"))
            .map(str::to_string)
            .collect()
    }
}

/// Parse strictly: every line is a `# HELP`, a `# TYPE`, or `name{labels} value` with a
/// numeric value whose family has both HELP and TYPE, declared before it.
fn parse(text: &str) -> Scrape {
    let mut helped = BTreeSet::new();
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has text");
            assert!(!help.is_empty(), "{line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(types.insert(name.to_string(), kind.to_string()).is_none());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value of {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "metric name of {line:?}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(
                labels.starts_with('{') && labels.ends_with("\"}") && labels.contains("=\""),
                "labels of {line:?}"
            );
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before TYPE: {line}");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{line}"
        );
    }
    assert_eq!(
        helped,
        types.keys().cloned().collect::<BTreeSet<_>>(),
        "every family has HELP and TYPE"
    );
    Scrape { samples, types }
}

fn scrape(s: &Server) -> Scrape {
    let resp = s.get("/v0/metrics");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let ct = resp.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/plain"), "content-type {ct}");
    parse(&resp.text())
}

fn scrape_json(s: &Server) -> Value {
    let resp = s.req("GET", "/v0/metrics", &[("Accept", "application/json")], b"");
    assert!(resp.is_json());
    resp.expect(200)
}

/// Scrape until `done` holds (WAL writers count frames after the write was acknowledged).
fn scrape_until(s: &Server, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape(s);
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}: {:?}", m.samples);
        std::thread::sleep(Duration::from_millis(20));
    }
}

const GAUGES: [&str; 11] = [
    "topics_topics",
    "topics_routers",
    "topics_records_live",
    "topics_bytes_live",
    "topics_queue_topics",
    "topics_queue_leases_in_flight",
    "topics_sse_connections",
    "topics_watch_sessions",
    "topics_topic_metrics_truncated",
    "topics_wal_queue_depth",
    "topics_wal_read_only",
];

const WAL_COUNTERS: [&str; 6] = [
    "topics_wal_frames_total",
    "topics_wal_batches_total",
    "topics_wal_fsyncs_total",
    "topics_wal_bytes_written_total",
    "topics_wal_rotations_total",
    "topics_wal_submit_full_total",
];

const BUCKETS: [&str; 10] = [
    "50", "100", "250", "500", "1000", "5000", "10000", "50000", "100000", "+Inf",
];

#[test]
fn a_fresh_server_reports_every_family_with_zeros() {
    let s = Server::start();
    let m = scrape(&s);
    for name in GAUGES {
        assert_eq!(m.types[name], "gauge", "{name}");
        assert_eq!(m.value(name), 0.0, "{name}");
    }
    for class in ["ephemeral", "memory", "disk", "fsync"] {
        assert_eq!(
            m.value(&format!("topics_topics_by_class{{class=\"{class}\"}}")),
            0.0
        );
    }
    assert_eq!(m.types["topics_topics_by_class"], "gauge");
    assert_eq!(m.types["topics_wal_queue_depth_peak"], "gauge");
    m.value("topics_wal_queue_depth_peak");
    assert_eq!(m.value("topics_ready"), 1.0);
    assert_eq!(m.value("topics_recovery_progress"), 1.0);
    assert_eq!(m.types["topics_uptime_ms"], "counter");
    assert!(m.value("topics_uptime_ms") < 600_000.0);
    for name in WAL_COUNTERS {
        assert_eq!(m.types[name], "counter", "{name}");
        // Startup writes nothing to the WAL but this boot's first files.
        assert!(m.value(name) >= 0.0, "{name}");
    }
    assert_eq!(m.value("topics_wal_submit_full_total"), 0.0);
    let h = "topics_wal_fsync_latency_us";
    assert_eq!(m.types[h], "histogram");
    let mut last = 0.0;
    for le in BUCKETS {
        let v = m.value(&format!("{h}_bucket{{le=\"{le}\"}}"));
        assert!(v >= last, "buckets are cumulative");
        last = v;
    }
    assert_eq!(m.value(&format!("{h}_count")), last);
    m.value(&format!("{h}_sum"));
    // Per-topic families are declared, with no series yet.
    for family in [
        "topics_topic_head_seq",
        "topics_topic_earliest_seq",
        "topics_topic_records_live",
        "topics_topic_bytes_live",
        "topics_topic_queue_ready",
        "topics_topic_queue_in_flight",
    ] {
        assert_eq!(m.types[family], "gauge");
        assert!(m.topics_of(family).is_empty(), "{family}");
    }
}

#[test]
fn records_written_counts_every_accepted_record_of_every_class() {
    let s = Server::start();
    assert_eq!(scrape(&s).value("topics_records_written_total"), 0.0);
    assert_eq!(scrape(&s).types["topics_records_written_total"], "counter");
    s.create("e", json!({ "durability": "ephemeral" }));
    s.create("f", json!({ "durability": "fsync" }));
    s.write("e", json!([{ "data": 1 }, { "data": 2 }, { "data": 3 }]));
    s.write("f", json!([{ "data": 1 }, { "data": 2 }]));
    // A refused write (a record over the size limit) counts nothing.
    let big = "x".repeat(2 << 20);
    let r = s.post("/v0/topics/f", &json!({ "records": [{ "data": big }] }));
    assert_eq!(r.status, 400, "{}", r.text());
    // Deleting records does not take the count back.
    s.post("/v0/topics/e/delete", &json!({ "before_seq": 3 }))
        .expect(200);
    assert_eq!(scrape(&s).value("topics_records_written_total"), 5.0);
    assert_eq!(scrape_json(&s)["records_written_total"], 5);
}

#[test]
fn per_topic_series_follow_writes_and_deletes() {
    let s = Server::start();
    s.create("orders", json!({"durability": "memory", "cap_records": 3}));
    s.create("eph", json!({"durability": "ephemeral"}));
    // Every character a topic name may have besides letters and digits; none of them needs
    // escaping in a label value (quotes, backslashes and newlines are not allowed in names;
    // the escaping itself is unit-tested in src/http/metrics.rs).
    let odd = "Tenant-9:a.b_c";
    s.write(odd, records(2));
    s.write("orders", records(3));
    s.write("orders", records(2));
    let m = scrape(&s);
    assert_eq!(m.value("topics_topics"), 3.0);
    assert_eq!(m.value("topics_topics_by_class{class=\"memory\"}"), 1.0);
    assert_eq!(m.value("topics_topics_by_class{class=\"ephemeral\"}"), 1.0);
    assert_eq!(m.value("topics_topics_by_class{class=\"disk\"}"), 1.0);
    assert_eq!(m.value("topics_topics_by_class{class=\"fsync\"}"), 0.0);
    assert_eq!(m.value("topics_records_live"), 5.0, "2 + 3 kept by the cap");
    assert!(m.value("topics_bytes_live") > 0.0);
    assert_eq!(m.topic("topics_topic_head_seq", "orders"), Some(5.0));
    assert_eq!(m.topic("topics_topic_head_seq", odd), Some(2.0));
    assert_eq!(m.topic("topics_topic_head_seq", "eph"), Some(0.0));
    assert_eq!(m.topic("topics_topic_records_live", "orders"), Some(3.0));
    assert_eq!(m.topic("topics_topic_earliest_seq", "orders"), Some(3.0));
    assert_eq!(m.topic("topics_topic_earliest_seq", odd), Some(1.0));
    let state = s.state("orders");
    assert_eq!(
        m.topic("topics_topic_bytes_live", "orders"),
        state["bytes"].as_f64()
    );
    assert_eq!(
        m.topics_of("topics_topic_head_seq"),
        ["Tenant-9:a.b_c", "eph", "orders"].map(String::from).into()
    );
    assert!(
        m.topics_of("topics_topic_queue_ready").is_empty(),
        "logs are no queues"
    );
    s.delete("/v0/topics/eph").expect(200);
    let m = scrape(&s);
    assert_eq!(m.value("topics_topics"), 2.0);
    assert_eq!(m.topic("topics_topic_head_seq", "eph"), None);
}

#[test]
fn queue_series_count_ready_and_in_flight() {
    let s = Server::start();
    s.create("q", json!({"type": "queue"}));
    s.write("q", records(3));
    let claimed = s
        .post("/v0/topics/q/claim", &json!({"node": "w"}))
        .expect(200);
    assert!(!claimed.to_string().is_empty());
    let m = scrape(&s);
    assert_eq!(m.value("topics_queue_topics"), 1.0);
    assert_eq!(m.topic("topics_topic_queue_in_flight", "q"), Some(1.0));
    assert_eq!(m.topic("topics_topic_queue_ready", "q"), Some(2.0));
    assert_eq!(m.value("topics_queue_leases_in_flight"), 1.0);
    assert_eq!(m.topic("topics_topic_head_seq", "q"), Some(3.0));
    let j = scrape_json(&s);
    assert_eq!(j["queue_topics"], 1);
    assert_eq!(j["queue_leases_in_flight"], 1);
}

#[test]
fn json_variant_has_exactly_the_listed_keys() {
    let s = Server::start();
    s.write("a", records(2));
    let j = scrape_json(&s);
    let keys: BTreeSet<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "topics",
        "topics_ephemeral",
        "topics_memory",
        "topics_disk",
        "topics_fsync",
        "routers",
        "records_live",
        "bytes_live",
        "records_written_total",
        "queue_topics",
        "queue_leases_in_flight",
        "sse_connections",
        "watch_sessions",
        "ready",
        "replay_progress",
        "uptime_ms",
        "wal",
    ]
    .into();
    assert_eq!(keys, want);
    let wal: BTreeSet<&str> = j["wal"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let want_wal: BTreeSet<&str> = [
        "fsyncs",
        "frames",
        "batches",
        "bytes_written",
        "rotations",
        "queue_depth",
        "queue_depth_peak",
        "submit_full_total",
        "read_only",
        "fsync_count",
        "fsync_micros_total",
    ]
    .into();
    assert_eq!(wal, want_wal);
    assert_eq!(j["topics"], 1);
    assert_eq!(j["topics_disk"], 1);
    assert_eq!(j["records_live"], 2);
    assert_eq!(j["ready"], true);
    assert_eq!(j["replay_progress"], 1.0);
    assert_eq!(j["wal"]["read_only"], false);
    assert!(j.get("performance").is_none());
    // `Accept` listing JSON among others still selects it.
    let resp = s.req(
        "GET",
        "/v0/metrics",
        &[("Accept", "text/plain;q=0.5, application/json")],
        b"",
    );
    assert!(resp.is_json());
}

#[test]
fn wal_counters_move_after_a_disk_write() {
    let s = Server::start();
    s.create("d", json!({"durability": "disk"}));
    let before = scrape_until(&s, "topic definition written", |m| {
        m.value("topics_wal_queue_depth") == 0.0
    });
    let frames = before.value("topics_wal_frames_total");
    let bytes = before.value("topics_wal_bytes_written_total");
    let batches = before.value("topics_wal_batches_total");
    s.write("d", records(4));
    let after = scrape_until(&s, "frames counted", |m| {
        m.value("topics_wal_frames_total") > frames
    });
    assert!(after.value("topics_wal_bytes_written_total") > bytes);
    assert!(after.value("topics_wal_batches_total") > batches);
    assert!(after.value("topics_wal_queue_depth_peak") >= 1.0);
    let j = scrape_json(&s);
    assert!(j["wal"]["frames"].as_f64().unwrap() > frames);
    assert!(j["wal"]["bytes_written"].as_f64().unwrap() > bytes);
}

#[test]
fn fsync_histogram_counts_a_write_to_an_fsync_topic() {
    let s = Server::start();
    s.create("f", json!({"durability": "fsync"}));
    let h = "topics_wal_fsync_latency_us";
    let before = scrape(&s);
    let count = before.value(&format!("{h}_count"));
    s.write("f", records(1));
    // An fsync write is acknowledged after its covering fdatasync, which is counted first.
    let after = scrape(&s);
    let now = after.value(&format!("{h}_count"));
    assert!(now > count, "fsync count {count} -> {now}");
    assert_eq!(after.value(&format!("{h}_bucket{{le=\"+Inf\"}}")), now);
    assert_eq!(after.value("topics_wal_fsyncs_total"), now);
    assert!(after.value(&format!("{h}_sum")) >= before.value(&format!("{h}_sum")));
    let j = scrape_json(&s);
    assert!(j["wal"]["fsync_count"].as_f64().unwrap() >= now);
    assert!(j["wal"]["fsyncs"].as_f64().unwrap() >= now);
}

#[test]
fn streams_and_sessions_are_counted() {
    let s = Server::start();
    s.write("a", records(1));
    let wid = s.watch_all(&["a".to_string()]);
    let m = scrape(&s);
    assert_eq!(m.value("topics_watch_sessions"), 1.0);
    assert_eq!(m.value("topics_sse_connections"), 0.0);
    let _watch = SseStream::open(s.addr, &format!("/v0/watch/{wid}"), &[]);
    s.create("q", json!({"type": "queue"}));
    let _work = SseStream::open(s.addr, "/v0/topics/q/work?node=w", &[]);
    let m = scrape_until(&s, "two streams open", |m| {
        m.value("topics_sse_connections") == 2.0
    });
    assert_eq!(m.value("topics_watch_sessions"), 1.0);
}

#[test]
fn per_topic_series_stop_at_the_configured_limit() {
    let s = Server::start_with(&[], Some("[metrics]\nmax_topic_series = 2\n"));
    for t in ["c", "a", "b"] {
        s.write(t, records(1));
    }
    let m = scrape(&s);
    assert_eq!(
        m.value("topics_topics"),
        3.0,
        "aggregates count every topic"
    );
    assert_eq!(m.value("topics_records_live"), 3.0);
    assert_eq!(m.value("topics_topic_metrics_truncated"), 1.0);
    assert_eq!(
        m.topics_of("topics_topic_head_seq"),
        ["a", "b"].map(String::from).into(),
        "the first topics in name order"
    );
    s.delete("/v0/topics/c").expect(200);
    assert_eq!(scrape(&s).value("topics_topic_metrics_truncated"), 0.0);
}

#[test]
fn routers_are_counted() {
    let s = Server::start();
    s.write("src", records(1));
    s.write("dst", records(1));
    let resp = crate::routers::put_router(&s, "src->dst", json!({"source": "src", "dest": "dst"}));
    assert!(matches!(resp.status, 200 | 201), "{}", resp.text());
    assert_eq!(scrape(&s).value("topics_routers"), 1.0);
    assert_eq!(scrape_json(&s)["routers"], 1);
}

/// Beyond the contract: requests by route and status, latency by route, router lag.
#[test]
fn requests_latency_and_router_lag_are_exported() {
    let s = Server::start();
    s.write("t", json!([{"data": 1}]));
    assert_eq!(s.get("/v0/topics/nope").status, 404);
    let m = scrape(&s);
    assert!(m.value("topics_http_requests_total{route=\"write\",status=\"201\"}") >= 1.0);
    assert!(m.value("topics_http_requests_total{route=\"topics\",status=\"404\"}") >= 1.0);
    assert!(m.value("topics_http_request_duration_us_count{route=\"write\"}") >= 1.0);
    assert_eq!(
        m.types
            .get("topics_http_request_duration_us")
            .map(String::as_str),
        Some("histogram")
    );
    assert!(m.value("topics_disk_bytes{kind=\"wal\"}") > 0.0);
    s.put("/v0/routers/r", &json!({"source": "src", "dest": "dst"}))
        .expect(201);
    let m = scrape(&s);
    assert_eq!(m.value("topics_router_lag{router=\"r\"}"), 0.0);
}
