//! Storage health: once any write, fsync or rename fails, storage is poisoned for the life of
//! the process. Nothing is retried (a failed fsync may have dropped dirty pages: retrying and
//! succeeding would ack data that is gone). Readiness reports it; durable writes fail with 500.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A storage failure, cheap to clone into every waiter of a failed group.
#[derive(Debug, Clone)]
pub struct StoreError(pub Arc<str>);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

#[derive(Debug, Default)]
pub struct StorageHealth {
    poisoned: AtomicBool,
    reason: Mutex<Option<StoreError>>,
}

impl StorageHealth {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// The first failure; later ones are consequences.
    pub fn poison(&self, err: &StoreError) {
        if let Ok(mut r) = self.reason.lock() {
            if r.is_none() {
                tracing::error!(error = %err, "storage failed; durable writes are refused until restart");
                *r = Some(err.clone());
            }
        }
        self.poisoned.store(true, Ordering::Release);
    }

    pub fn error(&self) -> StoreError {
        self.reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| StoreError("storage is poisoned".into()))
    }
}
