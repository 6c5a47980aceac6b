//! The crash sweeps' workload and its oracle: `fsync` writes with tags, tag and prefix
//! deletes, seals and checkpoints, in WAL files small enough to rotate by size as well.

use crate::model::predicate::TagPredicate;
use crate::model::record::RecordDraft;
use crate::model::topic_config::{Durability, TopicConfig};
use crate::topic::testkit::Harness;
use crate::topic::{AppendRequest, DeleteRequest, ReadRequest};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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

/// Writes, tag deletes, prefix deletes and checkpoints until the first failure.
pub async fn workload(h: &Harness) -> Outcome {
    let mut out = Outcome::default();
    let Ok((t, _)) = h.registry.get_or_create("t", config()).await else {
        return out;
    };
    let mut n = 0u64;
    for step in 0..24u64 {
        let datas: Vec<Bytes> = (0..3)
            .map(|_| {
                n += 1;
                record_data(n)
            })
            .collect();
        out.attempted.extend(datas.iter().cloned());
        let records = datas
            .iter()
            .map(|d| RecordDraft {
                node: None,
                tag: Some(Arc::from(if step % 3 == 0 { "x" } else { "y" })),
                data: d.clone(),
                meta: None,
                hops: 0,
            })
            .collect();
        let Ok(ok) = t
            .append(AppendRequest {
                records,
                idempotency_key: None,
            })
            .await
        else {
            break;
        };
        for (i, d) in datas.into_iter().enumerate() {
            out.acked.insert(ok.first_seq + i as u64, d);
        }
        if step % 7 == 6 {
            let pred = TagPredicate::Eq("x".into());
            let Ok(d) = t
                .delete_records(DeleteRequest {
                    before_seq: None,
                    pred: Some(pred),
                })
                .await
            else {
                break;
            };
            let _ = d;
            let xs: Vec<u64> = out
                .acked
                .keys()
                .copied()
                .filter(|s| (s - 1) / 3 % 3 == 0)
                .collect();
            out.deleted.extend(xs);
        }
        if step == 17 {
            let bound = ok.last_seq - 10;
            if t.delete_records(DeleteRequest {
                before_seq: Some(bound),
                pred: None,
            })
            .await
            .is_err()
            {
                break;
            }
            out.deleted
                .extend(out.acked.range(..bound).map(|(s, _)| *s));
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
