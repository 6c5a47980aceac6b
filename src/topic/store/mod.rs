//! A topic's records in two tiers: sealed segments (immutable files read through mmap, only
//! a few counters and delete marks in RAM) followed by the hot tier (records in RAM).
//! Sealing moves the oldest live hot records into a new segment; the segment is written
//! away from the actor and swapped in once durable.
//!
//! Invariants: every sealed seq is below every hot seq; `count`/`bytes` are the sums of both
//! tiers' live counters; the tag index in RAM covers hot records only (sealed segments carry
//! their own tag table on disk), so no operation scans a topic; a sealed record is served
//! only after it passed its checks, and a damaged one becomes a known loss range.

mod hot;
mod read;
pub mod sealed;

use crate::model::loss::LossSet;
use crate::model::predicate::TagPredicate;
use crate::model::record::Record;
use crate::storage::fs::Fs;
use crate::storage::segment::{self, Segment};
use hot::Hot;
use sealed::{DamagedSegment, Sealed, SealedMeta};
use std::collections::VecDeque;
use std::path::Path;

pub use hot::Evicted;

/// Write `records` as a segment file under `dir` and open it: durable (fsynced, renamed,
/// directory fsynced) and its whole-file crc checked before it is returned. The error keeps
/// its kind, so a caller can tell a full disk (try again later) from a failing one.
pub fn write_segment(
    fs: &dyn Fs,
    dir: &Path,
    topic_id: u64,
    gen: u32,
    records: &[Record],
) -> Result<Segment, SealError> {
    let path = segment::write(fs, dir, topic_id, gen, records).map_err(|e| {
        let msg = format!("sealing a segment: {e}");
        match crate::storage::fs::is_no_space(&e) {
            true => SealError::NoSpace(msg),
            false => SealError::Failed(msg),
        }
    })?;
    let seg =
        Segment::open(&path).map_err(|e| SealError::Failed(format!("{}: {e}", path.display())))?;
    seg.verify_footer()
        .map_err(|e| SealError::Failed(format!("{} right after sealing: {e}", path.display())))?;
    Ok(seg)
}
pub use read::DamagedRun;

/// Why a seal did not happen.
#[derive(Debug)]
pub enum SealError {
    /// Out of space before the segment replaced anything: its records stay hot (they are in
    /// the WAL) and a later seal tries again.
    NoSpace(String),
    /// Anything else: storage is not to be trusted.
    Failed(String),
}

/// What retention needs to know about a record without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub seq: u64,
    pub ts: i64,
    pub payload: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Store {
    sealed: VecDeque<Sealed>,
    /// Sums of the sealed segments' live counters (kept, not recomputed per call).
    sealed_count: u64,
    sealed_bytes: u64,
    hot: Hot,
    /// Seqs known to be lost for a reason other than retention or a delete.
    losses: LossSet,
    /// Segments that failed their checks at open (their seqs are in `losses`).
    damaged: Vec<DamagedSegment>,
}

impl Store {
    pub fn count(&self) -> u64 {
        self.sealed_count + self.hot.count()
    }

    pub fn bytes(&self) -> u64 {
        self.sealed_bytes + self.hot.bytes()
    }

    /// Live records and payload bytes in RAM (the sealing triggers).
    pub fn hot_count(&self) -> u64 {
        self.hot.count()
    }

    pub fn hot_bytes(&self) -> u64 {
        self.hot.bytes()
    }

    pub fn hot_oldest_ts(&self) -> Option<i64> {
        self.hot.oldest_ts()
    }

    /// The oldest live hot seq: where the next segment starts (the hot front is live).
    pub fn hot_first_seq(&self) -> Option<u64> {
        self.hot.front().map(|r| r.seq)
    }

    pub fn first_live_seq(&self) -> Option<u64> {
        self.front_view().map(|v| v.seq)
    }

    fn front_view(&self) -> Option<View> {
        match self.sealed.front() {
            Some(s) => {
                let e = s.seg.entry(s.front);
                Some(View {
                    seq: e.seq,
                    ts: e.ts,
                    payload: e.payload,
                })
            }
            None => self.hot.front().map(|r| View {
                seq: r.seq,
                ts: r.ts,
                payload: r.payload_bytes(),
            }),
        }
    }

    /// Append a record with a seq above every held seq.
    pub fn push(&mut self, rec: Record) {
        self.hot.push(rec);
    }

    /// `$ts` of the newest record held (live or not), from RAM or a segment's index.
    pub fn last_ts(&self) -> Option<i64> {
        let sealed = || self.sealed.back().map(|s| s.seg.entry(s.seg.len() - 1).ts);
        self.hot.last_ts().or_else(sealed)
    }

    /// Evict live records from the front while `evict(front, store)` holds.
    pub fn evict_front_while(&mut self, mut evict: impl FnMut(View, &Store) -> bool) -> Evicted {
        let mut out = Evicted::default();
        while let Some(v) = self.front_view() {
            if !evict(v, self) {
                break;
            }
            match self.sealed.front_mut() {
                Some(s) => {
                    s.pop_front();
                    self.sealed_count -= 1;
                    self.sealed_bytes -= v.payload;
                    if s.exhausted() {
                        self.sealed.pop_front();
                    }
                }
                None => {
                    self.hot.evict_front_while(|r, _| r.seq == v.seq);
                }
            }
            out.records += 1;
            out.bytes += v.payload;
            out.max_seq = v.seq;
        }
        out
    }

    /// Permanently delete live records with seq < `bound` (and matching `pred`, if any).
    /// Returns (records, bytes) removed.
    pub fn delete(&mut self, bound: u64, pred: Option<&TagPredicate>) -> (u64, u64) {
        let Some(p) = pred else {
            let ev = self.evict_front_while(|v, _| v.seq < bound);
            // Deleted seqs read silently, lost ones included.
            self.drop_losses_below(bound);
            for d in &mut self.damaged {
                d.meta.front_seq = d.meta.front_seq.max(bound);
            }
            return (ev.records, ev.bytes);
        };
        let (mut n, mut b) = (0, 0);
        for s in self.sealed.iter_mut() {
            for seq in s.seg.tagged(p).into_iter().filter(|&q| q < bound) {
                if let Some(bytes) = s.delete(seq) {
                    n += 1;
                    b += bytes;
                }
            }
        }
        self.sealed_count -= n;
        self.sealed_bytes -= b;
        self.sealed.retain(|s| !s.exhausted());
        let (hn, hb) = self.hot.delete(bound, Some(p));
        (n + hn, b + hb)
    }

    /// Permanently delete the live records among `seqs` (a queue's acks). Returns (records,
    /// bytes) removed.
    pub fn delete_seqs(&mut self, seqs: &[u64]) -> (u64, u64) {
        let (mut n, mut b) = (0, 0);
        for &seq in seqs {
            let sealed = self
                .sealed
                .iter_mut()
                .find(|s| s.seg.first_seq() <= seq && seq <= s.seg.last_seq());
            let removed = match sealed {
                Some(s) => s.delete(seq).inspect(|&bytes| {
                    self.sealed_count -= 1;
                    self.sealed_bytes -= bytes;
                }),
                None => self.hot.delete_seq(seq),
            };
            if let Some(bytes) = removed {
                n += 1;
                b += bytes;
            }
        }
        self.sealed.retain(|s| !s.exhausted());
        (n, b)
    }

    /// Read the live records among `seqs` (ascending, each at most once).
    pub fn fetch(&self, seqs: &[u64]) -> Vec<Record> {
        let mut out = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let mut found = Vec::new();
            let first = self
                .items_after(seq.saturating_sub(1), 0, &mut found)
                .next();
            if let Some(crate::model::loss::Item::Record(r)) = first {
                if r.seq == seq {
                    out.push(r);
                }
            }
        }
        out
    }

    /// Move every live hot record into a new segment file under `dir` in one step (the
    /// actor does the same in two: [`Store::seal_batch`] and [`Store::attach_sealed`] with
    /// the write away from it). Returns whether a segment was written.
    #[cfg(test)]
    pub fn seal(
        &mut self,
        fs: &dyn Fs,
        dir: &Path,
        topic_id: u64,
        gen: u32,
    ) -> Result<bool, SealError> {
        let records = self.seal_batch(usize::MAX, u64::MAX);
        if records.is_empty() {
            return Ok(false);
        }
        let seg = write_segment(fs, dir, topic_id, gen, &records)?;
        self.attach_sealed(seg, gen);
        Ok(true)
    }

    /// The next segment's records: the oldest live hot records, bounded in count and bytes
    /// so that neither the copy here nor the swap in [`Store::attach_sealed`] holds the
    /// topic up for long (after recovery the hot tier may hold millions).
    pub fn seal_batch(&self, max_records: usize, max_bytes: u64) -> Vec<Record> {
        self.hot.live_prefix(max_records, max_bytes)
    }

    /// Swap in a durable segment written from a [`Store::seal_batch`]: its records leave the
    /// hot tier. Records deleted or evicted while it was written are marked deleted in it
    /// (they are no longer live in the hot tier). Returns whether anything in it is still
    /// live; if not, it is left out and its file is garbage for the next checkpoint.
    pub fn attach_sealed(&mut self, seg: Segment, gen: u32) -> bool {
        let before = self.hot.bytes();
        let live = self.hot.remove_through(seg.last_seq());
        let payload = |seg: &Segment| (0..seg.len()).map(|i| seg.entry(i).payload).sum::<u64>();
        let s = if live.len() == seg.len() {
            // Nothing was removed meanwhile (the usual case): no walk over the segment's index.
            debug_assert_eq!(before - self.hot.bytes(), payload(&seg));
            Sealed::new(seg, before - self.hot.bytes(), gen)
        } else {
            let dead: Vec<u64> = (0..seg.len())
                .map(|i| seg.entry(i).seq)
                .filter(|q| live.binary_search(q).is_err())
                .collect();
            let total = payload(&seg);
            let mut s = Sealed::new(seg, total, gen);
            for seq in dead {
                s.delete(seq);
            }
            s
        };
        debug_assert_eq!(s.live_count, live.len() as u64);
        if s.exhausted() {
            return false;
        }
        self.sealed_count += s.live_count;
        self.sealed_bytes += s.live_bytes;
        self.sealed.push_back(s);
        true
    }

    /// Recovery: attach a sealed segment described by a snapshot (before any hot record).
    pub fn attach(&mut self, seg: Segment, meta: &SealedMeta) {
        let s = Sealed::restore(seg, meta);
        if !s.exhausted() {
            self.sealed_count += s.live_count;
            self.sealed_bytes += s.live_bytes;
            self.sealed.push_back(s);
        }
    }

    /// Snapshot view: the sealed segments (damaged ones too, so their files are kept and
    /// found again at the next start), oldest first, and the hot live records.
    pub fn image(&self) -> (Vec<SealedMeta>, Vec<Record>) {
        let mut metas: Vec<SealedMeta> = self.sealed.iter().map(Sealed::meta).collect();
        metas.extend(self.damaged.iter().map(|d| d.meta.clone()));
        metas.sort_by_key(|m| m.first_seq);
        (metas, self.hot.live_records())
    }
}

#[cfg(test)]
mod tests;
