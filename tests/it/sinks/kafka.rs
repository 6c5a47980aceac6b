//! The Kafka side of the sink tests: the mock cluster process and a reader.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// `topics-kafka-mock` (one broker, id 1), ended when dropped.
pub struct Mock {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub bootstrap: String,
}

impl Mock {
    pub fn start() -> Mock {
        let mut child = Command::new(env!("CARGO_BIN_EXE_topics-kafka-mock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn topics-kafka-mock");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("mock bootstrap line");
        let bootstrap = line
            .trim()
            .strip_prefix("bootstrap ")
            .unwrap_or_else(|| panic!("unexpected mock output {line:?}"))
            .to_string();
        assert!(bootstrap.starts_with("127.0.0.1:"), "{bootstrap}");
        Mock {
            child,
            stdin,
            stdout,
            bootstrap,
        }
    }

    fn cmd(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        assert_eq!(reply.trim(), "ok", "mock command {line:?}");
    }

    pub fn create(&mut self, topic: &str, partitions: i32) {
        self.cmd(&format!("create {topic} {partitions}"));
    }

    pub fn down(&mut self) {
        self.cmd("down 1");
    }

    pub fn up(&mut self) {
        self.cmd("up 1");
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One record as a consumer sees it.
#[derive(Debug, Clone)]
pub struct KRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl KRecord {
    /// The `topics.seq` header (`None` for a gap marker).
    pub fn seq(&self) -> Option<u64> {
        self.headers.get("topics.seq")?.parse().ok()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).unwrap()
    }
}

/// Every record of `topic` partitions `0..partitions` with `isolation.level=read_committed`:
/// reads until at least `min` arrived and then nothing more for a while (so a duplicate after
/// them would be seen), or 60 s passed.
pub fn read_all(bootstrap: &str, topic: &str, partitions: i32, min: usize) -> Vec<KRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sink-tests")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = Instant::now();
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if out.len() >= min && quiet_since.elapsed() > Duration::from_millis(1500) {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                quiet_since = Instant::now();
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let v = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                                (h.key.to_string(), v.unwrap_or_default())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(KRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    headers,
                });
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}
