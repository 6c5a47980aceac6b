//! Permanent record deletes inside the actor (contract §7): point-in-time (bounded by the head
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
        match self.config.durability {
            Durability::Ephemeral => {}
            // Class fsync: durable before anything is applied or acknowledged.
            Durability::Fsync => {
                self.durable_frame(|out, id| {
                    frame::encode_delete_records(out, id, bound, pred.as_ref())
                })
                .await?
            }
            class => {
                let mut buf = Vec::new();
                frame::encode_delete_records(&mut buf, self.id, bound, pred.as_ref());
                let commit = if class == Durability::Disk {
                    Commit::Soon
                } else {
                    Commit::Lazy
                };
                match self.ctx.wal.submit(self.shard, buf, commit) {
                    Ok(_) => {}
                    Err(SubmitError::Full) => return Err(TopicError::Throttled),
                    Err(SubmitError::Failed(e)) => return Err(TopicError::Storage(e)),
                }
            }
        }
        let (deleted, bytes) = self.store.delete(bound, pred.as_ref());
        self.ctx.total_bytes.fetch_sub(bytes, Ordering::Relaxed);
        Ok(DeleteOk {
            deleted,
            earliest_seq: self.earliest_seq(),
            head_seq: self.head_seq,
            count: self.store.count(),
            bytes: self.store.bytes(),
        })
    }
}
