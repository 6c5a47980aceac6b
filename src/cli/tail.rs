//! `topics tail TOPIC`: a topic's records on stdout, one JSON object per line exactly as the
//! server sent it. The cursor is always the server's `next_from_seq` (API.md §9), so filtered
//! or deleted records never stall it; a tombstone is one `gap:` line on stderr and the
//! cursor moves past it. `--follow` long-polls diff (or, with `--watch`, follows a watch
//! session) and rides out a restarting server.

use super::client::{topic_path, ApiFailure, Client, ClientError};
use super::watch::{Follower, Item, Start};
use super::{say, Backoff, CliError, Conn, DiffPage, Out, Tombstone};
use clap::Args;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

pub const EXAMPLE: &str =
    "Examples:\n  topics tail orders                 # every retained record, then exit\n  \
    topics tail orders --from 41       # records after seq 41\n  \
    topics tail orders --follow        # new records as they arrive (Ctrl-C to stop)\n  \
    topics tail orders -f --from 0 --fail-on-gap";

/// Attempts for a throttled read before giving up (without `--follow`).
const ATTEMPTS_MAX: u32 = 60;

#[derive(Args, Debug)]
pub struct TailArgs {
    /// Topic to read
    pub topic: String,
    /// Start after this seq [default: 0, or the current head with --follow]
    #[arg(long, value_name = "SEQ")]
    pub from: Option<u64>,
    /// Keep running and print new records as they are written
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Follow over a watch session (server-sent events) instead of long-polling diff
    #[arg(long, requires = "follow")]
    pub watch: bool,
    /// Exit with code 3 right after reporting a gap (records lost to retention or damage)
    #[arg(long)]
    pub fail_on_gap: bool,
    /// Records per request (the server caps it at 1000)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Include each record's `$tag`
    #[arg(long)]
    pub tags: bool,
    /// Longest wait of one long-poll with --follow (the server caps it at 30000)
    #[arg(long, default_value_t = 25_000, value_name = "MS")]
    pub wait_ms: u32,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn run(args: TailArgs) -> Result<(), CliError> {
    let client = args.conn.client()?;
    let cursor = match (args.from, args.follow) {
        (Some(seq), _) => seq,
        (None, true) => head_seq(&client, &args.topic).await?,
        (None, false) => 0,
    };
    if args.watch {
        return follow_watch(client, &args, cursor).await;
    }
    poll(&client, &args, cursor).await
}

/// The topic's current `head_seq`: where "only new records" starts.
pub async fn head_seq(client: &Client, topic: &str) -> Result<u64, CliError> {
    #[derive(Deserialize)]
    struct State {
        head_seq: u64,
    }
    let path = format!("{}?touch=false", topic_path(topic, ""));
    let state: State = client.call(Method::GET, &path, None).await?;
    Ok(state.head_seq)
}

async fn poll(client: &Client, args: &TailArgs, mut cursor: u64) -> Result<(), CliError> {
    let path = topic_path(&args.topic, "/diff");
    let mut out = Out::new();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    let mut attempt = 0;
    loop {
        let body = json!({
            "from_seq": cursor,
            "limit": args.limit,
            "include_tags": args.tags,
            "wait_ms": if args.follow { args.wait_ms } else { 0 },
        });
        let reply = match client
            .send(Method::POST, &path, Some(body.to_string().into()))
            .await
        {
            Ok(r) => super::client::success_body(r),
            Err(e) => Err(e),
        };
        let bytes = match reply {
            Ok(b) => b,
            Err(e) => {
                attempt += 1;
                let hint = e.retry_after().filter(|_| {
                    args.follow
                        || (attempt < ATTEMPTS_MAX && !matches!(e, ClientError::Transport(_)))
                });
                let Some(hint) = hint else {
                    return Err(e.into());
                };
                let pause = backoff.pause(hint);
                say(&format!("tail: {e}; retrying in {} ms", pause.as_millis()));
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        backoff.reset();
        attempt = 0;
        let page: DiffPage = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode(format!("diff answer: {e}")))?;
        report_gap(page.tombstone.as_ref(), None, args.fail_on_gap)?;
        for record in &page.records {
            out.line(record.get().as_bytes());
        }
        out.flush()?;
        cursor = page.next_from_seq;
        if page.caught_up && !args.follow {
            return Ok(());
        }
    }
}

/// Say `gap: …` on stderr (with the topic when several are followed); with `fail` the
/// command ends there with exit code 3.
pub fn report_gap(t: Option<&Tombstone>, topic: Option<&str>, fail: bool) -> Result<(), CliError> {
    let Some(t) = t else { return Ok(()) };
    match topic {
        Some(name) => say(&format!("gap: {name}: {t}")),
        None => say(&format!("gap: {t}")),
    }
    if fail {
        return Err(CliError::Gap);
    }
    Ok(())
}

async fn follow_watch(client: Client, args: &TailArgs, cursor: u64) -> Result<(), CliError> {
    let starts = vec![(args.topic.clone(), Start::After(cursor))];
    let mut follower = Follower::new(client, starts, args.tags).await?;
    let mut out = Out::new();
    while let Some(item) = follower.next().await? {
        match item {
            Item::Records { records, .. } => {
                for record in &records {
                    out.line(record.get().as_bytes());
                }
                out.flush()?;
            }
            Item::Gap { tombstone, .. } => report_gap(Some(&tombstone), None, args.fail_on_gap)?,
            Item::Deleted { topic } => return Err(deleted(&topic)),
        }
    }
    Ok(())
}

/// A followed topic was deleted: for `tail` that ends the command like a missing topic.
fn deleted(topic: &str) -> CliError {
    CliError::Client(ClientError::Api(ApiFailure {
        status: StatusCode::NOT_FOUND,
        code: "topic_not_found".into(),
        message: format!("topic {topic:?} was deleted"),
        detail: None,
        retry_after: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server accepts `data` nesting 128 levels; a diff answer wraps it in 3 more.
    #[test]
    fn a_page_with_a_record_nesting_128_levels_parses() {
        let data = format!("{}{}", "[".repeat(128), "]".repeat(128));
        let page = format!(
            r#"{{"records":[{{"$seq":1,"data":{data}}}],"next_from_seq":1,"caught_up":true,"tombstone":null}}"#
        );
        let parsed: DiffPage = serde_json::from_str(&page).expect("parses");
        assert_eq!(parsed.records.len(), 1);
    }
}
