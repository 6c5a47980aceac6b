//! The Kafka sink series of `/v0/metrics` (API.md §15): present only when sinks exist, so a
//! build without the `kafka` feature (which never has any) reports exactly what it always did.

use super::Text;
use serde_json::{json, Value};

/// One Kafka sink's series (feature `kafka`; none without it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkRow {
    pub name: String,
    pub lag: u64,
    pub forwarded_total: u64,
    pub gap_markers_total: u64,
    /// `running`, `retrying` or `stopped`.
    pub state: &'static str,
}

/// The sink states `topics_sink_state` has a sample for (1 for the current one).
const SINK_STATES: [&str; 3] = ["running", "retrying", "stopped"];

/// A per-sink family: name, type, help, and the value of one row.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&SinkRow) -> u64,
);

/// Kafka sink series (API.md §15), present only when sinks exist.
pub(super) fn render(t: &mut Text, rows: &[SinkRow]) {
    if rows.is_empty() {
        return;
    }
    let families: [Family; 3] = [
        (
            "topics_sink_lag",
            "gauge",
            "Source records a sink has not put into Kafka yet.",
            |r| r.lag,
        ),
        (
            "topics_sink_forwarded_total",
            "counter",
            "Source records a sink put into Kafka.",
            |r| r.forwarded_total,
        ),
        (
            "topics_sink_gap_markers_total",
            "counter",
            "Gap markers a sink sent for records its source lost first.",
            |r| r.gap_markers_total,
        ),
    ];
    for (name, kind, help, value) in families {
        t.family(name, kind, help);
        for r in rows {
            t.sample(name, &[("sink", &r.name)], value(r));
        }
    }
    let name = "topics_sink_state";
    t.family(
        name,
        "gauge",
        "1 for the state each sink is in (running, retrying, stopped).",
    );
    for r in rows {
        for st in SINK_STATES {
            t.sample(
                name,
                &[("sink", &r.name), ("state", st)],
                u8::from(r.state == st),
            );
        }
    }
}

/// The JSON form: one object per sink name.
pub(super) fn json(rows: &[SinkRow]) -> Value {
    rows.iter()
        .map(|r| {
            let row = json!({ "lag": r.lag, "forwarded_total": r.forwarded_total,
                "gap_markers_total": r.gap_markers_total, "state": r.state });
            (r.name.clone(), row)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::super::{render_json, render_text, Snapshot};
    use super::*;

    #[test]
    fn sink_series_appear_only_with_sinks_and_flag_the_current_state() {
        assert!(!render_text(&Snapshot::default()).contains("topics_sink_"));
        let snap = Snapshot {
            sinks: vec![SinkRow {
                name: "s1".into(),
                lag: 4,
                forwarded_total: 9,
                gap_markers_total: 1,
                state: "retrying",
            }],
            ..Snapshot::default()
        };
        let text = render_text(&snap);
        for line in [
            "topics_sink_lag{sink=\"s1\"} 4\n",
            "topics_sink_forwarded_total{sink=\"s1\"} 9\n",
            "topics_sink_gap_markers_total{sink=\"s1\"} 1\n",
            "topics_sink_state{sink=\"s1\",state=\"retrying\"} 1\n",
            "topics_sink_state{sink=\"s1\",state=\"running\"} 0\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
        assert_eq!(render_json(&snap)["sinks"]["s1"]["state"], "retrying");
        assert!(render_json(&Snapshot::default()).get("sinks").is_none());
    }
}
