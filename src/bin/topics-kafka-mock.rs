//! A librdkafka mock Kafka cluster in its own process, for the sink tests and the sink
//! benchmark (feature `kafka`). It listens on loopback, prints `bootstrap <servers>` on stdout,
//! then obeys one command per stdin line, answering `ok` or `error <why>` on stdout:
//! `down <broker>` / `up <broker>` (take a broker off the network and back),
//! `create <topic> <partitions>`, `rtt <broker> <ms>` (delay every answer of a broker). It exits when stdin closes or on `quit`.
//!
//! The mock speaks the transactional protocol (fencing, commit), but it does not hide aborted
//! or open transactions from `read_committed` readers (docs/OPERATIONS.md).

use rdkafka::mocking::MockCluster;
use std::io::{BufRead, Write};

fn main() {
    let brokers: i32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let cluster = match MockCluster::new(brokers) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("topics-kafka-mock: cannot start the mock cluster: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "bootstrap {}", cluster.bootstrap_servers());
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["quit"] => break,
            ["down", b] => parse(b).and_then(|b| cluster.broker_down(b).map_err(|e| e.to_string())),
            ["up", b] => parse(b).and_then(|b| cluster.broker_up(b).map_err(|e| e.to_string())),
            ["rtt", b, ms] => parse(b).and_then(|b| {
                let ms = parse(ms)?.max(0) as u64;
                cluster
                    .broker_round_trip_time(b, std::time::Duration::from_millis(ms))
                    .map_err(|e| e.to_string())
            }),
            ["create", topic, n] => {
                parse(n).and_then(|n| cluster.create_topic(topic, n, 1).map_err(|e| e.to_string()))
            }
            _ => Err(format!("unknown command {line:?}")),
        };
        let _ = match reply {
            Ok(()) => writeln!(out, "ok"),
            Err(e) => writeln!(out, "error {e}"),
        };
        let _ = out.flush();
    }
}

fn parse(s: &str) -> Result<i32, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}
