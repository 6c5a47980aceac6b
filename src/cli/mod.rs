//! Client subcommands of the `topics` binary: `write`, `tail`, `watch`, `work`, topic admin
//! (`ls`, `stat`, `create`, `rm`), `backup` and `export`. They talk to a running server over
//! its HTTP API (`docs/API.md`) through [`client::Client`] and never touch the server's data
//! directory. Each runs on a current-thread tokio runtime: one connection's worth of work needs
//! no thread pool.
//!
//! Exit codes (docs/OPERATIONS.md): 0 success, 1 server or network error (`error: CODE:
//! MESSAGE` on stderr), 2 usage error, 3 `tail` or `export --fail-on-gap` crossed a gap.

pub mod admin;
pub mod backup;
pub mod client;
pub mod export;
pub mod job;
pub mod sse;
pub mod tail;
pub mod watch;
pub mod work;
pub mod write;

use clap::{Args, Subcommand};
use client::{Client, ClientError};
use serde::Deserialize;
use std::fmt;
use std::io::Write as _;

/// Where the server is and which key to use; every client subcommand takes these.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// Server URL: plain http:// only (reach a remote server directly or through an SSH
    /// tunnel)
    #[arg(long, env = "TOPICS_URL", default_value = "http://127.0.0.1:4000")]
    pub url: String,
    /// API key, sent as `Authorization: Bearer`
    #[arg(long, env = "TOPICS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Conn {
    pub fn client(&self) -> Result<Client, CliError> {
        Client::new(&self.url, self.token.as_deref()).map_err(CliError::from)
    }
}

/// The client subcommands, flattened into the binary's own subcommand list.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Append NDJSON from stdin to a topic: one JSON value per line becomes one record's
    /// `data`
    #[command(after_help = write::EXAMPLE)]
    Write(write::WriteArgs),
    /// Print a topic's records as NDJSON, optionally following new ones
    #[command(after_help = tail::EXAMPLE)]
    Tail(tail::TailArgs),
    /// Follow several topics as one NDJSON stream (each line a record plus its topic)
    #[command(after_help = watch::EXAMPLE)]
    Watch(watch::WatchArgs),
    /// Run a command for every job of a queue, with N jobs at a time
    #[command(after_help = work::EXAMPLE)]
    Work(work::WorkArgs),
    /// List topics
    #[command(after_help = admin::LS_EXAMPLE)]
    Ls(admin::LsArgs),
    /// Print a topic's state and config as JSON
    #[command(after_help = admin::STAT_EXAMPLE)]
    Stat(admin::StatArgs),
    /// Create a topic
    #[command(after_help = admin::CREATE_EXAMPLE)]
    Create(admin::CreateArgs),
    /// Delete a topic and all its records
    #[command(after_help = admin::RM_EXAMPLE)]
    Rm(admin::RmArgs),
    /// Write a topic's whole retained history as NDJSON (for bulk migration), resumable
    #[command(after_help = export::EXAMPLE)]
    Export(export::ExportArgs),
    /// Take an online backup into a new directory or a `.tar` file, and verify it
    #[command(after_help = backup::EXAMPLE)]
    Backup(backup::BackupArgs),
}

/// Why a client subcommand stopped.
#[derive(Debug)]
pub enum CliError {
    /// The server or the network failed (exit 1).
    Client(ClientError),
    /// Bad input or arguments found after parsing (exit 2).
    Usage(String),
    /// Local I/O: stdin, or starting a worker command (exit 1).
    Io(String),
    /// Input that cannot be sent: a stdin line that is not JSON (exit 1).
    Input(String),
    /// `--fail-on-gap` (`tail`, `export`): records were lost (exit 3); the gap is already on stderr.
    Gap,
    /// Our stdout was closed by its reader (`| head`): stop quietly (exit 0).
    StdoutClosed,
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Usage(m) => CliError::Usage(m),
            other => CliError::Client(other),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Client(e) => write!(f, "{e}"),
            CliError::Usage(m) => write!(f, "usage: {m}"),
            CliError::Io(m) => write!(f, "io: {m}"),
            CliError::Input(m) => write!(f, "bad_input: {m}"),
            CliError::Gap => write!(f, "gap: records were lost"),
            CliError::StdoutClosed => write!(f, "stdout closed"),
        }
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::StdoutClosed => 0,
            CliError::Client(_) | CliError::Io(_) | CliError::Input(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Gap => 3,
        }
    }
}

/// Run one client subcommand to completion; returns the process exit code.
pub fn run(command: ClientCommand) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say(&format!("error: cannot start the runtime: {e}"));
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            ClientCommand::Write(a) => write::run(a).await,
            ClientCommand::Tail(a) => tail::run(a).await,
            ClientCommand::Watch(a) => watch::run(a).await,
            ClientCommand::Work(a) => work::run(a).await,
            ClientCommand::Ls(a) => admin::ls(a).await,
            ClientCommand::Stat(a) => admin::stat(a).await,
            ClientCommand::Create(a) => admin::create(a).await,
            ClientCommand::Rm(a) => admin::rm(a).await,
            ClientCommand::Backup(a) => backup::run(a).await,
            ClientCommand::Export(a) => export::run(a).await,
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            if !matches!(e, CliError::Gap | CliError::StdoutClosed) {
                say(&format!("error: {e}"));
            }
            e.exit_code()
        }
    }
}

/// A line on stderr; a closed stderr is ignored (nothing useful is left to report it to).
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Output lines on stdout, flushed per batch so a follower sees records as they arrive.
pub struct Out {
    buf: Vec<u8>,
}

impl Out {
    pub fn new() -> Out {
        Out { buf: Vec::new() }
    }

    /// Queue one line (without its newline).
    pub fn line(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.buf.push(b'\n');
    }

    /// Write what is queued; a closed stdout ends the command quietly.
    pub fn flush(&mut self) -> Result<(), CliError> {
        let mut stdout = std::io::stdout().lock();
        let result = stdout.write_all(&self.buf).and_then(|()| stdout.flush());
        self.buf.clear();
        result.map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => CliError::StdoutClosed,
            _ => CliError::Io(format!("stdout: {e}")),
        })
    }
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

/// The part of a diff answer a reader needs (API.md §6); records stay borrowed bytes.
#[derive(Deserialize)]
pub struct DiffPage<'a> {
    #[serde(borrow)]
    pub records: Vec<&'a serde_json::value::RawValue>,
    pub next_from_seq: u64,
    pub caught_up: bool,
    pub tombstone: Option<Tombstone>,
}

/// A gap report as diff and watch send it (API.md §6 Tombstones).
#[derive(Debug, Clone, Deserialize)]
pub struct Tombstone {
    pub gap_from: u64,
    pub gap_to: u64,
    pub reason: String,
}

impl fmt::Display for Tombstone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seqs {}..={} lost ({})",
            self.gap_from, self.gap_to, self.reason
        )
    }
}

/// Pause before retrying after a failure that may pass (a restart, a throttle): doubles from
/// `first` up to `max`, so a long outage costs a request every few seconds, not a storm.
pub struct Backoff {
    next: std::time::Duration,
    first: std::time::Duration,
    max: std::time::Duration,
}

impl Backoff {
    pub fn new(first: std::time::Duration, max: std::time::Duration) -> Backoff {
        Backoff {
            next: first,
            first,
            max,
        }
    }

    /// The pause to take now; at least `hint` (a server's `Retry-After`).
    pub fn pause(&mut self, hint: std::time::Duration) -> std::time::Duration {
        let pause = self.next.max(hint);
        self.next = (self.next * 2).min(self.max);
        pause
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_to_its_cap_honours_hints_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(350));
        assert_eq!(b.pause(ms(0)), ms(100));
        assert_eq!(b.pause(ms(0)), ms(200));
        assert_eq!(b.pause(ms(0)), ms(350));
        assert_eq!(b.pause(ms(1000)), ms(1000));
        b.reset();
        assert_eq!(b.pause(ms(0)), ms(100));
    }

    #[test]
    fn a_tombstone_prints_its_exact_range_and_reason() {
        let t: Tombstone =
            serde_json::from_str(r#"{"gap_from":3,"gap_to":7,"reason":"cap","head_seq":10}"#)
                .expect("tombstone");
        assert_eq!(t.to_string(), "seqs 3..=7 lost (cap)");
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(CliError::Gap.exit_code(), 3);
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::Io("x".into()).exit_code(), 1);
        assert_eq!(CliError::StdoutClosed.exit_code(), 0);
        assert_eq!(
            CliError::from(ClientError::Transport("x".into())).exit_code(),
            1
        );
        assert_eq!(
            CliError::from(ClientError::Usage("x".into())).exit_code(),
            2
        );
    }
}
