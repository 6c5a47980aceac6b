//! A topic rebuilt from WAL replay, before its actor starts, and the builder that folds
//! replayed frames into topics.

use super::idempotency::{IdemEntry, IdemTable};
use super::store::Store;
pub use crate::model::loss::LossReason;
use crate::model::read::LossFloors;
use crate::model::record::Record;
use crate::model::topic_config::TopicConfig;
use crate::storage::frame::{AppendFrame, Frame};
use crate::storage::recovery::Replayed;
use bytes::Bytes;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct RecoveredTopic {
    pub id: u64,
    pub name: String,
    pub config: TopicConfig,
    pub store: Store,
    pub floors: LossFloors,
    pub idempotency: IdemTable,
    /// Highest seq a durable reservation (or graceful-shutdown head) covers.
    pub ceiling: u64,
    /// Highest recovered record seq (evicted or deleted records included).
    pub max_record_seq: u64,
    /// Highest source-trim hole seq recovered. Kept apart from `max_record_seq`: a snapshot
    /// lists its loss ranges before its records, which must not look replayed already.
    max_hole_seq: u64,
    /// Set where skipped WAL damage may have held this topic's records: the seq the damage
    /// follows and how many records it may have held. The next record read settles it.
    damage_from: Option<(u64, u64)>,
    /// Lease state logged for a queue; handed to the queue set, never to the actor.
    pub queue: RecoveredQueue,
}

/// A queue's logged lease state (API.md §13), folded from QueueSeq, QueueMeta,
/// DeadLetter and DeleteSeqs frames.
#[derive(Debug, Clone, Default)]
pub struct RecoveredQueue {
    pub states: std::collections::BTreeMap<u64, crate::model::queue::SeqState>,
    pub last_lease: u64,
    pub dead_lettered: u64,
    /// Dead-letter moves begun and not completed: seq → the dead-letter topic's head then.
    pub intents: std::collections::BTreeMap<u64, u64>,
}

impl RecoveredQueue {
    pub fn is_empty(&self) -> bool {
        self.states.is_empty() && self.intents.is_empty() && self.last_lease == 0
    }

    fn forget(&mut self, seqs: &[u64]) {
        for s in seqs {
            self.states.remove(s);
            self.intents.remove(s);
        }
    }
}

impl RecoveredTopic {
    pub fn new(id: u64, name: String, config: TopicConfig) -> Self {
        Self {
            id,
            name,
            config,
            store: Store::default(),
            floors: LossFloors::default(),
            idempotency: IdemTable::default(),
            ceiling: 0,
            max_record_seq: 0,
            max_hole_seq: 0,
            damage_from: None,
            queue: RecoveredQueue::default(),
        }
    }

    /// Seqs lost without a voluntary delete (a crash, skipped WAL damage): readers crossing
    /// them get a tombstone.
    fn add_loss(&mut self, from: u64, to: u64, reason: LossReason) {
        if from == 0 || to < from {
            return;
        }
        self.store.add_loss_range(from, to, reason.as_str());
    }

    /// The end of a boot that did not stop cleanly: seqs reserved beyond the last record
    /// read back may have been acknowledged (`disk`, `memory` ack before the write) and lost.
    fn on_unclean_boot_end(&mut self) {
        use crate::model::topic_config::Durability;
        if matches!(
            self.config.durability,
            Durability::Disk | Durability::Memory
        ) && self.ceiling > self.issued()
        {
            self.add_loss(self.issued() + 1, self.ceiling, LossReason::Crash);
        }
    }

    /// The first record after skipped damage: everything between is lost.
    fn settle_damage(&mut self, first_seq: u64) {
        if let Some((from, _)) = self.damage_from.take() {
            self.add_loss(from + 1, first_seq.saturating_sub(1), LossReason::Damaged);
        }
    }

    /// No record followed skipped damage: the damage may have held up to `max` records past
    /// the last one read, so the head moves past them (no seq is issued twice).
    fn close_damage(&mut self) {
        if let Some((from, max)) = self.damage_from.take() {
            let to = (from + max).max(self.ceiling);
            self.ceiling = to;
            self.add_loss(from + 1, to, LossReason::Damaged);
        }
    }

    /// The head after restart: at or above every seq ever issued (API.md §3).
    pub fn head_seq(&self) -> u64 {
        self.ceiling.max(self.issued())
    }

    /// The highest seq read back as issued: a record's or a hole's.
    fn issued(&self) -> u64 {
        self.max_record_seq.max(self.max_hole_seq)
    }

    /// Replay one write batch; records at or below what is held are ignored so a frame
    /// replayed twice never duplicates, and records under a loss floor stay lost.
    fn push_batch(&mut self, a: AppendFrame) {
        let (Some(first), Some(last)) = (a.records.first(), a.records.last()) else {
            return;
        };
        self.settle_damage(first.seq);
        if let Some(key) = a.idempotency_key {
            let entry = IdemEntry {
                created_ms: first.ts,
                first_seq: first.seq,
                last_seq: last.seq,
                head_seq: last.seq,
            };
            self.idempotency.insert(key, entry);
        }
        self.push_records(a.records);
    }

    /// Records at or below what is held are ignored, so a frame replayed twice (or a WAL frame
    /// already contained in the snapshot) never duplicates, and records under a loss floor
    /// stay lost.
    fn push_records(&mut self, records: Vec<Record>) {
        let floor = self.floor();
        for mut r in records {
            if r.seq > self.max_record_seq {
                self.max_record_seq = r.seq;
                if r.seq > floor {
                    // Own the bytes: a slice would pin the whole file buffer in memory.
                    r.data = Bytes::copy_from_slice(&r.data);
                    r.meta = r.meta.map(|m| Bytes::copy_from_slice(&m));
                    self.store.push(r);
                }
            }
        }
    }

    fn floor(&self) -> u64 {
        self.floors
            .cap
            .max(self.floors.ttl)
            .max(self.floors.source_trim)
    }

    /// Once everything is replayed: damaged segments' ranges end where the next held seq
    /// starts; ranges below `E` are left to the eviction tombstone.
    fn settle_losses(&mut self) {
        let head = self.head_seq();
        self.store.resolve_damaged(head);
        self.store.drop_losses_below(self.floors.evict_floor(head));
    }

    fn raise_floors(&mut self, f: LossFloors) {
        self.floors.cap = self.floors.cap.max(f.cap);
        self.floors.ttl = self.floors.ttl.max(f.ttl);
        self.floors.source_trim = self.floors.source_trim.max(f.source_trim);
        let floor = self.floor();
        self.store.evict_front_while(|v, _| v.seq <= floor);
    }
}

/// Folds replayed frames into topics. Frames of one topic arrive in order; frames of
/// different topics may interleave arbitrarily (different shards), so name conflicts are
/// settled by topic id: ids only grow, a higher id is a later incarnation.
#[derive(Debug, Default)]
pub struct RecoveryBuilder {
    topics: HashMap<u64, RecoveredTopic>,
    by_name: HashMap<String, u64>,
    max_id: u64,
    /// Frames naming a topic id that is unknown or dead (normal after deletes).
    pub orphan_frames: u64,
    /// Where sealed segments live (None: snapshot segment references are an error).
    pub segments_dir: Option<std::path::PathBuf>,
    /// Segment files the snapshot referred to.
    pub segment_files: std::collections::HashSet<String>,
    /// Segments that failed their checks at open, and the live records they held.
    pub damaged_segments: u64,
    pub damaged_records: u64,
    /// Router definitions and cursors (routers share the topic id space).
    pub routers: crate::model::router::catalog::RouterCatalog,
}

/// A segment that passed its own checks but is not the one the snapshot names is damaged too.
fn check_identity(
    seg: crate::storage::segment::Segment,
    topic_id: u64,
    first_seq: u64,
) -> Result<crate::storage::segment::Segment, crate::storage::segment::Damage> {
    if seg.topic_id() == topic_id && seg.first_seq() == first_seq {
        return Ok(seg);
    }
    Err(crate::storage::segment::Damage {
        offset: 0,
        what: "segment belongs to another topic or seq range",
    })
}

impl RecoveryBuilder {
    /// One replay event: a frame, a boot's end, or skipped damage.
    pub fn replay(&mut self, r: Replayed) -> Result<(), String> {
        match r {
            Replayed::Frame(f) => self.apply(f)?,
            Replayed::BootEnd { clean: false, .. } => self
                .topics
                .values_mut()
                .for_each(RecoveredTopic::on_unclean_boot_end),
            Replayed::BootEnd { clean: true, .. } => {}
            Replayed::Discontinuity { shard, max_records } => {
                for t in self.topics.values_mut() {
                    let mapped =
                        shard.is_none_or(|(s, n)| crate::storage::shard_of(&t.name, n) == s);
                    if mapped && t.config.durability.uses_wal() {
                        let from = t.damage_from.map_or(t.issued(), |d| d.0);
                        let max = t.damage_from.map_or(0, |d| d.1) + max_records;
                        t.damage_from = Some((from, max));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn apply(&mut self, frame: Frame) -> Result<(), String> {
        match frame {
            Frame::Config {
                topic_id,
                name,
                config,
            } => {
                self.max_id = self.max_id.max(topic_id);
                let config: TopicConfig = serde_json::from_slice(&config)
                    .map_err(|e| format!("topic {name}: unreadable stored config: {e}"))?;
                self.on_config(topic_id, name, config);
            }
            Frame::Delete { topic_id } => {
                self.max_id = self.max_id.max(topic_id);
                if let Some(t) = self.topics.remove(&topic_id) {
                    if self.by_name.get(&t.name) == Some(&topic_id) {
                        self.by_name.remove(&t.name);
                    }
                }
            }
            Frame::Append(a) => {
                if let Some(t) = self.topic(a.topic_id) {
                    t.push_batch(a);
                }
            }
            Frame::Reserve { topic_id, ceiling } => {
                if let Some(t) = self.topic(topic_id) {
                    t.ceiling = t.ceiling.max(ceiling);
                }
            }
            Frame::Head { topic_id, head_seq } => {
                // The exact head at a clean stop supersedes reservations made before it.
                if let Some(t) = self.topic(topic_id) {
                    t.ceiling = head_seq;
                }
            }
            Frame::Floors { topic_id, floors } => {
                if let Some(t) = self.topic(topic_id) {
                    t.raise_floors(floors);
                }
            }
            Frame::DeleteRecords {
                topic_id,
                bound,
                pred,
            } => {
                if let Some(t) = self.topic(topic_id) {
                    t.store.delete(bound, pred.as_ref());
                }
            }
            Frame::DeleteSeqs { topic_id, seqs } => {
                if let Some(t) = self.topic(topic_id) {
                    t.store.delete_seqs(&seqs);
                    t.queue.forget(&seqs);
                }
            }
            Frame::QueueSeq {
                topic_id,
                seq,
                state,
            } => {
                if let Some(t) = self.topic(topic_id) {
                    t.queue.states.insert(seq, state);
                }
            }
            Frame::QueueMeta {
                topic_id,
                last_lease,
                dead_lettered,
            } => {
                if let Some(t) = self.topic(topic_id) {
                    let q = &mut t.queue;
                    q.last_lease = q.last_lease.max(last_lease);
                    q.dead_lettered = q.dead_lettered.max(dead_lettered);
                }
            }
            Frame::DeadLetter {
                topic_id,
                seq,
                dlq_mark,
            } => {
                if let Some(t) = self.topic(topic_id) {
                    t.queue.intents.insert(seq, dlq_mark);
                }
            }
            Frame::Sync { .. } | Frame::Stop => {}
            router @ (Frame::RouterDef { .. }
            | Frame::RouterDelete { .. }
            | Frame::RouterCursor { .. }) => self.apply_router_frame(router),
            snapshot_only => self.apply_snapshot_frame(snapshot_only)?,
        }
        Ok(())
    }

    /// Router definitions, removals and cursors go to the router catalog; router ids share
    /// the topic id space, so they raise the next id too.
    fn apply_router_frame(&mut self, frame: Frame) {
        match frame {
            Frame::RouterDef {
                router_id,
                name,
                def,
                pos,
            } => {
                self.max_id = self.max_id.max(router_id);
                self.routers.define(router_id, name, def, pos);
            }
            Frame::RouterDelete { router_id } => self.routers.remove(router_id),
            Frame::RouterCursor { router_id, pos } => self.routers.advance(router_id, pos),
            _ => {}
        }
    }

    /// Frames snapshots hold: records with explicit seqs, idempotency entries, segment
    /// descriptions, loss ranges and the end marker (source-trim loss ranges are also
    /// written to the WAL, when a router issues hole seqs).
    fn apply_snapshot_frame(&mut self, frame: Frame) -> Result<(), String> {
        match frame {
            Frame::Records { topic_id, records } => {
                if let Some(t) = self.topic(topic_id) {
                    t.push_records(records);
                }
            }
            Frame::Idempotency {
                topic_id,
                key,
                entry,
            } => {
                if let Some(t) = self.topic(topic_id) {
                    t.idempotency.insert(key, entry);
                }
            }
            Frame::Segment { topic_id, seg } => self.on_segment(topic_id, &seg)?,
            Frame::SnapshotEnd { next_topic_id, .. } => {
                self.max_id = self.max_id.max(next_topic_id.saturating_sub(1));
            }
            Frame::LossRange {
                topic_id,
                from,
                to,
                reason,
            } => {
                let reason = LossReason::from_code(reason)
                    .ok_or_else(|| format!("unknown loss reason code {reason}"))?;
                if let Some(t) = self.topic(topic_id) {
                    if reason == LossReason::SourceTrim {
                        // Holes a router issued: seqs issued like a record's.
                        t.settle_damage(from);
                        t.max_hole_seq = t.max_hole_seq.max(to);
                    }
                    t.add_loss(from, to, reason);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Attach a segment the snapshot describes. A file that cannot be read, or is in a
    /// format this build does not know, stops recovery; one whose bytes fail their checks is
    /// attached as damaged: the server starts and serves its seqs as a `corrupt` tombstone.
    fn on_segment(
        &mut self,
        topic_id: u64,
        meta: &crate::storage::frame::SegmentRef,
    ) -> Result<(), String> {
        use crate::storage::segment::{file_name, OpenError, Segment};
        let name = file_name(topic_id, meta.first_seq, meta.gen);
        let dir = self
            .segments_dir
            .clone()
            .ok_or("a snapshot refers to segments but none are expected")?;
        let path = dir.join(&name);
        let opened = match Segment::open(&path) {
            Ok(seg) => check_identity(seg, topic_id, meta.first_seq),
            Err(OpenError::Damaged(d)) => Err(d),
            Err(e @ (OpenError::Io(_) | OpenError::Unsupported(_))) => {
                return Err(format!(
                    "segment {}: {e}; refusing to start without it",
                    path.display()
                ))
            }
        };
        self.segment_files.insert(name);
        let Some(t) = self.topic(topic_id) else {
            return Ok(());
        };
        match opened {
            Ok(seg) => {
                t.max_record_seq = t.max_record_seq.max(seg.last_seq());
                t.store.attach(seg, meta);
            }
            Err(d) => {
                tracing::error!(topic = %t.name, segment = %path.display(), offset = d.offset,
                    damage = d.what, live_records = meta.live_count,
                    "sealed segment is damaged; its seqs are served as a corrupt tombstone");
                t.store.attach_damaged(meta);
                self.damaged_segments += 1;
                self.damaged_records += meta.live_count;
            }
        }
        Ok(())
    }

    fn topic(&mut self, id: u64) -> Option<&mut RecoveredTopic> {
        let t = self.topics.get_mut(&id);
        if t.is_none() {
            self.orphan_frames += 1;
        }
        t
    }

    fn on_config(&mut self, id: u64, name: String, config: TopicConfig) {
        if let Some(t) = self.topics.get_mut(&id) {
            t.config = config;
            return;
        }
        match self.by_name.get(&name).copied() {
            Some(other) if other > id => return, // a later incarnation already exists
            Some(other) => {
                self.topics.remove(&other);
            }
            None => {}
        }
        self.by_name.insert(name.clone(), id);
        self.topics
            .insert(id, RecoveredTopic::new(id, name, config));
    }

    /// Live topics and the next free topic id.
    pub fn finish(self) -> (Vec<RecoveredTopic>, u64) {
        let mut topics: Vec<_> = self.topics.into_values().collect();
        for t in &mut topics {
            t.close_damage();
            t.settle_losses();
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        (topics, self.max_id + 1)
    }
}

/// Rebuild every topic from the data dir: the newest valid snapshot, then the WAL tail after
/// its barrier. Returns the topics, the next topic id, what replay saw, and the snapshot number.
pub fn recover_dir(
    fs: &dyn crate::storage::fs::Fs,
    data_dir: &std::path::Path,
    progress: &crate::storage::recovery::ReplayProgress,
    opts: crate::storage::recovery::ReplayOptions,
) -> Result<Recovered, String> {
    use crate::storage::{recovery, snapshot};
    let mut builder = RecoveryBuilder {
        segments_dir: Some(crate::storage::segment::dir(data_dir)),
        ..RecoveryBuilder::default()
    };
    remove_partial_segments(fs, &crate::storage::segment::dir(data_dir))?;
    let snap = snapshot::load_latest(fs, &snapshot::dir(data_dir))?;
    let barrier = snap.as_ref().map(|s| s.barrier.clone());
    let snapshot_number = snap.as_ref().map_or(0, |s| s.number);
    for f in snap.map(|s| s.frames).unwrap_or_default() {
        builder.apply(f)?;
    }
    let mut failure = None;
    let wal = crate::storage::wal_dir(data_dir);
    let replayed = recovery::replay(fs, &wal, barrier.as_ref(), progress, opts, |r| {
        if failure.is_none() {
            failure = builder.replay(r).err();
        }
    });
    let summary = match replayed {
        Ok(s) => s,
        Err(recovery::ReplayError::Damaged(d)) => return Err(damage_report(&builder, &d)),
        Err(e) => return Err(e.to_string()),
    };
    if let Some(e) = failure {
        return Err(e);
    }
    let segment_files = std::mem::take(&mut builder.segment_files);
    let damaged = (builder.damaged_records, builder.damaged_segments);
    let catalog = std::mem::take(&mut builder.routers);
    let (topics, next_id) = builder.finish();
    let routers = catalog.finish(|name| topics.iter().any(|t| t.name == name))?;
    Ok(Recovered {
        topics,
        routers,
        next_id,
        summary,
        snapshot_number,
        segment_files,
        damaged,
    })
}

/// The refusal an operator reads: the file, the offset, what is wrong, the seqs around the
/// damage per topic, and the way out.
fn damage_report(builder: &RecoveryBuilder, d: &crate::storage::recovery::Damage) -> String {
    let mut msg = format!(
        "refusing to start: WAL damage in {} at offset {}: {}",
        d.file.display(),
        d.offset,
        d.what
    );
    for (id, before, after) in &d.topics {
        let name = builder.topics.get(id).map_or_else(
            || format!("topic id {id}"),
            |t| format!("topic {:?}", t.name),
        );
        match after {
            Some(a) => msg.push_str(&format!(
                "; {name}: seqs {}..={} affected",
                before + 1,
                a.saturating_sub(1)
            )),
            None => msg.push_str(&format!("; {name}: seqs after {before} affected")),
        }
    }
    msg.push_str(
        ". Nothing was changed on disk. Restore the data directory from a backup, or start with          --skip-wal-damage to skip the damaged bytes and report their seqs to readers as lost          (tombstone reason \"damaged\"); see OPERATIONS.md",
    );
    msg
}

/// What `recover_dir` rebuilt.
pub struct Recovered {
    pub topics: Vec<RecoveredTopic>,
    /// Routers whose source and dest both survived, with their logged cursors.
    pub routers: Vec<crate::model::router::catalog::RecoveredRouter>,
    pub next_id: u64,
    pub summary: crate::storage::recovery::ReplaySummary,
    /// Number of the snapshot recovery started from (0 = none).
    pub snapshot_number: u64,
    /// Segment files that snapshot referred to (kept until two newer snapshots drop them).
    pub segment_files: std::collections::HashSet<String>,
    /// (live records, segments) of segments found damaged at open.
    pub damaged: (u64, u64),
}

/// A segment's `.tmp` is a seal interrupted by a crash: its records are still in the WAL.
/// Only temp names of this server's own segments are removed.
fn remove_partial_segments(
    fs: &dyn crate::storage::fs::Fs,
    dir: &std::path::Path,
) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.filter_map(Result::ok) {
        let own_temp = crate::storage::segment::is_own_temp_name(&e.file_name().to_string_lossy());
        if own_temp && e.file_type().is_ok_and(|t| t.is_file()) {
            match fs.remove(&e.path()) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("{}: {err}", e.path().display()))
                }
                _ => {}
            }
        }
    }
    Ok(())
}
