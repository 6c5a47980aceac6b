//! Multiplexed SSE watch (API.md §11): sessions that hold N topic subscriptions and their
//! cursor map, and the stream that turns them into one event stream, resumable by the cursor
//! in every event id. A client of topic handles: it reads through `TopicHandle::read` and
//! wakes through `TopicHandle::head_watch`; no topic actor ever calls into it. Watchers at the
//! same cursor share one read and one encoded batch (`fanout`).

pub mod cursor;
mod fanout;
mod frame;
pub mod session;
pub mod stream;

pub use session::{Sessions, WatchError, WatchOpts};
pub use stream::{Feeders, Watcher};
