//! Online backup: a consistent point-in-time copy of the data directory, taken while the
//! server keeps serving.
//!
//! What is copied: a checkpoint taken for the backup (its snapshot holds every topic's state
//! at the checkpoint's WAL barrier — config, ceilings, loss ranges, idempotency entries, the
//! hot and still-pending records, queue and router state) and the sealed segments that
//! snapshot refers to. The WAL after the barrier is *not* copied: those frames were submitted
//! after the backup began. In its place each shard gets a file with no frames that ends in a
//! clean-stop mark (`storage::wal::stopped_file`), named where the snapshot's replay starts,
//! so the copy starts as a server that stopped cleanly right at the barrier.
//!
//! Why every record acknowledged before the backup began is in the copy: an acknowledged
//! write was submitted to its topic's actor before the barrier, and images are taken after
//! it (`checkpoint`). Segments and the snapshot never change once renamed into place, and
//! the checkpoint pins them (`pins`) until the stream ends, so checkpoints running meanwhile
//! cannot delete them.

pub mod pins;
pub mod tar;

use crate::checkpoint::BackupPoint;
use crate::storage::{segment, snapshot, wal};
use bytes::Bytes;
use pins::PinGuard;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Bytes per chunk sent to the client; with `CHUNKS_AHEAD` this bounds a backup's memory.
const CHUNK: usize = 256 * 1024;
const CHUNKS_AHEAD: usize = 4;

/// Where an entry's bytes come from.
#[derive(Debug)]
enum Source {
    Dir,
    File(PathBuf),
    Memory(Vec<u8>),
}

#[derive(Debug)]
struct Entry {
    name: String,
    size: u64,
    source: Source,
}

/// Everything one backup streams, decided before the first byte goes out.
#[derive(Debug)]
pub struct Plan {
    pub snapshot: u64,
    pub files: usize,
    /// File bytes in the archive (headers and padding aside).
    pub bytes: u64,
    entries: Vec<Entry>,
    guard: PinGuard,
}

/// List (and size) every file of the backup at `point`. A file the snapshot refers to that is
/// missing is an error: the copy would not start.
pub fn plan(data_dir: &Path, point: BackupPoint) -> io::Result<Plan> {
    let dir = |name: &str| Entry {
        name: name.into(),
        size: 0,
        source: Source::Dir,
    };
    let mut entries = vec![dir("snapshots"), dir("segments"), dir("wal")];
    let snap = snapshot::file_name(point.number);
    entries.push(on_disk(
        format!("snapshots/{snap}"),
        snapshot::dir(data_dir).join(&snap),
    )?);
    let mut segments: Vec<&String> = point.guard.segments().iter().collect();
    segments.sort();
    for name in segments {
        let path = segment::dir(data_dir).join(name);
        entries.push(on_disk(format!("segments/{name}"), path)?);
    }
    let b = &point.barrier;
    for (shard, &index) in b.start.iter().enumerate() {
        let image = wal::stopped_file(b.boot, shard, point.prev_boot);
        entries.push(Entry {
            name: format!("wal/{}", wal::wal_file_name(b.boot, shard, index)),
            size: image.len() as u64,
            source: Source::Memory(image),
        });
    }
    Ok(Plan {
        snapshot: point.number,
        files: entries
            .iter()
            .filter(|e| !matches!(e.source, Source::Dir))
            .count(),
        bytes: entries.iter().map(|e| e.size).sum(),
        entries,
        guard: point.guard,
    })
}

fn on_disk(name: String, path: PathBuf) -> io::Result<Entry> {
    let size = std::fs::metadata(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        .len();
    Ok(Entry {
        name,
        size,
        source: Source::File(path),
    })
}

/// Stream `plan` as a tar archive: a blocking task reads the files and sends chunks through a
/// bounded channel. An error ends the stream with `Err` (the HTTP response is cut off, so
/// the client can never take a partial archive for a whole one). The pins are released when
/// the task ends — after the last byte, on an error, or when the client goes away.
pub fn stream(plan: Plan) -> mpsc::Receiver<io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        let Plan {
            entries,
            guard,
            snapshot,
            ..
        } = plan;
        let result = write_all(&entries, &tx);
        drop(guard);
        match result {
            Ok(()) => tracing::info!(snapshot, "backup streamed"),
            Err(e) => {
                tracing::warn!(snapshot, error = %e, "backup stream ended early");
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    rx
}

fn write_all(entries: &[Entry], tx: &mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = Sink::new(tx);
    for e in entries {
        let kind = match e.source {
            Source::Dir => tar::Kind::Dir,
            _ => tar::Kind::File,
        };
        out.put(&tar::header(&e.name, kind, e.size, mtime)?)?;
        match &e.source {
            Source::Dir => {}
            Source::Memory(bytes) => out.put(bytes)?,
            Source::File(path) => copy_file(path, e.size, &mut out)?,
        }
        out.put(&[0u8; tar::BLOCK][..tar::padding(e.size)])?;
    }
    out.put(&tar::END)?;
    out.flush()
}

/// Exactly `size` bytes of `path`: the size announced in its header.
fn copy_file(path: &Path, size: u64, out: &mut Sink<'_>) -> io::Result<()> {
    let file = std::fs::File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut left = size;
    let mut reader = file.take(size);
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "{}: shorter than when the backup began",
                path.display()
            )));
        }
        out.put(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Gathers small writes into chunks of about `CHUNK` bytes before sending them.
struct Sink<'a> {
    tx: &'a mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl<'a> Sink<'a> {
    fn new(tx: &'a mpsc::Sender<io::Result<Bytes>>) -> Self {
        Sink {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}
