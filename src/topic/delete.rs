//! Permanent record deletes inside the actor (API.md §7): point-in-time (bounded by the head
//! at call time), silent on reads, never moving the tombstone floor.

use super::actor::Actor;
use super::{DeleteOk, DeleteRequest, TopicError};
use crate::model::topic_config::Durability;
use crate::storage::frame;
use crate::storage::wal::{Commit, SubmitError};
use std::sync::atomic::Ordering;

impl Actor {
    pub(super) async fn delete_records(
        &mut self,
        req: DeleteRequest,
    ) -> Result<DeleteOk, TopicError> {
        let bound = (self.head_seq + 1).min(req.before_seq.unwrap_or(u64::MAX));
        let pred = req.pred;
        self.log_delete(|out, id| frame::encode_delete_records(out, id, bound, pred.as_ref()))
            .await?;
        let (deleted, bytes) = self.store.delete(bound, pred.as_ref());
        Ok(self.deleted(deleted, bytes))
    }

    /// Delete exactly `seqs` (a queue's acks), logged per the class like any delete but
    /// applied at once: for class `fsync` the covering sync is handed back for the caller to
    /// wait on before it answers, so the actor (and every other ack) does not wait for it. A
    /// crash before that sync brings the jobs back, which is what an unanswered ack means.
    pub(super) fn delete_seqs(
        &mut self,
        seqs: &[u64],
    ) -> Result<(DeleteOk, super::PendingSync), TopicError> {
        let commit = match self.config.durability {
            Durability::Ephemeral => None,
            Durability::Fsync => Some(Commit::Wait),
            Durability::Disk => Some(Commit::Soon),
            Durability::Memory => Some(Commit::Lazy),
        };
        let mut sync = None;
        if let Some(commit) = commit {
            let mut buf = Vec::new();
            frame::encode_delete_seqs(&mut buf, self.id, seqs);
            sync = match self.ctx.wal.submit(self.shard, buf, commit) {
                Ok(rx) => rx.filter(|_| commit == Commit::Wait),
                Err(SubmitError::Full) => return Err(TopicError::Throttled),
                Err(SubmitError::Failed(e)) => return Err(TopicError::Storage(e)),
            };
        }
        let (deleted, bytes) = self.store.delete_seqs(seqs);
        Ok((self.deleted(deleted, bytes), sync))
    }

    /// Log a delete per the class: `fsync` durable before anything is applied or
    /// acknowledged, `disk` soon, `memory` lazily, `ephemeral` not at all.
    async fn log_delete(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>, u64),
    ) -> Result<(), TopicError> {
        let commit = match self.config.durability {
            Durability::Ephemeral => return Ok(()),
            Durability::Fsync => return self.durable_frame(encode).await,
            Durability::Disk => Commit::Soon,
            Durability::Memory => Commit::Lazy,
        };
        let mut buf = Vec::new();
        encode(&mut buf, self.id);
        match self.ctx.wal.submit(self.shard, buf, commit) {
            Ok(_) => Ok(()),
            Err(SubmitError::Full) => Err(TopicError::Throttled),
            Err(SubmitError::Failed(e)) => Err(TopicError::Storage(e)),
        }
    }

    fn deleted(&mut self, deleted: u64, bytes: u64) -> DeleteOk {
        self.ctx.total_bytes.fetch_sub(bytes, Ordering::Relaxed);
        DeleteOk {
            deleted,
            earliest_seq: self.earliest_seq(),
            head_seq: self.head_seq,
            count: self.store.count(),
            bytes: self.store.bytes(),
        }
    }
}
