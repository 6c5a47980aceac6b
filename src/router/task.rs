//! One router's forwarding task: register on the source's head watch, then drain the source
//! from the cursor in batches, append each batch's copies to the dest, then move and log the
//! cursor. Parks until the head moves or it is kicked; a stalled dest is retried with backoff.
//! The cursor frame goes to the dest's WAL shard after the append's acknowledgement, so it
//! lands in that file after the copies' frame: a replay that keeps the cursor keeps the copies.

use super::{RouterParams, Shared};
use crate::model::router::forward;
use crate::registry::Registry;
use crate::storage::frame;
use crate::storage::wal::Commit;
use crate::topic::{AppendRequest, ReadRequest, TopicError, TopicHandle};
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
    /// (so whatever fits goes in, and a single copy over the whole cap is skipped, §8.3)
    /// until the router catches up.
    single: bool,
}

/// What became of one step's copies.
enum Appended {
    Done,
    /// The single copy is larger than the dest's whole cap: skipped (at-least-once, §8.3).
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
        let changed = async {
            match head {
                // An error means the source is gone: stop waiting on it.
                Some(h) => h.changed().await.unwrap_or(()),
                None => std::future::pending().await,
            }
        };
        let sleep = async {
            match max {
                Duration::MAX => std::future::pending().await,
                d => tokio::time::sleep(d).await,
            }
        };
        tokio::select! {
            _ = changed => {}
            _ = sleep => {}
            _ = self.shared.kick.notified() => {}
        }
    }

    async fn step(&mut self, src: &TopicHandle) -> Step {
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
        if let Some(t) = &read.tombstone {
            // Source-trim holes in the dest are not built yet (docs/API.md, "Not yet
            // available"): the lost records are skipped, and said so here.
            tracing::warn!(router = %self.shared.name, gap_from = t.gap_from, gap_to = t.gap_to,
                reason = t.reason, "router source lost records before they were forwarded");
        }
        let def = self.shared.def();
        let copies: Vec<_> = read
            .records
            .iter()
            .filter_map(|r| forward(&def, r, self.params.max_hops))
            .collect();
        let mut appended = copies.len() as u64;
        if !copies.is_empty() {
            match self.append(&def.dest, copies).await {
                Appended::Done => {}
                // Skipped copies are not accounted into the dest.
                Appended::Skipped => appended = 0,
                Appended::Retry => return Step::Stalled,
                // Not a stall: the next step goes on at once, one record at a time.
                Appended::Split => return Step::Moved,
            }
        }
        self.advance(read.next_from_seq, appended, &def.dest);
        Step::Moved
    }

    async fn append(
        &mut self,
        dest: &str,
        copies: Vec<crate::model::record::RecordDraft>,
    ) -> Appended {
        let Some(h) = self.registry.get(dest) else {
            return Appended::Retry;
        };
        let n = copies.len();
        let req = AppendRequest {
            records: copies,
            idempotency_key: None,
        };
        match h.append(req).await {
            Ok(_) => Appended::Done,
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

    /// Move the cursor, then log it on the dest's shard. A frame the WAL refuses (queue full,
    /// disk full) is not retried: the next step logs a later cursor, and until then a crash
    /// only re-forwards (at-least-once).
    fn advance(&self, cursor: u64, appended: u64, dest: &str) {
        let total = self
            .shared
            .forwarded_total
            .fetch_add(appended, Ordering::AcqRel)
            + appended;
        self.shared.cursor.store(cursor, Ordering::Release);
        let mut buf = Vec::new();
        frame::encode_router_cursor(&mut buf, self.shared.id, cursor, total);
        let wal = self.registry.wal();
        let shard = crate::storage::shard_of(dest, wal.shard_count());
        let _ = wal.submit(shard, buf, Commit::Lazy);
        self.shared.progress.send_replace(cursor);
    }
}
