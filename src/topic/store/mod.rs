//! A topic's records in two tiers: sealed segments (immutable files read through mmap, only
//! a few counters and delete marks in RAM) followed by the hot tier (records in RAM).
//! Sealing moves every live hot record into a new segment at once.
//!
//! Invariants: every sealed seq is below every hot seq; `count`/`bytes` are the sums of both
//! tiers' live counters; the tag index in RAM covers hot records only (sealed segments carry
//! their own tag table on disk), so no operation scans a topic.

mod hot;
pub mod sealed;

use crate::model::predicate::TagPredicate;
use crate::model::record::Record;
use crate::storage::fs::Fs;
use crate::storage::segment::{self, Segment};
use hot::Hot;
use sealed::{Sealed, SealedMeta};
use std::collections::VecDeque;
use std::path::Path;

pub use hot::Evicted;

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

    /// Live records with seq > `after`, ascending (sealed ones decoded from their mapping).
    pub fn live_after(&self, after: u64) -> impl Iterator<Item = Record> + '_ {
        // Segments are ascending and disjoint: skip those wholly at or below `after` by bisection.
        let first = self.sealed.partition_point(|s| s.seg.last_seq() <= after);
        let sealed = self.sealed.range(first..).flat_map(move |s| {
            let start = s.front.max(s.seg.position_after(after));
            (start..s.seg.len()).filter_map(move |i| {
                let e = s.seg.entry(i);
                if s.deleted.contains(&e.seq) {
                    None
                } else {
                    s.seg.record(i)
                }
            })
        });
        sealed.chain(self.hot.live_after(after).cloned())
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

    /// Move every live hot record into a new segment file under `dir`. Returns whether one
    /// was written. The segment is durable (fsynced, renamed, directory fsynced) before the
    /// records leave RAM; on any error they stay hot. The error keeps its kind, so a caller
    /// can tell a full disk (try again later) from a failing one.
    pub fn seal(
        &mut self,
        fs: &dyn Fs,
        dir: &Path,
        topic_id: u64,
        gen: u32,
    ) -> std::io::Result<bool> {
        let records = self.hot.live_records();
        if records.is_empty() {
            return Ok(false);
        }
        let path = segment::write(fs, dir, topic_id, gen, &records)?;
        let seg = Segment::open(&path, true).map_err(std::io::Error::other)?;
        self.sealed_count += records.len() as u64;
        self.sealed_bytes += self.hot.bytes();
        self.sealed
            .push_back(Sealed::new(seg, self.hot.bytes(), gen));
        self.hot = Hot::default();
        Ok(true)
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

    /// Snapshot view: the sealed segments and the hot live records.
    pub fn image(&self) -> (Vec<SealedMeta>, Vec<Record>) {
        (
            self.sealed.iter().map(Sealed::meta).collect(),
            self.hot.live_records(),
        )
    }
}

#[cfg(test)]
mod tests;
