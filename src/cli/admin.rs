//! Topic admin: `ls`, `stat`, `create`, `rm` (API.md §4). Each prints the server's JSON
//! (without its `performance` timings); `ls` prints a table unless `--json`.

use super::client::{query_value, topic_path, Client, ClientError};
use super::{CliError, Conn, Out};
use clap::{Args, ValueEnum};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

pub const LS_EXAMPLE: &str = "Examples:\n  topics ls\n  topics ls --prefix tenant42: --json";
pub const STAT_EXAMPLE: &str = "Example:\n  topics stat orders";
pub const CREATE_EXAMPLE: &str = "Examples:\n  topics create orders --class fsync\n  \
    topics create emails --queue --config '{\"max_deliveries\":5,\"dead_letter\":\"emails.dead\"}'";
pub const RM_EXAMPLE: &str = "Example:\n  topics rm orders --if-empty";

/// Pages of the listing followed at most: 1000 pages of up to 1000 names covers the
/// server's default topic limit ten times over.
const LIST_PAGES_MAX: usize = 1000;

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only topics whose name starts with this
    #[arg(long)]
    pub prefix: Option<String>,
    /// One JSON object per topic and line instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Args, Debug)]
pub struct StatArgs {
    pub topic: String,
    #[command(flatten)]
    pub conn: Conn,
}

/// A topic's durability class (API.md §3).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Class {
    Ephemeral,
    Memory,
    Disk,
    Fsync,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub topic: String,
    /// Durability class [server default: disk]
    #[arg(long, value_enum)]
    pub class: Option<Class>,
    /// Make it a queue (jobs for `topics work`)
    #[arg(long)]
    pub queue: bool,
    /// The full config object (API.md §2); --class and --queue are set on top of it
    #[arg(long, value_name = "JSON")]
    pub config: Option<String>,
    /// Replace the config of an existing topic (otherwise an existing topic is an error)
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    pub topic: String,
    /// Refuse while the topic still holds records
    #[arg(long)]
    pub if_empty: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn ls(args: LsArgs) -> Result<(), CliError> {
    let client = args.conn.client()?;
    let topics = list_all(&client, args.prefix.as_deref()).await?;
    let mut out = Out::new();
    if args.json {
        for t in &topics {
            out.line(t.to_string().as_bytes());
        }
    } else {
        out.line(
            format!(
                "{:<40} {:>12} {:>12} {:>12} {:>14}",
                "TOPIC", "HEAD", "EARLIEST", "COUNT", "BYTES"
            )
            .as_bytes(),
        );
        for t in &topics {
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            let name = t["topic"].as_str().unwrap_or("?");
            let row = format!(
                "{name:<40} {:>12} {:>12} {:>12} {:>14}",
                n("head_seq"),
                n("earliest_seq"),
                n("count"),
                n("bytes")
            );
            out.line(row.as_bytes());
        }
    }
    out.flush()
}

/// Every listed topic, following `next_cursor` page by page.
async fn list_all(client: &Client, prefix: Option<&str>) -> Result<Vec<Value>, CliError> {
    let mut topics = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..LIST_PAGES_MAX {
        let mut path = "/v0/topics?page_size=1000".to_string();
        if let Some(p) = prefix {
            path.push_str(&format!("&prefix={}", query_value(p)));
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", query_value(c)));
        }
        let mut page: Value = client.call(Method::GET, &path, None).await?;
        if let Some(list) = page["topics"].as_array_mut() {
            topics.append(list);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(topics),
        }
    }
    Ok(topics)
}

pub async fn stat(args: StatArgs) -> Result<(), CliError> {
    let client = args.conn.client()?;
    let path = format!("{}?touch=false", topic_path(&args.topic, ""));
    let state: Value = client.call(Method::GET, &path, None).await?;
    print_pretty(state)
}

pub async fn create(args: CreateArgs) -> Result<(), CliError> {
    let config = create_body(&args)?;
    let client = args.conn.client()?;
    let path = topic_path(&args.topic, "");
    if !args.replace && exists(&client, &path).await? {
        return Err(CliError::Client(ClientError::Api(
            super::client::ApiFailure {
                status: StatusCode::CONFLICT,
                code: "topic_exists".into(),
                message: format!(
                    "topic {:?} already exists (--replace replaces its whole config)",
                    args.topic
                ),
                detail: None,
                retry_after: None,
            },
        )));
    }
    let created: Value = client.call(Method::PUT, &path, Some(&config)).await?;
    print_pretty(created)
}

/// The PUT body: `--config`, then `--class` and `--queue` on top.
fn create_body(args: &CreateArgs) -> Result<Value, CliError> {
    let mut config = match &args.config {
        Some(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| CliError::Usage(format!("--config is not JSON: {e}")))?,
        None => json!({}),
    };
    let Some(obj) = config.as_object_mut() else {
        return Err(CliError::Usage("--config must be a JSON object".into()));
    };
    if let Some(class) = args.class {
        let name = class
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        obj.insert("durability".into(), Value::from(name));
    }
    if args.queue {
        obj.insert("type".into(), Value::from("queue"));
    }
    Ok(config)
}

async fn exists(client: &Client, path: &str) -> Result<bool, CliError> {
    let reply = client
        .send(Method::GET, &format!("{path}?touch=false"), None)
        .await?;
    if reply.status == StatusCode::NOT_FOUND {
        return Ok(false);
    }
    super::client::success_body(reply)?;
    Ok(true)
}

pub async fn rm(args: RmArgs) -> Result<(), CliError> {
    let client = args.conn.client()?;
    let path = format!("{}?if_empty={}", topic_path(&args.topic, ""), args.if_empty);
    let deleted: Value = client.call(Method::DELETE, &path, None).await?;
    print_pretty(deleted)
}

/// The answer without its `performance` timings, indented for reading.
fn print_pretty(mut v: Value) -> Result<(), CliError> {
    if let Some(obj) = v.as_object_mut() {
        obj.remove("performance");
    }
    let text = serde_json::to_string_pretty(&v)
        .map_err(|e| CliError::Io(format!("printing the answer: {e}")))?;
    let mut out = Out::new();
    out.line(text.as_bytes());
    out.flush()
}
