//! The full-disk state of a WAL writer: what happens to frames while no new file can be
//! created, and how the writer leaves the state once space is back.

use super::{answer, Room, WriteError, Writer};
use crate::storage::frame;
use crate::storage::health::StoreError;
use crate::storage::wal::FrameMsg;

impl Writer {
    /// While the disk is full: bookkeeping frames still go into the space kept back for them;
    /// everything else is held (nobody waits) or refused (a submitter waits).
    pub(super) fn commit_while_full(&mut self, frames: Vec<FrameMsg>) {
        let (control, data): (Vec<_>, Vec<_>) = frames
            .into_iter()
            .partition(|f| frame::is_control(&f.bytes));
        if !control.is_empty() {
            match self.write_frames(&control) {
                Ok(()) => answer(control, Ok(())),
                Err(WriteError::NoSpace) => self.hold(control),
                Err(WriteError::Failed(e)) => answer(control, Err(e)),
            }
        }
        self.hold(data);
    }

    pub(super) fn enter_full(&mut self) {
        if !self.full {
            self.full = true;
            self.health.set_shard_full(true);
            tracing::warn!(
                shard = self.shard,
                "WAL shard out of disk space: durable writes answer 507 until space is freed"
            );
        }
    }

    /// Keep frames nobody waits for (already acknowledged) until they can be written; answer
    /// the others "no space" — they are never written, so their writes were not applied.
    pub(super) fn hold(&mut self, frames: Vec<FrameMsg>) {
        for f in frames {
            match f.done {
                Some(done) => {
                    let _ = done.send(Err(StoreError::no_space("the disk is full")));
                }
                None => self.held.extend_from_slice(&f.bytes),
            }
        }
    }

    /// Try to write what is held into a new file; leave the full state when it is synced.
    pub(super) fn retry_held(&mut self) {
        if self.health.is_poisoned() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let result = self.rotate(held.len() as u64).and_then(|()| {
            self.buf.clear();
            self.buf.extend_from_slice(&held);
            self.write_buf(Room::Data)?;
            self.sync().map_err(WriteError::Failed)
        });
        match result {
            Ok(()) => {
                self.full = false;
                self.health.set_shard_full(false);
                tracing::info!(shard = self.shard, "WAL shard has space again");
            }
            Err(WriteError::NoSpace) => self.held = held,
            Err(WriteError::Failed(_)) => {} // poisoned: the process stops
        }
    }
}
