//! `topics write`: NDJSON lines become records' `data`, in batches; a bad line stops the
//! command naming it, after the lines before it were written.

use super::{cli, run_with_stdin};
use crate::harness::{data_of, Server};
use serde_json::json;

#[test]
fn write_loads_stdin_in_batches_with_consecutive_seqs() {
    let s = Server::start();
    let input: String = (1..=2500).map(|i| format!("{i}\n")).collect();
    let (status, out, err) = run_with_stdin(
        cli(&s, &["write", "nums", "--batch", "1000"]),
        input.as_bytes(),
    );
    assert!(status.success(), "{err}");
    assert!(out.is_empty(), "write prints nothing on stdout: {out}");
    assert!(
        err.contains("wrote 2500 records to nums in 3 batches (seqs 1..=2500)"),
        "{err}"
    );
    let all = s.read_all("nums");
    assert_eq!(all.len(), 2500);
    let want: Vec<serde_json::Value> = (1..=2500).map(|i| json!(i)).collect();
    let got: Vec<serde_json::Value> = all.iter().map(|r| r["data"].clone()).collect();
    assert_eq!(got, want);
}

#[test]
fn write_splits_batches_by_bytes_and_keeps_values_and_tags() {
    let s = Server::start();
    // ~420 bytes per record as sent, against a 1000-byte budget: two or three per batch.
    let big = "x".repeat(400);
    let input = format!("{{\"k\": [1, 2]}}\n\n\"{big}\"\n\"{big}\"\n\"{big}\"\n\"{big}\"\nnull\n");
    let args = [
        "write",
        "t",
        "--batch-bytes",
        "1000",
        "--tag",
        "tg",
        "--node",
        "n1",
    ];
    let (status, _, err) = run_with_stdin(cli(&s, &args), input.as_bytes());
    assert!(status.success(), "{err}");
    assert!(
        err.contains("wrote 6 records to t in 2 batches (seqs 1..=6)"),
        "{err}"
    );
    let d = s.diff("t", json!({"include_tags": true}));
    assert_eq!(data_of(&d)[0], &json!({"k": [1, 2]}));
    assert_eq!(data_of(&d)[5], &json!(null));
    assert!(d["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["$tag"] == "tg" && r["$node"] == "n1"));
}

#[test]
fn a_line_that_is_not_json_stops_naming_the_line_and_what_was_written() {
    let s = Server::start();
    let (status, _, err) = run_with_stdin(cli(&s, &["write", "t"]), b"1\n\n{\"a\":2}\nnope\n3\n");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: bad_input: stdin line 4 is not JSON")
            && err.contains("2 records were written before it"),
        "{err}"
    );
    let d = s.diff("t", json!({}));
    assert_eq!(
        data_of(&d),
        vec![&json!(1), &json!({"a": 2})],
        "the lines before it are written, not after"
    );
}

#[test]
fn write_to_a_server_that_is_not_there_fails_with_exit_1() {
    let s = Server::start();
    let mut cmd = cli(&s, &["write", "t"]);
    // A port nothing listens on (the server's, after it stopped).
    drop(s);
    cmd.env("TOPICS_URL", "http://127.0.0.1:1");
    let (status, _, err) = run_with_stdin(cmd, b"1\n");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("error: connection:"), "{err}");
}
