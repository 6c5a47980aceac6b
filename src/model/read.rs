//! Cursor-read planning (API.md §6/API.md §6): where a read starts, whether it carries a
//! tombstone, and how the walk over stored records and known loss ranges ends. Pure
//! functions over watermarks.
//!
//! The walk meets loss ranges in seq order (`Item::Loss`). At most one tombstone goes in a
//! response: a range met before anything was taken, when the response has no tombstone yet,
//! becomes it and the walk goes on after the range; any other range stops the walk just
//! before it, so the next read (whose cursor is below the range) reports it.

pub use super::loss::{Item, LossRange};
use super::record::Record;
use serde::Serialize;

/// Highest seq destroyed by each kind of involuntary loss (0 = none). Voluntary deletes are
/// deliberately absent: they never produce tombstones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossFloors {
    pub cap: u64,
    pub ttl: u64,
    pub source_trim: u64,
}

impl LossFloors {
    /// `E`: 1 + the highest involuntarily lost seq, clamped to `[1, head+1]`.
    pub fn evict_floor(&self, head_seq: u64) -> u64 {
        let top = self.cap.max(self.ttl).max(self.source_trim);
        (top + 1).clamp(1, head_seq + 1)
    }

    fn reason(&self, gap_from: u64) -> &'static str {
        match (self.cap >= gap_from, self.ttl >= gap_from) {
            (true, true) => "mixed",
            (false, true) => "ttl",
            (true, false) => "cap",
            (false, false) if self.source_trim >= gap_from => "source_trim",
            _ => "cap",
        }
    }
}

/// In-band loss signal of a read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tombstone {
    pub gap_from: u64,
    pub gap_to: u64,
    pub reason: &'static str,
    pub missed_estimate: u64,
    pub earliest_seq: u64,
    pub head_seq: u64,
}

/// Topic watermarks as seen by a read.
#[derive(Debug, Clone, Copy)]
pub struct Watermarks {
    pub head_seq: u64,
    /// `L`: the first live record (`head + 1` when none).
    pub earliest_seq: u64,
    pub floors: LossFloors,
    /// The first seq of a known loss range at or above `E`, if any: a scan that skips ahead
    /// to `L` must not skip a loss range below `L`.
    pub first_loss: Option<u64>,
}

/// Where the walk starts, and the tombstone steps 1–2 of API.md §6 already gave the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanStart {
    pub after: u64,
    pub tombstone: Option<Tombstone>,
}

/// Steps 1–3 of API.md §6: the tombstone (if any) and the seq the scan starts after.
pub fn plan_start(from_seq: u64, w: &Watermarks) -> ScanStart {
    let h = w.head_seq;
    // Skipping ahead goes to the first live record or the first loss range, whichever is first.
    let skip_to = w
        .first_loss
        .map_or(w.earliest_seq, |f| f.min(w.earliest_seq));
    if from_seq > h {
        let t = Tombstone {
            gap_from: 1,
            gap_to: h,
            reason: "recreated",
            missed_estimate: h.max(1),
            earliest_seq: w.earliest_seq,
            head_seq: h,
        };
        return ScanStart {
            after: skip_to.saturating_sub(1),
            tombstone: Some(t),
        };
    }
    let e = w.floors.evict_floor(h);
    if from_seq.saturating_add(1) < e {
        let gap_from = from_seq + 1;
        let t = Tombstone {
            gap_from,
            gap_to: e - 1,
            reason: w.floors.reason(gap_from),
            missed_estimate: e - 1 - gap_from + 1,
            earliest_seq: e,
            head_seq: h,
        };
        return ScanStart {
            after: skip_to.saturating_sub(1).max(from_seq),
            tombstone: Some(t),
        };
    }
    ScanStart {
        after: from_seq,
        tombstone: None,
    }
}

/// The tombstone for a loss range met by the walk (`earliest_seq` is `E`, as in API.md §6).
fn range_tombstone(r: &LossRange, w: &Watermarks) -> Tombstone {
    let h = w.head_seq;
    let gap_to = r.gap_to.min(h);
    Tombstone {
        gap_from: r.gap_from,
        gap_to,
        reason: r.reason,
        missed_estimate: gap_to - r.gap_from + 1,
        earliest_seq: w.floors.evict_floor(h),
        head_seq: h,
    }
}

/// What the walk over records may take.
#[derive(Debug, Clone)]
pub struct ScanLimits<'a> {
    pub limit: usize,
    pub budget_bytes: u64,
    pub include_meta: bool,
    /// Skip records whose node equals one of these (empty = no filter).
    pub skip_nodes: &'a [String],
}

/// Outcome of steps 4–5 of API.md §6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Records to deliver, ascending.
    pub taken: Vec<Record>,
    pub next_from_seq: u64,
    /// Records examined (delivered + skipped).
    pub scanned: u64,
    /// The response's tombstone: the start's, or a loss range the walk met first.
    pub tombstone: Option<Tombstone>,
}

/// The walk's running state.
#[derive(Default)]
struct Walk {
    taken: Vec<Record>,
    used: u64,
    last_examined: Option<u64>,
    scanned: u64,
}

impl Walk {
    /// Take or skip `rec`; `false` when the byte budget stops the walk before it.
    fn offer(&mut self, rec: Record, lim: &ScanLimits<'_>) -> bool {
        let skip = rec
            .node
            .as_deref()
            .is_some_and(|n| lim.skip_nodes.iter().any(|s| s == n));
        if !skip {
            let meta = if lim.include_meta {
                rec.meta.as_ref().map_or(0, |m| m.len())
            } else {
                0
            };
            let size = (rec.data.len() + meta) as u64;
            if !self.taken.is_empty() && self.used + size > lim.budget_bytes {
                return false;
            }
            self.used += size;
        }
        self.last_examined = Some(rec.seq);
        self.scanned += 1;
        if !skip {
            self.taken.push(rec);
        }
        true
    }
}

/// Walk `run` (items above `start.after`, ascending) up to `w.head_seq`.
pub fn scan(
    run: impl IntoIterator<Item = Item>,
    start: ScanStart,
    w: &Watermarks,
    lim: &ScanLimits<'_>,
) -> ScanOutcome {
    let ScanStart {
        after,
        mut tombstone,
    } = start;
    let mut walk = Walk::default();
    let mut stopped_early = false;
    for item in run {
        if walk.taken.len() >= lim.limit {
            stopped_early = true;
            break;
        }
        match item {
            Item::Record(rec) => {
                if !walk.offer(rec, lim) {
                    stopped_early = true;
                    break;
                }
            }
            Item::Loss(r) if r.gap_from > w.head_seq || r.gap_from > r.gap_to => break,
            Item::Loss(r) if walk.taken.is_empty() && tombstone.is_none() => {
                let t = range_tombstone(&r, w);
                walk.last_examined = Some(t.gap_to);
                tombstone = Some(t);
            }
            Item::Loss(_) => {
                stopped_early = true;
                break;
            }
        }
    }
    let next_from_seq = if stopped_early {
        walk.last_examined.unwrap_or(after)
    } else {
        w.head_seq.max(after)
    };
    ScanOutcome {
        taken: walk.taken,
        next_from_seq,
        scanned: walk.scanned,
        tombstone,
    }
}

#[cfg(test)]
mod tests;
