//! Known loss ranges: seqs that were issued and whose records are gone for a reason other
//! than retention or a delete (a damaged segment, a crash), kept so every reader is told.
//! A reader meets them inside its walk (`read::scan`) and gets them as a tombstone.
//!
//! Invariant: ranges are disjoint and non-empty; adjacent ranges with the same reason are
//! merged, so a run of losses is reported as one range.

use super::record::Record;
use std::collections::BTreeMap;

/// Reason of ranges whose records failed their checksums.
pub const CORRUPT: &str = "corrupt";

/// Why a seq range was lost involuntarily (beyond the tombstone floors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// Acknowledged before the process died and never written (`disk`/`memory`).
    Crash,
    /// In WAL bytes that were damaged and skipped on the operator's request.
    Damaged,
    /// In a sealed segment whose checksum no longer matches.
    Corrupt,
    /// Hole seqs a router appended to its dest for source records lost (evicted, expired,
    /// crashed) before it forwarded them (API.md §12).
    SourceTrim,
}

impl LossReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Crash => "crash",
            LossReason::Damaged => "damaged",
            LossReason::Corrupt => "corrupt",
            LossReason::SourceTrim => "source_trim",
        }
    }

    /// Code stored in snapshot LossRange frames.
    pub fn code(self) -> u8 {
        match self {
            LossReason::Crash => 1,
            LossReason::Damaged => 2,
            LossReason::Corrupt => 3,
            LossReason::SourceTrim => 4,
        }
    }

    pub fn parse(s: &str) -> Option<LossReason> {
        [
            LossReason::Crash,
            LossReason::Damaged,
            LossReason::Corrupt,
            LossReason::SourceTrim,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    pub fn from_code(c: u8) -> Option<LossReason> {
        match c {
            1 => Some(LossReason::Crash),
            2 => Some(LossReason::Damaged),
            3 => Some(LossReason::Corrupt),
            4 => Some(LossReason::SourceTrim),
            _ => None,
        }
    }
}

/// Seqs `gap_from..=gap_to` are lost, for `reason` (a tombstone reason on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossRange {
    pub gap_from: u64,
    pub gap_to: u64,
    pub reason: &'static str,
}

/// What a read walks over, ascending by seq: a record, or a range of lost seqs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Record(Record),
    Loss(LossRange),
}

/// Disjoint loss ranges keyed by `gap_from`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LossSet {
    ranges: BTreeMap<u64, (u64, &'static str)>,
}

impl LossSet {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Add `from..=to`. Seqs already covered keep their reason (first report wins).
    pub fn add(&mut self, from: u64, to: u64, reason: &'static str) {
        if from > to {
            return;
        }
        let mut cur = from;
        let covered: Vec<(u64, u64)> = self.overlapping(from, to).collect();
        for (s, e) in covered {
            if s > cur {
                self.ranges.insert(cur, (s - 1, reason));
            }
            match e.checked_add(1) {
                Some(next) => cur = cur.max(next),
                None => return self.coalesce(from, to),
            }
        }
        if cur <= to {
            self.ranges.insert(cur, (to, reason));
        }
        self.coalesce(from, to);
    }

    /// (from, to) of the ranges that intersect `from..=to`, ascending.
    fn overlapping(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let before = self
            .ranges
            .range(..from)
            .next_back()
            .filter(|(_, (e, _))| *e >= from);
        before
            .into_iter()
            .chain(self.ranges.range(from..=to))
            .map(|(s, (e, _))| (*s, *e))
    }

    /// Merge same-reason neighbours around `from..=to`.
    fn coalesce(&mut self, from: u64, to: u64) {
        let lo = self
            .ranges
            .range(..from)
            .next_back()
            .map_or(from, |(s, _)| *s);
        let hi = to.saturating_add(1);
        let keys: Vec<u64> = self.ranges.range(lo..=hi).map(|(s, _)| *s).collect();
        let mut prev: Option<u64> = None;
        for s in keys {
            let Some(&(e, reason)) = self.ranges.get(&s) else {
                continue;
            };
            if let Some(p) = prev {
                if let Some((pe, pr)) = self.ranges.get_mut(&p) {
                    if *pr == reason && pe.checked_add(1) == Some(s) {
                        *pe = e;
                        self.ranges.remove(&s);
                        continue;
                    }
                }
            }
            prev = Some(s);
        }
    }

    /// Every range, ascending.
    pub fn iter(&self) -> impl Iterator<Item = LossRange> + '_ {
        self.ranges.iter().map(|(s, (e, r))| LossRange {
            gap_from: *s,
            gap_to: *e,
            reason: r,
        })
    }

    /// The parts of the ranges above `after`, ascending (a range straddling it is cut).
    pub fn after(&self, after: u64) -> impl Iterator<Item = LossRange> + '_ {
        let start = after.saturating_add(1);
        let first = self
            .ranges
            .range(..start)
            .next_back()
            .filter(|(_, (e, _))| *e >= start)
            .map(|(_, (e, r))| LossRange {
                gap_from: start,
                gap_to: *e,
                reason: r,
            });
        let rest = self.ranges.range(start..).map(|(s, (e, r))| LossRange {
            gap_from: *s,
            gap_to: *e,
            reason: r,
        });
        first.into_iter().chain(rest)
    }

    /// Forget every seq below `floor` (superseded by the eviction tombstone, or deleted).
    pub fn drop_below(&mut self, floor: u64) {
        let keep = self.ranges.split_off(&floor);
        let straddling = self.ranges.iter().next_back().map(|(_, v)| *v);
        self.ranges = keep;
        if let Some((e, r)) = straddling.filter(|(e, _)| *e >= floor) {
            self.ranges.insert(floor, (e, r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &LossSet) -> Vec<(u64, u64, &'static str)> {
        s.iter().map(|r| (r.gap_from, r.gap_to, r.reason)).collect()
    }

    #[test]
    fn adjacent_same_reason_ranges_merge_and_others_stay_apart() {
        let mut s = LossSet::default();
        s.add(5, 5, CORRUPT);
        s.add(7, 9, CORRUPT);
        s.add(6, 6, CORRUPT);
        assert_eq!(all(&s), vec![(5, 9, CORRUPT)]);
        s.add(10, 12, "crash");
        s.add(2, 3, CORRUPT);
        assert_eq!(
            all(&s),
            vec![(2, 3, CORRUPT), (5, 9, CORRUPT), (10, 12, "crash")]
        );
    }

    #[test]
    fn overlaps_keep_the_first_reason_and_fill_only_the_gaps() {
        let mut s = LossSet::default();
        s.add(5, 9, CORRUPT);
        s.add(1, 20, "crash");
        assert_eq!(
            all(&s),
            vec![(1, 4, "crash"), (5, 9, CORRUPT), (10, 20, "crash")]
        );
        s.add(3, 12, CORRUPT);
        assert_eq!(all(&s).len(), 3, "nothing new to add");
        s.add(u64::MAX - 1, u64::MAX, CORRUPT);
        s.add(u64::MAX, u64::MAX, "crash");
        assert_eq!(all(&s).last(), Some(&(u64::MAX - 1, u64::MAX, CORRUPT)));
        s.add(9, 3, CORRUPT);
        assert_eq!(all(&s).len(), 4, "an empty range adds nothing");
    }

    #[test]
    fn after_cuts_a_straddling_range_and_drop_below_forgets() {
        let mut s = LossSet::default();
        s.add(5, 9, CORRUPT);
        s.add(20, 20, CORRUPT);
        let after: Vec<_> = s.after(6).map(|r| (r.gap_from, r.gap_to)).collect();
        assert_eq!(after, vec![(7, 9), (20, 20)]);
        assert_eq!(s.after(9).count(), 1);
        s.drop_below(8);
        assert_eq!(all(&s), vec![(8, 9, CORRUPT), (20, 20, CORRUPT)]);
        s.drop_below(21);
        assert!(s.is_empty());
    }
}
