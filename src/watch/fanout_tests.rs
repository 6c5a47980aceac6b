use super::*;
use std::sync::atomic::AtomicUsize;

fn key(from_seq: u64) -> Key {
    Key {
        topic_id: 1,
        from_seq,
        limit: 100,
        budget_bytes: 1 << 20,
        skip_nodes: Vec::new(),
        include: (false, true, true),
    }
}

fn floor(head: u64) -> Floor {
    Floor {
        head,
        born_after: None,
    }
}

fn batch(head_seq: u64) -> SharedBatch {
    SharedBatch {
        next_from_seq: head_seq,
        head_seq,
        caught_up: true,
        tombstone: None,
        record: Some(Bytes::from_static(b"event: record\ndata: {}\n\n")),
    }
}

#[tokio::test]
async fn watchers_woken_together_share_one_read_and_one_encoded_batch() {
    let cache = Arc::new(FanoutCache::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get(&key(7), floor(9), || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(batch(9))
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.reads(), 1);
    assert!(
        got.iter().all(|b| Arc::ptr_eq(b, &got[0])),
        "one shared batch"
    );
}

#[tokio::test]
async fn an_entry_older_than_the_wake_up_is_never_reused() {
    let cache = FanoutCache::default();
    let first = cache
        .get(&key(3), floor(5), || async { Ok(batch(5)) })
        .await;
    assert_eq!(first.unwrap().head_seq, 5);
    // Woken for head 6: the entry that saw only 5 would hide seq 6 until the heartbeat.
    let again = cache
        .get(&key(3), floor(6), || async { Ok(batch(6)) })
        .await;
    assert_eq!(again.unwrap().head_seq, 6);
    assert_eq!(cache.reads(), 2);
    // A different cursor or incarnation never joins another key's read.
    let other = Key {
        topic_id: 2,
        ..key(3)
    };
    cache
        .get(&other, floor(6), || async { Ok(batch(6)) })
        .await
        .unwrap();
    assert_eq!(cache.reads(), 3);
}

#[tokio::test]
async fn a_first_read_after_arming_takes_only_a_batch_read_after_the_arming() {
    let cache = FanoutCache::default();
    cache
        .get(&key(4), floor(4), || async { Ok(batch(4)) })
        .await
        .unwrap();
    // Armed now, with a head watch still showing 4 though the topic may be at 6 already.
    let armed = Floor {
        head: 4,
        born_after: Some(Instant::now()),
    };
    let own = cache.get(&key(4), armed, || async { Ok(batch(6)) }).await;
    assert_eq!((own.unwrap().head_seq, cache.reads()), (6, 2));
    // A batch read after the arming is shared with the next watcher armed before it.
    let shared = cache.get(&key(4), armed, || async { Ok(batch(7)) }).await;
    assert_eq!((shared.unwrap().head_seq, cache.reads()), (6, 2));
}

#[tokio::test]
async fn a_failed_read_is_not_shared_and_is_retried_by_the_next_watcher() {
    let cache = FanoutCache::default();
    let r = cache
        .get(&key(1), floor(1), || async { Err(TopicError::Throttled) })
        .await;
    assert!(matches!(r, Err(TopicError::Throttled)));
    let ok = cache
        .get(&key(1), floor(1), || async { Ok(batch(1)) })
        .await;
    assert_eq!(ok.unwrap().head_seq, 1);
}

#[tokio::test]
async fn the_cache_is_bounded_in_entries_and_age() {
    let cache = FanoutCache::default();
    for from in 0..(MAX_ENTRIES as u64 * 3) {
        cache
            .get(&key(from), floor(0), || async { Ok(batch(0)) })
            .await
            .unwrap();
    }
    assert!(cache.len() <= MAX_ENTRIES, "{} entries", cache.len());
    tokio::time::sleep(FRESH).await;
    cache
        .get(&key(u64::MAX), floor(0), || async { Ok(batch(0)) })
        .await
        .unwrap();
    assert_eq!(cache.len(), 1, "entries past FRESH are dropped");
    // A fresh entry is reused; the same key past FRESH is read again.
    cache
        .get(&key(u64::MAX), floor(0), || async { Ok(batch(0)) })
        .await
        .unwrap();
    let reads = cache.reads();
    tokio::time::sleep(FRESH).await;
    cache
        .get(&key(u64::MAX), floor(0), || async { Ok(batch(0)) })
        .await
        .unwrap();
    assert_eq!(cache.reads(), reads + 1);
}
