//! `topics write TOPIC`: NDJSON on stdin, one JSON value per line as one record's `data`,
//! appended in batches bounded by count and bytes. Each batch carries an idempotency key, so
//! a batch retried after a lost connection, a `429` or a `503` is appended at most once
//! (within the topic's idempotency window). A line that is not JSON stops the command after
//! every line before it was written.

use super::client::{topic_path, Client, ClientError};
use super::{say, Backoff, CliError, Conn};
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

pub const EXAMPLE: &str = "Example:\n  seq 1 100000 | topics write nums\n  \
    echo '{\"order\":7}' | topics write orders --tag cust-42";

/// Attempts per batch for retryable failures: at `Retry-After: 1` about a minute of overload
/// or downtime is ridden out, then the command gives up and says so.
const ATTEMPTS_MAX: u32 = 60;
/// A line longer than this is refused before it is buffered whole (the server's default
/// record limit is 1 MiB; a bigger server limit still fits).
const LINE_BYTES_MAX: usize = 64 << 20;

#[derive(Args, Debug)]
pub struct WriteArgs {
    /// Topic to append to (created with the default config if absent)
    pub topic: String,
    /// Records per request (the server's limit is 10000)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Bytes of records per request body, about (the server's body limit is 64 MiB)
    #[arg(long, default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub batch_bytes: u64,
    /// Tag every record with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Origin node of every record (readers can skip it with their node filter)
    #[arg(long)]
    pub node: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Deserialize)]
struct WriteReply {
    first_seq: u64,
    last_seq: u64,
}

/// What was written so far.
#[derive(Default)]
struct Written {
    records: u64,
    batches: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

impl Written {
    fn summary(&self, topic: &str) -> String {
        match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => format!(
                "wrote {} records to {topic} in {} {} (seqs {a}..={b})",
                self.records,
                self.batches,
                if self.batches == 1 {
                    "batch"
                } else {
                    "batches"
                }
            ),
            _ => format!("wrote 0 records to {topic}"),
        }
    }
}

/// One request body being built: `{"records":[{"data":…},…]}` spliced from the input
/// bytes, which stay as they were read (never parsed into a tree and re-serialised).
struct Batch {
    body: Vec<u8>,
    count: u32,
    /// `,"tag":…}` or `}`: the closing of every record.
    record_end: String,
}

impl Batch {
    fn new(args: &WriteArgs) -> Batch {
        let mut record_end = String::new();
        if let Some(tag) = &args.tag {
            record_end = format!(",\"tag\":{}", Value::from(tag.as_str()));
        }
        record_end.push('}');
        let mut batch = Batch {
            body: Vec::new(),
            count: 0,
            record_end,
        };
        batch.clear();
        batch
    }

    fn clear(&mut self) {
        self.body.clear();
        self.body.extend_from_slice(b"{\"records\":[");
        self.count = 0;
    }

    fn push(&mut self, data: &RawValue) {
        if self.count > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(b"{\"data\":");
        self.body.extend_from_slice(data.get().as_bytes());
        self.body.extend_from_slice(self.record_end.as_bytes());
        self.count += 1;
    }

    /// Whether adding `data` takes the body past `max` bytes (a lone record is always
    /// sent: the server judges its size).
    fn would_exceed(&self, data: &RawValue, max: u64) -> bool {
        let added = b",{\"data\":".len() + data.get().len() + self.record_end.len();
        self.count > 0 && (self.body.len() + added) as u64 > max
    }

    fn finish(&self, node: Option<&str>, key: &str) -> Bytes {
        let mut body = self.body.clone();
        body.push(b']');
        if let Some(node) = node {
            body.extend_from_slice(format!(",\"node\":{}", Value::from(node)).as_bytes());
        }
        body.extend_from_slice(format!(",\"idempotency_key\":{}}}", Value::from(key)).as_bytes());
        Bytes::from(body)
    }
}

pub async fn run(args: WriteArgs) -> Result<(), CliError> {
    let client = args.conn.client()?;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut batch = Batch::new(&args);
    let mut written = Written::default();
    let key_prefix = key_prefix();
    let mut line = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        line.clear();
        let n = read_line(&mut stdin, &mut line).await?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = std::str::from_utf8(&line).unwrap_or("\u{fffd}");
        if text.trim().is_empty() {
            continue;
        }
        let data = match parse_line(&line) {
            Ok(d) => d,
            Err(why) => {
                send(&client, &args, &mut batch, &mut written, &key_prefix).await?;
                say(&written.summary(&args.topic));
                return Err(CliError::Input(format!(
                    "stdin line {line_no} is not JSON ({why}); {} records were written before it",
                    written.records
                )));
            }
        };
        if batch.count >= args.batch || batch.would_exceed(&data, args.batch_bytes) {
            send(&client, &args, &mut batch, &mut written, &key_prefix).await?;
        }
        batch.push(&data);
    }
    send(&client, &args, &mut batch, &mut written, &key_prefix).await?;
    say(&written.summary(&args.topic));
    Ok(())
}

async fn read_line(
    stdin: &mut tokio::io::BufReader<tokio::io::Stdin>,
    line: &mut Vec<u8>,
) -> Result<usize, CliError> {
    let mut limited = tokio::io::AsyncReadExt::take(stdin, LINE_BYTES_MAX as u64 + 1);
    let n = limited
        .read_until(b'\n', line)
        .await
        .map_err(|e| CliError::Io(format!("stdin: {e}")))?;
    if line.len() > LINE_BYTES_MAX {
        return Err(CliError::Input(format!(
            "a stdin line is longer than {LINE_BYTES_MAX} bytes"
        )));
    }
    Ok(n)
}

/// The line as one JSON value (surrounding whitespace dropped), or why it is not one.
fn parse_line(line: &[u8]) -> Result<Box<RawValue>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    serde_json::from_str::<Box<RawValue>>(text.trim()).map_err(|e| e.to_string())
}

/// A prefix unique to this run: the batch number completes each idempotency key.
fn key_prefix() -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("topics-write-{}-{now_ms}", std::process::id())
}

fn first_contact(e: &ClientError, written: &Written) -> bool {
    matches!(e, ClientError::Transport(_)) && written.batches == 0
}

/// Send the batch (if it holds anything), retrying what may pass, then empty it.
async fn send(
    client: &Client,
    args: &WriteArgs,
    batch: &mut Batch,
    written: &mut Written,
    key_prefix: &str,
) -> Result<(), CliError> {
    if batch.count == 0 {
        return Ok(());
    }
    let key = format!("{key_prefix}-{}", written.batches);
    let body = batch.finish(args.node.as_deref(), &key);
    let path = format!("{}?return_seqs=false", topic_path(&args.topic, ""));
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    let mut attempt = 1;
    let reply: WriteReply = loop {
        let result: Result<WriteReply, ClientError> =
            client.call_bytes(Method::POST, &path, body.clone()).await;
        match result {
            Ok(r) => break r,
            Err(e) => match e.retry_after() {
                // A server that never answered (a wrong --url, nothing listening) fails at
                // once; once writes went through, a lost connection is a restart to ride out.
                Some(_) if first_contact(&e, written) => {
                    say(&written.summary(&args.topic));
                    return Err(e.into());
                }
                Some(hint) if attempt < ATTEMPTS_MAX => {
                    let pause = backoff.pause(hint);
                    say(&format!("write: {e}; retrying in {} ms", pause.as_millis()));
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                _ => {
                    say(&written.summary(&args.topic));
                    return Err(e.into());
                }
            },
        }
    };
    written.records += u64::from(batch.count);
    written.batches += 1;
    written.first_seq.get_or_insert(reply.first_seq);
    written.last_seq = Some(reply.last_seq);
    batch.clear();
    Ok(())
}
