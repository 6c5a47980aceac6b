//! Routers (API.md §12): the endpoints and their check order, forwarding (order, filters,
//! preserve flags, hop cap, loops between two mirrored topics), back-pressure, and cursors
//! across SIGTERM and kill -9 restarts.

mod api;
mod exactly_once;
mod forwarding;
mod restart;

use crate::harness::Server;
use serde_json::Value;

/// The path of router `name` (`>` percent-encoded; the server decodes it once).
pub fn path(name: &str) -> String {
    format!("/v0/routers/{}", name.replace('>', "%3E"))
}

/// PUT a router; returns the raw response.
pub fn put_router(s: &Server, name: &str, body: Value) -> crate::harness::http::Response {
    s.put(&path(name), &body)
}

/// GET a router (which drives it to its source head first); expects 200.
pub fn drive(s: &Server, name: &str) -> Value {
    s.get(&path(name)).expect(200)
}

/// The `data` of every record of `topic`, in seq order.
pub fn data_of(s: &Server, topic: &str) -> Vec<Value> {
    s.read_all(topic)
        .iter()
        .map(|r| r["data"].clone())
        .collect()
}
