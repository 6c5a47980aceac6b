//! A topic rebuilt from WAL replay, before its actor starts.

use crate::model::record::Record;
use crate::model::topic_config::TopicConfig;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct RecoveredTopic {
    pub id: u64,
    pub name: String,
    pub config: TopicConfig,
    pub records: VecDeque<Record>,
    /// Highest seq a durable reservation (or graceful-shutdown head) covers.
    pub ceiling: u64,
    /// Highest recovered record seq.
    pub max_record_seq: u64,
}

impl RecoveredTopic {
    pub fn new(id: u64, name: String, config: TopicConfig) -> Self {
        Self {
            id,
            name,
            config,
            records: VecDeque::new(),
            ceiling: 0,
            max_record_seq: 0,
        }
    }

    /// The head after restart: at or above every seq ever issued (§3.2).
    pub fn head_seq(&self) -> u64 {
        self.ceiling.max(self.max_record_seq)
    }

    /// Append replayed records, ignoring any at or below what is already held (a frame
    /// replayed twice must not duplicate records).
    pub fn push_records(&mut self, records: Vec<Record>) {
        for r in records {
            if r.seq > self.max_record_seq {
                self.max_record_seq = r.seq;
                self.records.push_back(r);
            }
        }
    }
}

/// Folds replayed frames into topics. Frames of one topic arrive in order; frames of
/// different topics may interleave arbitrarily (different shards), so name conflicts are
/// settled by topic id: ids only grow, a higher id is a later incarnation.
#[derive(Debug, Default)]
pub struct RecoveryBuilder {
    topics: std::collections::HashMap<u64, RecoveredTopic>,
    by_name: std::collections::HashMap<String, u64>,
    max_id: u64,
    /// Frames naming a topic id that is unknown or dead (normal after deletes).
    pub orphan_frames: u64,
}

impl RecoveryBuilder {
    pub fn apply(&mut self, frame: crate::storage::frame::Frame) -> Result<(), String> {
        use crate::storage::frame::Frame;
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
            Frame::Append(a) => match self.topics.get_mut(&a.topic_id) {
                Some(t) => t.push_records(a.records),
                None => self.orphan_frames += 1,
            },
            Frame::Reserve { topic_id, ceiling } => match self.topics.get_mut(&topic_id) {
                Some(t) => t.ceiling = t.ceiling.max(ceiling),
                None => self.orphan_frames += 1,
            },
            Frame::Head { topic_id, head_seq } => match self.topics.get_mut(&topic_id) {
                // The exact head at a clean stop supersedes reservations made before it.
                Some(t) => t.ceiling = head_seq,
                None => self.orphan_frames += 1,
            },
        }
        Ok(())
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
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        (topics, self.max_id + 1)
    }
}
