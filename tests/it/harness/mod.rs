//! Test harness: runs the real `topics` binary on an ephemeral port with its own temp data dir,
//! and talks to it with a tiny blocking HTTP/1.1 client (no HTTP crates, to keep compile time
//! low). Every spawned server is killed on drop, so a failing test never leaks a process.

pub mod http;
pub mod server;
pub mod sse;
pub mod wal;

pub use http::assert_error;
pub use server::{run_to_exit, verify, Server, TempDir};

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Milliseconds since the Unix epoch, for `$ts` plausibility checks.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after epoch")
        .as_millis() as i64
}

/// `n` records whose `data` is its index, for tests that only care about counts and seqs.
pub fn records(n: usize) -> Value {
    Value::Array((0..n).map(|i| serde_json::json!({ "data": i })).collect())
}

/// `data` of a diff response's records, in order.
pub fn data_of(diff: &Value) -> Vec<&Value> {
    diff["records"]
        .as_array()
        .unwrap_or_else(|| panic!("diff has no records array: {diff}"))
        .iter()
        .map(|r| &r["data"])
        .collect()
}

/// Seqs of a diff response's records, in order.
pub fn seqs_of(diff: &Value) -> Vec<u64> {
    diff["records"]
        .as_array()
        .unwrap_or_else(|| panic!("diff has no records array: {diff}"))
        .iter()
        .map(|r| {
            r["$seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("record without $seq: {r}"))
        })
        .collect()
}

/// The `seqs` of a write response, in order.
pub fn written_seqs(write: &Value) -> Vec<u64> {
    write["seqs"]
        .as_array()
        .unwrap_or_else(|| panic!("write response has no seqs array: {write}"))
        .iter()
        .map(|v| {
            v.as_u64()
                .unwrap_or_else(|| panic!("seq is not a u64: {v}"))
        })
        .collect()
}

/// Percent-encode a query value (RFC 3986 unreserved characters pass through).
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The stored config of a topic created with `{}` (API.md §2), all 17 fields.
pub fn default_config() -> Value {
    serde_json::json!({
        "type": "log", "ttl_ms": 0, "cap_records": 0, "cap_bytes": 0, "discard": "old",
        "durable": false, "durability": "disk", "priority": null, "auto_priority": true,
        "auto_create": true, "idempotency_window_ms": 120000, "dedupe_node": true,
        "lease_ms": 30000, "claim_jitter_ms": 0, "max_deliveries": 0, "dead_letter": null,
        "leases_durable": false
    })
}

/// `default_config()` with some fields replaced.
pub fn config_with(overrides: Value) -> Value {
    let mut cfg = default_config();
    for (k, v) in overrides.as_object().expect("overrides must be an object") {
        assert!(cfg.get(k).is_some(), "unknown config field {k} in test");
        cfg[k] = v.clone();
    }
    cfg
}

/// Assert a 2xx body carries `performance.server_total_ms` as a non-negative number.
#[track_caller]
pub fn assert_performance(body: &Value) {
    let ms = body["performance"]["server_total_ms"].as_f64();
    assert!(
        ms.is_some_and(|ms| ms >= 0.0),
        "missing performance.server_total_ms: {body}"
    );
}

/// Every file under `dir` (recursively) with its bytes, to show that something changed
/// nothing on disk.
pub fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path, bytes);
            }
        }
    }
    out
}
