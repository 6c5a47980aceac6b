//! Files an online backup is still reading. Checkpoint GC removes segments no kept snapshot
//! refers to and snapshots older than the newest two; while a backup streams snapshot N and
//! its segments, later checkpoints may make both garbage. A pin keeps them on disk until the
//! backup's guard is dropped (the stream ended, failed, or its client went away).
//!
//! Invariant: a pin is only ever added inside a checkpoint, while that checkpoint holds the
//! snapshot-number lock, so no other checkpoint is between its snapshot write and the pin.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Pins {
    inner: Mutex<Pinned>,
}

/// Reference counts: two backups may pin the same files.
#[derive(Debug, Default)]
struct Pinned {
    snapshots: HashMap<u64, usize>,
    segments: HashMap<String, usize>,
}

/// Releases its pins when dropped.
#[derive(Debug)]
pub struct PinGuard {
    pins: Arc<Pins>,
    snapshot: u64,
    segments: Vec<String>,
}

impl Pins {
    pub fn pin(self: &Arc<Self>, snapshot: u64, segments: Vec<String>) -> PinGuard {
        let mut p = self.lock();
        *p.snapshots.entry(snapshot).or_default() += 1;
        for s in &segments {
            *p.segments.entry(s.clone()).or_default() += 1;
        }
        PinGuard {
            pins: self.clone(),
            snapshot,
            segments,
        }
    }

    pub fn snapshots(&self) -> HashSet<u64> {
        self.lock().snapshots.keys().copied().collect()
    }

    pub fn segments(&self) -> HashSet<String> {
        self.lock().segments.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pinned> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

impl PinGuard {
    pub fn snapshot(&self) -> u64 {
        self.snapshot
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let mut p = self.pins.lock();
        release(&mut p.snapshots, &self.snapshot);
        for s in &self.segments {
            release(&mut p.segments, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_counted_and_released_by_their_guards() {
        let pins = Arc::new(Pins::default());
        let a = pins.pin(4, vec!["x.seg".into(), "y.seg".into()]);
        let b = pins.pin(4, vec!["y.seg".into()]);
        assert_eq!(pins.snapshots(), HashSet::from([4]));
        assert_eq!(pins.segments().len(), 2);
        drop(a);
        assert_eq!(pins.segments(), HashSet::from(["y.seg".to_string()]));
        assert_eq!(pins.snapshots(), HashSet::from([4]), "still pinned by b");
        drop(b);
        assert!(pins.snapshots().is_empty() && pins.segments().is_empty());
    }
}
