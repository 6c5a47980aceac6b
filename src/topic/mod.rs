//! The per-topic actor. Only the actor mutates its topic: it owns the records, watermarks and
//! pending commits, receives commands on a bounded mailbox and replies on oneshots. It never
//! blocks on the disk for record writes: WAL sync completions arrive as messages it selects on.
//!
//! Invariants: seqs are assigned contiguously and never reused; a record becomes visible only
//! at its class's ack point, and visibility is a prefix (a later write is never visible before
//! an earlier one); an `fsync`-class ack is sent only after the covering fsync; a seq of a
//! reserving class is acked only once a durable reservation covers it.

mod actor;
mod append;
#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod crash_tests;
mod delete;
pub mod follow;
mod handle;
pub mod idempotency;
pub mod image;
pub mod integrity;
#[cfg(test)]
mod model_tests;
mod park;
mod read;
pub mod recovered;
mod retention;
pub mod seal;
#[cfg(test)]
mod seal_tests;
pub mod store;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod write_tests;

pub use handle::TopicHandle;
pub use recovered::RecoveredTopic;

use crate::clock::Clock;
use crate::model::predicate::TagPredicate;
use crate::model::read::Tombstone;
use crate::model::record::{Record, RecordDraft};
use crate::model::topic_config::TopicConfig;
use crate::storage::health::StoreError;
use crate::storage::wal::Wal;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// What every actor shares: the WAL, the clock and tunables.
#[derive(Debug)]
pub struct TopicCtx {
    pub wal: Wal,
    pub clock: Arc<dyn Clock>,
    pub seq_reserve_ahead: u64,
    pub mailbox: usize,
    pub priority: crate::model::priority::PriorityParams,
    /// Live payload bytes across all topics (the `max_total_bytes` quota).
    pub total_bytes: AtomicU64,
    /// Records accepted by writes since the process started, every class (metrics).
    pub records_written: AtomicU64,
    /// 0 = no quota.
    pub max_total_bytes: u64,
    /// Where sealed segments go (`None`: never seal).
    pub segments_dir: Option<std::path::PathBuf>,
    pub seal: seal::SealPolicy,
    /// Estimated RAM of un-sealed records across all sealable topics (the
    /// `hot_budget_bytes` budget); each actor adds the change of its own hot tier.
    pub hot_total: AtomicU64,
    /// Seals in progress across all topics and their files (bounded; see `seal::Sealer`).
    pub sealer: seal::Sealer,
    /// Mutating file operations of sealing (tests inject power cuts).
    pub fs: Arc<dyn crate::storage::fs::Fs>,
    /// Damage found in sealed data (readiness detail).
    pub integrity: integrity::Integrity,
}

/// Why a topic command failed.
#[derive(Debug, Clone)]
pub enum TopicError {
    /// The topic was deleted (or never existed for this handle).
    Gone,
    /// Mailbox or WAL queue full.
    Throttled,
    Storage(StoreError),
    NotEmpty {
        count: u64,
    },
    TypeChange {
        existing: &'static str,
        requested: &'static str,
    },
    /// `discard:"reject"` topic would overflow.
    TopicFull {
        cap_records: u64,
        cap_bytes: u64,
        head_seq: u64,
        earliest_seq: u64,
    },
    /// The write alone exceeds a whole `discard:"reject"` cap.
    LargerThanCap {
        what: &'static str,
        size: u64,
        cap: u64,
    },
    /// `max_total_bytes` would be exceeded.
    Quota {
        max: u64,
    },
}

/// A write as the actor receives it.
#[derive(Debug)]
pub struct AppendRequest {
    pub records: Vec<RecordDraft>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AppendOk {
    pub first_seq: u64,
    pub last_seq: u64,
    pub head_seq: u64,
    pub wal_append_ms: f64,
    pub fsync_ms: f64,
    /// An idempotency hit: nothing was appended; seqs are the original write's.
    pub deduped: bool,
}

/// A permanent delete (API.md §7).
#[derive(Debug, Clone)]
pub struct DeleteRequest {
    pub before_seq: Option<u64>,
    pub pred: Option<TagPredicate>,
}

#[derive(Debug, Clone)]
pub struct DeleteOk {
    pub deleted: u64,
    pub earliest_seq: u64,
    pub head_seq: u64,
    pub count: u64,
    pub bytes: u64,
}

/// A cursor read.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub from_seq: u64,
    pub limit: usize,
    pub budget_bytes: u64,
    pub skip_nodes: Vec<String>,
    pub include_meta: bool,
}

#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Vec<Record>,
    pub next_from_seq: u64,
    pub head_seq: u64,
    pub earliest_seq: u64,
    pub caught_up: bool,
    pub tombstone: Option<Tombstone>,
    pub lag: u64,
    pub scanned: u64,
}

/// Everything `GET /v0/topics/:topic` and the list show.
#[derive(Debug, Clone)]
pub struct TopicState {
    pub name: Arc<str>,
    pub config: TopicConfig,
    pub head_seq: u64,
    pub earliest_seq: u64,
    pub count: u64,
    pub bytes: u64,
    pub effective_priority: i64,
    pub last_write_ts: Option<i64>,
    pub last_read_ts: Option<i64>,
}

type Reply<T> = tokio::sync::oneshot::Sender<T>;

/// The covering sync of a frame a caller must wait for before it answers its own client.
pub type PendingSync = Option<tokio::sync::oneshot::Receiver<crate::storage::wal::SyncResult>>;

/// Messages to the actor.
#[derive(Debug)]
pub(crate) enum Command {
    Append {
        req: AppendRequest,
        reply: Reply<Result<AppendOk, TopicError>>,
    },
    /// Source-trim hole seqs (API.md §12), ordered with the appends around them.
    Holes {
        count: u64,
        reply: Reply<Result<AppendOk, TopicError>>,
    },
    Read {
        req: ReadRequest,
        reply: Reply<ReadResult>,
    },
    State {
        touch: bool,
        reply: Reply<TopicState>,
    },
    PutConfig {
        config: TopicConfig,
        reply: Reply<Result<bool, TopicError>>,
    },
    Delete {
        if_empty: bool,
        reply: Reply<Result<(), TopicError>>,
    },
    DeleteRecords {
        req: DeleteRequest,
        reply: Reply<Result<DeleteOk, TopicError>>,
    },
    /// The live records among these seqs (a queue's reclaimed work).
    Fetch {
        seqs: Vec<u64>,
        reply: Reply<Vec<Record>>,
    },
    /// Permanently delete exactly these seqs (a queue's acks).
    DeleteSeqs {
        seqs: Vec<u64>,
        reply: Reply<Result<(DeleteOk, PendingSync), TopicError>>,
    },
    /// Resolve once every frame this topic submitted so far is durable.
    Sync {
        reply: Reply<Result<(), TopicError>>,
    },
    Image {
        exact: bool,
        reply: Reply<image::TopicImage>,
    },
    Finalize {
        record_head: bool,
        reply: Reply<()>,
    },
}
