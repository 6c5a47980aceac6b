//! Crash-point sweep over sealing, checkpoints (snapshot write, pruning, WAL and segment
//! collection) and deletes: the power is cut after the Nth file-system operation of the seam,
//! un-synced effects are rolled back, and the restarted server must hold every acknowledged
//! `fsync` write with its data, no acknowledged-deleted record, nothing invented, and must
//! never reissue a seq. `cargo test` runs a bounded sample of cut points; set
//! `TOPICS_CRASH_SWEEP=all` to run every one.

use super::testkit::{temp_dir, Harness};
use super::{AppendRequest, DeleteRequest, ReadRequest};
use crate::clock::ManualClock;
use crate::model::predicate::TagPredicate;
use crate::model::record::RecordDraft;
use crate::model::topic_config::{Durability, TopicConfig};
use crate::storage::fs::fault::FaultFs;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Default)]
struct Outcome {
    /// seq → data of every acknowledged write.
    acked: BTreeMap<u64, Bytes>,
    /// Data of every write attempted (acked or not): the only data allowed to appear.
    attempted: BTreeSet<Bytes>,
    /// Seqs whose delete was acknowledged.
    deleted: BTreeSet<u64>,
}

fn config() -> TopicConfig {
    TopicConfig {
        durability: Durability::Fsync,
        durable: true,
        ..TopicConfig::default()
    }
}

/// Writes, tag deletes, prefix deletes and checkpoints until the first failure.
async fn workload(h: &Harness) -> Outcome {
    let mut out = Outcome::default();
    let Ok((t, _)) = h.registry.get_or_create("t", config()).await else {
        return out;
    };
    let mut n = 0u64;
    for step in 0..24u64 {
        let datas: Vec<Bytes> = (0..3)
            .map(|_| {
                n += 1;
                Bytes::from(n.to_string())
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
        if step % 4 == 3 && h.try_checkpoint().await.is_err() {
            break;
        }
    }
    out
}

async fn verify(h: &Harness, out: &Outcome, cut: usize) {
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

async fn run_cut(cut: usize) -> usize {
    let dir = temp_dir("crash");
    let fs = Arc::new(FaultFs::new(cut));
    let (dir, out) = match Harness::try_start_with_fs(dir.clone(), ManualClock::new(1), fs.clone())
    {
        Ok(h) => {
            let out = workload(&h).await;
            (h.crash().await, out)
        }
        Err(_) => (dir, Outcome::default()), // the power failed during start-up
    };
    fs.power_cut();
    let h = Harness::start(dir, ManualClock::new(1));
    verify(&h, &out, cut).await;
    let _ = std::fs::remove_dir_all(&h.dir);
    fs.ops()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sampled_crash_point_recovers_all_acknowledged_state() {
    let total = run_cut(usize::MAX).await;
    assert!(
        total > 50,
        "the workload exercises the seam ({total} operations)"
    );
    let step = if std::env::var("TOPICS_CRASH_SWEEP").as_deref() == Ok("all") {
        1
    } else {
        (total / 24).max(1)
    };
    let mut cuts = 0;
    for cut in (0..total).step_by(step) {
        run_cut(cut).await;
        cuts += 1;
    }
    eprintln!("crash sweep: {cuts} cut points of {total} file-system operations");
}
