//! One sink's forwarding task: connect (under `exactly_once`: fence and read the committed
//! progress), register on the source's head watch, read a batch after the cursor, put it into
//! Kafka, move the cursor, repeat; park when caught up. Any Kafka failure drops the
//! connection, sets `retrying` with the error, and retries after a capped exponential backoff
//! from the cursor (which moved only past what Kafka acknowledged or committed). The task
//! holds no topic actor while it talks to Kafka: a read returns owned records first.
//! The file (cursor, counters) is saved at most every [`SAVE_EVERY`] and when the task ends.

use super::batch::{self, Batch};
use super::kafka::{Conn, KafkaFailure};
use super::{Shared, SinkState, Store};
use crate::registry::Registry;
use crate::topic::{ReadRequest, TopicHandle};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of source records one step reads at most (besides `batch_max_records`).
const STEP_BUDGET_BYTES: u64 = 8 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// How often a moving cursor is written to the sink's file.
const SAVE_EVERY: Duration = Duration::from_millis(200);
/// How often a sink whose source topic is missing looks again.
const SOURCE_POLL: Duration = Duration::from_secs(1);

pub(super) struct SinkTask {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    store: Store,
    conn: Option<Conn>,
    /// The definition generation `conn` was opened with (a re-PUT reconnects).
    conn_generation: u64,
    backoff: Duration,
    saved_at: Instant,
    /// The cursor moved since the last save.
    dirty: bool,
}

/// What one step did.
enum Step {
    Moved,
    CaughtUp,
}

impl SinkTask {
    pub(super) fn new(shared: Arc<Shared>, registry: Arc<Registry>, store: Store) -> Self {
        Self {
            shared,
            registry,
            store,
            conn: None,
            conn_generation: 0,
            backoff: BACKOFF_MIN,
            saved_at: Instant::now(),
            dirty: false,
        }
    }

    fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close();
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    pub(super) async fn run(mut self) {
        let mut lingered = true;
        while !self.stopping() {
            let source = self.shared.def().source;
            let Some(src) = self.registry.get(&source) else {
                let msg = format!("source topic {source:?} does not exist");
                self.shared.set_status(SinkState::Stopped, Some(msg));
                self.close();
                self.park(None, SOURCE_POLL).await;
                continue;
            };
            self.bind(&src);
            if let Err(e) = self.connect(&src).await {
                self.failed(e).await;
                continue;
            }
            if !lingered {
                // Just woke on a write: let a burst gather into one batch.
                let linger = Duration::from_millis(self.shared.def().linger_ms);
                self.park(None, linger).await;
                lingered = true;
            }
            // Register, then drain: an append landing during the step marks this changed.
            let mut head = src.head_watch();
            head.borrow_and_update();
            match self.step(&src).await {
                Ok(Step::Moved) => self.backoff = BACKOFF_MIN,
                Ok(Step::CaughtUp) => {
                    self.backoff = BACKOFF_MIN;
                    self.save_if_due(true).await;
                    self.park(Some(&mut head), Duration::MAX).await;
                    lingered = false;
                }
                Err(e) => self.failed(e).await,
            }
        }
        self.close();
        self.dirty = true;
        self.save_if_due(true).await;
        self.shared.set_status(SinkState::Stopped, None);
    }

    /// Tie the cursor to this source topic's id: a topic re-created under the same name
    /// starts over at `from_seq`, since old seqs name nothing there.
    fn bind(&mut self, src: &TopicHandle) {
        let s = self.shared.clone();
        let bound = s.topic_id.load(Ordering::Acquire);
        if bound == src.id {
            return;
        }
        if bound != 0 {
            tracing::warn!(sink = %s.name, old_topic_id = bound, topic_id = src.id,
                "source topic was re-created; sink restarts at its from_seq");
            s.cursor.store(s.def().from_seq, Ordering::Release);
            self.close();
        }
        s.topic_id.store(src.id, Ordering::Release);
        self.dirty = true;
    }

    async fn connect(&mut self, src: &TopicHandle) -> Result<(), KafkaFailure> {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if self.conn.is_some() && self.conn_generation == generation {
            return Ok(());
        }
        self.close();
        let def = self.shared.def();
        let t0 = Instant::now();
        let open = Conn::open(&self.shared.name, &def, self.shared.epoch, src.id);
        let (conn, resume) = self.until_stopped(open).await?;
        tracing::info!(sink = %self.shared.name, guarantee = def.guarantee.as_str(),
            resume = ?resume.map(|p| p.last_seq), elapsed_ms = t0.elapsed().as_millis() as u64, "sink connected to Kafka");
        if let Some(p) = resume {
            // The committed progress is the truth; the file may be older (never newer).
            let s = &self.shared;
            let was = s.cursor.swap(p.last_seq, Ordering::AcqRel);
            s.forwarded_total
                .store(p.forwarded_total, Ordering::Release);
            s.gap_markers_total
                .store(p.gap_markers_total, Ordering::Release);
            if was != p.last_seq {
                tracing::info!(sink = %s.name, cursor = p.last_seq, file_cursor = was,
                    "resuming after the committed progress");
                self.dirty = true;
            }
        }
        self.conn = Some(conn);
        self.conn_generation = generation;
        self.shared.set_status(SinkState::Running, None);
        Ok(())
    }

    /// Run a Kafka operation unless the sink is stopped first (the blocking call itself
    /// ends on its own timeout).
    async fn until_stopped<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, KafkaFailure>>,
    ) -> Result<T, KafkaFailure> {
        tokio::select! {
            r = op => r,
            _ = self.stopped() => Err(KafkaFailure("sink stopping".into())),
        }
    }

    async fn stopped(&self) {
        while !self.stopping() {
            self.shared.kick.notified().await;
        }
        self.shared.kick.notify_one(); // keep the permit for the run loop
    }

    async fn failed(&mut self, e: KafkaFailure) {
        self.close();
        if self.stopping() {
            return;
        }
        tracing::warn!(sink = %self.shared.name, error = %e.0, retry_ms = self.backoff.as_millis() as u64,
            "sink cannot reach Kafka; retrying");
        self.shared.set_status(SinkState::Retrying, Some(e.0));
        self.park(None, self.backoff).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    async fn step(&mut self, src: &TopicHandle) -> Result<Step, KafkaFailure> {
        let def = self.shared.def();
        let from = self.shared.cursor();
        let req = ReadRequest {
            from_seq: from,
            limit: def.batch_max_records,
            budget_bytes: STEP_BUDGET_BYTES,
            skip_nodes: Vec::new(),
            include_meta: false,
        };
        let read = src
            .read(req)
            .await
            .map_err(|e| KafkaFailure(format!("reading source: {e:?}")))?;
        if read.next_from_seq <= from {
            return Ok(Step::CaughtUp);
        }
        let mut b = Batch {
            first_seq: from + 1,
            last_seq: read.next_from_seq,
            ..Batch::default()
        };
        if let Some(t) = read.tombstone.as_ref().filter(|t| t.gap_to > from) {
            let gap_from = t.gap_from.max(from + 1);
            b.records
                .push(batch::gap_marker(&def.source, gap_from, t.gap_to, t.reason));
            b.gap_markers = 1;
            tracing::warn!(sink = %self.shared.name, gap_from, gap_to = t.gap_to,
                reason = t.reason, "source lost records before the sink forwarded them");
        }
        for r in read.records.iter().filter(|r| r.seq > from) {
            b.records.push(batch::record(&def.source, &def.key, r));
            b.forwarded += 1;
        }
        b.forwarded_total_after = self.shared.forwarded_total() + b.forwarded;
        b.gap_markers_total_after = self.shared.gap_markers_total() + b.gap_markers;
        let conn = self
            .conn
            .as_ref()
            .ok_or(KafkaFailure("not connected".into()))?;
        self.until_stopped(conn.send(&b)).await?;
        self.advance(&b).await;
        Ok(Step::Moved)
    }

    async fn advance(&mut self, b: &Batch) {
        let s = &self.shared;
        s.forwarded_total
            .store(b.forwarded_total_after, Ordering::Release);
        s.gap_markers_total
            .store(b.gap_markers_total_after, Ordering::Release);
        s.cursor.store(b.last_seq, Ordering::Release);
        s.set_status(SinkState::Running, None);
        self.dirty = true;
        self.save_if_due(false).await;
    }

    /// Save the file when the cursor moved and `SAVE_EVERY` passed (or `now`). A failed save
    /// is logged and retried at the next one: the file is a restart point, and an older one
    /// only re-sends (`at_least_once`) or is corrected by the progress topic (`exactly_once`).
    async fn save_if_due(&mut self, now: bool) {
        if !self.dirty || (!now && self.saved_at.elapsed() < SAVE_EVERY) {
            return;
        }
        let (store, s) = (self.store.clone(), self.shared.clone());
        let r = tokio::task::spawn_blocking(move || store.save_shared(&s, None)).await;
        match r {
            Ok(Ok(())) => self.dirty = false,
            Ok(Err(e)) => {
                tracing::warn!(sink = %self.shared.name, error = %e, "sink file not saved")
            }
            Err(e) => tracing::warn!(sink = %self.shared.name, error = %e, "sink file not saved"),
        }
        self.saved_at = Instant::now();
    }

    async fn park(&self, head: Option<&mut tokio::sync::watch::Receiver<u64>>, max: Duration) {
        crate::topic::follow::park(head, max, &self.shared.kick).await
    }
}
