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

fn tmp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("topics-store-{tag}-{}", std::process::id()))
}

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = tmp_path(tag);
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

/// Flip one byte of record `i`'s body in the sealed segment file, in place (the mapping sees
/// it, as it would see bit rot after the segment was opened).
fn rot_record(dir: &std::path::Path, i: usize) {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join(segment::file_name(9, 1, 1));
    let bytes = std::fs::read(&path).unwrap();
    let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let entry = 48 + i * 32;
    let offset = u32::from_le_bytes(bytes[entry + 16..entry + 20].try_into().unwrap()) as usize;
    let at = 48 + count * 32 + offset + 1;
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(&[bytes[at] ^ 0x40]).unwrap();
}

fn walk(s: &Store, after: u64, found: &mut Vec<u64>) -> Vec<String> {
    s.items_after(after, 1, found)
        .map(|i| match i {
            crate::model::loss::Item::Record(r) => format!("r{}", r.seq),
            crate::model::loss::Item::Loss(l) => {
                format!("{}-{}:{}", l.gap_from, l.gap_to, l.reason)
            }
        })
        .collect()
}

#[test]
fn a_damaged_sealed_record_is_found_once_then_known() {
    let mut s = two_tier("rot");
    rot_record(&tmp_path("rot"), 1);
    let mut found = Vec::new();
    assert_eq!(
        walk(&s, 0, &mut found),
        ["r1", "2-2:corrupt", "r3", "r4", "r5", "r6"]
    );
    assert_eq!(found, [2]);
    let runs = s.note_damaged(&found);
    assert_eq!(
        (runs[0].from, runs[0].to, runs[0].first_in_segment),
        (2, 2, true)
    );
    let mut again = Vec::new();
    assert_eq!(
        walk(&s, 0, &mut again),
        ["r1", "2-2:corrupt", "r3", "r4", "r5", "r6"]
    );
    assert!(again.is_empty(), "known now: not found again");
    assert_eq!(walk(&s, 2, &mut again), ["r3", "r4", "r5", "r6"]);
    // A prefix delete over the damaged record makes it read silently.
    s.delete(3, None);
    assert_eq!(walk(&s, 0, &mut again), ["r3", "r4", "r5", "r6"]);
    assert!(s.loss_ranges().next().is_none());
}

#[test]
fn runs_of_damage_split_at_readable_records_and_count_the_segment_once() {
    let mut s = two_tier("runs");
    for i in [0, 1, 3] {
        rot_record(&tmp_path("runs"), i);
    }
    let mut found = Vec::new();
    assert_eq!(
        walk(&s, 0, &mut found),
        ["1-2:corrupt", "r3", "4-4:corrupt", "r5", "r6"]
    );
    let runs: Vec<_> = s
        .note_damaged(&found)
        .into_iter()
        .map(|r| (r.from, r.to, r.records, r.first_in_segment))
        .collect();
    assert_eq!(runs, [(1, 2, 2, true), (4, 4, 1, false)]);
    s.drop_losses_below(3);
    let known: Vec<_> = s.loss_ranges().map(|r| (r.gap_from, r.gap_to)).collect();
    assert_eq!(known, [(4, 4)]);
    assert_eq!(s.last_ts(), Some(6));
}

#[test]
fn a_damaged_segment_reads_as_one_corrupt_range_up_to_the_next_held_seq() {
    let s = two_tier("damaged");
    let (metas, hot) = s.image();
    let mut r = Store::default();
    r.attach_damaged(&metas[0]);
    for rec in hot {
        r.push(rec);
    }
    r.resolve_damaged(6);
    let mut found = Vec::new();
    assert_eq!(walk(&r, 0, &mut found), ["1-4:corrupt", "r5", "r6"]);
    assert!(found.is_empty());
    assert_eq!(
        r.count(),
        2,
        "nothing of the damaged segment counts as live"
    );
    assert_eq!(r.image().0, metas, "the file stays referred to");
    // With nothing after it, the range reaches the head.
    let mut alone = Store::default();
    alone.attach_damaged(&metas[0]);
    alone.resolve_damaged(9);
    assert_eq!(walk(&alone, 2, &mut found), ["3-9:corrupt"]);
    // Once `E` passes it, the segment is dropped (and its file becomes garbage).
    r.drop_losses_below(5);
    assert!(r.image().0.is_empty());
    assert_eq!(walk(&r, 0, &mut found), ["r5", "r6"]);
}
