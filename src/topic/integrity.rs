//! Damage found in sealed data by this process: counted here, shown by `GET /v0/ready`
//! (detail `corrupt_records`, `corrupt_segments`). The server keeps serving; readers learn
//! of the damage in-band, as `corrupt` tombstones.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Integrity {
    /// Records that failed their checks (a whole damaged segment counts its live records).
    corrupt_records: AtomicU64,
    /// Segments with any damage: an index, header or tag table that failed at open, or at
    /// least one record that failed when read.
    corrupt_segments: AtomicU64,
}

impl Integrity {
    pub fn add(&self, records: u64, segments: u64) {
        self.corrupt_records.fetch_add(records, Ordering::Relaxed);
        self.corrupt_segments.fetch_add(segments, Ordering::Relaxed);
    }

    pub fn corrupt_records(&self) -> u64 {
        self.corrupt_records.load(Ordering::Relaxed)
    }

    pub fn corrupt_segments(&self) -> u64 {
        self.corrupt_segments.load(Ordering::Relaxed)
    }
}
