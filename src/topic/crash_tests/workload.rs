//! The crash sweeps' workload and its oracle: `fsync` writes with tags, tag and prefix
//! deletes, seals and checkpoints, in WAL files small enough to rotate by size as well.

use crate::model::predicate::TagPredicate;
use crate::model::topic_config::{Durability, TopicConfig};
use crate::topic::testkit::{draft, Harness};
use crate::topic::{AppendRequest, DeleteRequest, ReadRequest, TopicHandle};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct Outcome {
    /// seq → data of every acknowledged write.
    pub acked: BTreeMap<u64, Bytes>,
    /// Data of every write attempted (acked or not): the only data allowed to appear.
    pub attempted: BTreeSet<Bytes>,
    /// Seqs whose delete was acknowledged.
    pub deleted: BTreeSet<u64>,
    /// Checkpoints taken (each rotates every WAL shard once).
    pub checkpoints: u64,
}

pub fn config() -> TopicConfig {
    TopicConfig {
        durability: Durability::Fsync,
        durable: true,
        ..TopicConfig::default()
    }
}

/// Record `n`'s data: a JSON string long enough (about 130 bytes) that one write's frame
/// spans a disk sector, so out-of-order power cuts can keep its later sectors.
fn record_data(n: u64) -> Bytes {
    Bytes::from(format!("\"{n:0>128}\""))
}

/// Write three records tagged "x" at every third step, "y" otherwise; the last seq, or
/// `None` on failure.
async fn write_step(t: &TopicHandle, step: u64, n: &mut u64, out: &mut Outcome) -> Option<u64> {
    let datas: Vec<Bytes> = (0..3)
        .map(|_| {
            *n += 1;
            record_data(*n)
        })
        .collect();
    out.attempted.extend(datas.iter().cloned());
    let tag = if step.is_multiple_of(3) { "x" } else { "y" };
    let records = datas.iter().map(|d| draft(Some(tag), d.clone())).collect();
    let req = AppendRequest {
        records,
        idempotency_key: None,
    };
    let ok = t.append(req).await.ok()?;
    for (i, d) in datas.into_iter().enumerate() {
        out.acked.insert(ok.first_seq + i as u64, d);
    }
    Some(ok.last_seq)
}

/// Delete every record tagged "x" (those of every third step); false on failure.
async fn delete_tag_x(t: &TopicHandle, out: &mut Outcome) -> bool {
    let req = DeleteRequest {
        before_seq: None,
        pred: Some(TagPredicate::Eq("x".into())),
    };
    if t.delete_records(req).await.is_err() {
        return false;
    }
    let xs = out.acked.keys().copied().filter(|s| (s - 1) / 3 % 3 == 0);
    out.deleted.extend(xs.collect::<Vec<_>>());
    true
}

/// Delete every record below `bound`; false on failure.
async fn delete_before(t: &TopicHandle, bound: u64, out: &mut Outcome) -> bool {
    let req = DeleteRequest {
        before_seq: Some(bound),
        pred: None,
    };
    if t.delete_records(req).await.is_err() {
        return false;
    }
    out.deleted
        .extend(out.acked.range(..bound).map(|(s, _)| *s));
    true
}

/// Writes, tag deletes, prefix deletes and checkpoints until the first failure.
pub async fn workload(h: &Harness) -> Outcome {
    let mut out = Outcome::default();
    let Ok((t, _)) = h.registry.get_or_create("t", config()).await else {
        return out;
    };
    let mut n = 0u64;
    for step in 0..24u64 {
        let Some(last) = write_step(&t, step, &mut n, &mut out).await else {
            break;
        };
        // Seals run in the background; letting each finish keeps the order of file-system
        // operations the same in every run, so a cut chosen from the probe run lands on the
        // same operation (`seal_tests.rs` covers seals overlapping other work).
        h.seals_settled(&t).await;
        if step % 7 == 6 && !delete_tag_x(&t, &mut out).await {
            break;
        }
        if step == 17 && !delete_before(&t, last - 10, &mut out).await {
            break;
        }
        if step % 4 == 3 {
            if h.try_checkpoint().await.is_err() {
                break;
            }
            out.checkpoints += 1;
        }
    }
    out
}

pub async fn verify(h: &Harness, out: &Outcome, cut: usize) {
    let Some(t) = h.registry.get("t") else {
        assert!(
            out.acked.is_empty(),
            "cut {cut}: the topic of acknowledged writes is gone"
        );
        return;
    };
    let req = ReadRequest {
        from_seq: 0,
        limit: 1000,
        budget_bytes: 1 << 30,
        skip_nodes: vec![],
        include_meta: true,
    };
    let got = t.read(req).await.unwrap().records;
    let present: BTreeMap<u64, Bytes> = got.iter().map(|r| (r.seq, r.data.clone())).collect();
    assert_eq!(present.len(), got.len(), "cut {cut}: duplicate seqs");
    for (seq, data) in &out.acked {
        if out.deleted.contains(seq) {
            assert!(
                !present.contains_key(seq),
                "cut {cut}: deleted seq {seq} came back"
            );
        } else {
            assert_eq!(
                present.get(seq),
                Some(data),
                "cut {cut}: acknowledged seq {seq} lost or changed"
            );
        }
    }
    for (seq, data) in &present {
        assert!(
            out.attempted.contains(data),
            "cut {cut}: seq {seq} holds invented data"
        );
    }
    let head = t.state(false).await.unwrap().head_seq;
    let max_acked = out.acked.keys().last().copied().unwrap_or(0);
    assert!(
        head >= max_acked,
        "cut {cut}: head {head} would reissue seq {max_acked}"
    );
}
