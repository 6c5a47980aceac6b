//! Actor-level tests of seq assignment across restarts for every durability class.

use super::testkit::{temp_dir, Harness};
use super::{AppendRequest, ReadRequest, TopicHandle};
use crate::clock::ManualClock;
use crate::model::record::RecordDraft;
use crate::model::topic_config::{Durability, TopicConfig};
use bytes::Bytes;

fn config(class: Durability) -> TopicConfig {
    TopicConfig {
        durability: class,
        durable: class == Durability::Fsync,
        ..TopicConfig::default()
    }
}

async fn write(t: &TopicHandle, n: usize) -> u64 {
    let records = (0..n)
        .map(|i| RecordDraft {
            node: None,
            tag: None,
            data: Bytes::from(i.to_string()),
            meta: None,
            hops: 0,
        })
        .collect();
    t.append(AppendRequest {
        records,
        idempotency_key: None,
    })
    .await
    .unwrap()
    .last_seq
}

async fn head_and_count(h: &Harness) -> (u64, u64) {
    let s = h.registry.get("t").unwrap().state(false).await.unwrap();
    (s.head_seq, s.count)
}

async fn scenario(class: Durability, graceful: bool) -> (u64, u64, u64) {
    let mut h = Harness::start(temp_dir("seq"), ManualClock::new(1));
    let (t, _) = h.registry.get_or_create("t", config(class)).await.unwrap();
    let mut last = 0;
    for _ in 0..30 {
        last = write(&t, 3).await;
    }
    drop(t);
    h = h.restart(graceful).await;
    let (head, count) = head_and_count(&h).await;
    let next = write(&h.registry.get("t").unwrap(), 1).await;
    assert!(
        next > last,
        "{class:?}: seq {next} after restart reuses one issued before (last {last})"
    );
    let _ = std::fs::remove_dir_all(&h.dir);
    assert!(head >= last, "{class:?}: head {head} below issued {last}");
    (last, head, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_keeps_the_exact_head_in_every_class() {
    for class in [
        Durability::Ephemeral,
        Durability::Memory,
        Durability::Disk,
        Durability::Fsync,
    ] {
        let (last, head, count) = scenario(class, true).await;
        assert_eq!(
            head, last,
            "{class:?}: a clean restart leaves no reserved holes"
        );
        let expect = if class == Durability::Ephemeral {
            0
        } else {
            90
        };
        assert_eq!(count, expect, "{class:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_restart_never_reissues_a_seq() {
    for class in [
        Durability::Ephemeral,
        Durability::Memory,
        Durability::Disk,
        Durability::Fsync,
    ] {
        let (last, head, _) = scenario(class, false).await;
        if class == Durability::Fsync {
            assert_eq!(
                head, last,
                "fsync reserves nothing: the head is the last recovered seq"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_records_are_visible_in_seq_order_under_concurrency() {
    let h = Harness::start(temp_dir("order"), ManualClock::new(1));
    let (t, _) = h
        .registry
        .get_or_create("t", config(Durability::Fsync))
        .await
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    write(&t, 2).await;
                }
            })
        })
        .collect();
    let mut cursor = 0;
    let mut seen = 0;
    while seen < 320 {
        let req = ReadRequest {
            from_seq: cursor,
            limit: 1000,
            budget_bytes: 1 << 20,
            skip_nodes: vec![],
            include_meta: true,
        };
        let r = t.read(req).await.unwrap();
        for rec in &r.records {
            assert_eq!(rec.seq, cursor + 1, "a reader must never skip a seq");
            cursor = rec.seq;
            seen += 1;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&h.dir);
}

async fn read_from(t: &TopicHandle, from_seq: u64) -> super::ReadResult {
    let req = ReadRequest {
        from_seq,
        limit: 100,
        budget_bytes: 1 << 20,
        skip_nodes: Vec::new(),
        include_meta: true,
    };
    t.read(req).await.unwrap()
}

/// Source-trim holes (API.md §12): seqs of their own between records, read as one `source_trim`
/// tombstone, kept across a restart (from the WAL) and a checkpoint (from the snapshot).
#[tokio::test]
async fn holes_take_seqs_and_read_as_a_source_trim_tombstone_across_restarts() {
    for (class, checkpoint) in [(Durability::Fsync, false), (Durability::Disk, true)] {
        let mut h = Harness::start(temp_dir("holes"), ManualClock::new(1));
        let (t, _) = h.registry.get_or_create("t", config(class)).await.unwrap();
        write(&t, 3).await;
        let ok = t.append_holes(5).await.unwrap();
        assert_eq!((ok.first_seq, ok.last_seq), (9, 8), "{class:?}");
        assert_eq!(write(&t, 2).await, 10);
        drop(t);
        if checkpoint {
            h.checkpoint().await;
        }
        h = h.restart(true).await;
        let t = h.registry.get("t").unwrap();
        let first = read_from(&t, 0).await;
        let seqs: Vec<u64> = first.records.iter().map(|r| r.seq).collect();
        assert_eq!((seqs, first.next_from_seq), (vec![1, 2, 3], 3), "{class:?}");
        let gap = read_from(&t, 3).await;
        let tomb = gap.tombstone.expect("a tombstone over the holes");
        assert_eq!(
            (tomb.gap_from, tomb.gap_to, tomb.reason),
            (4, 8, "source_trim")
        );
        let seqs: Vec<u64> = gap.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [9, 10], "{class:?}");
        assert_eq!(write(&t, 1).await, 11, "{class:?}: no seq issued twice");
        let _ = std::fs::remove_dir_all(&h.dir);
    }
}

/// Holes at the tail still count as issued after a restart, in every class.
#[tokio::test]
async fn holes_at_the_tail_are_never_reissued_after_a_restart() {
    for class in [Durability::Fsync, Durability::Disk, Durability::Memory] {
        for graceful in [true, false] {
            let mut h = Harness::start(temp_dir("tail-holes"), ManualClock::new(1));
            let (t, _) = h.registry.get_or_create("t", config(class)).await.unwrap();
            write(&t, 2).await;
            assert_eq!(t.append_holes(4).await.unwrap().last_seq, 6);
            drop(t);
            // Let the lazily logged hole frame reach the file before the simulated crash.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            h = h.restart(graceful).await;
            let t = h.registry.get("t").unwrap();
            let next = write(&t, 1).await;
            assert!(
                next > 6,
                "{class:?} graceful={graceful}: seq {next} reissued"
            );
            let tomb = read_from(&t, 2).await.tombstone.expect("holes reported");
            assert_eq!(
                (tomb.gap_from, tomb.reason),
                (3, "source_trim"),
                "{class:?}"
            );
            let _ = std::fs::remove_dir_all(&h.dir);
        }
    }
}
