//! `topics export TOPIC`: a topic's whole retained history as NDJSON for bulk migration, one
//! record per line exactly as diff answers it with tags on (`$seq`, `$ts`, `$node`, `$tag`,
//! `data`, `meta`). It reads up to the head as of its last page and exits. A tombstone is one
//! `gap:` line on stderr and the export goes on (`--fail-on-gap`: exit 3 there). The last line
//! on stderr names the last seq exported, so an interrupted export resumes with `--from`.

use super::client::{success_body, topic_path, Client, ClientError};
use super::tail::report_gap;
use super::{say, Backoff, CliError, Conn, DiffPage, Out};
use clap::Args;
use hyper::Method;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

pub const EXAMPLE: &str =
    "Examples:\n  topics export orders > orders.ndjson          # the whole retained history\n  \
    topics export orders --from 41000 >> orders.ndjson   # resume after seq 41000\n  \
    topics export orders --fail-on-gap             # exit 3 if any record was lost";

/// Attempts of one page (throttled, restarting server) before giving up.
const ATTEMPTS_MAX: u32 = 60;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Topic to export
    pub topic: String,
    /// Start after this seq (resume an interrupted export with its last `$seq`)
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub from: u64,
    /// Exit with code 3 right after reporting a gap (records lost to retention or damage)
    #[arg(long)]
    pub fail_on_gap: bool,
    /// Records per request (the server caps it at 1000)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    #[command(flatten)]
    pub conn: Conn,
}

/// Only the seq of a record line, to report where the export got to.
#[derive(Deserialize)]
struct Seq {
    #[serde(rename = "$seq")]
    seq: u64,
}

pub async fn run(args: ExportArgs) -> Result<(), CliError> {
    let client = args.conn.client()?;
    let mut out = Out::new();
    let (mut cursor, mut last, mut count) = (args.from, None, 0u64);
    let result = loop {
        let bytes = match page(&client, &args, cursor, cursor > args.from).await {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        let page: DiffPage = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode(format!("diff answer: {e}")))?;
        if let Err(e) = report_gap(page.tombstone.as_ref(), None, args.fail_on_gap) {
            break Err(e);
        }
        for record in &page.records {
            out.line(record.get().as_bytes());
            last = serde_json::from_str::<Seq>(record.get())
                .ok()
                .map(|s| s.seq)
                .or(last);
        }
        count += page.records.len() as u64;
        out.flush()?;
        cursor = page.next_from_seq;
        if page.caught_up {
            break Ok(());
        }
    };
    let resume = last.map_or(String::new(), |s| format!("; resume with --from {s}"));
    say(&format!("export: {count} records{resume}"));
    result
}

/// One diff page from `cursor`, retried with backoff while the server throttles or (once the
/// export has started, so a wrong URL still fails at once) restarts.
async fn page(
    client: &Client,
    args: &ExportArgs,
    cursor: u64,
    started: bool,
) -> Result<bytes::Bytes, CliError> {
    let path = topic_path(&args.topic, "/diff");
    let body = json!({ "from_seq": cursor, "limit": args.limit, "include_tags": true,
        "include_meta": true });
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let reply = client
            .send(Method::POST, &path, Some(body.to_string().into()))
            .await
            .and_then(success_body);
        let e = match reply {
            Ok(b) => return Ok(b),
            Err(e) => e,
        };
        let transient = started || !matches!(e, ClientError::Transport(_));
        let Some(hint) = e
            .retry_after()
            .filter(|_| transient && attempt < ATTEMPTS_MAX)
        else {
            return Err(e.into());
        };
        let pause = backoff.pause(hint);
        say(&format!(
            "export: {e}; retrying in {} ms",
            pause.as_millis()
        ));
        tokio::time::sleep(pause).await;
    }
}
