//! Sink rules (API.md §15), pure: the PUT body and its field checks, the client properties a
//! sink refuses because it must own them, the redaction of secret-looking property values for
//! display, the key choice and the record-to-key mapping, and the re-PUT rule.
//! No I/O and no Kafka client here: `sink/` applies these rules. Compiled in every build so the
//! rules are unit-tested without the `kafka` feature.

use super::name::is_valid_topic_name;
use super::router::Guarantee;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest sink name: the name is a file name (`{name}.json`, written through `{name}.json.tmp`)
/// and must stay under the usual 255-byte file-name limit.
pub const SINK_NAME_MAX_BYTES: usize = 240;
/// Default compacted topic holding each sink's committed progress (`exactly_once`).
pub const DEFAULT_PROGRESS_TOPIC: &str = "__topics_sink_progress";
const BATCH_MAX_RECORDS_LIMIT: u64 = 10_000;
const LINGER_MS_LIMIT: u64 = 10_000;
const PROPERTIES_MAX: usize = 64;
const PROPERTY_VALUE_MAX_BYTES: usize = 8192;
/// Shown instead of a secret-looking property value.
pub const REDACTED: &str = "<redacted>";

/// Client properties the sink sets itself (delivery guarantee, fencing, where it connects), or
/// that would let an API caller run a command or load code in the server process.
const OWNED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "transactional.id",
    "enable.idempotence",
    "isolation.level",
    "acks",
    "request.required.acks",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "enable.gapless.guarantee",
    "partitioner",
    "plugin.library.paths",
    "sasl.kerberos.kinit.cmd",
];

/// How a Kafka record key is chosen (API.md §15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// No key: every record goes to partition 0, so all of them keep one order.
    None,
    /// The record's `$tag` (records without a tag get no key).
    Tag,
    /// A field of `data`, by a dotted path of object keys.
    Field(Vec<String>),
}

/// A sink definition: everything a PUT sets. Cursor and counters are not part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkDef {
    pub source: String,
    pub bootstrap_servers: String,
    pub kafka_topic: String,
    pub key: KeyChoice,
    /// librdkafka properties passed through (security settings and tuning).
    pub properties: BTreeMap<String, String>,
    pub guarantee: Guarantee,
    pub progress_topic: String,
    /// Replication factor for a progress topic the sink creates; `-1` = the broker default.
    pub progress_replication: i32,
    pub batch_max_records: usize,
    pub linger_ms: u64,
    /// A new sink forwards the records after this seq (0 = all retained history).
    pub from_seq: u64,
}

/// Why a PUT body is refused before any state is consulted; all are `400 invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkDefError {
    /// A field is missing, has the wrong type or an invalid value; names the field.
    Field(&'static str, String),
    SinkName,
    SourceName,
    /// A property the sink owns or refuses; names it.
    Property(String),
}

/// The `source` string of a body, for the allowlist check that precedes every other check.
pub fn source_of(body: &Map<String, Value>) -> Option<&str> {
    body.get("source")?.as_str()
}

pub fn is_valid_sink_name(name: &str) -> bool {
    name.len() <= SINK_NAME_MAX_BYTES && is_valid_topic_name(name)
}

/// Kafka's topic name rule: 1–249 bytes of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn is_valid_kafka_topic(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parse a PUT body for sink `name`: field types and values, then the sink and source names.
pub fn parse_def(name: &str, body: &Map<String, Value>) -> Result<SinkDef, SinkDefError> {
    let source = required_str(body, "source")?;
    let bootstrap_servers = required_str(body, "bootstrap_servers")?;
    if bootstrap_servers.trim().is_empty() {
        return Err(field("bootstrap_servers", "a non-empty host:port list"));
    }
    let kafka_topic = required_str(body, "kafka_topic")?;
    if !is_valid_kafka_topic(kafka_topic) {
        return Err(field("kafka_topic", "a valid Kafka topic name"));
    }
    let progress_topic = match body.get("progress_topic") {
        None | Some(Value::Null) => DEFAULT_PROGRESS_TOPIC,
        Some(Value::String(s)) if is_valid_kafka_topic(s) && s != kafka_topic => s,
        Some(_) => {
            return Err(field(
                "progress_topic",
                "a valid Kafka topic name other than kafka_topic",
            ))
        }
    };
    let def = SinkDef {
        source: source.to_string(),
        bootstrap_servers: bootstrap_servers.to_string(),
        kafka_topic: kafka_topic.to_string(),
        key: parse_key(body.get("key"))?,
        properties: parse_properties(body.get("properties"))?,
        guarantee: match body.get("guarantee") {
            None | Some(Value::Null) => Guarantee::AtLeastOnce,
            Some(v) if v == "at_least_once" => Guarantee::AtLeastOnce,
            Some(v) if v == "exactly_once" => Guarantee::ExactlyOnce,
            Some(_) => return Err(field("guarantee", "at_least_once or exactly_once")),
        },
        progress_topic: progress_topic.to_string(),
        progress_replication: parse_replication(body.get("progress_replication"))?,
        batch_max_records: opt_u64(body, "batch_max_records", 500, 1, BATCH_MAX_RECORDS_LIMIT)?
            as usize,
        linger_ms: opt_u64(body, "linger_ms", 5, 0, LINGER_MS_LIMIT)?,
        from_seq: opt_u64(body, "from_seq", 0, 0, u64::MAX)?,
    };
    if !is_valid_sink_name(name) {
        return Err(SinkDefError::SinkName);
    }
    if !is_valid_topic_name(&def.source) {
        return Err(SinkDefError::SourceName);
    }
    Ok(def)
}

fn parse_key(v: Option<&Value>) -> Result<KeyChoice, SinkDefError> {
    let want = "\"none\", \"tag\" or {\"field\": \"a.b\"}";
    match v {
        None | Some(Value::Null) => Ok(KeyChoice::None),
        Some(Value::String(s)) if s == "none" => Ok(KeyChoice::None),
        Some(Value::String(s)) if s == "tag" => Ok(KeyChoice::Tag),
        Some(Value::Object(o)) if o.len() == 1 => {
            let path = o.get("field").and_then(Value::as_str).unwrap_or("");
            let parts: Vec<String> = path.split('.').map(String::from).collect();
            if path.is_empty() || path.len() > 1024 || parts.iter().any(String::is_empty) {
                return Err(field("key", want));
            }
            Ok(KeyChoice::Field(parts))
        }
        Some(_) => Err(field("key", want)),
    }
}

fn parse_properties(v: Option<&Value>) -> Result<BTreeMap<String, String>, SinkDefError> {
    let map = match v {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) if m.len() <= PROPERTIES_MAX => m,
        Some(_) => {
            return Err(field(
                "properties",
                "an object of at most 64 string properties",
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let Some(s) = v.as_str().filter(|s| s.len() <= PROPERTY_VALUE_MAX_BYTES) else {
            return Err(field(
                "properties",
                "an object of string values (at most 8192 bytes each)",
            ));
        };
        if k.is_empty() || OWNED_PROPERTIES.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(SinkDefError::Property(k.clone()));
        }
        out.insert(k.clone(), s.to_string());
    }
    Ok(out)
}

fn parse_replication(v: Option<&Value>) -> Result<i32, SinkDefError> {
    match v {
        None | Some(Value::Null) => Ok(-1),
        Some(v) => match v.as_i64() {
            Some(n @ (-1 | 1..=32767)) => Ok(n as i32),
            _ => Err(field(
                "progress_replication",
                "-1 (the broker default) or 1 to 32767",
            )),
        },
    }
}

fn field(name: &'static str, want: &str) -> SinkDefError {
    SinkDefError::Field(name, format!("{name} must be {want}"))
}

fn required_str<'a>(
    body: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, SinkDefError> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| field(name, "a string"))
}

fn opt_u64(
    body: &Map<String, Value>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, SinkDefError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(SinkDefError::Field(
                name,
                format!("{name} must be an integer from {min} to {max}"),
            )),
        },
    }
}

/// Does a property name look like it holds a secret (and must never be shown)?
pub fn is_secret_property(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        ".key",
        "token",
        "credential",
        "jaas",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// The properties as shown by GET and PUT responses: secret-looking values redacted.
pub fn redacted(props: &BTreeMap<String, String>) -> Map<String, Value> {
    props
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_property(k) { REDACTED } else { v };
            (k.clone(), Value::from(shown))
        })
        .collect()
}

impl KeyChoice {
    pub fn to_wire(&self) -> Value {
        match self {
            KeyChoice::None => Value::from("none"),
            KeyChoice::Tag => Value::from("tag"),
            KeyChoice::Field(p) => serde_json::json!({ "field": p.join(".") }),
        }
    }

    /// The Kafka key of a record with this `tag` and `data` (stored JSON bytes). A field
    /// holding a string gives its text; any other JSON value gives its compact text; a
    /// missing field (or `data` that is not an object along the path) gives no key.
    pub fn key_of(&self, tag: Option<&str>, data: &[u8]) -> Option<Vec<u8>> {
        match self {
            KeyChoice::None => None,
            KeyChoice::Tag => tag.map(|t| t.as_bytes().to_vec()),
            KeyChoice::Field(path) => {
                let root: Value = serde_json::from_slice(data).ok()?;
                let v = path.iter().try_fold(&root, |v, k| v.get(k.as_str()))?;
                Some(match v {
                    Value::String(s) => s.clone().into_bytes(),
                    Value::Null => return None,
                    other => other.to_string().into_bytes(),
                })
            }
        }
    }
}

/// What a re-PUT may not change: where records come from and go to, the guarantee and where
/// progress is kept. `Some(field)` names the first one that differs.
pub fn repoint(old: &SinkDef, new: &SinkDef) -> Option<&'static str> {
    if old.source != new.source {
        Some("source")
    } else if old.kafka_topic != new.kafka_topic {
        Some("kafka_topic")
    } else if old.guarantee != new.guarantee {
        Some("guarantee")
    } else if old.progress_topic != new.progress_topic {
        Some("progress_topic")
    } else {
        None
    }
}

/// The definition as stored in the sink's file and shown (with `redact`) on the wire.
pub fn def_to_json(d: &SinkDef, redact: bool) -> Value {
    let props = match redact {
        true => redacted(&d.properties),
        false => d
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    };
    serde_json::json!({
        "source": d.source, "bootstrap_servers": d.bootstrap_servers,
        "kafka_topic": d.kafka_topic, "key": d.key.to_wire(), "properties": props,
        "guarantee": d.guarantee.as_str(), "progress_topic": d.progress_topic,
        "progress_replication": d.progress_replication,
        "batch_max_records": d.batch_max_records, "linger_ms": d.linger_ms,
        "from_seq": d.from_seq,
    })
}

#[cfg(test)]
mod tests;
