//! Queue frames (kinds 18–21, API.md §13): acks as deletes of single seqs, the lasting
//! state of a leased seq, a queue's counters, and the intent that opens a dead-letter move.

use super::{put_bytes16, Frame, FrameBuf, Reader};
use crate::model::queue::{Lease, SeqState};
use std::sync::Arc;

pub(super) const KIND_DELETE_SEQS: u8 = 18;
pub(super) const KIND_QUEUE_SEQ: u8 = 19;
pub(super) const KIND_QUEUE_META: u8 = 20;
pub(super) const KIND_DEAD_LETTER: u8 = 21;

/// Permanent delete of exactly these seqs (acks, dead-letter moves).
pub fn encode_delete_seqs(out: &mut Vec<u8>, topic_id: u64, seqs: &[u64]) {
    let f = FrameBuf::begin(out, KIND_DELETE_SEQS, topic_id);
    f.out.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
    for s in seqs {
        f.out.extend_from_slice(&s.to_le_bytes());
    }
    f.seal();
}

/// The state of `seq` after a claim, release, nack or extend (the last one replayed wins).
pub fn encode_queue_seq(out: &mut Vec<u8>, topic_id: u64, seq: u64, st: &SeqState) {
    let f = FrameBuf::begin(out, KIND_QUEUE_SEQ, topic_id);
    f.out.extend_from_slice(&seq.to_le_bytes());
    f.out.extend_from_slice(&st.deliveries.to_le_bytes());
    f.out.extend_from_slice(&st.ready_at.to_le_bytes());
    match &st.lease {
        None => f.out.push(0),
        Some(l) => {
            f.out.push(1);
            f.out.extend_from_slice(&l.lease_no.to_le_bytes());
            f.out.extend_from_slice(&l.deadline.to_le_bytes());
            put_bytes16(f.out, l.node.as_bytes());
        }
    }
    // Optional trailing field: frames without it read as "no reason".
    if let Some(r) = &st.reason {
        put_bytes16(f.out, r.as_bytes());
    }
    f.seal();
}

/// A queue's counters: the last lease number issued and the dead-lettered count.
pub fn encode_queue_meta(out: &mut Vec<u8>, topic_id: u64, last_lease: u64, dead_lettered: u64) {
    let f = FrameBuf::begin(out, KIND_QUEUE_META, topic_id);
    f.out.extend_from_slice(&last_lease.to_le_bytes());
    f.out.extend_from_slice(&dead_lettered.to_le_bytes());
    f.seal();
}

/// `seq` is about to be copied to its dead-letter topic, whose head is `dlq_mark`: a copy
/// found above the mark after a crash completes the move instead of a second copy.
pub fn encode_dead_letter(out: &mut Vec<u8>, topic_id: u64, seq: u64, dlq_mark: u64) {
    let f = FrameBuf::begin(out, KIND_DEAD_LETTER, topic_id);
    f.out.extend_from_slice(&seq.to_le_bytes());
    f.out.extend_from_slice(&dlq_mark.to_le_bytes());
    f.seal();
}

pub(super) fn decode(kind: u8, topic_id: u64, r: &mut Reader<'_>) -> Option<Frame> {
    Some(match kind {
        KIND_DELETE_SEQS => {
            let n = r.u32()? as usize;
            if n > r.remaining() / 8 {
                return None;
            }
            let seqs = (0..n).map(|_| r.u64()).collect::<Option<Vec<u64>>>()?;
            Frame::DeleteSeqs { topic_id, seqs }
        }
        KIND_QUEUE_SEQ => {
            let (seq, deliveries, ready_at) = (r.u64()?, r.u32()?, r.u64()? as i64);
            let lease = match r.u8()? {
                0 => None,
                1 => Some(Lease {
                    lease_no: r.u64()?,
                    deadline: r.u64()? as i64,
                    node: Arc::from(r.string16()?.as_str()),
                    conn: None,
                }),
                _ => return None,
            };
            let reason = match r.remaining() {
                0 => None,
                _ => Some(r.string16()?),
            };
            let state = SeqState {
                deliveries,
                lease,
                ready_at,
                reason,
            };
            Frame::QueueSeq {
                topic_id,
                seq,
                state,
            }
        }
        KIND_QUEUE_META => Frame::QueueMeta {
            topic_id,
            last_lease: r.u64()?,
            dead_lettered: r.u64()?,
        },
        KIND_DEAD_LETTER => Frame::DeadLetter {
            topic_id,
            seq: r.u64()?,
            dlq_mark: r.u64()?,
        },
        _ => return None,
    })
}
