//! Idempotency entries of one topic (API.md §5): key → the original result, matching while
//! `now − created ≤ window`. Entries are pruned oldest-first, so memory is bounded by the
//! write rate times the window.

use std::collections::{HashMap, VecDeque};

/// The stored form is shared with the WAL and snapshot codec.
pub use crate::storage::frame::IdemFields as IdemEntry;

#[derive(Debug, Clone, Default)]
pub struct IdemTable {
    map: HashMap<String, IdemEntry>,
    /// (created, key) in insertion order; created is non-decreasing ($ts is).
    order: VecDeque<(i64, String)>,
}

impl IdemTable {
    /// Drop entries older than the window.
    pub fn prune(&mut self, now_ms: i64, window_ms: u64) {
        while let Some((created, key)) = self.order.front() {
            if now_ms.saturating_sub(*created) <= window_ms as i64 {
                break;
            }
            if self.map.get(key).is_some_and(|e| e.created_ms == *created) {
                self.map.remove(key);
            }
            self.order.pop_front();
        }
    }

    pub fn get(&self, key: &str, now_ms: i64, window_ms: u64) -> Option<IdemEntry> {
        self.map
            .get(key)
            .filter(|e| now_ms.saturating_sub(e.created_ms) <= window_ms as i64)
            .copied()
    }

    pub fn insert(&mut self, key: String, entry: IdemEntry) {
        self.order.push_back((entry.created_ms, key.clone()));
        self.map.insert(key, entry);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &IdemEntry)> {
        self.map.iter()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(created_ms: i64, seq: u64) -> IdemEntry {
        IdemEntry {
            created_ms,
            first_seq: seq,
            last_seq: seq,
            head_seq: seq,
        }
    }

    #[test]
    fn matches_within_window_inclusive() {
        let mut t = IdemTable::default();
        t.insert("k".into(), e(1000, 1));
        assert_eq!(t.get("k", 1100, 100), Some(e(1000, 1)));
        assert_eq!(t.get("k", 1101, 100), None);
        t.prune(1101, 100);
        assert!(t.is_empty());
    }

    #[test]
    fn reinserted_key_survives_pruning_of_its_old_entry() {
        let mut t = IdemTable::default();
        t.insert("k".into(), e(0, 1));
        t.insert("k".into(), e(500, 2));
        t.prune(550, 100);
        assert_eq!(t.get("k", 550, 100), Some(e(500, 2)));
        assert_eq!(t.len(), 1);
    }
}
