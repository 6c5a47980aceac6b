//! One job of `topics work`: run the command with the job's `data` on stdin, keep the lease
//! alive while it runs, then ack (exit 0) or nack with a growing delay (anything else). On
//! shutdown the command gets SIGTERM (SIGKILL after the grace period) and the job is handed
//! back at once. Every ack/nack/extend is fenced with the job's `lease_id`, so a lease that
//! expired and went to another worker is never settled by this one.

use super::client::{topic_path, Client};
use super::{say, CliError};
use hyper::Method;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Attempts of one ack/nack before the runner gives up on it (the lease then expires and the
/// job is delivered again: at-least-once, never lost).
const SETTLE_ATTEMPTS_MAX: u32 = 5;

/// A job as a claim returns it (API.md §13).
#[derive(Debug, Deserialize)]
pub struct Job {
    #[serde(rename = "$seq")]
    pub seq: u64,
    pub lease_id: String,
    pub deliveries: u64,
    #[serde(rename = "$tag")]
    pub tag: Option<String>,
    pub data: Option<Box<RawValue>>,
}

/// What every job of one runner shares.
pub struct Ctx {
    pub client: Client,
    pub queue: String,
    /// The worker's node name: leases are held by it.
    pub node: String,
    /// Program and arguments.
    pub command: Vec<String>,
    pub lease_ms: u64,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// How long a stopped command may take to exit after SIGTERM.
    pub grace: Duration,
}

/// How a job ended.
enum End {
    Exited(ExitStatus),
    Stopped,
}

/// Run one job to its ack or nack. An error means the command could not be started at all,
/// which the runner treats as fatal (every job would fail the same way).
pub async fn run(ctx: Arc<Ctx>, job: Job, mut stop: watch::Receiver<bool>) -> Result<(), CliError> {
    let stopping = *stop.borrow();
    if stopping {
        // Claimed while the runner was stopping: hand it back untouched.
        settle(&ctx, &job, "nack", json!({ "reason": "worker stopped" })).await;
        return Ok(());
    }
    let mut child = match spawn(&ctx, &job) {
        Ok(c) => c,
        Err(e) => {
            settle(
                &ctx,
                &job,
                "nack",
                json!({ "reason": "the command could not start" }),
            )
            .await;
            return Err(e);
        }
    };
    let every = Duration::from_millis((ctx.lease_ms / 3).max(50));
    let mut extend_at = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let end = loop {
        tokio::select! {
            status = child.wait() => match status {
                Ok(s) => break End::Exited(s),
                Err(e) => return Err(CliError::Io(format!("waiting for the command: {e}"))),
            },
            _ = extend_at.tick() => extend(&ctx, &job).await,
            () = stopped(&mut stop) => break End::Stopped,
        }
    };
    match end {
        End::Exited(s) if s.success() => settle(&ctx, &job, "ack", json!({})).await,
        End::Exited(s) => {
            let delay_ms = retry_delay_ms(ctx.retry_base_ms, ctx.retry_max_ms, job.deliveries);
            say(&format!(
                "work: job {} (delivery {}) failed: {s}; retry in {delay_ms} ms",
                job.seq, job.deliveries
            ));
            let mut extra = json!({ "reason": format!("command {s}") });
            if delay_ms > 0 {
                extra["delay_ms"] = Value::from(delay_ms);
            }
            settle(&ctx, &job, "nack", extra).await;
        }
        End::Stopped => {
            terminate(&mut child, ctx.grace).await;
            settle(&ctx, &job, "nack", json!({ "reason": "worker stopped" })).await;
        }
    }
    Ok(())
}

/// Resolves once the runner is stopping (holds no borrow of the flag, so the future stays
/// `Send`).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// `base · 2^(deliveries−1)`, at most `max`; `0` when the base is `0` (no delay: the queue's
/// own `retry_backoff`, if any, applies).
pub fn retry_delay_ms(base_ms: u64, max_ms: u64, deliveries: u64) -> u64 {
    let doublings = deliveries.saturating_sub(1).min(32) as u32;
    base_ms.saturating_mul(1u64 << doublings).min(max_ms)
}

fn spawn(ctx: &Ctx, job: &Job) -> Result<Child, CliError> {
    let (program, args) = ctx
        .command
        .split_first()
        .ok_or_else(|| CliError::Usage("no command to run".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .env("TOPICS_QUEUE", &ctx.queue)
        .env("TOPICS_JOB_SEQ", job.seq.to_string())
        .env("TOPICS_JOB_DELIVERIES", job.deliveries.to_string())
        .env("TOPICS_JOB_LEASE_ID", &job.lease_id)
        .env_remove("TOPICS_JOB_TAG")
        .kill_on_drop(true);
    if let Some(tag) = &job.tag {
        cmd.env("TOPICS_JOB_TAG", tag);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::Io(format!("cannot run {program:?}: {e}")))?;
    // Fed from a task of its own: a command that never reads stdin must not block the
    // lease keeping (a job larger than a pipe buffer would).
    if let Some(mut stdin) = child.stdin.take() {
        let mut input = job
            .data
            .as_ref()
            .map_or("null", |d| d.get())
            .as_bytes()
            .to_vec();
        input.push(b'\n');
        tokio::spawn(async move {
            // A command that exits without reading its input is not an error.
            let _ = stdin.write_all(&input).await;
        });
    }
    Ok(child)
}

/// SIGTERM, then SIGKILL when the grace period passes.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) takes no pointers; `pid` is our own child, not yet reaped (its
        // `wait` has not returned), so the number cannot name another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

async fn extend(ctx: &Ctx, job: &Job) {
    let body = json!({
        "node": ctx.node,
        "seqs": [job.seq],
        "lease_ids": [job.lease_id],
        "lease_ms": ctx.lease_ms,
    });
    let path = topic_path(&ctx.queue, "/extend");
    match ctx
        .client
        .call::<Value>(Method::POST, &path, Some(&body))
        .await
    {
        Ok(r) if skipped(&r, job.seq) => say(&format!(
            "work: the lease on job {} was lost; the job may run twice",
            job.seq
        )),
        Ok(_) => {}
        // The next tick tries again; the lease holds for two more ticks.
        Err(e) => say(&format!("work: extending job {}: {e}", job.seq)),
    }
}

/// Ack or nack the job, retrying failures that may pass. Never fails the runner: an
/// unsettled job comes back when its lease expires.
async fn settle(ctx: &Ctx, job: &Job, verb: &str, extra: Value) {
    let mut body = json!({
        "node": ctx.node,
        "seqs": [job.seq],
        "lease_ids": [job.lease_id],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let path = topic_path(&ctx.queue, &format!("/{verb}"));
    for attempt in 1..=SETTLE_ATTEMPTS_MAX {
        match ctx
            .client
            .call::<Value>(Method::POST, &path, Some(&body))
            .await
        {
            Ok(r) => {
                if skipped(&r, job.seq) {
                    say(&format!(
                        "work: {verb} of job {} skipped: its lease had expired; it will be delivered again",
                        job.seq
                    ));
                }
                return;
            }
            Err(e) => match e.retry_after() {
                Some(pause) if attempt < SETTLE_ATTEMPTS_MAX => {
                    tokio::time::sleep(pause).await;
                }
                _ => {
                    say(&format!("work: {verb} of job {} failed: {e}", job.seq));
                    return;
                }
            },
        }
    }
}

fn skipped(reply: &Value, seq: u64) -> bool {
    reply["skipped"]
        .as_array()
        .is_some_and(|s| s.iter().any(|v| v.as_u64() == Some(seq)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_per_delivery_up_to_the_max() {
        assert_eq!(retry_delay_ms(1000, 60_000, 1), 1000);
        assert_eq!(retry_delay_ms(1000, 60_000, 2), 2000);
        assert_eq!(retry_delay_ms(1000, 60_000, 4), 8000);
        assert_eq!(retry_delay_ms(1000, 60_000, 10), 60_000);
        assert_eq!(retry_delay_ms(1000, 60_000, u64::MAX), 60_000);
        assert_eq!(retry_delay_ms(0, 60_000, 3), 0);
    }

    #[test]
    fn a_claimed_job_parses_with_and_without_a_tag() {
        let j: Job = serde_json::from_str(
            r#"{"$seq":7,"lease_id":"lease_1","deadline":1,"$ts":1,"deliveries":2,"$tag":"t","data":{"a":[1]}}"#,
        )
        .expect("job");
        assert_eq!((j.seq, j.deliveries, j.tag.as_deref()), (7, 2, Some("t")));
        assert_eq!(
            j.data.map(|d| d.get().to_string()).as_deref(),
            Some(r#"{"a":[1]}"#)
        );
        let j: Job =
            serde_json::from_str(r#"{"$seq":1,"lease_id":"l","deliveries":1,"data":null}"#)
                .expect("job");
        assert!(j.tag.is_none());
    }
}
