//! The hot tier: records in RAM, ascending by seq, live or deleted, with live counters and a
//! tag index (tag → live seqs, ascending) so tag deletes never scan the topic.
//!
//! Invariants: entries are ascending by seq; `count`/`bytes` cover exactly the live entries;
//! every live tagged record's seq is in its tag's index deque and nothing else is; the front
//! entry, if any, is live (deleted entries are dropped once they reach the front).

use crate::model::predicate::TagPredicate;
use crate::model::record::Record;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

/// Entry buffers up to this capacity are never shrunk (a steady hot tier of a few thousand
/// records keeps its buffer instead of reallocating it around each seal).
const SHRINK_ABOVE: usize = 1 << 15;

#[derive(Debug, Clone)]
struct Entry {
    rec: Record,
    live: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Hot {
    entries: VecDeque<Entry>,
    count: u64,
    bytes: u64,
    tags: BTreeMap<Arc<str>, VecDeque<u64>>,
}

/// What an eviction pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    pub records: u64,
    pub bytes: u64,
    /// Highest evicted seq, 0 if none.
    pub max_seq: u64,
}

impl Hot {
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.entries.back().map(|e| e.rec.seq)
    }

    /// `$ts` of the newest entry (live or deleted).
    pub fn last_ts(&self) -> Option<i64> {
        self.entries.back().map(|e| e.rec.ts)
    }

    /// The oldest live record.
    pub fn front(&self) -> Option<&Record> {
        self.entries.front().map(|e| &e.rec)
    }

    /// Live records, cloned (cheap: shared buffers), ascending.
    pub fn live_records(&self) -> Vec<Record> {
        self.live_after(0).cloned().collect()
    }

    /// The oldest live records, at most `max_records` of them and stopping once
    /// `max_bytes` of payload are taken (at least one record): the next segment's contents.
    pub fn live_prefix(&self, max_records: usize, max_bytes: u64) -> Vec<Record> {
        let mut bytes = 0;
        let mut out = Vec::new();
        for r in self.live_after(0).take(max_records) {
            if !out.is_empty() && bytes >= max_bytes {
                break;
            }
            bytes += r.payload_bytes();
            out.push(r.clone());
        }
        out
    }

    /// Remove every entry with seq <= `last` (a segment now holds them); returns the seqs of
    /// the live ones, ascending.
    pub fn remove_through(&mut self, last: u64) -> Vec<u64> {
        let mut live = Vec::new();
        while self.entries.front().is_some_and(|e| e.rec.seq <= last) {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            if !e.live {
                continue;
            }
            self.unindex_front(&e.rec);
            self.count -= 1;
            self.bytes -= e.rec.payload_bytes();
            live.push(e.rec.seq);
        }
        self.drop_dead_front();
        live
    }

    /// `$ts` of the oldest live record.
    pub fn oldest_ts(&self) -> Option<i64> {
        self.entries.front().map(|e| e.rec.ts)
    }

    /// Append a record with a seq above every held seq.
    pub fn push(&mut self, rec: Record) {
        debug_assert!(self.last_seq().is_none_or(|s| s < rec.seq));
        if let Some(tag) = &rec.tag {
            self.tags.entry(tag.clone()).or_default().push_back(rec.seq);
        }
        self.count += 1;
        self.bytes += rec.payload_bytes();
        self.entries.push_back(Entry { rec, live: true });
    }

    /// Live records with seq > `after`, ascending.
    pub fn live_after(&self, after: u64) -> impl Iterator<Item = &Record> {
        let start = self.entries.partition_point(|e| e.rec.seq <= after);
        self.entries
            .range(start..)
            .filter(|e| e.live)
            .map(|e| &e.rec)
    }

    /// Evict live records from the front while `evict(front)` holds.
    pub fn evict_front_while(&mut self, mut evict: impl FnMut(&Record, &Hot) -> bool) -> Evicted {
        let mut out = Evicted::default();
        while let Some(front) = self.entries.front() {
            if !evict(&front.rec, self) {
                break;
            }
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.unindex_front(&e.rec);
            out.records += 1;
            out.bytes += e.rec.payload_bytes();
            out.max_seq = e.rec.seq;
            self.count -= 1;
            self.bytes -= e.rec.payload_bytes();
            self.drop_dead_front();
        }
        out
    }

    /// Permanently delete live records with seq < `bound` (and matching `pred`, if any).
    /// Returns (records, bytes) removed.
    pub fn delete(&mut self, bound: u64, pred: Option<&TagPredicate>) -> (u64, u64) {
        let (mut n, mut b) = (0, 0);
        match pred {
            None => {
                let ev = self.evict_front_while(|r, _| r.seq < bound);
                (n, b) = (ev.records, ev.bytes);
            }
            Some(p) => {
                for seq in self.take_tagged_below(p, bound) {
                    let i = self.entries.partition_point(|e| e.rec.seq < seq);
                    if let Some(e) = self
                        .entries
                        .get_mut(i)
                        .filter(|e| e.rec.seq == seq && e.live)
                    {
                        e.live = false;
                        n += 1;
                        b += e.rec.payload_bytes();
                    }
                }
                self.count -= n;
                self.bytes -= b;
                self.drop_dead_front();
            }
        }
        (n, b)
    }

    /// Permanently delete the live record `seq`, if held; its payload bytes.
    pub fn delete_seq(&mut self, seq: u64) -> Option<u64> {
        let i = self.entries.partition_point(|e| e.rec.seq < seq);
        let e = self
            .entries
            .get_mut(i)
            .filter(|e| e.rec.seq == seq && e.live)?;
        e.live = false;
        let (bytes, tag) = (e.rec.payload_bytes(), e.rec.tag.clone());
        if let Some(tag) = tag {
            if let Some(dq) = self.tags.get_mut(&tag) {
                if let Ok(k) = dq.binary_search(&seq) {
                    dq.remove(k);
                }
                if dq.is_empty() {
                    self.tags.remove(&tag);
                }
            }
        }
        self.count -= 1;
        self.bytes -= bytes;
        self.drop_dead_front();
        Some(bytes)
    }

    /// Remove from the tag index, and return, every live seq < `bound` whose tag matches.
    fn take_tagged_below(&mut self, p: &TagPredicate, bound: u64) -> Vec<u64> {
        let tags: Vec<Arc<str>> = match p {
            TagPredicate::Eq(v) => self
                .tags
                .get_key_value(v.as_str())
                .map(|(k, _)| k.clone())
                .into_iter()
                .collect(),
            TagPredicate::Prefix(pre) => self
                .tags
                .range::<str, _>((Bound::Included(pre.as_str()), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(pre.as_str()))
                .map(|(k, _)| k.clone())
                .collect(),
        };
        let mut seqs = Vec::new();
        for tag in tags {
            if let Some(dq) = self.tags.get_mut(&tag) {
                while dq.front().is_some_and(|&s| s < bound) {
                    seqs.extend(dq.pop_front());
                }
                if dq.is_empty() {
                    self.tags.remove(&tag);
                }
            }
        }
        seqs.sort_unstable();
        seqs
    }

    /// The evicted front record is the lowest live seq of its tag.
    fn unindex_front(&mut self, rec: &Record) {
        let Some(tag) = &rec.tag else { return };
        if let Some(dq) = self.tags.get_mut(tag) {
            if dq.front() == Some(&rec.seq) {
                dq.pop_front();
            }
            if dq.is_empty() {
                self.tags.remove(tag);
            }
        }
    }

    fn drop_dead_front(&mut self) {
        while self.entries.front().is_some_and(|e| !e.live) {
            self.entries.pop_front();
        }
        self.shrink();
    }

    /// Give back the entry buffer's memory once it is mostly empty. After recovery replays a
    /// long WAL tail the hot tier may have grown to millions of entries; sealing empties it,
    /// but a `VecDeque` keeps its capacity (hundreds of MiB) until told otherwise.
    fn shrink(&mut self) {
        let (len, cap) = (self.entries.len(), self.entries.capacity());
        if cap > SHRINK_ABOVE && len < cap / 4 {
            self.entries.shrink_to(len * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;

    fn store(tags: &[Option<&str>]) -> Hot {
        let mut s = Hot::default();
        for (i, t) in tags.iter().enumerate() {
            s.push(rec(i as u64 + 1, *t));
        }
        s
    }

    fn live(s: &Hot) -> Vec<u64> {
        s.live_after(0).map(|r| r.seq).collect()
    }

    #[test]
    fn tag_delete_is_bounded_and_silent_for_others() {
        let mut s = store(&[Some("a:1"), Some("b"), None, Some("a:2"), Some("a:1")]);
        assert_eq!(
            s.delete(5, Some(&TagPredicate::Prefix("a:".into()))),
            (2, 4)
        );
        assert_eq!(live(&s), vec![2, 3, 5]);
        assert_eq!((s.count(), s.bytes()), (3, 6));
        assert_eq!(
            s.front().map(|r| r.seq),
            Some(2),
            "dead front entries are dropped"
        );
        assert_eq!(s.delete(99, Some(&TagPredicate::Eq("a:1".into()))), (1, 2));
        assert_eq!(live(&s), vec![2, 3]);
    }

    #[test]
    fn prefix_delete_advances_the_front() {
        let mut s = store(&[Some("x"), None, Some("x"), None]);
        assert_eq!(s.delete(3, None), (2, 4));
        assert_eq!(live(&s), vec![3, 4]);
        assert_eq!(s.delete(99, Some(&TagPredicate::Eq("x".into()))), (1, 2));
        assert_eq!(live(&s), vec![4]);
        assert!(s.tags.is_empty());
    }

    #[test]
    fn eviction_keeps_the_tag_index_exact() {
        let mut s = store(&[Some("t"), Some("t"), Some("u"), Some("t")]);
        let ev = s.evict_front_while(|r, _| r.seq <= 2);
        assert_eq!(
            ev,
            Evicted {
                records: 2,
                bytes: 4,
                max_seq: 2
            }
        );
        assert_eq!(
            s.tags
                .get("t")
                .map(|d| d.iter().copied().collect::<Vec<_>>()),
            Some(vec![4])
        );
        let ev = s.evict_front_while(|_, st| st.bytes() > 2);
        assert_eq!(ev.max_seq, 3);
        assert_eq!(live(&s), vec![4]);
    }

    #[test]
    fn emptying_a_large_hot_tier_gives_its_buffer_back() {
        let n = 4 * SHRINK_ABOVE as u64;
        let mut s = Hot::default();
        for seq in 1..=n {
            s.push(rec(seq, None));
        }
        assert!(s.entries.capacity() >= n as usize);
        assert_eq!(s.remove_through(n - 10).len(), n as usize - 10);
        assert_eq!(live(&s), ((n - 9)..=n).collect::<Vec<_>>());
        assert!(
            s.entries.capacity() <= SHRINK_ABOVE,
            "capacity {} kept after the tier emptied",
            s.entries.capacity()
        );
        let ev = s.evict_front_while(|_, _| true);
        assert_eq!((ev.records, s.count(), s.bytes()), (10, 0, 0));
    }

    #[test]
    fn remove_through_reports_live_entries_and_keeps_the_tag_index_exact() {
        let mut s = store(&[Some("t"), Some("u"), Some("t"), Some("t")]);
        s.delete_seq(2);
        assert_eq!(s.remove_through(3), vec![1, 3]);
        assert_eq!(live(&s), vec![4]);
        assert_eq!(
            s.tags
                .get("t")
                .map(|d| d.iter().copied().collect::<Vec<_>>()),
            Some(vec![4])
        );
        assert!(!s.tags.contains_key("u"));
        assert_eq!(s.live_prefix(10, u64::MAX).len(), 1);
    }

    #[test]
    fn eviction_skips_over_deleted_entries() {
        let mut s = store(&[None, Some("d"), None]);
        s.delete(99, Some(&TagPredicate::Eq("d".into())));
        let ev = s.evict_front_while(|r, _| r.seq <= 1);
        assert_eq!((ev.records, ev.max_seq), (1, 1));
        assert_eq!(s.front().map(|r| r.seq), Some(3));
    }
}
