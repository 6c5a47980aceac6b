//! Offline checks of a data directory (`topics verify`): every checksum of every segment,
//! snapshot and WAL file, reported as problems with file and offset. Read-only: it takes no
//! lock and changes nothing, so it may run beside a server (segments and snapshots are
//! immutable once named; the WAL file a server is appending to is judged by the same rule
//! recovery applies to a torn tail, see `wal`).

mod wal;

pub use wal::verify_wal;

use super::frame::Frame;
use super::segment::{self, check_file};
use super::snapshot;
use bytes::Bytes;
use std::path::{Path, PathBuf};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Data that was once complete is damaged.
    Damage,
    /// Expected after a crash or while a server writes; the next start repairs it.
    Note,
}

/// One finding: which file, where in it, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub offset: u64,
    pub what: String,
    pub severity: Severity,
}

impl Problem {
    pub fn damage(file: &Path, offset: u64, what: impl Into<String>) -> Problem {
        Problem {
            file: file.to_path_buf(),
            offset,
            what: what.into(),
            severity: Severity::Damage,
        }
    }

    pub fn note(file: &Path, offset: u64, what: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Note,
            ..Problem::damage(file, offset, what)
        }
    }
}

/// What one kind of file yielded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub files: usize,
    /// Records (segments) or frames (snapshots) whose own check ran.
    pub items: u64,
    pub problems: Vec<Problem>,
}

/// Files in `dir` whose names end with `suffix`, sorted (none if `dir` is missing).
fn files_with(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, Problem> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Problem::damage(dir, 0, format!("cannot list: {e}"))),
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    Ok(out)
}

/// What reading `path` gave, or `None`: gone meanwhile (a running server's checkpoint
/// collected it) or unreadable (then reported).
fn read_or_report<T>(path: &Path, r: std::io::Result<T>, out: &mut Checked) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            out.problems
                .push(Problem::damage(path, 0, format!("cannot read: {e}")));
            None
        }
    }
}

/// Every segment file: structure, header/index/tag-table crcs, the footer crc, every record.
pub fn verify_segments(data_dir: &Path) -> Checked {
    let mut out = Checked::default();
    let files = match files_with(&segment::dir(data_dir), ".seg") {
        Ok(f) => f,
        Err(p) => {
            out.problems.push(p);
            return out;
        }
    };
    for path in files {
        let Some(c) = read_or_report(&path, check_file(&path), &mut out) else {
            continue;
        };
        out.files += 1;
        out.items += c.records as u64;
        if c.version == Some(segment::layout::V1) {
            let what = "format version 1: records carry no checksums (only decoding is checked)";
            out.problems.push(Problem::note(&path, 8, what));
        }
        for (d, seq) in c.problems {
            let what = match seq {
                Some(seq) => format!("{} (record seq {seq})", d.what),
                None => d.what.to_string(),
            };
            out.problems.push(Problem::damage(&path, d.offset, what));
        }
    }
    out
}

/// Every snapshot, frame by frame; returns also the newest valid one's number. The segments
/// that one refers to must exist: the server refuses to start without them.
pub fn verify_snapshots(data_dir: &Path) -> (Checked, Option<u64>) {
    let dir = snapshot::dir(data_dir);
    let mut out = Checked::default();
    let files = match files_with(&dir, ".snap") {
        Ok(f) => f,
        Err(p) => {
            out.problems.push(p);
            return (out, None);
        }
    };
    let mut newest: Option<snapshot::Snapshot> = None;
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(number) = name.as_deref().and_then(snapshot::parse_file_name) else {
            continue;
        };
        let Some(buf) = read_or_report(&path, std::fs::read(&path), &mut out) else {
            continue;
        };
        let buf = Bytes::from(buf);
        out.files += 1;
        match snapshot::check(buf, number) {
            Ok(s) => {
                out.items += s.frames.len() as u64;
                newest = Some(s);
            }
            Err((offset, what)) => out.problems.push(Problem::damage(&path, offset, what)),
        }
    }
    if out.files > 0 && newest.is_none() {
        let what = "no valid snapshot: the server refuses to start";
        out.problems.push(Problem::damage(&dir, 0, what));
    }
    if let Some(s) = &newest {
        out.problems.extend(missing_segments(data_dir, s));
    }
    (out, newest.map(|s| s.number))
}

fn missing_segments(data_dir: &Path, s: &snapshot::Snapshot) -> Vec<Problem> {
    let dir = segment::dir(data_dir);
    let snap = snapshot::dir(data_dir).join(format!("{:020}.snap", s.number));
    s.frames
        .iter()
        .filter_map(|f| match f {
            Frame::Segment { topic_id, seg } => {
                Some(segment::file_name(*topic_id, seg.first_seq, seg.gen))
            }
            _ => None,
        })
        .filter(|name| !dir.join(name).exists())
        .map(|name| {
            let what =
                format!("refers to segment {name}, which is missing: the server refuses to start");
            Problem::damage(&snap, 0, what)
        })
        .collect()
}

#[cfg(test)]
mod tests;
