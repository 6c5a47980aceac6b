//! `topics backup DEST`: ask the server for an online backup (`POST /v0/backup`) and keep it
//! as a directory a server can start on, or as one `.tar` file. Nothing at `DEST` ever looks
//! whole unless it is: the archive is written under `DEST.partial`, checked (complete, every
//! checksum clean), made durable, and only then renamed to `DEST`.

use super::client::ClientError;
use super::{say, CliError, Conn};
use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;
use hyper::Method;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

pub const EXAMPLE: &str = "Examples:\n  topics backup /var/backups/topics-2026-12-02       # a data directory\n  topics backup /var/backups/topics-2026-12-02.tar   # one archive file\n  TOPICS_TOKEN=$ADMIN_KEY topics backup --url http://127.0.0.1:4000 DEST\nRestore: start a server on the directory (topics --data-dir DEST), or unpack the archive\n(tar -xf DEST.tar -C DIR) first.";

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Where to put the copy: a new directory, or a file whose name ends in `.tar`
    pub dest: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

/// Chunks of the answer in flight between the network and the file writer.
const CHUNKS_AHEAD: usize = 8;

pub async fn run(args: BackupArgs) -> Result<(), CliError> {
    let dest = args.dest;
    let as_archive = dest.extension().is_some_and(|e| e == "tar");
    let partial = partial_path(&dest);
    if dest.exists() && !is_empty_dir(&dest) {
        return Err(CliError::Usage(format!(
            "{} already exists: a backup never overwrites",
            dest.display()
        )));
    }
    if partial.exists() {
        return Err(CliError::Usage(format!(
            "{} exists (left by an earlier failed backup?): remove it first",
            partial.display()
        )));
    }
    let client = args.conn.client()?;
    let resp = client
        .open(Method::POST, "/v0/backup", None, "application/x-tar", &[])
        .await?;
    let snapshot = resp
        .headers()
        .get("x-topics-snapshot")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string();
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    let target = partial.clone();
    let writer = tokio::task::spawn_blocking(move || match as_archive {
        true => save_archive(ChannelReader::new(rx), &target),
        false => save_dir(ChannelReader::new(rx), &target),
    });
    let mut body = resp.into_body();
    let received = pump(&mut body, &tx).await;
    drop(tx);
    let saved = writer
        .await
        .map_err(|e| CliError::Io(format!("backup writer: {e}")))?;
    if let Err(e) = received {
        return Err(failed(&partial, e.to_string()));
    }
    let bytes = saved.map_err(|e| failed(&partial, e.to_string()))?;
    check(&partial).map_err(|e| failed(&partial, e))?;
    finish(&partial, &dest).map_err(|e| CliError::Io(format!("{}: {e}", dest.display())))?;
    say(&format!(
        "backup: snapshot {snapshot}, {bytes} bytes, verified clean: {}",
        dest.display()
    ));
    Ok(())
}

/// A failed backup leaves nothing behind: the partial copy is removed, `DEST` never existed.
fn failed(partial: &Path, why: String) -> CliError {
    let removed = match partial.is_dir() {
        true => std::fs::remove_dir_all(partial),
        false => std::fs::remove_file(partial),
    };
    let left = match removed {
        Ok(()) => String::new(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => format!("; remove {} by hand ({e})", partial.display()),
    };
    CliError::Io(format!("backup failed, nothing was kept: {why}{left}"))
}

/// `DEST.partial`, next to `DEST` (the same file system, so the final rename is atomic).
fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Move the body's bytes to the writer; a cut connection is an error (the writer sees the
/// stream end early and reports the archive incomplete as well).
async fn pump(
    body: &mut hyper::body::Incoming,
    tx: &mpsc::Sender<io::Result<Bytes>>,
) -> Result<(), CliError> {
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let why = format!("the backup stream broke off: {e}");
                let _ = tx.send(Err(io::Error::other(why.clone()))).await;
                return Err(CliError::Client(ClientError::Transport(why)));
            }
        };
        if let Ok(data) = frame.into_data() {
            if tx.send(Ok(data)).await.is_err() {
                // The writer stopped early; its own error says why.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Unpack into the directory `target` (created here).
fn save_dir(input: impl Read, target: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(target)?;
    let files = crate::backup::tar::extract(input, target)?;
    let mut bytes = 0;
    for f in files {
        bytes += std::fs::metadata(f)?.len();
    }
    Ok(bytes)
}

/// Write the archive as it arrives into the file `target`, fsynced.
fn save_archive(mut input: impl Read, target: &Path) -> io::Result<u64> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)?;
    let bytes = io::copy(&mut input, &mut out)?;
    out.flush()?;
    out.sync_all()?;
    Ok(bytes)
}

/// `topics verify` on what arrived (an archive is unpacked into a scratch directory).
fn check(partial: &Path) -> Result<(), String> {
    let mut report = Vec::new();
    let code = crate::verify::run_path(partial, &mut report);
    let report = String::from_utf8_lossy(&report);
    match code {
        crate::verify::EXIT_CLEAN => Ok(()),
        _ => Err(format!("the copy does not verify:\n{}", report.trim_end())),
    }
}

/// Rename `DEST.partial` to `DEST` and make the rename durable.
fn finish(partial: &Path, dest: &Path) -> io::Result<()> {
    if is_empty_dir(dest) {
        std::fs::remove_dir(dest)?;
    }
    std::fs::rename(partial, dest)?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()
}

/// A blocking `Read` over the chunks the async side receives.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
