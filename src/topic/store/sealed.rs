//! One sealed segment inside a topic's store: the mapped file, how far its front has been
//! evicted, and which of its records were deleted since it was sealed (delete marks).
//!
//! Invariant: `front` always indexes a live (not deleted) entry, or equals the entry count
//! (the segment is exhausted and leaves the store).

use crate::model::merge::Stored;
use crate::storage::segment::Segment;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Sealed {
    pub seg: Segment,
    /// First entry not yet evicted.
    pub front: usize,
    /// Deleted seqs at or after `front`.
    pub deleted: BTreeSet<u64>,
    pub live_count: u64,
    pub live_bytes: u64,
    pub gen: u32,
    /// A read found a damaged record here already (the segment is counted once).
    pub damage_reported: bool,
}

/// What a snapshot records about a sealed segment (shared with the snapshot codec).
pub use crate::storage::frame::SegmentRef as SealedMeta;

impl Sealed {
    /// A freshly sealed segment: everything live.
    pub fn new(seg: Segment, live_bytes: u64, gen: u32) -> Sealed {
        let live_count = seg.len() as u64;
        Sealed {
            seg,
            front: 0,
            deleted: BTreeSet::new(),
            live_count,
            live_bytes,
            gen,
            damage_reported: false,
        }
    }

    /// Rebuild from a snapshot's description.
    pub fn restore(seg: Segment, m: &SealedMeta) -> Sealed {
        let front = seg.position_after(m.front_seq.saturating_sub(1));
        let mut s = Sealed {
            seg,
            front,
            deleted: m.deleted.iter().copied().collect(),
            live_count: m.live_count,
            live_bytes: m.live_bytes,
            gen: m.gen,
            damage_reported: false,
        };
        s.skip_deleted();
        s
    }

    pub fn meta(&self) -> SealedMeta {
        let front_seq = if self.exhausted() {
            self.seg.last_seq() + 1
        } else {
            self.seg.entry(self.front).seq
        };
        SealedMeta {
            first_seq: self.seg.first_seq(),
            gen: self.gen,
            front_seq,
            live_count: self.live_count,
            live_bytes: self.live_bytes,
            deleted: self.deleted.iter().copied().collect(),
        }
    }

    /// Live records with seq > `after`, each checked as it is read.
    pub fn stored_after(&self, after: u64) -> impl Iterator<Item = Stored> + '_ {
        let start = self.front.max(self.seg.position_after(after));
        (start..self.seg.len()).filter_map(move |i| {
            let seq = self.seg.entry(i).seq;
            if self.deleted.contains(&seq) {
                return None;
            }
            Some(match self.seg.read(i) {
                Ok(r) => Stored::Record(r),
                Err(_) => Stored::Unreadable(seq),
            })
        })
    }

    /// Whether every entry strictly between positions `a` and `b` is deleted.
    pub fn deleted_between(&self, a: usize, b: usize) -> bool {
        let n = b.saturating_sub(a).saturating_sub(1);
        n <= self.deleted.len() && (a + 1..b).all(|j| self.deleted.contains(&self.seg.entry(j).seq))
    }

    pub fn exhausted(&self) -> bool {
        self.front >= self.seg.len()
    }

    /// Drop the front (live) entry.
    pub fn pop_front(&mut self) {
        let e = self.seg.entry(self.front);
        self.front += 1;
        self.live_count = self.live_count.saturating_sub(1);
        self.live_bytes = self.live_bytes.saturating_sub(e.payload);
        self.skip_deleted();
    }

    /// Mark `seq` deleted if it is live here; returns its payload bytes.
    pub fn delete(&mut self, seq: u64) -> Option<u64> {
        let i = self.seg.position_of(seq)?;
        if i < self.front || !self.deleted.insert(seq) {
            return None;
        }
        let payload = self.seg.entry(i).payload;
        self.live_count = self.live_count.saturating_sub(1);
        self.live_bytes = self.live_bytes.saturating_sub(payload);
        self.skip_deleted();
        Some(payload)
    }

    fn skip_deleted(&mut self) {
        while !self.exhausted() {
            let seq = self.seg.entry(self.front).seq;
            if !self.deleted.remove(&seq) {
                break;
            }
            self.front += 1;
        }
    }
}

/// A segment whose header, index or tag table failed its checks at open: none of its records
/// can be trusted. Its snapshot description is kept so checkpoints keep referring to the
/// file, and every start finds (and reports) the damage again, until retention or a delete
/// passes its range.
#[derive(Debug, Clone)]
pub struct DamagedSegment {
    pub meta: SealedMeta,
    /// Last seq of its loss range; `u64::MAX` until recovery knows what follows it.
    pub to: u64,
}

impl DamagedSegment {
    /// First seq its loss range covers (nothing below the front was live).
    pub fn from(&self) -> u64 {
        self.meta.front_seq.max(self.meta.first_seq)
    }
}
