//! Handing freed heap back to the kernel. glibc keeps memory freed inside its arenas for
//! reuse; after a topic seals a long recovered WAL tail (millions of small record allocations
//! freed within a second or two) the process would stay that large indefinitely: 300 MiB
//! resident for a 35 MiB live heap after 3M records; the same after an `ephemeral` topic with
//! millions of records is deleted or expires. A watcher trims the heap whenever what the
//! topics hold in RAM (`Registry::memory_signal`) shrank by `TRIM_AFTER_FREED` since the last
//! trim.

use std::time::Duration;

const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Smaller drops are normal churn (a seal frees a few MiB) and are reused soon anyway.
const TRIM_AFTER_FREED: u64 = 64 << 20;

/// Runs until its task is dropped; `hot` reads the memory signal.
pub async fn trim_when_memory_shrinks(hot: impl Fn() -> u64 + Send + 'static) {
    watch(hot, trim).await
}

async fn watch(hot: impl Fn() -> u64, trim: fn()) {
    let mut peak = hot();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let now = hot();
        peak = peak.max(now);
        if peak - now >= TRIM_AFTER_FREED {
            let _ = tokio::task::spawn_blocking(trim).await;
            peak = now;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;

    static TRIMS: AtomicUsize = AtomicUsize::new(0);

    fn count_trim() {
        TRIMS.fetch_add(1, Ordering::SeqCst);
    }

    #[tokio::test(start_paused = true)]
    async fn trims_once_per_large_drop_of_the_hot_tiers_and_not_for_churn() {
        let hot = Arc::new(AtomicU64::new(0));
        let h = hot.clone();
        let task = tokio::spawn(watch(move || h.load(Ordering::SeqCst), count_trim));
        let step = |v: u64| {
            hot.store(v, Ordering::SeqCst);
            tokio::time::sleep(CHECK_EVERY + Duration::from_millis(1))
        };
        const MIB: u64 = 1 << 20;
        step(500 * MIB).await; // recovery loaded a long tail
        step(480 * MIB).await; // churn: 20 MiB less
        assert_eq!(TRIMS.load(Ordering::SeqCst), 0);
        step(10 * MIB).await; // sealed
        assert_eq!(TRIMS.load(Ordering::SeqCst), 1);
        step(10 * MIB).await;
        step(60 * MIB).await;
        step(5 * MIB).await; // a 55 MiB drop from the new peak: below the threshold
        assert_eq!(TRIMS.load(Ordering::SeqCst), 1);
        step(200 * MIB).await;
        step(0).await;
        assert_eq!(TRIMS.load(Ordering::SeqCst), 2);
        task.abort();
    }
}
