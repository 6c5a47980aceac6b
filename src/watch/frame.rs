//! SSE frames of the watch stream (API.md §11). `data:` is single-line JSON built by
//! splicing stored record bytes. A `record` event is rendered once without its `id:` line and
//! shared by every watcher at the same cursor (`fanout`); the `id:` line is per watcher.

use crate::model::json::records::{push_records, Include};
use crate::model::json::{push_str, push_u64};
use crate::model::read::Tombstone;
use crate::model::record::Record;

/// The heartbeat comment.
pub const HEARTBEAT: &[u8] = b": hb\n\n";

/// `retry: <ms>` (no id).
pub fn retry(ms: u64) -> Vec<u8> {
    format!("retry: {ms}\n\n").into_bytes()
}

/// Append one event: `id`, `event`, single-line `data`, blank line.
pub fn event(out: &mut Vec<u8>, id: &str, name: &str, data: &[u8]) {
    id_line(out, id);
    push_unnamed(out, name, data);
}

/// The `id:` line alone: the per-watcher part of a shared event.
pub fn id_line(out: &mut Vec<u8>, id: &str) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(id.as_bytes());
    out.push(b'\n');
}

/// An event without its `id:` line: the part many watchers share (`id_line` goes first).
pub fn unnamed_event(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + name.len() + data.len());
    push_unnamed(&mut out, name, data);
    out
}

fn push_unnamed(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

fn open(topic: &str) -> Vec<u8> {
    let mut d = b"{\"topic\":".to_vec();
    push_str(&mut d, topic);
    d
}

fn field_u64(d: &mut Vec<u8>, key: &[u8], v: u64) {
    d.extend_from_slice(key);
    push_u64(d, v);
}

/// The parts of a `record` frame besides the records themselves.
pub struct Batch<'a> {
    pub topic: &'a str,
    pub from_seq: u64,
    pub head_seq: u64,
    pub to_seq: u64,
    pub records: &'a [Record],
    pub include: Include,
}

pub fn record_data(b: &Batch<'_>) -> Vec<u8> {
    let size: usize = b.records.iter().map(|r| r.data.len() + 64).sum();
    let mut d = Vec::with_capacity(128 + size);
    d.extend_from_slice(&open(b.topic));
    field_u64(&mut d, b",\"from_seq\":", b.from_seq);
    field_u64(&mut d, b",\"head_seq\":", b.head_seq);
    d.extend_from_slice(b",\"records\":");
    push_records(&mut d, b.records, b.include);
    field_u64(&mut d, b",\"to_seq\":", b.to_seq);
    d.push(b'}');
    d
}

pub fn tombstone_data(topic: &str, reason: &str, t: &Tombstone) -> Vec<u8> {
    let mut d = open(topic);
    d.extend_from_slice(b",\"reason\":");
    push_str(&mut d, reason);
    field_u64(&mut d, b",\"gap_from\":", t.gap_from);
    field_u64(&mut d, b",\"gap_to\":", t.gap_to);
    field_u64(&mut d, b",\"earliest_seq\":", t.earliest_seq);
    field_u64(&mut d, b",\"head_seq\":", t.head_seq);
    d.push(b'}');
    d
}

pub fn caught_up_data(topic: &str, head_seq: u64) -> Vec<u8> {
    let mut d = open(topic);
    field_u64(&mut d, b",\"head_seq\":", head_seq);
    d.push(b'}');
    d
}

pub fn deleted_data(topic: &str) -> Vec<u8> {
    let mut d = open(topic);
    d.extend_from_slice(b",\"head_seq\":0,\"reason\":\"deleted\"}");
    d
}

pub fn shutdown_data() -> &'static [u8] {
    br#"{"code":"server_shutting_down","message":"the server is shutting down; reconnect with Last-Event-ID"}"#
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(d: &[u8]) -> Value {
        serde_json::from_slice(d).unwrap()
    }

    #[test]
    fn frames_are_single_line_json_with_the_contract_fields() {
        let t = Tombstone {
            gap_from: 3,
            gap_to: 9,
            reason: "cap",
            missed_estimate: 7,
            earliest_seq: 10,
            head_seq: 12,
        };
        assert_eq!(
            parse(&tombstone_data("o\"x", "from_seq_too_old", &t)),
            json!({"topic":"o\"x","reason":"from_seq_too_old","gap_from":3,"gap_to":9,
                   "earliest_seq":10,"head_seq":12})
        );
        assert_eq!(
            parse(&deleted_data("a")),
            json!({"topic":"a","head_seq":0,"reason":"deleted"})
        );
        assert_eq!(
            parse(&caught_up_data("a", 4)),
            json!({"topic":"a","head_seq":4})
        );
        assert_eq!(parse(shutdown_data())["code"], "server_shutting_down");
        let mut out = Vec::new();
        event(&mut out, "ID", "caught-up", b"{}");
        assert_eq!(out, b"id: ID\nevent: caught-up\ndata: {}\n\n");
    }
}
