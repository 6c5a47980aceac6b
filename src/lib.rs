//! topics: a single-binary HTTP/JSON event-log server.
//!
//! Named append-only logs ("topics") with server-assigned seqs, read by cursor, with
//! per-topic durability classes over a group-committed write-ahead log. See
//! `docs/ARCHITECTURE.md` for the code map and invariants.

pub mod app;
pub mod backup;
pub mod checkpoint;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod model;
pub mod ops;
pub mod queue;
pub mod registry;
pub mod router;
pub mod server;
#[cfg(feature = "kafka")]
pub mod sink;
pub mod storage;
pub mod topic;
pub mod verify;
pub mod watch;
