//! `topics watch TOPIC...`: several topics as one NDJSON stream over a watch session
//! (API.md §11). [`Follower`] owns the session: it remembers the `id` of the last event it
//! handed out and every topic's cursor, reconnects a dropped stream with `Last-Event-ID`
//! (the server rewinds to it, so nothing is lost or repeated), and when the session itself
//! is gone (reclaimed, or the server restarted) creates a new one from those cursors.

use super::client::{query_value, Client, ClientError};
use super::sse::SseReader;
use super::{say, Backoff, CliError, Conn, Out, Tombstone};
use clap::Args;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub const EXAMPLE: &str =
    "Examples:\n  topics watch orders payments            # new records of both\n  \
    topics watch orders=41 payments=0       # orders after seq 41, payments from the start\n  \
    topics watch --from-start orders payments";

/// Heartbeat asked of the server; a stream silent for three of them is taken as dead.
const HEARTBEAT_MS: u64 = 5_000;
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Topics to follow: NAME (new records only) or NAME=SEQ (records after SEQ)
    #[arg(required = true, value_name = "TOPIC[=SEQ]")]
    pub topics: Vec<String>,
    /// Start every topic given without =SEQ at its first retained record, not at its head
    #[arg(long)]
    pub from_start: bool,
    /// Include each record's `$tag`
    #[arg(long)]
    pub tags: bool,
    /// Exit with code 3 right after reporting a gap
    #[arg(long)]
    pub fail_on_gap: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Where a topic's reading starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Only records written after the session is created.
    Head,
    /// Records after this seq.
    After(u64),
}

/// What the stream delivered, in order.
pub enum Item {
    Records {
        topic: String,
        records: Vec<Box<RawValue>>,
    },
    Gap {
        topic: String,
        tombstone: Tombstone,
    },
    Deleted {
        topic: String,
    },
}

pub async fn run(args: WatchArgs) -> Result<(), CliError> {
    let starts = parse_starts(&args.topics, args.from_start)?;
    let client = args.conn.client()?;
    let mut follower = Follower::new(client, starts, args.tags).await?;
    let mut out = Out::new();
    while let Some(item) = follower.next().await? {
        match item {
            Item::Records { topic, records } => {
                let prefix = line_prefix(&topic);
                for record in &records {
                    out.line(&with_topic(&prefix, record.get()));
                }
                out.flush()?;
            }
            Item::Gap { topic, tombstone } => {
                super::tail::report_gap(Some(&tombstone), Some(&topic), args.fail_on_gap)?
            }
            Item::Deleted { topic } => say(&format!("watch: topic {topic} was deleted")),
        }
    }
    say("watch: every watched topic was deleted");
    Ok(())
}

/// The start of every output line of `topic`: `{"topic":NAME,`.
fn line_prefix(topic: &str) -> String {
    let mut prefix = String::from(OPEN_TOPIC);
    prefix.push_str(&Value::from(topic).to_string());
    prefix.push(',');
    prefix
}

const OPEN_TOPIC: &str = "{\"topic\":";

/// `{"topic":"t",` + the record's own fields: the record's bytes are kept as sent.
fn with_topic(prefix: &str, record: &str) -> Vec<u8> {
    match record.strip_prefix('{') {
        Some(rest) if rest.trim_start() != "}" => [prefix.as_bytes(), rest.as_bytes()].concat(),
        _ => format!("{prefix}\"record\":{record}}}").into_bytes(),
    }
}

fn parse_starts(topics: &[String], from_start: bool) -> Result<Vec<(String, Start)>, CliError> {
    let default = if from_start {
        Start::After(0)
    } else {
        Start::Head
    };
    let mut out = Vec::with_capacity(topics.len());
    for t in topics {
        let start = match t.split_once('=') {
            None => (t.clone(), default),
            Some((name, seq)) => {
                let seq = seq
                    .parse::<u64>()
                    .map_err(|_| CliError::Usage(format!("{t}: expected TOPIC=SEQ")))?;
                (name.to_string(), Start::After(seq))
            }
        };
        out.push(start);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Created {
    wid: String,
    topics: BTreeMap<String, Resolved>,
}

#[derive(Deserialize)]
struct Resolved {
    from_seq: u64,
}

#[derive(Deserialize)]
struct RecordEvent {
    topic: String,
    records: Vec<Box<RawValue>>,
    to_seq: u64,
}

#[derive(Deserialize)]
struct TombstoneEvent {
    topic: String,
    #[serde(flatten)]
    tombstone: Tombstone,
}

#[derive(Deserialize)]
struct TopicEvent {
    topic: String,
}

/// A watch session followed across reconnects.
pub struct Follower {
    client: Client,
    include_tags: bool,
    /// Every topic still followed, with the cursor of what was handed out.
    cursors: BTreeMap<String, u64>,
    /// Topics still waiting for their first session (`tail:true` is resolved by the server).
    heads: Vec<String>,
    wid: Option<String>,
    /// `id` of the last event handed out: the resume point of the next connection.
    last_id: Option<String>,
    reader: Option<SseReader>,
    backoff: Backoff,
}

impl Follower {
    /// Creates the session now, so a missing topic or a refused key fails at once.
    pub async fn new(
        client: Client,
        starts: Vec<(String, Start)>,
        include_tags: bool,
    ) -> Result<Follower, CliError> {
        let mut cursors = BTreeMap::new();
        let mut heads = Vec::new();
        for (topic, start) in starts {
            match start {
                Start::Head => heads.push(topic),
                Start::After(seq) => {
                    cursors.insert(topic, seq);
                }
            }
        }
        let mut f = Follower {
            client,
            include_tags,
            cursors,
            heads,
            wid: None,
            last_id: None,
            reader: None,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(5)),
        };
        f.create(false).await?;
        Ok(f)
    }

    /// A new session from the cursors. `lenient` (when replacing a lost session) drops topics
    /// deleted meanwhile instead of failing on them.
    async fn create(&mut self, lenient: bool) -> Result<(), ClientError> {
        let mut topics = Map::new();
        for (t, seq) in &self.cursors {
            topics.insert(t.clone(), json!({ "from_seq": seq }));
        }
        for t in &self.heads {
            topics.insert(t.clone(), json!({ "tail": true }));
        }
        let body = json!({
            "topics": topics,
            "include_tags": self.include_tags,
            "heartbeat_ms": HEARTBEAT_MS,
        });
        let path = if lenient {
            "/v0/watch?lenient=true"
        } else {
            "/v0/watch"
        };
        let created: Created = self.client.call(Method::POST, path, Some(&body)).await?;
        self.cursors = created
            .topics
            .into_iter()
            .map(|(t, r)| (t, r.from_seq))
            .collect();
        self.heads.clear();
        self.wid = Some(created.wid);
        self.last_id = None;
        Ok(())
    }

    /// The next item; `None` once every topic was deleted.
    pub async fn next(&mut self) -> Result<Option<Item>, CliError> {
        let idle = Duration::from_millis(3 * HEARTBEAT_MS);
        loop {
            if self.cursors.is_empty() {
                return Ok(None);
            }
            let Some(reader) = self.reader.as_mut() else {
                self.connect().await?;
                continue;
            };
            let event = match tokio::time::timeout(idle, reader.next()).await {
                Ok(Ok(Some(event))) => event,
                Ok(Ok(None)) => {
                    self.lost("the server ended the stream");
                    continue;
                }
                Ok(Err(e)) => {
                    self.lost(&e.to_string());
                    continue;
                }
                Err(_) => {
                    self.lost("no event or heartbeat for 15 s");
                    continue;
                }
            };
            self.backoff.reset();
            if let Some(item) = self.apply(&event.name, &event.data)? {
                if let Some(id) = event.id {
                    self.last_id = Some(id);
                }
                return Ok(Some(item));
            }
            if let Some(id) = event.id {
                self.last_id = Some(id);
            }
        }
    }

    fn lost(&mut self, why: &str) {
        say(&format!("watch: connection lost ({why}); reconnecting"));
        self.reader = None;
    }

    /// Turn one event into an item (or nothing) and move the cursors.
    fn apply(&mut self, name: &str, data: &str) -> Result<Option<Item>, CliError> {
        let bad = |e: serde_json::Error| ClientError::Decode(format!("{name} event: {e}"));
        match name {
            "record" => {
                let ev: RecordEvent = serde_json::from_str(data).map_err(bad)?;
                self.cursors.insert(ev.topic.clone(), ev.to_seq);
                Ok(Some(Item::Records {
                    topic: ev.topic,
                    records: ev.records,
                }))
            }
            "tombstone" => {
                let ev: TombstoneEvent = serde_json::from_str(data).map_err(bad)?;
                self.cursors.insert(ev.topic.clone(), ev.tombstone.gap_to);
                Ok(Some(Item::Gap {
                    topic: ev.topic,
                    tombstone: ev.tombstone,
                }))
            }
            "topic-deleted" => {
                let ev: TopicEvent = serde_json::from_str(data).map_err(bad)?;
                self.cursors.remove(&ev.topic);
                Ok(Some(Item::Deleted { topic: ev.topic }))
            }
            "error" => {
                self.lost(&format!("server: {data}"));
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Open the session's stream, resuming after the last event handed out; recreate the
    /// session from the cursors when the server no longer knows it.
    async fn connect(&mut self) -> Result<(), CliError> {
        loop {
            let result = match &self.wid {
                None => self.create(true).await,
                Some(wid) => self.open(wid.clone()).await,
            };
            let e = match result {
                Ok(()) if self.reader.is_some() => return Ok(()),
                Ok(()) => continue,
                Err(e) => e,
            };
            if matches!(&e, ClientError::Api(a) if a.status == StatusCode::NOT_FOUND && a.code == "not_found")
            {
                say("watch: the session is gone; creating a new one from the last cursors");
                self.wid = None;
                continue;
            }
            let Some(hint) = e.retry_after() else {
                return Err(e.into());
            };
            // A lost connection is retried on the backoff alone; a 429/503 waits its hint.
            let hint = match e {
                ClientError::Transport(_) => Duration::ZERO,
                _ => hint,
            };
            let pause = self.backoff.pause(hint);
            say(&format!("watch: {e}; retrying in {} ms", pause.as_millis()));
            tokio::time::sleep(pause).await;
        }
    }

    async fn open(&mut self, wid: String) -> Result<(), ClientError> {
        let mut headers = Vec::new();
        if let Some(id) = &self.last_id {
            if let Ok(v) = HeaderValue::from_str(id) {
                headers.push((LAST_EVENT_ID, v));
            }
        }
        let path = format!("/v0/watch/{}", query_value(&wid));
        let resp = self
            .client
            .open(Method::GET, &path, None, "text/event-stream", &headers)
            .await?;
        self.reader = Some(SseReader::new(resp.into_body()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_gets_its_topic_as_first_field() {
        let line = with_topic(&line_prefix("a"), r#"{"$seq":1,"data":2}"#);
        assert_eq!(line, br#"{"topic":"a","$seq":1,"data":2}"#);
    }

    #[test]
    fn topics_take_an_optional_start_seq() {
        let args = ["a".to_string(), "b:c=41".to_string()];
        let starts = parse_starts(&args, false).expect("valid");
        assert!(matches!(starts[0], (ref t, Start::Head) if t == "a"));
        assert!(matches!(starts[1], (ref t, Start::After(41)) if t == "b:c"));
        assert!(matches!(
            parse_starts(&args, true).expect("valid")[0].1,
            Start::After(0)
        ));
        assert!(parse_starts(&["a=x".to_string()], false).is_err());
    }
}
