//! HTTP integration tests: the real `topics` binary on an ephemeral port, one temp data dir per
//! test, driven through a minimal blocking HTTP/1.1 client. Each module pins one area of the
//! wire contract (`docs/API.md`).

mod harness;

mod auth;
mod backup;
mod browser;
mod checkpoints;
mod cli;
mod client;
mod console;
mod corruption;
mod crash_loss;
mod datadir;
mod deletes;
mod diff;
mod disk_full;
mod durability;
mod errors;
mod faults;
mod hostile;
mod idempotency;
mod lifecycle;
mod metrics;
mod openapi;
mod overload;
mod probes;
mod proxy;
mod queues;
mod retention;
mod routers;
mod segments;
#[cfg(feature = "kafka")]
mod sinks;
#[cfg(not(feature = "kafka"))]
mod sinks_off;
mod snapshot_damage;
mod soak;
mod transport;
mod wal_damage;
mod watch;
mod watch_long_id;
mod write;
