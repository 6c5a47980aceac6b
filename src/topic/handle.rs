//! Cheap-clone handle to a topic actor. Every method sends one command and awaits its reply;
//! a full mailbox is back-pressure (`Throttled`), a closed one means the topic is gone.

use super::actor::Actor;
use super::{
    AppendOk, AppendRequest, Command, DeleteOk, DeleteRequest, ReadRequest, ReadResult,
    RecoveredTopic, TopicCtx, TopicError, TopicState,
};
use crate::model::topic_config::TopicConfig;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Clone, Debug)]
pub struct TopicHandle {
    pub id: u64,
    pub name: Arc<str>,
    tx: mpsc::Sender<Command>,
    /// One receiver shared by every clone of the handle, so the actor's `receiver_count`
    /// counts exactly the long-polls waiting on it (plus this one).
    head_rx: Arc<watch::Receiver<u64>>,
}

impl TopicHandle {
    /// Start the actor task for `rec`.
    pub fn spawn(rec: RecoveredTopic, ctx: Arc<TopicCtx>) -> TopicHandle {
        let (tx, rx) = mpsc::channel(ctx.mailbox);
        let id = rec.id;
        let name: Arc<str> = Arc::from(rec.name.as_str());
        let (actor, head_rx) = Actor::new(rec, ctx, rx);
        tokio::spawn(actor.run());
        TopicHandle {
            id,
            name,
            tx,
            head_rx: Arc::new(head_rx),
        }
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, TopicError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(make(reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => TopicError::Throttled,
            mpsc::error::TrySendError::Closed(_) => TopicError::Gone,
        })?;
        rx.await.map_err(|_| TopicError::Gone)
    }

    pub async fn append(&self, req: AppendRequest) -> Result<AppendOk, TopicError> {
        self.call(|reply| Command::Append { req, reply }).await?
    }

    /// Issue `count` hole seqs that read as a `source_trim` loss: a router's dest standing
    /// for source records lost before they were forwarded (API.md §12).
    pub async fn append_holes(&self, count: u64) -> Result<AppendOk, TopicError> {
        self.call(|reply| Command::Holes { count, reply }).await?
    }

    pub async fn read(&self, req: ReadRequest) -> Result<ReadResult, TopicError> {
        self.call(|reply| Command::Read { req, reply }).await
    }

    pub async fn state(&self, touch: bool) -> Result<TopicState, TopicError> {
        self.call(|reply| Command::State { touch, reply }).await
    }

    /// `Ok(true)` when the stored config changed.
    pub async fn put_config(&self, config: TopicConfig) -> Result<bool, TopicError> {
        self.call(|reply| Command::PutConfig { config, reply })
            .await?
    }

    pub async fn delete_records(&self, req: DeleteRequest) -> Result<DeleteOk, TopicError> {
        self.call(|reply| Command::DeleteRecords { req, reply })
            .await?
    }

    /// The live records among `seqs`, ascending.
    pub async fn fetch(
        &self,
        seqs: Vec<u64>,
    ) -> Result<Vec<crate::model::record::Record>, TopicError> {
        self.call(|reply| Command::Fetch { seqs, reply }).await
    }

    /// Permanently delete exactly `seqs`, applied at once; for class `fsync` the caller
    /// answers its client only once the returned sync resolved.
    pub async fn delete_seqs(
        &self,
        seqs: Vec<u64>,
    ) -> Result<(DeleteOk, super::PendingSync), TopicError> {
        self.call(|reply| Command::DeleteSeqs { seqs, reply })
            .await?
    }

    /// Wait until every frame of this topic submitted so far is durable (no-op without WAL).
    pub async fn sync(&self) -> Result<(), TopicError> {
        self.call(|reply| Command::Sync { reply }).await?
    }

    pub async fn delete(&self, if_empty: bool) -> Result<(), TopicError> {
        self.call(|reply| Command::Delete { if_empty, reply })
            .await?
    }

    /// The topic's durable state for a checkpoint (waits for a mailbox slot).
    pub async fn image(&self, exact: bool) -> Result<super::image::TopicImage, TopicError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Image { exact, reply })
            .await
            .map_err(|_| TopicError::Gone)?;
        rx.await.map_err(|_| TopicError::Gone)
    }

    /// Graceful shutdown: stop, first recording the exact head in the WAL if `record_head`.
    pub async fn finalize(&self, record_head: bool) {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Command::Finalize { record_head, reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// A receiver notified whenever the visible head moves after it subscribed, erroring once
    /// the topic is gone. Subscribe before reading so no append is missed; the value is not
    /// kept current while nobody listens, so read the head through the actor, not from here.
    pub fn head_watch(&self) -> watch::Receiver<u64> {
        (*self.head_rx).clone()
    }
}
