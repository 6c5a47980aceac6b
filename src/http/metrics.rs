//! `GET /v0/metrics` (API.md §8): Prometheus text exposition, or one JSON object when
//! `Accept` contains `application/json`. Always `200`, during WAL replay too: what recovery
//! knows (readiness, progress, uptime, open streams) is reported, everything that needs the
//! registry or the WAL is `0` until then.
//!
//! The text format is written by hand: the families are fixed, every value is read at scrape
//! time from counters the server keeps anyway, and a client library would add a registry of
//! its own to keep in step with them for no gain.
//!
//! Cost: one state message per topic actor (and one counters message per queue actor), up to
//! [`IN_FLIGHT`] of them in flight at once, so a scrape does not wait for one actor after
//! another (unbounded, 10000 topics cost twice the CPU: see docs/BENCHMARKS.md). A queue
//! whose actor has not started yet (queues start on first use after a restart) is started by
//! the first scrape. Per-topic series cover the first `metrics.max_topic_series` topics in name
//! order (default 1000); `topics_topic_metrics_truncated` is `1` when topics were left out
//! and `0` otherwise (always present). Aggregates count every topic.

mod sinks;

use super::AppState;
use crate::model::topic_config::{Durability, TopicType};
use crate::storage::wal::{WalStats, FSYNC_BUCKETS_US};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::stream::{self, StreamExt};
use serde_json::json;
pub use sinks::SinkRow;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// One topic's series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicRow {
    pub name: String,
    pub head_seq: u64,
    pub earliest_seq: u64,
    pub records_live: u64,
    pub bytes_live: u64,
    /// `(ready, in_flight)` for queue topics.
    /// Queue topics: (ready, in flight, oldest lease age in ms).
    pub queue: Option<(u64, u64, u64)>,
}

/// The WAL's counters at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalSnapshot {
    pub frames: u64,
    pub batches: u64,
    pub fsyncs: u64,
    pub bytes_written: u64,
    pub rotations: u64,
    pub submit_full: u64,
    pub queue_depth: u64,
    pub queue_depth_peak: u64,
    pub read_only: bool,
    /// Cumulative counts per `le` of [`FSYNC_BUCKETS_US`], then `+Inf`.
    pub fsync_buckets: [u64; FSYNC_BUCKETS_US.len() + 1],
    pub fsync_micros_total: u64,
}

impl WalSnapshot {
    fn of(s: &WalStats) -> WalSnapshot {
        let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let fsync_buckets = s.fsync_cumulative();
        WalSnapshot {
            frames: r(&s.frames),
            batches: r(&s.batches),
            // The histogram's count, so `fsyncs` and `_count` agree within one scrape.
            fsyncs: fsync_buckets[FSYNC_BUCKETS_US.len()],
            bytes_written: r(&s.bytes_written),
            rotations: r(&s.rotations),
            submit_full: r(&s.submit_full),
            queue_depth: r(&s.queue_depth),
            queue_depth_peak: r(&s.queue_depth_peak),
            read_only: false,
            fsync_buckets,
            fsync_micros_total: r(&s.fsync_micros_total),
        }
    }
}

/// Everything one scrape reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub topics: u64,
    /// Topics per durability class: ephemeral, memory, disk, fsync.
    pub by_class: [u64; 4],
    pub routers: u64,
    pub records_live: u64,
    pub bytes_live: u64,
    /// Records accepted by writes since start (a counter).
    pub records_written: u64,
    pub queue_topics: u64,
    pub queue_leases_in_flight: u64,
    pub sse_connections: u64,
    pub watch_sessions: u64,
    pub ready: bool,
    pub replay_progress: f64,
    pub uptime_ms: u64,
    pub per_topic: Vec<TopicRow>,
    pub truncated: bool,
    pub wal: WalSnapshot,
    /// Beyond the contract (text format only): requests by route and status.
    pub http_counts: Vec<(&'static str, String, u64)>,
    /// Per route: cumulative latency buckets (last = count) and the sum in µs.
    pub http_latency: Vec<(&'static str, Vec<u64>, u64)>,
    /// Per router: source head − cursor (records not yet consumed).
    pub router_lag: Vec<(String, u64)>,
    /// Per Kafka sink (feature `kafka`).
    pub sinks: Vec<SinkRow>,
    /// `429`s by the cap that refused them.
    pub throttled: Vec<(&'static str, u64)>,
    /// Bytes on disk under the data directory: WAL, segments, snapshots.
    pub disk_bytes: [u64; 3],
}

/// Actor requests one scrape keeps in flight at once.
const IN_FLIGHT: usize = 256;

const CLASSES: [&str; 4] = ["ephemeral", "memory", "disk", "fsync"];

fn class_index(d: Durability) -> usize {
    match d {
        Durability::Ephemeral => 0,
        Durability::Memory => 1,
        Durability::Disk => 2,
        Durability::Fsync => 3,
    }
}

pub async fn metrics(
    State(state): State<AppState>,
    caller: super::auth::Caller,
    headers: HeaderMap,
) -> Response {
    let mut snap = collect(&state).await;
    // A key limited to some names sees per-topic and per-router series of those only; the
    // aggregates stay server-wide.
    snap.per_topic.retain(|r| caller.allows(&r.name));
    snap.router_lag.retain(|(name, _)| caller.allows(name));
    snap.sinks.retain(|r| caller.allows(&r.name));
    let json = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.as_bytes().windows(16).any(|w| w == b"application/json"));
    if json {
        return super::render::json_value(StatusCode::OK, &render_json(&snap));
    }
    let mut resp = Response::new(axum::body::Body::from(render_text(&snap)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Read every value. Never fails: what is not known yet (during replay) stays `0`.
pub async fn collect(state: &AppState) -> Snapshot {
    let inner = &state.inner;
    let ready = state.is_ready();
    let mut snap = Snapshot {
        ready,
        replay_progress: if ready {
            1.0
        } else {
            inner.progress.fraction()
        },
        uptime_ms: inner.started.elapsed().as_millis() as u64,
        sse_connections: inner.watch.streams(),
        watch_sessions: inner.watch.len() as u64,
        ..Snapshot::default()
    };
    let read_only = inner.health.is_poisoned() || inner.health.is_full();
    snap.wal.read_only = read_only;
    let stats = &inner.request_stats;
    snap.http_counts = stats.counts();
    snap.throttled = stats.throttled();
    snap.http_latency = (0..super::access::ROUTES.len())
        .map(|r| {
            let (cum, sum) = stats.latency(r);
            (super::access::ROUTES[r], cum, sum)
        })
        .filter(|(_, cum, _)| cum.last().is_some_and(|&n| n > 0))
        .collect();
    let Some(registry) = inner.registry.get() else {
        return snap;
    };
    snap.wal = WalSnapshot {
        read_only,
        ..WalSnapshot::of(registry.wal().stats())
    };
    snap.routers = inner.routers.get().map_or(0, |r| r.len() as u64);
    snap.records_written = registry.records_written();
    let data_dir = state.config().server.data_dir.clone();
    snap.disk_bytes = tokio::task::spawn_blocking(move || disk_bytes(&data_dir))
        .await
        .unwrap_or_default();
    if let Some(routers) = inner.routers.get() {
        let all = routers.all();
        snap.router_lag = stream::iter(all)
            .map(|r| async move {
                let src = registry.get(&r.def().source)?;
                let head = src.state(false).await.ok()?.head_seq;
                Some((r.name.to_string(), head.saturating_sub(r.cursor())))
            })
            .buffered(IN_FLIGHT)
            .filter_map(|x| async move { x })
            .collect()
            .await;
    }
    #[cfg(feature = "kafka")]
    if let Some(sinks) = inner.sinks.get() {
        snap.sinks = super::sinks::metric_rows(sinks).await;
    }
    // Every topic: the handler narrows per-topic series to the caller's prefixes.
    let (handles, _) = registry.list("", None, usize::MAX, |_| true);
    // Every actor answers at once; a topic deleted meanwhile is left out.
    let states: Vec<_> = stream::iter(handles)
        .map(|h| async move { h.state(false).await })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let states: Vec<_> = states.into_iter().flatten().collect();
    let limit = state.config().metrics.max_topic_series;
    let queue_names: Vec<std::sync::Arc<str>> = states
        .iter()
        .filter(|s| s.config.kind == TopicType::Queue)
        .map(|s| s.name.clone())
        .collect();
    let counters = match inner.queues.get() {
        Some(queues) => {
            stream::iter(queue_names)
                .map(|name| async move {
                    let q = queues.get(&name).await.ok()?;
                    q.counters()
                        .await
                        .ok()
                        .map(|c| (c.ready, c.in_flight, c.oldest_lease_ms))
                })
                .buffered(IN_FLIGHT)
                .collect()
                .await
        }
        None => vec![None; queue_names.len()],
    };
    let mut counters = counters.into_iter();
    for s in &states {
        snap.topics += 1;
        snap.by_class[class_index(s.config.durability)] += 1;
        snap.records_live += s.count;
        snap.bytes_live += s.bytes;
        let queue = match s.config.kind {
            TopicType::Queue => {
                snap.queue_topics += 1;
                let c = counters.next().flatten().unwrap_or((0, 0, 0));
                snap.queue_leases_in_flight += c.1;
                Some(c)
            }
            TopicType::Log => None,
        };
        if snap.per_topic.len() < limit {
            snap.per_topic.push(TopicRow {
                name: s.name.to_string(),
                head_seq: s.head_seq,
                earliest_seq: s.earliest_seq,
                records_live: s.count,
                bytes_live: s.bytes,
                queue,
            });
        } else {
            snap.truncated = true;
        }
    }
    snap
}

pub fn render_json(s: &Snapshot) -> serde_json::Value {
    let mut out = render_json_core(s);
    if !s.sinks.is_empty() {
        out["sinks"] = sinks::json(&s.sinks);
    }
    out
}

fn render_json_core(s: &Snapshot) -> serde_json::Value {
    let w = &s.wal;
    json!({
        "topics": s.topics,
        "topics_ephemeral": s.by_class[0],
        "topics_memory": s.by_class[1],
        "topics_disk": s.by_class[2],
        "topics_fsync": s.by_class[3],
        "routers": s.routers,
        "records_live": s.records_live,
        "bytes_live": s.bytes_live,
        "records_written_total": s.records_written,
        "queue_topics": s.queue_topics,
        "queue_leases_in_flight": s.queue_leases_in_flight,
        "sse_connections": s.sse_connections,
        "watch_sessions": s.watch_sessions,
        "ready": s.ready,
        "replay_progress": s.replay_progress,
        "uptime_ms": s.uptime_ms,
        "wal": {
            "fsyncs": w.fsyncs,
            "frames": w.frames,
            "batches": w.batches,
            "bytes_written": w.bytes_written,
            "rotations": w.rotations,
            "queue_depth": w.queue_depth,
            "queue_depth_peak": w.queue_depth_peak,
            "submit_full_total": w.submit_full,
            "read_only": w.read_only,
            "fsync_count": w.fsync_buckets[FSYNC_BUCKETS_US.len()],
            "fsync_micros_total": w.fsync_micros_total,
        }
    })
}

/// Text exposition writer: a family header, then its samples.
struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, "gauge", help).sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help).sample(name, &[], value);
    }

    /// A per-topic gauge family (header even when no topic has a sample).
    fn per_topic(&mut self, name: &str, help: &str, rows: &[(&str, u64)]) {
        self.family(name, "gauge", help);
        for (topic, v) in rows {
            self.sample(name, &[("topic", topic)], v);
        }
    }
}

/// Label value escaping of the text format: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub fn render_text(s: &Snapshot) -> String {
    let mut t = Text {
        out: String::with_capacity(4096 + s.per_topic.len() * 300),
    };
    t.gauge("topics_topics", "Existing topics.", s.topics);
    t.family(
        "topics_topics_by_class",
        "gauge",
        "Existing topics per durability class.",
    );
    for (class, n) in CLASSES.iter().zip(s.by_class) {
        t.sample("topics_topics_by_class", &[("class", class)], n);
    }
    t.gauge("topics_routers", "Defined routers.", s.routers);
    t.gauge(
        "topics_records_live",
        "Live records across all topics.",
        s.records_live,
    );
    t.gauge(
        "topics_bytes_live",
        "Live payload bytes across all topics.",
        s.bytes_live,
    );
    t.counter(
        "topics_records_written_total",
        "Records accepted by writes since the process started, every durability class.",
        s.records_written,
    );
    t.gauge(
        "topics_queue_topics",
        "Topics of type queue.",
        s.queue_topics,
    );
    t.gauge(
        "topics_queue_leases_in_flight",
        "Unsettled leases across all queue topics.",
        s.queue_leases_in_flight,
    );
    t.gauge(
        "topics_sse_connections",
        "Open event streams (watch and /work).",
        s.sse_connections,
    );
    t.gauge(
        "topics_watch_sessions",
        "Existing watch sessions.",
        s.watch_sessions,
    );
    t.gauge(
        "topics_ready",
        "1 once snapshot load and WAL replay finished, else 0.",
        u8::from(s.ready),
    );
    t.gauge(
        "topics_recovery_progress",
        "WAL replay progress, 0 to 1.",
        s.replay_progress,
    );
    t.counter(
        "topics_uptime_ms",
        "Milliseconds since the process started.",
        s.uptime_ms,
    );

    let rows = &s.per_topic;
    let col = |f: fn(&TopicRow) -> u64| -> Vec<(&str, u64)> {
        rows.iter().map(|r| (r.name.as_str(), f(r))).collect()
    };
    t.per_topic(
        "topics_topic_head_seq",
        "Highest assigned seq of each topic.",
        &col(|r| r.head_seq),
    );
    t.per_topic(
        "topics_topic_earliest_seq",
        "Lowest live seq of each topic.",
        &col(|r| r.earliest_seq),
    );
    t.per_topic(
        "topics_topic_records_live",
        "Live records of each topic.",
        &col(|r| r.records_live),
    );
    t.per_topic(
        "topics_topic_bytes_live",
        "Live payload bytes of each topic.",
        &col(|r| r.bytes_live),
    );
    let queues = |f: fn((u64, u64, u64)) -> u64| -> Vec<(&str, u64)> {
        rows.iter()
            .filter_map(|r| r.queue.map(|q| (r.name.as_str(), f(q))))
            .collect()
    };
    t.per_topic(
        "topics_topic_queue_ready",
        "Claimable records of each queue topic.",
        &queues(|q| q.0),
    );
    t.per_topic(
        "topics_topic_queue_in_flight",
        "Unsettled leases of each queue topic.",
        &queues(|q| q.1),
    );
    t.per_topic(
        "topics_topic_queue_oldest_lease_ms",
        "Age of the oldest unsettled lease of each queue topic (ms; 0 when none).",
        &queues(|q| q.2),
    );
    t.gauge(
        "topics_topic_metrics_truncated",
        "1 when topics beyond the per-topic series limit were left out, else 0.",
        u8::from(s.truncated),
    );

    let w = &s.wal;
    t.counter(
        "topics_wal_frames_total",
        "Frames written to the WAL.",
        w.frames,
    );
    t.counter(
        "topics_wal_batches_total",
        "Group writes to the WAL.",
        w.batches,
    );
    t.counter(
        "topics_wal_fsyncs_total",
        "WAL fdatasync calls completed.",
        w.fsyncs,
    );
    t.counter(
        "topics_wal_bytes_written_total",
        "Bytes written to the WAL.",
        w.bytes_written,
    );
    t.counter(
        "topics_wal_rotations_total",
        "WAL file rotations.",
        w.rotations,
    );
    t.counter(
        "topics_wal_submit_full_total",
        "WAL submissions refused because a shard queue was full (429).",
        w.submit_full,
    );
    t.gauge(
        "topics_wal_queue_depth",
        "Frames queued for the WAL writers.",
        w.queue_depth,
    );
    t.gauge(
        "topics_wal_queue_depth_peak",
        "Highest WAL queue depth seen.",
        w.queue_depth_peak,
    );
    t.gauge(
        "topics_wal_read_only",
        "1 while durable writes are refused (storage failed or disk full), else 0.",
        u8::from(w.read_only),
    );
    let h = "topics_wal_fsync_latency_us";
    t.family(h, "histogram", "WAL fdatasync latency in microseconds.");
    let bucket = format!("{h}_bucket");
    for (le, n) in FSYNC_BUCKETS_US.iter().zip(w.fsync_buckets) {
        t.sample(&bucket, &[("le", &le.to_string())], n);
    }
    let count = w.fsync_buckets[FSYNC_BUCKETS_US.len()];
    t.sample(&bucket, &[("le", "+Inf")], count);
    t.sample(&format!("{h}_sum"), &[], w.fsync_micros_total);
    t.sample(&format!("{h}_count"), &[], count);
    render_beyond_contract(&mut t, s);
    t.out
}

/// Sizes of the files in the WAL, segment and snapshot directories (one level, no walk of
/// anything else: the data directory holds only these).
fn disk_bytes(data_dir: &std::path::Path) -> [u64; 3] {
    let sum = |dir: std::path::PathBuf| -> u64 {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    [
        sum(crate::storage::wal_dir(data_dir)),
        sum(crate::storage::segment::dir(data_dir)),
        sum(crate::storage::snapshot::dir(data_dir)),
    ]
}

/// Operator series beyond the contract's list: requests by route and status, request latency
/// by route, router lag. Families appear once they have a sample.
fn render_beyond_contract(t: &mut Text, s: &Snapshot) {
    if !s.http_counts.is_empty() {
        let name = "topics_http_requests_total";
        t.family(
            name,
            "counter",
            "HTTP requests by route group and status code.",
        );
        for (route, status, n) in &s.http_counts {
            t.sample(name, &[("route", route), ("status", status)], n);
        }
    }
    if !s.http_latency.is_empty() {
        let h = "topics_http_request_duration_us";
        t.family(
            h,
            "histogram",
            "Time to the response head in microseconds, by route group.",
        );
        let bucket = format!("{h}_bucket");
        for (route, cum, sum) in &s.http_latency {
            for (le, n) in super::access::LATENCY_BUCKETS_US.iter().zip(cum) {
                t.sample(&bucket, &[("route", route), ("le", &le.to_string())], n);
            }
            let count = cum.last().copied().unwrap_or(0);
            t.sample(&bucket, &[("route", route), ("le", "+Inf")], count);
            t.sample(&format!("{h}_sum"), &[("route", route)], sum);
            t.sample(&format!("{h}_count"), &[("route", route)], count);
        }
    }
    if !s.throttled.is_empty() {
        let name = "topics_http_throttled_total";
        t.family(name, "counter", "429 answers by the cap that refused them.");
        for (cap, n) in &s.throttled {
            t.sample(name, &[("limit", cap)], n);
        }
    }
    let name = "topics_disk_bytes";
    t.family(
        name,
        "gauge",
        "Bytes of the files under the data directory, by kind.",
    );
    for (kind, n) in ["wal", "segments", "snapshots"].iter().zip(s.disk_bytes) {
        t.sample(name, &[("kind", kind)], n);
    }
    sinks::render(t, &s.sinks);
    if !s.router_lag.is_empty() {
        let name = "topics_router_lag";
        t.family(
            name,
            "gauge",
            "Source records a router has not consumed yet (head - cursor).",
        );
        for (router, lag) in &s.router_lag {
            t.sample(name, &[("router", router)], lag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label(&mut out, "a\\b\"c\nd.e:f");
        assert_eq!(out, "a\\\\b\\\"c\\nd.e:f");
    }

    #[test]
    fn every_family_has_help_type_and_samples_parse() {
        let snap = Snapshot {
            per_topic: vec![TopicRow {
                name: "we\"ird\\na\nme".into(),
                head_seq: 3,
                queue: Some((1, 2, 3)),
                ..TopicRow::default()
            }],
            ..Snapshot::default()
        };
        let text = render_text(&snap);
        assert!(text.contains("topics_topic_head_seq{topic=\"we\\\"ird\\\\na\\nme\"} 3\n"));
        assert!(text.contains("topics_topic_queue_in_flight{topic=\"we\\\"ird\\\\na\\nme\"} 2\n"));
        assert!(text.contains("topics_wal_fsync_latency_us_bucket{le=\"+Inf\"} 0\n"));
        assert!(text.contains("topics_topic_metrics_truncated 0\n"));
        let mut typed = std::collections::HashSet::new();
        let mut helped = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.insert(rest.split(' ').next().unwrap().to_string());
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                    .unwrap_or(name);
                assert!(typed.contains(family), "{line}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
        assert_eq!(typed, helped);
    }

    /// During replay the endpoint answers 200 with readiness 0, the known progress, and zeros
    /// for everything the registry and the WAL would report.
    #[tokio::test]
    async fn answers_during_replay_with_progress_and_zeros() {
        use crate::config::Config;
        use crate::storage::health::StorageHealth;
        use crate::storage::recovery::ReplayProgress;
        use axum::body::Body;
        use axum::extract::Request;
        use http_body_util::BodyExt;
        use std::sync::Arc;
        use tower::ServiceExt;

        let progress = Arc::new(ReplayProgress::default());
        progress.total_bytes.store(4, Ordering::Relaxed);
        progress.done_bytes.store(1, Ordering::Relaxed);
        let state = AppState::new(Arc::new(Config::default()), progress, StorageHealth::new());
        let app = super::super::router(state, None);
        let get = |accept: &'static str| {
            let app = app.clone();
            async move {
                let req = Request::builder()
                    .uri("/v0/metrics")
                    .header("accept", accept)
                    .body(Body::empty())
                    .unwrap();
                let resp = app.oneshot(req).await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                String::from_utf8(body.to_vec()).unwrap()
            }
        };
        let text = get("*/*").await;
        for line in [
            "topics_ready 0\n",
            "topics_recovery_progress 0.25\n",
            "topics_topics 0\n",
            "topics_wal_frames_total 0\n",
            "topics_wal_fsync_latency_us_count 0\n",
            "topics_topics_by_class{class=\"fsync\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let v: serde_json::Value = serde_json::from_str(&get("application/json").await).unwrap();
        assert_eq!(v["ready"], false);
        assert_eq!(v["replay_progress"], 0.25);
        assert_eq!(v["wal"]["frames"], 0);
    }
}
