//! The items a read walks: stored records merged in seq order with the known loss ranges.
//! A stored record that fails its checks becomes a `corrupt` loss (consecutive ones one
//! range) and is reported to the caller as newly found unless a known range covers it.
//! A readable record inside a known range wins: the range is reported around it.

use super::loss::{Item, LossRange, CORRUPT};
use super::record::Record;
use std::iter::Peekable;

/// A record as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Record(Record),
    /// The record at this seq failed its checks; its bytes must not be served.
    Unreadable(u64),
}

impl Stored {
    fn seq(&self) -> u64 {
        match self {
            Stored::Record(r) => r.seq,
            Stored::Unreadable(s) => *s,
        }
    }
}

/// Merge `stored` (ascending) with `known` (ascending, disjoint); unreadable seqs that no
/// known range covers are pushed to `found`.
pub fn merge<'a, S, K>(stored: S, known: K, found: &'a mut Vec<u64>) -> Merge<'a, S, K>
where
    S: Iterator<Item = Stored>,
    K: Iterator<Item = LossRange>,
{
    Merge {
        stored: stored.peekable(),
        known: known.peekable(),
        found,
        pending: None,
    }
}

pub struct Merge<'a, S: Iterator<Item = Stored>, K: Iterator<Item = LossRange>> {
    stored: Peekable<S>,
    known: Peekable<K>,
    found: &'a mut Vec<u64>,
    /// Newly found unreadable seqs not yet handed out (extended while they follow each other).
    pending: Option<LossRange>,
}

impl<S: Iterator<Item = Stored>, K: Iterator<Item = LossRange>> Iterator for Merge<'_, S, K> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        // Each pass hands out an item or consumes a stored one, so this ends.
        loop {
            let next_stored = self.stored.peek().map(Stored::seq);
            let known_first = match (self.known.peek(), next_stored) {
                (Some(k), Some(s)) => k.gap_from <= s,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if known_first || matches!(self.stored.peek(), None | Some(Stored::Record(_))) {
                if let Some(p) = self.pending.take() {
                    return Some(Item::Loss(p));
                }
            }
            if known_first {
                if let Some(item) = self.next_known() {
                    return Some(item);
                }
                continue;
            }
            match self.stored.next()? {
                Stored::Record(r) => return Some(Item::Record(r)),
                Stored::Unreadable(seq) => {
                    self.found.push(seq);
                    match &mut self.pending {
                        Some(p) => p.gap_to = seq,
                        None => {
                            self.pending = Some(LossRange {
                                gap_from: seq,
                                gap_to: seq,
                                reason: CORRUPT,
                            })
                        }
                    }
                }
            }
        }
    }
}

impl<S: Iterator<Item = Stored>, K: Iterator<Item = LossRange>> Merge<'_, S, K> {
    /// The front known range, or its part before a readable record inside it (`None`: the
    /// record starts the range, so it comes next).
    fn next_known(&mut self) -> Option<Item> {
        let k = self.known.peek_mut()?;
        // Unreadable records the range already reports are not news.
        while let Some(Stored::Unreadable(s)) = self.stored.peek() {
            if *s > k.gap_to {
                break;
            }
            self.stored.next();
        }
        let inside = match self.stored.peek() {
            Some(Stored::Record(r)) if r.seq <= k.gap_to => Some(r.seq),
            _ => None,
        };
        let Some(rec_seq) = inside else {
            return self.known.next().map(Item::Loss);
        };
        let part = (rec_seq > k.gap_from).then(|| LossRange {
            gap_to: rec_seq - 1,
            ..*k
        });
        if rec_seq >= k.gap_to {
            self.known.next();
        } else {
            k.gap_from = rec_seq + 1;
        }
        part.map(Item::Loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(seq: u64) -> Stored {
        Stored::Record(Record {
            seq,
            ts: 0,
            node: None,
            tag: None,
            data: Bytes::from_static(b"1"),
            meta: None,
            hops: 0,
        })
    }

    fn loss(from: u64, to: u64, reason: &'static str) -> LossRange {
        LossRange {
            gap_from: from,
            gap_to: to,
            reason,
        }
    }

    /// Items as `r5` (record) or `5-7:corrupt` (loss), and the newly found seqs.
    fn run(stored: Vec<Stored>, known: Vec<LossRange>) -> (Vec<String>, Vec<u64>) {
        let mut found = Vec::new();
        let items = merge(stored.into_iter(), known.into_iter(), &mut found)
            .map(|i| match i {
                Item::Record(r) => format!("r{}", r.seq),
                Item::Loss(l) => format!("{}-{}:{}", l.gap_from, l.gap_to, l.reason),
            })
            .collect();
        (items, found)
    }

    #[test]
    fn unreadable_records_become_one_corrupt_range_per_run() {
        let u = Stored::Unreadable;
        let (items, found) = run(vec![rec(1), u(2), u(3), rec(4), u(6)], vec![]);
        assert_eq!(items, ["r1", "2-3:corrupt", "r4", "6-6:corrupt"]);
        assert_eq!(found, [2, 3, 6]);
    }

    #[test]
    fn known_ranges_interleave_by_seq_and_cover_unreadable_records() {
        let u = Stored::Unreadable;
        let known = vec![loss(2, 3, CORRUPT), loss(8, 9, "crash")];
        let (items, found) = run(vec![rec(1), u(2), u(3), rec(5), u(6), rec(10)], known);
        assert_eq!(
            items,
            ["r1", "2-3:corrupt", "r5", "6-6:corrupt", "8-9:crash", "r10"]
        );
        assert_eq!(found, [6], "2 and 3 were known already");
    }

    #[test]
    fn a_record_inside_a_known_range_wins() {
        let known = vec![loss(3, 9, "crash")];
        let (items, _) = run(vec![rec(3), rec(5), rec(9), rec(11)], known);
        assert_eq!(items, ["r3", "4-4:crash", "r5", "6-8:crash", "r9", "r11"]);
        let (items, _) = run(vec![], vec![loss(1, 2, "crash")]);
        assert_eq!(items, ["1-2:crash"]);
    }
}
