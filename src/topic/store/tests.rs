use super::*;
use bytes::Bytes;
use std::sync::Arc;

/// A small record at `seq` (its `$ts` is the seq), shared with the tier modules' tests.
pub(super) fn rec(seq: u64, tag: Option<&str>) -> Record {
    Record {
        seq,
        ts: seq as i64,
        node: None,
        tag: tag.map(Arc::from),
        data: Bytes::from_static(b"12"),
        meta: None,
        hops: 0,
    }
}

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("topics-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn live(s: &Store) -> Vec<u64> {
    s.live_after(0).map(|r| r.seq).collect()
}

/// Seqs 1..=6 with tags; 1..=4 sealed, 5..=6 hot.
fn two_tier(tag: &str) -> Store {
    let mut s = Store::default();
    for (seq, t) in [
        (1, Some("a:1")),
        (2, None),
        (3, Some("a:2")),
        (4, Some("b")),
    ] {
        s.push(rec(seq, t));
    }
    assert!(s
        .seal(&crate::storage::fs::RealFs, &tmp(tag), 9, 1)
        .unwrap());
    s.push(rec(5, Some("a:1")));
    s.push(rec(6, None));
    s
}

#[test]
fn reads_span_both_tiers() {
    let s = two_tier("reads");
    assert_eq!(live(&s), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        s.live_after(3).map(|r| r.seq).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert_eq!((s.count(), s.bytes(), s.hot_count()), (6, 12, 2));
    assert_eq!(s.live_after(0).next().unwrap(), rec(1, Some("a:1")));
}

#[test]
fn tag_deletes_reach_sealed_records_through_the_segment_tag_table() {
    let mut s = two_tier("tagdel");
    assert_eq!(
        s.delete(6, Some(&TagPredicate::Prefix("a:".into()))),
        (3, 6)
    );
    assert_eq!(live(&s), vec![2, 4, 6]);
    assert_eq!(s.first_live_seq(), Some(2));
    assert_eq!(s.count(), 3);
    let (metas, hot) = s.image();
    assert_eq!(metas[0].front_seq, 2);
    assert_eq!(metas[0].deleted, vec![3]);
    assert_eq!(hot.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![6]);
}

#[test]
fn eviction_crosses_from_sealed_into_hot() {
    let mut s = two_tier("evict");
    s.delete(99, Some(&TagPredicate::Eq("b".into())));
    let ev = s.evict_front_while(|v, _| v.seq <= 5);
    assert_eq!(
        (ev.records, ev.max_seq),
        (4, 5),
        "seq 4 was deleted, not evicted"
    );
    assert_eq!(live(&s), vec![6]);
    assert!(
        s.image().0.is_empty(),
        "an exhausted segment leaves the store"
    );
}

#[test]
fn attach_restores_a_segment_from_its_meta() {
    let mut s = two_tier("attach");
    s.delete(3, None);
    s.delete(99, Some(&TagPredicate::Eq("b".into())));
    let (metas, _) = s.image();
    let dir = std::env::temp_dir().join(format!("topics-store-attach-{}", std::process::id()));
    let seg = Segment::open(&dir.join(segment::file_name(9, 1, 1))).unwrap();
    let mut r = Store::default();
    r.attach(seg, &metas[0]);
    assert_eq!(live(&r), vec![3]);
    assert_eq!((r.count(), r.bytes()), (1, 2));
}
