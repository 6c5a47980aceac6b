//! Checkpoints at the actor level: WAL truncation, replay of only the tail, fallback to the
//! previous snapshot, and state that only a snapshot can carry (floors, idempotency, deletes).

use super::testkit::{draft, temp_dir, visible_seqs, Harness};
use super::{AppendRequest, DeleteRequest, TopicHandle};
use crate::clock::ManualClock;
use crate::model::topic_config::{Durability, TopicConfig};
use bytes::Bytes;

fn fsync() -> TopicConfig {
    TopicConfig {
        durability: Durability::Fsync,
        durable: true,
        ..TopicConfig::default()
    }
}

async fn write(t: &TopicHandle, n: usize, key: Option<&str>) -> u64 {
    let records = (0..n)
        .map(|i| draft(Some("x"), Bytes::from(i.to_string())))
        .collect();
    let req = AppendRequest {
        records,
        idempotency_key: key.map(str::to_string),
    };
    t.append(req).await.unwrap().last_seq
}

fn wal_files(h: &Harness) -> usize {
    std::fs::read_dir(crate::storage::wal_dir(&h.dir))
        .unwrap()
        .count()
}

async fn seqs(h: &Harness) -> Vec<u64> {
    visible_seqs(&h.registry.get("t").unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replays_only_the_tail_and_old_wal_files_go() {
    let mut h = Harness::start(temp_dir("ckpt"), ManualClock::new(1));
    let (t, _) = h.registry.get_or_create("t", fsync()).await.unwrap();
    for _ in 0..50 {
        write(&t, 2, None).await;
    }
    h.checkpoint().await;
    write(&t, 1, None).await;
    h.checkpoint().await;
    let files_before = wal_files(&h);
    h.checkpoint().await;
    write(&t, 1, None).await;
    assert!(
        wal_files(&h) <= files_before,
        "files before the older kept snapshot are deleted"
    );
    drop(t);
    h = h.restart(false).await;
    assert!(
        h.replay.frames <= 2,
        "only the tail after the barrier is replayed: {:?}",
        h.replay
    );
    assert_eq!(seqs(&h).await, (1..=102).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&h.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_newest_snapshot_falls_back_to_the_previous_one_and_its_tail() {
    let mut h = Harness::start(temp_dir("ckpt-fallback"), ManualClock::new(1));
    let (t, _) = h.registry.get_or_create("t", fsync()).await.unwrap();
    write(&t, 3, None).await;
    h.checkpoint().await;
    write(&t, 3, None).await;
    let newest = h.checkpoint().await;
    write(&t, 3, None).await;
    drop(t);
    let snap = crate::storage::snapshot::dir(&h.dir).join(format!("{newest:020}.snap"));
    let h2 = h.restart(false).await;
    let len = std::fs::metadata(&snap).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snap)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    h = h2.restart(false).await;
    assert_eq!(seqs(&h).await, (1..=9).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&h.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_floors_and_idempotency_survive_checkpoint_and_crash() {
    let mut h = Harness::start(temp_dir("ckpt-state"), ManualClock::new(1));
    let (t, _) = h.registry.get_or_create("t", fsync()).await.unwrap();
    write(&t, 4, Some("k")).await;
    t.delete_records(DeleteRequest {
        before_seq: Some(3),
        pred: None,
    })
    .await
    .unwrap();
    t.put_config(TopicConfig {
        cap_records: 5,
        ..fsync()
    })
    .await
    .unwrap();
    write(&t, 4, None).await; // head 8: seq 3 falls out of the cap window
    for _ in 0..3 {
        h.checkpoint().await;
    }
    drop(t);
    h = h.restart(false).await;
    assert_eq!(seqs(&h).await, vec![4, 5, 6, 7, 8]);
    let t = h.registry.get("t").unwrap();
    let req = super::ReadRequest {
        from_seq: 0,
        limit: 10,
        budget_bytes: 1 << 20,
        skip_nodes: vec![],
        include_meta: true,
    };
    assert_eq!(
        t.read(req).await.unwrap().tombstone.map(|t| t.gap_to),
        Some(3)
    );
    let again = t
        .append(AppendRequest {
            records: vec![],
            idempotency_key: Some("k".into()),
        })
        .await
        .unwrap();
    assert!(again.deduped && again.first_seq == 1 && again.last_seq == 4);
    let _ = std::fs::remove_dir_all(&h.dir);
}
