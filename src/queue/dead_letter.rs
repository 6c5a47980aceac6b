//! Dead-lettering (API.md §13) as one step that a crash cannot split into a loss or a
//! second copy: an intent naming the seq and the dead-letter topic's head is made durable
//! first, then the copy is appended and made durable, then the seq is deleted from the queue.
//! After a crash, a live seq with an intent is looked for past that head in the dead-letter
//! topic: found, the move is finished (the delete); not found, the job simply stays queued.

use super::actor::QueueActor;
use super::QueueError;
use crate::model::json::object_pairs;
use crate::model::record::{Record, RecordDraft};
use crate::model::topic_config::TopicConfig;
use crate::storage::frame;
use crate::topic::{AppendRequest, ReadRequest, TopicHandle};
use bytes::Bytes;

const FROM: &str = "$dead_letter_from";
const DELIVERIES: &str = "$dead_letter_deliveries";
const SRC_SEQ: &str = "$dead_letter_src_seq";
/// The last nack's `reason` (an extension; only when one was given).
const REASON: &str = "$dead_letter_reason";

impl QueueActor {
    /// Move `rec` to `dlq`: intent, copy, delete. `Err` leaves the job in the queue.
    pub(super) async fn dead_letter(
        &mut self,
        rec: &Record,
        dlq: &str,
        cfg: &TopicConfig,
    ) -> Result<(), QueueError> {
        let (target, _) = self
            .registry
            .get_or_create(dlq, TopicConfig::default())
            .await
            .map_err(|e| QueueError::Create(dlq.to_string(), e))?;
        let mark = target.state(false).await?.head_seq;
        let mut buf = Vec::new();
        frame::encode_dead_letter(&mut buf, self.topic.id, rec.seq, mark);
        self.log(buf, cfg, true).await?;
        let copy = RecordDraft {
            node: rec.node.clone(),
            tag: rec.tag.clone(),
            data: rec.data.clone(),
            meta: Some(dead_letter_meta(
                rec,
                &self.topic.name,
                cfg.max_deliveries,
                self.book.reason(rec.seq),
            )),
            hops: 0,
        };
        let req = AppendRequest {
            records: vec![copy],
            idempotency_key: None,
        };
        target.append(req).await?;
        target.sync().await?;
        self.complete_move(rec.seq, cfg).await
    }

    /// The copy is durable in the dead-letter topic: delete the job from the queue.
    async fn complete_move(&mut self, seq: u64, cfg: &TopicConfig) -> Result<(), QueueError> {
        let (_, sync) = self.topic.delete_seqs(vec![seq]).await?;
        if let Some(sync) = sync {
            super::actor::durable(sync).await?;
        }
        self.book.forget(seq);
        self.book.dead_lettered += 1;
        let mut buf = Vec::new();
        let (id, last) = (self.topic.id, self.book.last_lease());
        frame::encode_queue_meta(&mut buf, id, last, self.book.dead_lettered);
        // The count is informational; the delete above is what makes the move final.
        let _ = self.log(buf, cfg, false).await;
        Ok(())
    }

    /// Recovery: a move of `seq` began while the dead-letter topic's head was `mark`.
    pub(super) async fn finish_interrupted_move(&mut self, seq: u64, mark: u64) {
        let Ok(st) = self.topic.state(false).await else {
            return;
        };
        let Some(dlq) = st.config.dead_letter.clone() else {
            return;
        };
        let live = self.topic.fetch(vec![seq]).await.unwrap_or_default();
        let Some(target) = self.registry.get(&dlq) else {
            return;
        };
        if live.is_empty() || !copy_exists(&target, &self.topic.name, seq, mark).await {
            return;
        }
        match self.complete_move(seq, &st.config).await {
            Ok(()) => tracing::info!(topic = %self.topic.name, seq, dead_letter = %dlq,
                "finished a dead-letter move a crash interrupted"),
            Err(e) => tracing::warn!(topic = %self.topic.name, seq, error = ?e,
                "could not finish an interrupted dead-letter move"),
        }
    }
}

/// Is a copy of `topic`'s `seq` in `target` past `mark`?
async fn copy_exists(target: &TopicHandle, topic: &str, seq: u64, mark: u64) -> bool {
    let json = |s: &str| serde_json::Value::from(s).to_string();
    let (mut at, from, src) = (mark, json(topic), json(&seq.to_string()));
    for _ in 0..1_000_000 {
        let req = ReadRequest {
            from_seq: at,
            limit: 1000,
            budget_bytes: 8 << 20,
            skip_nodes: Vec::new(),
            include_meta: true,
        };
        let Ok(read) = target.read(req).await else {
            return false;
        };
        let hit = read.records.iter().any(|r| {
            let m = r.meta.as_deref().and_then(object_pairs).unwrap_or_default();
            let get = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| v.get());
            get(FROM) == Some(from.as_str()) && get(SRC_SEQ) == Some(src.as_str())
        });
        if hit {
            return true;
        }
        if read.caught_up || read.next_from_seq <= at {
            return false;
        }
        at = read.next_from_seq;
    }
    false
}

/// The copy's `meta` (API.md §13): the original object's keys, then the last nack's reason (an
/// extension, when one was given) and the three `$dead_letter_*` strings; a `meta` that is
/// not an object is dropped.
fn dead_letter_meta(rec: &Record, topic: &str, max_deliveries: u64, reason: Option<&str>) -> Bytes {
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = String::from("{");
    let pairs = rec
        .meta
        .as_deref()
        .and_then(object_pairs)
        .unwrap_or_default();
    for (k, v) in pairs
        .iter()
        .filter(|(k, _)| ![FROM, DELIVERIES, SRC_SEQ, REASON].contains(&k.as_str()))
    {
        out.push_str(&format!("{}:{},", text(k), v.get()));
    }
    if let Some(r) = reason {
        out.push_str(&format!("{}:{},", text(REASON), text(r)));
    }
    out.push_str(&format!(
        "{}:{},{}:{},{}:{}}}",
        text(FROM),
        text(topic),
        text(DELIVERIES),
        text(&max_deliveries.to_string()),
        text(SRC_SEQ),
        text(&rec.seq.to_string()),
    ));
    Bytes::from(out)
}
