//! Waiting on a topic from outside it: what a follower (a router, a sink) does between
//! passes over its source.

use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Wait until the source's head moves (`head`; a closed channel — the source is gone — ends
/// the wait too), `max` passes (`Duration::MAX`: no limit), or `kick` is notified (the
/// follower was re-configured or is stopping).
pub async fn park(head: Option<&mut watch::Receiver<u64>>, max: Duration, kick: &Notify) {
    let changed = async {
        match head {
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
        _ = kick.notified() => {}
    }
}
