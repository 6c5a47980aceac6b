//! Storage health: once any write, fsync or rename fails, storage is poisoned for the life of
//! the process. Nothing is retried (a failed fsync may have dropped dirty pages: retrying and
//! succeeding would ack data that is gone). Readiness reports it; durable writes fail with 500;
//! and poisoning wakes [`StorageHealth::poisoned`], which the composition root waits on to
//! stop the process, so a supervisor restarts it and replay rebuilds the truth from disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A storage failure, cheap to clone into every waiter of a failed group.
#[derive(Debug, Clone)]
pub struct StoreError {
    message: Arc<str>,
    no_space: bool,
}

impl StoreError {
    /// A failure that cannot be trusted (EIO, a failed fsync or rename): storage is poisoned.
    pub fn failed(message: impl Into<Arc<str>>) -> Self {
        Self {
            message: message.into(),
            no_space: false,
        }
    }

    /// The disk is full: the operation was not applied and may be retried once space is back.
    pub fn no_space(message: impl Into<Arc<str>>) -> Self {
        Self {
            message: message.into(),
            no_space: true,
        }
    }

    pub fn is_no_space(&self) -> bool {
        self.no_space
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

#[derive(Debug)]
pub struct StorageHealth {
    poisoned: AtomicBool,
    reason: Mutex<Option<StoreError>>,
    /// WAL shards currently unable to write for lack of space (not a poison: they resume
    /// by themselves once space is back).
    full_shards: std::sync::atomic::AtomicUsize,
    /// Flips to `true` once; a watch rather than a `Notify` so a waiter that subscribes after
    /// the failure still sees it.
    signal: tokio::sync::watch::Sender<bool>,
}

impl StorageHealth {
    pub fn new() -> Arc<Self> {
        Arc::new(StorageHealth {
            poisoned: AtomicBool::new(false),
            reason: Mutex::new(None),
            full_shards: Default::default(),
            signal: tokio::sync::watch::Sender::new(false),
        })
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// The first failure; later ones are consequences. Every poisoning, whatever its cause,
    /// reaches [`Self::poisoned`]: this is the one place a storage failure becomes fatal.
    pub fn poison(&self, err: &StoreError) {
        if let Ok(mut r) = self.reason.lock() {
            if r.is_none() {
                tracing::error!(error = %err, "storage failed; durable writes are refused and the process exits");
                *r = Some(err.clone());
            }
        }
        self.poisoned.store(true, Ordering::Release);
        self.signal.send_replace(true);
    }

    /// Resolves once storage is poisoned (at once if it already is).
    pub async fn poisoned(&self) {
        let mut rx = self.signal.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|p| *p).await;
    }

    /// True while any WAL shard holds frames it could not write for lack of space.
    pub fn is_full(&self) -> bool {
        self.full_shards.load(Ordering::Acquire) > 0
    }

    /// A shard ran out of space (`true`) or wrote everything it held again (`false`).
    pub fn set_shard_full(&self, full: bool) {
        if full {
            self.full_shards.fetch_add(1, Ordering::AcqRel);
        } else {
            self.full_shards.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub fn error(&self) -> StoreError {
        self.reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| StoreError::failed("storage is poisoned"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_before_and_after_the_failure_are_woken() {
        let health = StorageHealth::new();
        let early = tokio::spawn({
            let h = health.clone();
            async move { h.poisoned().await }
        });
        tokio::task::yield_now().await;
        assert!(!early.is_finished());
        health.poison(&StoreError::failed("fdatasync: EIO"));
        let woke = tokio::time::timeout(Duration::from_secs(5), early).await;
        assert!(woke.is_ok(), "a waiter from before the failure");
        let late = tokio::time::timeout(Duration::from_secs(5), health.poisoned()).await;
        assert!(late.is_ok(), "a waiter from after the failure");
        assert_eq!(health.error().to_string(), "fdatasync: EIO");
    }
}
