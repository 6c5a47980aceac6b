//! What the fault tests share: a harness on small WAL files, numbered writes whose data can
//! be found in the files, the records a topic serves, and a stop by crash or power cut.

use crate::clock::ManualClock;
use crate::model::record::RecordDraft;
use crate::model::topic_config::{Durability, TopicConfig};
use crate::storage::fs::fault::FaultFs;
use crate::topic::testkit::Harness;
use crate::topic::{AppendRequest, ReadRequest, TopicError, TopicHandle};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Small WAL files: a rotation every few dozen writes.
pub const FILE_BYTES: u64 = 4096;

pub fn class(durability: Durability) -> TopicConfig {
    TopicConfig {
        durability,
        durable: true,
        ..TopicConfig::default()
    }
}

pub fn start(dir: &Path, fs: &Arc<FaultFs>) -> Harness {
    Harness::try_start_with(
        dir.to_path_buf(),
        ManualClock::new(1),
        fs.clone(),
        FILE_BYTES,
    )
    .unwrap()
}

/// Data of write `n`: unique, so it can be looked for in the WAL files.
pub fn data(n: u64) -> Bytes {
    Bytes::from(format!("\"record-{n:06}\""))
}

pub async fn write(t: &TopicHandle, n: u64) -> Result<u64, TopicError> {
    let d = RecordDraft {
        node: None,
        tag: None,
        data: data(n),
        meta: None,
        hops: 0,
    };
    let req = AppendRequest {
        records: vec![d],
        idempotency_key: None,
    };
    t.append(req).await.map(|ok| ok.last_seq)
}

/// seq → data of every record `t` serves.
pub async fn contents(t: &TopicHandle) -> BTreeMap<u64, Bytes> {
    let req = ReadRequest {
        from_seq: 0,
        limit: 100_000,
        budget_bytes: 1 << 30,
        skip_nodes: vec![],
        include_meta: true,
    };
    let got = t.read(req).await.unwrap().records;
    got.into_iter().map(|r| (r.seq, r.data)).collect()
}

/// Stop the server: a process crash (the page cache survives), or a power cut right now.
pub async fn stop(h: Harness, fs: &FaultFs, power_cut: bool) -> Harness {
    if power_cut {
        fs.power_off_now();
    }
    let dir = h.crash().await;
    if power_cut {
        fs.power_cut();
    }
    Harness::start(dir, ManualClock::new(1))
}
