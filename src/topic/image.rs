//! A topic's durable state as one value (a checkpoint image), and its encoding as snapshot
//! frames. The actor builds the image; encoding happens off the actor.

use super::actor::Actor;
use super::idempotency::IdemEntry;
use super::recovered::LossReason;
use super::store::sealed::SealedMeta;
use crate::model::read::LossFloors;
use crate::model::record::Record;
use crate::model::topic_config::{Durability, TopicConfig};
use crate::storage::frame;
use std::io::Write;
use std::sync::Arc;

/// Records per snapshot frame, so no frame grows past a few MiB.
const RECORDS_PER_FRAME: usize = 4096;

#[derive(Debug, Clone)]
pub struct TopicImage {
    pub id: u64,
    pub name: Arc<str>,
    pub config: TopicConfig,
    /// Seqs up to here may have been issued (a restart resumes at or above it).
    pub ceiling: u64,
    pub floors: LossFloors,
    /// Live records, then any still-pending ones (their frames precede the barrier).
    pub records: Vec<Record>,
    pub idempotency: Vec<(String, IdemEntry)>,
    /// Sealed segments (files under `segments/`), oldest first.
    pub segments: Vec<SealedMeta>,
    /// Seqs lost to a crash or to skipped WAL damage: (from, to, reason code). Nothing else
    /// remembers them once the WAL they were derived from is gone. (`corrupt` ranges are
    /// found again in the segment files themselves.)
    pub losses: Vec<(u64, u64, u8)>,
}

impl Actor {
    /// `exact`: the server is stopping and nothing is in flight, so the head is final.
    pub(super) fn image(&self, exact: bool) -> TopicImage {
        let issued = self.assigned_seq.max(self.head_seq);
        let ceiling = if exact || !self.config.durability.reserves_seqs() {
            issued
        } else {
            let inflight = self.reserve_inflight.as_ref().map_or(0, |(t, _)| *t);
            issued.max(self.durable_ceiling).max(inflight)
        };
        let durable = self.config.durability != Durability::Ephemeral;
        let mut records = Vec::new();
        let mut idempotency = Vec::new();
        let mut segments = Vec::new();
        if durable {
            let (sealed, hot) = self.store.image();
            segments = sealed;
            records = hot;
            records.extend(self.pending.iter().flat_map(|p| p.records.iter().cloned()));
            idempotency.extend(self.idempotency.iter().map(|(k, e)| (k.clone(), *e)));
        }
        let losses = self
            .store
            .loss_ranges()
            .filter_map(|r| {
                let reason = LossReason::parse(r.reason)?;
                (reason != LossReason::Corrupt).then_some((r.gap_from, r.gap_to, reason.code()))
            })
            .collect();
        TopicImage {
            losses,
            id: self.id,
            name: self.name.clone(),
            config: self.config.clone(),
            ceiling,
            floors: self.floors,
            records,
            idempotency,
            segments,
        }
    }
}

impl TopicImage {
    /// Frames that rebuild this topic on replay: Config, Reserve, Floors, Records…, Idempotency….
    pub fn encode(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let config = serde_json::to_vec(&self.config).map_err(std::io::Error::other)?;
        frame::encode_config(&mut buf, self.id, &self.name, &config);
        frame::encode_reserve(&mut buf, self.id, self.ceiling);
        frame::encode_floors(&mut buf, self.id, &self.floors);
        for s in &self.segments {
            frame::encode_segment(&mut buf, self.id, s);
        }
        for &(from, to, reason) in &self.losses {
            frame::encode_loss_range(&mut buf, self.id, from, to, reason);
        }
        out.write_all(&buf)?;
        for chunk in self.records.chunks(RECORDS_PER_FRAME) {
            buf.clear();
            frame::encode_records(&mut buf, self.id, chunk);
            out.write_all(&buf)?;
        }
        buf.clear();
        for (key, e) in &self.idempotency {
            frame::encode_idempotency(&mut buf, self.id, key, e);
        }
        out.write_all(&buf)
    }
}
