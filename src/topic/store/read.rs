//! What a read walks: the store's records (sealed ones checked against their crcs as they
//! are read) merged with the known loss ranges, and the bookkeeping for records a read
//! found damaged, so each is reported once and told to every later reader.

use super::sealed::{DamagedSegment, SealedMeta};
use super::Store;
use crate::model::loss::{Item, LossRange, CORRUPT};
use crate::model::merge::{merge, Stored};
use std::path::PathBuf;

/// A run of one segment's records that a read found damaged (consecutive in the segment,
/// apart from deleted ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRun {
    pub path: PathBuf,
    pub from: u64,
    pub to: u64,
    pub records: u64,
    /// The first damage found in this segment by this process.
    pub first_in_segment: bool,
}

impl Store {
    /// Records with seq > `after` as stored, ascending: sealed ones that fail their checks
    /// come as `Unreadable`, never as bytes.
    fn stored_after(&self, after: u64) -> impl Iterator<Item = Stored> + '_ {
        // Segments are ascending and disjoint: skip those wholly at or below `after`.
        let first = self.sealed.partition_point(|s| s.seg.last_seq() <= after);
        let sealed = self
            .sealed
            .range(first..)
            .flat_map(move |s| s.stored_after(after));
        sealed.chain(self.hot.live_after(after).cloned().map(Stored::Record))
    }

    /// Live, readable records with seq > `after`, ascending.
    #[cfg(test)]
    pub fn live_after(
        &self,
        after: u64,
    ) -> impl Iterator<Item = crate::model::record::Record> + '_ {
        self.stored_after(after).filter_map(|s| match s {
            Stored::Record(r) => Some(r),
            Stored::Unreadable(_) => None,
        })
    }

    /// What a read from `after` walks: records and loss ranges in seq order. Ranges below
    /// `floor` (`E`) are left out: the eviction tombstone reports those seqs. Seqs of
    /// damaged records that no known range covers yet are pushed to `found`; hand them to
    /// [`Store::note_damaged`] afterwards.
    pub fn items_after<'a>(
        &'a self,
        after: u64,
        floor: u64,
        found: &'a mut Vec<u64>,
    ) -> impl Iterator<Item = Item> + 'a {
        let known = self.losses.after(after.max(floor.saturating_sub(1)));
        merge(self.stored_after(after), known, found)
    }

    /// The first seq at or above `floor` inside a known loss range.
    pub fn first_loss(&self, floor: u64) -> Option<u64> {
        self.losses
            .after(floor.saturating_sub(1))
            .next()
            .map(|r| r.gap_from)
    }

    /// Record seqs `from..=to` as lost for `reason` (a tombstone reason): every reader whose
    /// cursor is below them gets them as a tombstone, until `E` passes them.
    pub fn add_loss_range(&mut self, from: u64, to: u64, reason: &'static str) {
        self.losses.add(from, to, reason);
    }

    /// The known loss ranges, ascending.
    pub fn loss_ranges(&self) -> impl Iterator<Item = LossRange> + '_ {
        self.losses.iter()
    }

    /// Make the damaged records a read `found` known loss ranges (so they are reported, and
    /// logged, once); returns them as runs per segment.
    pub fn note_damaged(&mut self, found: &[u64]) -> Vec<DamagedRun> {
        let mut runs: Vec<DamagedRun> = Vec::new();
        let mut last: Option<(usize, usize)> = None;
        for &seq in found {
            let k = self.sealed.partition_point(|s| s.seg.last_seq() < seq);
            let Some((s, pos)) = self
                .sealed
                .get(k)
                .and_then(|s| Some((s, s.seg.position_of(seq)?)))
            else {
                continue;
            };
            match runs.last_mut() {
                Some(r) if last.is_some_and(|(lk, lp)| lk == k && s.deleted_between(lp, pos)) => {
                    r.to = seq;
                    r.records += 1;
                }
                _ => runs.push(DamagedRun {
                    path: s.seg.path.clone(),
                    from: seq,
                    to: seq,
                    records: 1,
                    first_in_segment: false,
                }),
            }
            last = Some((k, pos));
        }
        for r in &mut runs {
            self.losses.add(r.from, r.to, CORRUPT);
            let k = self.sealed.partition_point(|s| s.seg.last_seq() < r.from);
            if let Some(s) = self.sealed.get_mut(k) {
                r.first_in_segment = !std::mem::replace(&mut s.damage_reported, true);
            }
        }
        runs
    }

    /// Forget loss ranges below `floor` (`E` moved past them, or a delete did) and the
    /// damaged segments wholly below it.
    pub fn drop_losses_below(&mut self, floor: u64) {
        self.losses.drop_below(floor);
        self.damaged.retain(|d| d.to >= floor);
    }

    /// Recovery: a segment the snapshot describes failed its checks at open. Its seqs
    /// become a `corrupt` loss range once [`Store::resolve_damaged`] knows where it ends.
    pub fn attach_damaged(&mut self, meta: &SealedMeta) {
        if meta.live_count > 0 {
            self.damaged.push(DamagedSegment {
                meta: meta.clone(),
                to: u64::MAX,
            });
        }
    }

    /// Recovery, once everything is replayed: each damaged segment's range ends below the
    /// next seq held (a later segment, a damaged one, a hot record) or at `head`.
    pub fn resolve_damaged(&mut self, head: u64) {
        self.damaged.sort_by_key(DamagedSegment::from);
        let starts: Vec<u64> = self.damaged.iter().map(DamagedSegment::from).collect();
        for (k, from) in starts.iter().copied().enumerate() {
            let next_sealed = self
                .sealed
                .iter()
                .map(|s| s.seg.first_seq())
                .find(|&f| f > from);
            let next_hot = self.hot.live_after(from).next().map(|r| r.seq);
            let next_damaged = starts.get(k + 1).copied();
            let next = [next_sealed, next_hot, next_damaged]
                .into_iter()
                .flatten()
                .min();
            let to = next.map_or(head, |n| n.saturating_sub(1)).min(head);
            self.damaged[k].to = to;
            self.losses.add(from, to, CORRUPT);
        }
        self.damaged.retain(|d| d.from() <= d.to);
    }
}
