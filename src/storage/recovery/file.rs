//! Replay of one WAL file: frames in order, then what the first bad byte means.
//!
//! Rules, in order, at the first offset `at` where no valid frame starts:
//! 1. Only zeros from `at` to the end: the end of the log (files are preallocated). A file
//!    that is not the last of its (boot, shard) run must end with the sync mark written when
//!    it was closed; if it does not, its end was lost.
//! 2. Otherwise, a file that is not the last of its run was synced whole when it was closed:
//!    damage.
//! 3. In the last file, a valid sync mark after `at` whose synced length passes `at` proves
//!    the bytes at `at` were durable once: damage. Without one, `at` lies in what was written
//!    after the last completed fdatasync: a torn tail, cut there.

use super::{Damage, ReplayError, ReplayOptions};
use crate::storage::frame::{
    self, FileHeader, Frame, FILE_HEADER_LEN, SYNC_MAGIC, SYNC_MAGIC_OFFSET,
};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;

/// What replay hands to the catalog.
#[derive(Debug)]
pub enum Replayed {
    Frame(Frame),
    /// Every file of `boot` has been replayed; `clean` when each of its shards stopped with
    /// nothing left unwritten (a Stop frame).
    BootEnd {
        boot: u32,
        clean: bool,
    },
    /// Damaged or missing WAL bytes were skipped here, on the operator's request: they held at
    /// most `max_records` records of the topics that map to `shard` (shard, shards of its
    /// boot) — of every topic when `None` (a whole boot is missing).
    Discontinuity {
        shard: Option<(usize, usize)>,
        max_records: u64,
    },
}

/// A change recovery makes to a file once the whole replay succeeded — never before, so a
/// refusal leaves the directory exactly as it found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Torn during creation: remove it (and sync the directory).
    Remove,
    /// Cut a torn tail, or give back an unused preallocated tail (cut and fsync).
    Truncate(u64),
}

/// What one file contributed.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub fix: Option<Fix>,
    pub frames: u64,
    pub truncated: u64,
    /// The file was torn during creation and removed.
    pub removed: bool,
    pub ended_with_stop: bool,
    pub skipped_damage: bool,
}

pub struct FileReplay<'a> {
    buf: &'a Bytes,
    path: &'a Path,
    is_tail: bool,
    opts: ReplayOptions,
    shard: usize,
    shards: usize,
    out: FileOutcome,
    /// Last frame seen was a sync mark naming its own offset (a closing mark).
    closed: bool,
    /// Highest seq per topic read so far in this file (for damage reports).
    seen: BTreeMap<u64, u64>,
}

impl<'a> FileReplay<'a> {
    pub fn new(
        buf: &'a Bytes,
        path: &'a Path,
        is_tail: bool,
        opts: ReplayOptions,
        (shard, shards): (usize, usize),
    ) -> Self {
        FileReplay {
            buf,
            path,
            is_tail,
            opts,
            shard,
            shards,
            out: FileOutcome::default(),
            closed: false,
            seen: BTreeMap::new(),
        }
    }

    pub fn run(
        mut self,
        apply: &mut impl FnMut(Replayed, usize),
    ) -> Result<FileOutcome, ReplayError> {
        if let Some(removed) = self.torn_creation()? {
            self.out.removed = removed;
            self.out.fix = Some(Fix::Remove);
            return Ok(self.out);
        }
        let version = FileHeader::version_of(self.buf);
        let mut at = FILE_HEADER_LEN;
        loop {
            at = self.frames_from(at, apply);
            if at >= self.buf.len() {
                return self.finish_clean(version, at);
            }
            match self.classify(version, at) {
                Verdict::End => return self.drop_zero_tail(at),
                Verdict::Torn => return self.cut(at),
                Verdict::Damaged(d) if !self.opts.skip_damage => {
                    return Err(ReplayError::Damaged(d))
                }
                Verdict::Damaged(d) => match self.skip(d, at, apply) {
                    Some(next) => at = next,
                    None => return Ok(self.out),
                },
            }
        }
    }

    /// `Some(true)`: removed as torn during creation; `Some(false)`: nothing to replay.
    fn torn_creation(&self) -> Result<Option<bool>, ReplayError> {
        let header = self.buf.get(..FILE_HEADER_LEN);
        let never_written = header.is_none() || self.buf.iter().all(|b| *b == 0);
        if self.is_tail && never_written {
            tracing::warn!(file = %self.path.display(), "removing WAL file torn during creation");
            return Ok(Some(true));
        }
        if FileHeader::decode(self.buf).is_err() {
            return Err(ReplayError::Damaged(self.damage(
                0,
                "bad file header (not a WAL file of a known format version)".into(),
                None,
            )));
        }
        Ok(None)
    }

    /// Apply valid frames from `at`; returns the offset of the first byte that is not one.
    fn frames_from(&mut self, mut at: usize, apply: &mut impl FnMut(Replayed, usize)) -> usize {
        while at < self.buf.len() {
            let Ok((f, next)) = frame::decode(self.buf, at) else {
                return at;
            };
            self.note(&f, at);
            // Marks are the WAL's own bookkeeping, not replayed state.
            if !matches!(f, Frame::Sync { .. } | Frame::Stop) {
                self.out.frames += 1;
            }
            apply(Replayed::Frame(f), next);
            at = next;
        }
        at
    }

    fn note(&mut self, f: &Frame, at: usize) {
        self.out.ended_with_stop = matches!(f, Frame::Stop);
        self.closed =
            matches!(f, Frame::Sync { closing: true, synced, .. } if *synced == at as u64);
        if let Frame::Append(a) = f {
            if let Some(last) = a.records.last() {
                let e = self.seen.entry(a.topic_id).or_default();
                *e = (*e).max(last.seq);
            }
        }
    }

    /// Every byte decoded: a closed file (not the last of its run) must end with its closing
    /// mark, else frames at its end were cut away.
    fn finish_clean(self, version: u16, at: usize) -> Result<FileOutcome, ReplayError> {
        if !self.is_tail && version >= 2 && !self.closed {
            let what =
                "the file ends before the sync mark that closed it: its last frames are gone";
            return Err(ReplayError::Damaged(self.damage(at, what.into(), None)));
        }
        Ok(self.out)
    }

    fn classify(&self, version: u16, at: usize) -> Verdict {
        let rest = &self.buf[at..];
        if rest.iter().all(|b| *b == 0) {
            if !self.is_tail && version >= 2 && !self.closed {
                return Verdict::Damaged(self.damage(
                    at,
                    "the file ends before the sync mark that closed it: its last frames are gone"
                        .into(),
                    None,
                ));
            }
            return Verdict::End;
        }
        let frontier = marks_after(self.buf, at).map(|(_, synced)| synced).max();
        if !self.is_tail {
            let what = "bad frame in a file that was synced whole when it was closed";
            return Verdict::Damaged(self.damage(at, what.into(), first_mark_after(self.buf, at)));
        }
        match frontier {
            Some(synced) if synced > at as u64 => {
                let what = format!(
                    "bad frame inside bytes a completed fdatasync covered (up to {synced})"
                );
                Verdict::Damaged(self.damage(at, what, first_mark_after(self.buf, at)))
            }
            _ => Verdict::Torn,
        }
    }

    /// A file from an earlier run is never appended to again: its unused preallocated tail
    /// goes back to the file system (and later starts need not read it).
    fn drop_zero_tail(mut self, at: usize) -> Result<FileOutcome, ReplayError> {
        self.out.fix = Some(Fix::Truncate(at as u64));
        Ok(self.out)
    }

    fn cut(mut self, at: usize) -> Result<FileOutcome, ReplayError> {
        let cut = self.buf.len() - at;
        tracing::warn!(file = %self.path.display(), offset = at, bytes = cut,
            "cutting torn WAL tail (written after the last completed fdatasync)");
        self.out.fix = Some(Fix::Truncate(at as u64));
        self.out.truncated = cut as u64;
        Ok(self.out)
    }

    /// Skip the damaged bytes up to the next intact sync mark (or the end of the file).
    fn skip(
        &mut self,
        d: Damage,
        at: usize,
        apply: &mut impl FnMut(Replayed, usize),
    ) -> Option<usize> {
        tracing::error!(file = %d.file.display(), offset = d.offset, what = %d.what,
            "skipping damaged WAL bytes as asked; affected seqs are reported as lost");
        self.out.skipped_damage = true;
        let resume = next_intact_frame(self.buf, at).or_else(|| first_mark_after(self.buf, at));
        let end = resume.unwrap_or(self.buf.len());
        // Each record takes at least 6 bytes: a bound on what the skipped bytes held.
        let max_records = (end - at) as u64 / 6 + 1;
        apply(
            Replayed::Discontinuity {
                shard: Some((self.shard, self.shards)),
                max_records,
            },
            end,
        );
        resume
    }

    /// A damage report: the seqs read intact before `at`, and the first after `resume`.
    fn damage(&self, at: usize, what: String, resume: Option<usize>) -> Damage {
        let after = resume
            .map(|r| first_seqs_from(self.buf, r))
            .unwrap_or_default();
        let mut ids: Vec<u64> = self.seen.keys().chain(after.keys()).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        Damage {
            file: self.path.to_path_buf(),
            offset: at as u64,
            what,
            topics: ids
                .into_iter()
                .map(|id| {
                    (
                        id,
                        self.seen.get(&id).copied().unwrap_or(0),
                        after.get(&id).copied(),
                    )
                })
                .collect(),
        }
    }
}

enum Verdict {
    End,
    Torn,
    Damaged(Damage),
}

/// Every intact sync mark that starts after `at`: (its offset, the synced length it names).
/// Found by their magic bytes, so no damaged length field is trusted.
fn marks_after(buf: &Bytes, at: usize) -> impl Iterator<Item = (usize, u64)> + '_ {
    let hay = &buf[..];
    let mut from = at + 1;
    std::iter::from_fn(move || loop {
        let pos = find(hay.get(from..)?, &SYNC_MAGIC)? + from;
        from = pos + 1;
        let Some(start) = pos.checked_sub(SYNC_MAGIC_OFFSET) else {
            continue;
        };
        if start <= at {
            continue;
        }
        if let Ok((Frame::Sync { synced, .. }, _)) = frame::decode(buf, start) {
            return Some((start, synced));
        }
    })
}

/// Where the frame after a bad one at `at` starts, if the bad frame's length field is
/// plausible and a valid frame really starts there.
fn next_intact_frame(buf: &Bytes, at: usize) -> Option<usize> {
    let len = u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?) as usize;
    let next = at.checked_add(frame::FRAME_HEADER_LEN)?.checked_add(len)?;
    frame::decode(buf, next).ok().map(|_| next)
}

fn first_mark_after(buf: &Bytes, at: usize) -> Option<usize> {
    marks_after(buf, at).next().map(|(start, _)| start)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The first seq of each topic in the valid frames that follow `from`.
fn first_seqs_from(buf: &Bytes, mut at: usize) -> BTreeMap<u64, u64> {
    let mut first = BTreeMap::new();
    while let Ok((f, next)) = frame::decode(buf, at) {
        if let Frame::Append(a) = f {
            if let Some(r) = a.records.first() {
                first.entry(a.topic_id).or_insert(r.seq);
            }
        }
        at = next;
    }
    first
}
