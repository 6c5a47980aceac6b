//! `topics work QUEUE -j N -- CMD [ARGS...]`: a worker pool over a queue (API.md §13). It
//! claims jobs with `POST .../claim` (never more than the free slots), runs one command per
//! job (`job.rs`), and when the queue has nothing to hand out waits on a diff long-poll of
//! the queue, which returns at once when a job is written, so an idle runner costs one
//! request per `--idle-ms` rather than a busy loop. SIGINT/SIGTERM: no new claims, running
//! commands get SIGTERM, their jobs are handed back (nack without delay), exit 0.

use super::client::{topic_path, Client, ClientError};
use super::job::{self, Ctx, Job};
use super::{say, Backoff, CliError, Conn};
use clap::Args;
use hyper::Method;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub const EXAMPLE: &str = "Example:\n  topics work emails -j 8 -- ./send.sh\n\n\
    Each job's `data` is written to the command's stdin as one line of JSON; the command sees\n\
    TOPICS_QUEUE, TOPICS_JOB_SEQ, TOPICS_JOB_DELIVERIES, TOPICS_JOB_LEASE_ID and TOPICS_JOB_TAG\n\
    (when the job has a tag). Exit 0 acks the job; any other exit nacks it for a retry.";

#[derive(Args, Debug)]
pub struct WorkArgs {
    /// Queue topic to take jobs from
    pub queue: String,
    /// Jobs run at the same time
    #[arg(short = 'j', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub jobs: u32,
    /// Worker name the leases are held under [default: topics-work-PID]
    #[arg(long)]
    pub node: Option<String>,
    /// Lease per job; renewed every third of it while the command runs
    #[arg(long, default_value_t = 30_000, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=86_400_000))]
    pub lease_ms: u64,
    /// Delay before a failed job is retried, doubled per delivery (0: no delay)
    #[arg(long, default_value_t = 1_000, value_name = "MS")]
    pub retry_base_ms: u64,
    /// Longest retry delay
    #[arg(long, default_value_t = 60_000, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    pub retry_max_ms: u64,
    /// Longest wait on an empty queue before claiming again (a new job ends it at once)
    #[arg(long, default_value_t = 1_000, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=30_000))]
    pub idle_ms: u64,
    /// Time a command has to exit after SIGTERM on shutdown, then SIGKILL
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub grace_ms: u64,
    #[command(flatten)]
    pub conn: Conn,
    /// The command to run for each job
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Deserialize)]
struct Claimed {
    claimed: Vec<Job>,
}

#[derive(Deserialize)]
struct Head {
    head_seq: u64,
}

pub async fn run(args: WorkArgs) -> Result<(), CliError> {
    let client = args.conn.client()?;
    // Fails early (exit 1) on a missing queue or a refused key, and gives the wake-up cursor.
    let head = super::tail::head_seq(&client, &args.queue).await?;
    let (stop_tx, stop) = watch::channel(false);
    listen_for_signals(stop_tx.clone())?;
    let mut pool = Pool {
        ctx: context(&args, client),
        slots: args.jobs as usize,
        idle_ms: args.idle_ms,
        head,
        stop,
        running: JoinSet::new(),
        fatal: None,
        backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
    };
    while !*pool.stop.borrow() && pool.fatal.is_none() {
        pool.step().await;
    }
    // Stopping (a signal or a fatal error): every running job ends and hands its lease back.
    let _ = stop_tx.send(true);
    while let Some(done) = pool.running.join_next().await {
        note_end(done, &mut pool.fatal);
    }
    pool.fatal.map_or(Ok(()), Err)
}

fn context(args: &WorkArgs, client: Client) -> Arc<Ctx> {
    Arc::new(Ctx {
        client,
        queue: args.queue.clone(),
        node: args
            .node
            .clone()
            .unwrap_or_else(|| format!("topics-work-{}", std::process::id())),
        command: args.command.clone(),
        lease_ms: args.lease_ms,
        retry_base_ms: args.retry_base_ms,
        retry_max_ms: args.retry_max_ms,
        grace: Duration::from_millis(args.grace_ms),
    })
}

/// The runner's state between claims.
struct Pool {
    ctx: Arc<Ctx>,
    slots: usize,
    idle_ms: u64,
    /// The queue's head as last seen: the cursor of the wake-up long-poll.
    head: u64,
    stop: watch::Receiver<bool>,
    /// One task per running job; never more than `slots`.
    running: JoinSet<Result<(), CliError>>,
    /// Why the runner must stop (the command cannot start, the queue is gone, ...).
    fatal: Option<CliError>,
    /// Pause between failed claims.
    backoff: Backoff,
}

impl Pool {
    /// Fill free slots with claimed jobs, or wait: for a slot, a new job, a retry or a stop.
    async fn step(&mut self) {
        while let Some(done) = self.running.try_join_next() {
            note_end(done, &mut self.fatal);
        }
        let free = self.slots - self.running.len();
        if self.fatal.is_some() {
            return;
        }
        let mut stop = self.stop.clone();
        if free == 0 {
            tokio::select! {
                Some(done) = self.running.join_next() => note_end(done, &mut self.fatal),
                () = job::stopped(&mut stop) => {}
            }
            return;
        }
        match claim(&self.ctx, free).await {
            Ok(jobs) if !jobs.is_empty() => {
                self.backoff.reset();
                for job in jobs {
                    self.running
                        .spawn(job::run(self.ctx.clone(), job, self.stop.clone()));
                }
            }
            Ok(_) => {
                let ctx = &self.ctx;
                tokio::select! {
                    h = wake(&ctx.client, &ctx.queue, self.head, self.idle_ms) => {
                        self.head = h.unwrap_or(self.head);
                    }
                    Some(done) = self.running.join_next(), if !self.running.is_empty() => {
                        note_end(done, &mut self.fatal);
                    }
                    () = job::stopped(&mut stop) => {}
                }
            }
            Err(e) => match e.retry_after() {
                Some(hint) => {
                    let pause = self.backoff.pause(hint);
                    say(&format!(
                        "work: claim: {e}; retrying in {} ms",
                        pause.as_millis()
                    ));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        () = job::stopped(&mut stop) => {}
                    }
                }
                None => self.fatal = Some(e.into()),
            },
        }
    }
}

/// A finished job's outcome: only "the command cannot start" stops the runner.
fn note_end(
    done: Result<Result<(), CliError>, tokio::task::JoinError>,
    fatal: &mut Option<CliError>,
) {
    let err = match done {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(e) => CliError::Io(format!("a job task failed: {e}")),
    };
    if fatal.is_none() {
        *fatal = Some(err);
    }
}

async fn claim(ctx: &Ctx, max: usize) -> Result<Vec<Job>, ClientError> {
    let body = json!({ "node": ctx.node, "max": max, "lease_ms": ctx.lease_ms });
    let path = topic_path(&ctx.queue, "/claim");
    let claimed: Claimed = ctx.client.call(Method::POST, &path, Some(&body)).await?;
    Ok(claimed.claimed)
}

/// Wait until a job is written after `head` or `idle_ms` pass; the new head. Jobs handed
/// back or whose lease expired are not writes: the timeout bounds how late they are seen.
async fn wake(client: &Client, queue: &str, head: u64, idle_ms: u64) -> Result<u64, ClientError> {
    let body = json!({ "from_seq": head, "limit": 1, "wait_ms": idle_ms, "include_meta": false });
    let path = topic_path(queue, "/diff");
    match client.call::<Head>(Method::POST, &path, Some(&body)).await {
        Ok(h) => Ok(h.head_seq),
        Err(e) => {
            // The claim that follows reports the error; pausing here keeps that from spinning.
            tokio::time::sleep(Duration::from_millis(idle_ms.min(1_000))).await;
            Err(e)
        }
    }
}

/// SIGINT and SIGTERM both start a clean stop; installed before the first claim, so a
/// signal never finds the runner without a handler.
fn listen_for_signals(stop: watch::Sender<bool>) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Io(format!("cannot handle signals: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        say("work: stopping: no new jobs; running commands get SIGTERM and their jobs go back");
        let _ = stop.send(true);
    });
    Ok(())
}
