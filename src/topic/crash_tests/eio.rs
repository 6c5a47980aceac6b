//! EIO (not ENOSPC) in the middle of a WAL rotation: what a dying disk reports and the power
//! cut sweeps cannot produce. It poisons storage like any failed write, fsync or rename.

use super::kit::{class, contents, data, start, stop, write};
use crate::error::ApiError;
use crate::model::topic_config::Durability;
use crate::storage::fs::fault::{EioAt, FaultFs};
use crate::topic::testkit::temp_dir;
use crate::topic::TopicError;
use axum::http::StatusCode;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A write failed by a storage failure: a non-"no space" error, which HTTP answers with 500.
fn assert_failed(e: TopicError, what: &str) {
    assert!(
        matches!(&e, TopicError::Storage(s) if !s.is_no_space()),
        "{what}: {e:?}"
    );
    let status = ApiError::from_topic("t", e).status;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}");
}

/// An EIO at each step of a size-triggered rotation — the fdatasync of the closing mark, the
/// shrink of the closed file, the new file's preallocation and its header's fdatasync —
/// poisons storage: the write that needed the rotation fails with 500, no later write is
/// acknowledged, reads keep working, and a restart, on the files as they are or after a power
/// cut, holds every acknowledged write and at most the failed one besides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eio_at_any_step_of_a_rotation_poisons_storage_and_loses_nothing_acknowledged() {
    let points = [
        EioAt::ClosingMarkSync,
        EioAt::Shrink,
        EioAt::Preallocate,
        EioAt::HeaderSync,
    ];
    for point in points {
        for power_cut in [false, true] {
            let what = format!("{point:?}, power cut {power_cut}");
            let fs = Arc::new(FaultFs::new(usize::MAX));
            let h = start(&temp_dir("eio-rotate"), &fs);
            let (t, _) = h
                .registry
                .get_or_create("t", class(Durability::Fsync))
                .await
                .unwrap();
            // After start-up, whose own new files would take a header-sync EIO.
            fs.inject_eio(point);
            let mut acked = BTreeMap::new();
            let mut n = 0;
            let failed = loop {
                let hit = !fs.eio_pending();
                assert!(n < 1000, "{what}: no write failed (EIO injected: {hit})");
                match write(&t, n).await {
                    Ok(seq) => acked.insert(seq, data(n)),
                    Err(e) => break e,
                };
                n += 1;
            };
            assert_failed(failed, &what);
            assert!(
                !fs.eio_pending(),
                "{what}: the failure was the injected one"
            );
            assert!(h.poisoned(), "{what}: storage reports the failure");
            for m in n + 1..n + 4 {
                assert_failed(write(&t, m).await.unwrap_err(), &what);
            }
            assert_eq!(contents(&t).await, acked, "{what}: reads still work");
            drop(t);
            let h = stop(h, &fs, power_cut).await;
            let mut got = contents(&h.registry.get("t").unwrap()).await;
            got.retain(|_, d| *d != data(n)); // the failed write may reappear
            assert_eq!(got, acked, "{what}");
            let _ = std::fs::remove_dir_all(&h.dir);
        }
    }
}
