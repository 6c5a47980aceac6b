//! One router's forwarding task: register on the source's head watch, then drain the source
//! from the cursor in batches, append each batch's copies to the dest, then move and log the
//! cursor. Parks until the head moves or it is kicked; a stalled dest is retried with backoff.
//! The cursor frame goes to the dest's WAL shard after the append's acknowledgement, so it
//! lands in that file after the copies' frame: a replay that keeps the cursor keeps the copies.
//! Source records lost before they were forwarded become hole seqs in the dest, in a step
//! of their own. Under `exactly_once` every copy is stamped (`model::router::stamp`), and a
//! task first scans the dest from its logged mark for copies the logged cursor does not
//! cover (appended just before a crash), so it accounts them instead of appending again.

use super::{RouterParams, Shared};
use crate::model::record::RecordDraft;
use crate::model::router::stamp::{stamped_seq, Stamp};
use crate::model::router::{forward, Guarantee, Position, RouterDef};
use crate::registry::Registry;
use crate::storage::frame;
use crate::storage::wal::Commit;
use crate::topic::{AppendRequest, ReadRequest, TopicError, TopicHandle};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of source records one step reads at most (besides `router.batch` records).
const STEP_BUDGET_BYTES: u64 = 8 << 20;

pub(super) struct RouterTask {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    params: RouterParams,
    /// After a batch the dest refused as too large or too full, copy one record at a time
    /// (so whatever fits goes in, and a single copy over the whole cap is skipped, API.md §12)
    /// until the router catches up.
    single: bool,
    /// `exactly_once`: source seqs above the cursor whose copies the dest already holds.
    present: BTreeSet<u64>,
    /// Whether the dest was scanned for them since this task started.
    scanned: bool,
}

/// What became of one step's copies.
enum Appended {
    /// Appended; the dest seq of the last copy.
    Done(u64),
    /// The single copy is larger than the dest's whole cap: skipped (at-least-once, API.md §12).
    Skipped,
    /// Dest full or missing, a queue full: the step is retried later.
    Retry,
    /// The dest refused the batch as a whole: retry at once, one record at a time.
    Split,
}

/// What one step did.
enum Step {
    /// Consumed records (or switched to one record per step); more may be waiting.
    Moved,
    /// Nothing left at the source head.
    CaughtUp,
    /// Could not proceed (dest full or missing, queue full): retry after a backoff.
    Stalled,
}

impl RouterTask {
    pub(super) fn new(shared: Arc<Shared>, registry: Arc<Registry>, params: RouterParams) -> Self {
        Self {
            shared,
            registry,
            params,
            single: false,
            present: BTreeSet::new(),
            scanned: false,
        }
    }

    pub(super) async fn run(mut self) {
        let retry = Duration::from_millis(self.params.retry_ms.max(1));
        while !self.shared.stop.load(Ordering::Acquire) {
            let source = self.shared.def().source;
            let Some(src) = self.registry.get(&source) else {
                // Only between a topic delete and its cascade; wait to be stopped.
                self.park(None, retry).await;
                continue;
            };
            // Register, then drain: an append landing during the step marks this changed.
            let mut head = src.head_watch();
            head.borrow_and_update();
            match self.step(&src).await {
                Step::Moved => {}
                Step::CaughtUp => self.park(Some(&mut head), Duration::MAX).await,
                Step::Stalled => {
                    // Wake read-your-writes waiters: this router cannot catch up for now.
                    self.shared.stalls.fetch_add(1, Ordering::AcqRel);
                    self.shared.progress.send_replace(self.shared.cursor());
                    self.park(None, retry).await;
                }
            }
        }
    }

    async fn park(&self, head: Option<&mut tokio::sync::watch::Receiver<u64>>, max: Duration) {
        crate::topic::follow::park(head, max, &self.shared.kick).await
    }

    async fn step(&mut self, src: &TopicHandle) -> Step {
        let def = self.shared.def();
        let exactly = def.guarantee == Guarantee::ExactlyOnce;
        if exactly && !self.scanned {
            if !self.scan(&def, src).await {
                return Step::Stalled;
            }
            self.scanned = true;
        }
        let from = self.shared.cursor();
        let limit = if self.single {
            1
        } else {
            self.params.batch.max(1)
        };
        let req = ReadRequest {
            from_seq: from,
            limit,
            budget_bytes: STEP_BUDGET_BYTES,
            skip_nodes: Vec::new(),
            include_meta: true,
        };
        let Ok(read) = src.read(req).await else {
            return Step::Stalled;
        };
        if read.next_from_seq <= from {
            self.single = false;
            self.shared.progress.send_replace(from);
            return Step::CaughtUp;
        }
        if let Some(t) = read.tombstone.as_ref().filter(|t| t.gap_to > from) {
            return self
                .holes(&def.dest, t.gap_from.max(from + 1), t.gap_to)
                .await;
        }
        let stamp = exactly.then(|| self.stamp(&def, src));
        let mut batch = Batch {
            copies: Vec::new(),
            accounted: 0,
            cursor: read.next_from_seq,
        };
        for r in &read.records {
            if self.present.contains(&r.seq) {
                batch.accounted += 1; // copied before a crash the cursor did not see
                continue;
            }
            let Some(mut copy) = forward(&def, r, self.params.max_hops) else {
                continue;
            };
            if let Some(s) = &stamp {
                copy.meta = Some(s.meta(r.seq, r.meta.as_deref()));
                if !self.fits(&copy) {
                    // Retried for ever (API.md §12): stop just before it.
                    tracing::warn!(router = %self.shared.name, source_seq = r.seq,
                        "exactly-once copy exceeds the record limits; router stalled");
                    if batch.copies.is_empty() && batch.accounted == 0 {
                        return Step::Stalled;
                    }
                    batch.cursor = r.seq - 1;
                    break;
                }
            }
            batch.copies.push(copy);
        }
        let mut appended = batch.copies.len() as u64;
        let mut mark = 0;
        if !batch.copies.is_empty() {
            match self.append(&def.dest, batch.copies).await {
                Appended::Done(last_seq) => mark = last_seq,
                // Skipped copies are not accounted into the dest.
                Appended::Skipped => appended = 0,
                Appended::Retry => return Step::Stalled,
                // Not a stall: the next step goes on at once, one record at a time.
                Appended::Split => return Step::Moved,
            }
        }
        self.advance(batch.cursor, appended + batch.accounted, mark, &def.dest);
        Step::Moved
    }

    /// The source lost `from..=to` before this router consumed it: the dest gets one hole
    /// seq per lost seq (a `source_trim` tombstone for its readers), then the cursor moves
    /// past the loss.
    async fn holes(&mut self, dest: &str, from: u64, to: u64) -> Step {
        let Some(h) = self.registry.get(dest) else {
            return Step::Stalled;
        };
        let n = to - from + 1;
        match h.append_holes(n).await {
            Ok(ok) => {
                tracing::warn!(router = %self.shared.name, gap_from = from, gap_to = to,
                    dest_first = ok.first_seq - n, dest_last = ok.last_seq,
                    "router source lost records before they were forwarded; dest holes issued");
                self.advance(to, n, ok.last_seq, dest);
                Step::Moved
            }
            Err(e) => {
                tracing::debug!(router = %self.shared.name, error = ?e, "router stalled");
                Step::Stalled
            }
        }
    }

    fn stamp(&self, def: &RouterDef, src: &TopicHandle) -> Stamp {
        Stamp {
            router: self.shared.name.to_string(),
            source_topic: def.source.clone(),
            source_topic_id: src.id,
            source_epoch: 1,
        }
    }

    /// Does a stamped copy still meet the record limits (API.md §5)?
    fn fits(&self, copy: &RecordDraft) -> bool {
        let meta = copy.meta.as_ref().map_or(0, |m| m.len());
        meta <= self.params.max_meta_bytes
            && copy.payload_bytes() as usize <= self.params.max_record_bytes
    }

    /// `exactly_once`: collect the source seqs above the cursor whose stamped copies the
    /// dest holds past the logged mark (every copy not covered by the logged cursor lies
    /// there). Reads up to the dest head as of the first read; only this task appends
    /// copies, so none can appear behind it. `false` when the dest cannot be read yet.
    async fn scan(&mut self, def: &RouterDef, src: &TopicHandle) -> bool {
        let Some(dest) = self.registry.get(&def.dest) else {
            return false;
        };
        let prefix = self.stamp(def, src).key_prefix();
        let cursor = self.shared.cursor();
        let mut at = self.shared.position().dest_mark;
        let mut end = None;
        self.present.clear();
        while end.is_none_or(|e| at < e) {
            let req = ReadRequest {
                from_seq: at,
                limit: self.params.batch.max(1),
                budget_bytes: STEP_BUDGET_BYTES,
                skip_nodes: Vec::new(),
                include_meta: true,
            };
            let Ok(read) = dest.read(req).await else {
                return false;
            };
            let seqs = read.records.iter().filter_map(|r| {
                let seq = stamped_seq(r.meta.as_deref()?, &prefix)?;
                (seq > cursor).then_some(seq)
            });
            self.present.extend(seqs);
            end.get_or_insert(read.head_seq);
            if read.next_from_seq <= at {
                break;
            }
            at = read.next_from_seq;
        }
        if !self.present.is_empty() {
            tracing::info!(router = %self.shared.name, copies = self.present.len(),
                "copies found in the dest beyond the logged cursor; they are not appended again");
        }
        true
    }

    async fn append(&mut self, dest: &str, copies: Vec<RecordDraft>) -> Appended {
        let Some(h) = self.registry.get(dest) else {
            return Appended::Retry;
        };
        let n = copies.len();
        let req = AppendRequest {
            records: copies,
            idempotency_key: None,
        };
        match h.append(req).await {
            Ok(ok) => Appended::Done(ok.last_seq),
            Err(TopicError::LargerThanCap { .. }) if n == 1 => Appended::Skipped,
            Err(TopicError::LargerThanCap { .. } | TopicError::TopicFull { .. }) if n > 1 => {
                self.single = true;
                Appended::Split
            }
            Err(e) => {
                tracing::debug!(router = %self.shared.name, error = ?e, "router stalled");
                Appended::Retry
            }
        }
    }

    /// Move the cursor (with `accounted` more records into the dest and, when copies or holes
    /// were appended, the dest seq after them), then log it on the dest's shard. A frame the
    /// WAL refuses (queue full, disk full) is not retried: the next step logs a later
    /// position, and until then a crash only re-forwards (which `exactly_once` detects).
    fn advance(&mut self, cursor: u64, accounted: u64, dest_seq: u64, dest: &str) {
        let old = self.shared.position();
        let pos = Position {
            cursor,
            forwarded_total: old.forwarded_total + accounted,
            dest_mark: old.dest_mark.max(dest_seq),
        };
        self.shared.set_position(pos);
        self.present = self.present.split_off(&(cursor + 1));
        let mut buf = Vec::new();
        frame::encode_router_cursor(&mut buf, self.shared.id, pos);
        let wal = self.registry.wal();
        let shard = crate::storage::shard_of(dest, wal.shard_count());
        let _ = wal.submit(shard, buf, Commit::Lazy);
        self.shared.progress.send_replace(cursor);
    }
}

/// One step's copies and where the cursor goes after them.
struct Batch {
    copies: Vec<RecordDraft>,
    /// Records found already copied (exactly-once).
    accounted: u64,
    cursor: u64,
}
