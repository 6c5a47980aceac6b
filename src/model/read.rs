//! Cursor-read planning (contract §6.2/§6.3): where a read starts, whether it carries a
//! tombstone, and how the walk over stored records ends. Pure functions over watermarks.

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
    pub earliest_seq: u64,
    pub floors: LossFloors,
}

/// Steps 1–3 of §6.2: the tombstone (if any) and the seq the scan starts after.
pub fn plan_start(from_seq: u64, w: &Watermarks) -> (Option<Tombstone>, u64) {
    let (h, l) = (w.head_seq, w.earliest_seq);
    if from_seq > h {
        let t = Tombstone {
            gap_from: 1,
            gap_to: h,
            reason: "recreated",
            missed_estimate: h.max(1),
            earliest_seq: l,
            head_seq: h,
        };
        return (Some(t), l.saturating_sub(1));
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
        return (Some(t), l.saturating_sub(1).max(from_seq));
    }
    (None, from_seq)
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

/// Outcome of steps 4–5 of §6.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Records to deliver, ascending.
    pub taken: Vec<Record>,
    pub next_from_seq: u64,
    /// Records examined (delivered + skipped).
    pub scanned: u64,
}

/// Walk `run` (records with seq > `scan_after`, ascending) up to `head_seq`.
pub fn scan(
    run: impl Iterator<Item = Record>,
    scan_after: u64,
    head_seq: u64,
    lim: &ScanLimits<'_>,
) -> ScanOutcome {
    let mut taken: Vec<Record> = Vec::new();
    let mut used = 0u64;
    let mut last_examined = None;
    let mut scanned = 0u64;
    let mut stopped_early = false;
    for rec in run {
        if taken.len() >= lim.limit {
            stopped_early = true;
            break;
        }
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
            if !taken.is_empty() && used + size > lim.budget_bytes {
                stopped_early = true;
                break;
            }
            used += size;
            last_examined = Some(rec.seq);
            scanned += 1;
            taken.push(rec);
            continue;
        }
        last_examined = Some(rec.seq);
        scanned += 1;
    }
    let next_from_seq = if stopped_early {
        last_examined.unwrap_or(scan_after)
    } else {
        head_seq.max(scan_after)
    };
    ScanOutcome {
        taken,
        next_from_seq,
        scanned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(seq: u64, node: Option<&str>, len: usize) -> Record {
        Record {
            seq,
            ts: 0,
            node: node.map(Into::into),
            tag: None,
            data: Bytes::from(vec![b'1'; len]),
            meta: None,
            hops: 0,
        }
    }

    fn wm(h: u64, l: u64, floors: LossFloors) -> Watermarks {
        Watermarks {
            head_seq: h,
            earliest_seq: l,
            floors,
        }
    }

    #[test]
    fn no_tombstone_without_loss() {
        assert_eq!(plan_start(0, &wm(10, 1, LossFloors::default())), (None, 0));
        assert_eq!(
            plan_start(10, &wm(10, 1, LossFloors::default())),
            (None, 10)
        );
    }

    #[test]
    fn cursor_above_head_is_recreated() {
        let (t, start) = plan_start(50, &wm(3, 1, LossFloors::default()));
        let t = t.unwrap();
        assert_eq!(
            (t.gap_from, t.gap_to, t.reason, t.missed_estimate),
            (1, 3, "recreated", 3)
        );
        assert_eq!(start, 0);
        let (t, _) = plan_start(5, &wm(0, 1, LossFloors::default()));
        assert_eq!(t.unwrap().missed_estimate, 1);
    }

    #[test]
    fn eviction_past_cursor_tombstones_with_reason() {
        let floors = LossFloors {
            cap: 10,
            ttl: 0,
            source_trim: 0,
        };
        let (t, start) = plan_start(4, &wm(20, 11, floors));
        let t = t.unwrap();
        assert_eq!(
            (
                t.gap_from,
                t.gap_to,
                t.reason,
                t.missed_estimate,
                t.earliest_seq
            ),
            (5, 10, "cap", 6, 11)
        );
        assert_eq!(start, 10);
        let floors = LossFloors {
            cap: 10,
            ttl: 7,
            source_trim: 0,
        };
        assert_eq!(
            plan_start(4, &wm(20, 11, floors)).0.unwrap().reason,
            "mixed"
        );
        assert_eq!(plan_start(8, &wm(20, 11, floors)).0.unwrap().reason, "cap");
        let floors = LossFloors {
            cap: 0,
            ttl: 7,
            source_trim: 0,
        };
        assert_eq!(plan_start(2, &wm(20, 8, floors)).0.unwrap().reason, "ttl");
        // A cursor just below E reads silently.
        assert_eq!(plan_start(7, &wm(20, 8, floors)).0, None);
    }

    #[test]
    fn scan_respects_limit_budget_and_node_filter() {
        let recs = [
            rec(1, None, 4),
            rec(2, Some("me"), 4),
            rec(3, None, 4),
            rec(5, None, 4),
        ];
        let seqs = |o: &ScanOutcome| o.taken.iter().map(|r| r.seq).collect::<Vec<_>>();
        let nodes = vec!["me".to_string()];
        let lim = ScanLimits {
            limit: 2,
            budget_bytes: 100,
            include_meta: true,
            skip_nodes: &nodes,
        };
        let out = scan(recs.iter().cloned(), 0, 6, &lim);
        assert_eq!(
            (seqs(&out), out.next_from_seq, out.scanned),
            (vec![1, 3], 3, 3)
        );
        let lim = ScanLimits {
            limit: 10,
            budget_bytes: 100,
            include_meta: true,
            skip_nodes: &nodes,
        };
        let out = scan(recs.iter().cloned(), 0, 6, &lim);
        assert_eq!((out.taken.len(), out.next_from_seq, out.scanned), (3, 6, 4));
        let lim = ScanLimits {
            limit: 10,
            budget_bytes: 5,
            include_meta: true,
            skip_nodes: &[],
        };
        let out = scan(recs.iter().cloned(), 0, 6, &lim);
        assert_eq!((seqs(&out), out.next_from_seq), (vec![1], 1));
        let lim = ScanLimits {
            limit: 10,
            budget_bytes: 1,
            include_meta: true,
            skip_nodes: &[],
        };
        assert_eq!(
            seqs(&scan(recs.iter().cloned(), 0, 6, &lim)),
            vec![1],
            "one record always fits"
        );
        assert_eq!(scan(std::iter::empty(), 3, 6, &lim).next_from_seq, 6);
    }
}
