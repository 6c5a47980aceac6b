//! Without the `kafka` feature `/v0/sinks` is an unknown path like any other (API.md §15).

use crate::harness::{assert_error, Server};
use serde_json::json;

#[test]
fn sink_routes_are_unknown_paths_without_the_kafka_feature() {
    let s = Server::start();
    let body = json!({"source": "a", "bootstrap_servers": "127.0.0.1:9", "kafka_topic": "t"});
    assert_error(&s.put("/v0/sinks/s", &body), 404, "not_found");
    assert_error(&s.get("/v0/sinks/s"), 404, "not_found");
    assert_error(&s.get("/v0/sinks"), 404, "not_found");
    assert_error(&s.delete("/v0/sinks/s"), 404, "not_found");
    assert!(!s.data_dir().join("sinks").exists());
}
