use super::*;
use bytes::Bytes;

fn rec(seq: u64, node: Option<&str>, len: usize) -> Record {
    Record {
        seq,
        ts: 0,
        node: node.map(Into::into),
        tag: None,
        data: Bytes::from(vec![b'1'; len]),
        meta: None,
        hops: 0,
    }
}

fn wm(h: u64, l: u64, floors: LossFloors) -> Watermarks {
    Watermarks {
        head_seq: h,
        earliest_seq: l,
        floors,
        first_loss: None,
    }
}

/// `plan_start` as (tombstone, scan start).
fn plan(from_seq: u64, w: &Watermarks) -> (Option<Tombstone>, u64) {
    let s = plan_start(from_seq, w);
    (s.tombstone, s.after)
}

/// A walk over records only, with no tombstone yet.
fn walk(
    recs: impl Iterator<Item = Record>,
    after: u64,
    head: u64,
    lim: &ScanLimits<'_>,
) -> ScanOutcome {
    let start = ScanStart {
        after,
        tombstone: None,
    };
    let w = wm(head, 1, LossFloors::default());
    scan(recs.map(Item::Record), start, &w, lim)
}

#[test]
fn no_tombstone_without_loss() {
    assert_eq!(plan(0, &wm(10, 1, LossFloors::default())), (None, 0));
    assert_eq!(plan(10, &wm(10, 1, LossFloors::default())), (None, 10));
}

#[test]
fn cursor_above_head_is_recreated() {
    let (t, start) = plan(50, &wm(3, 1, LossFloors::default()));
    let t = t.unwrap();
    assert_eq!(
        (t.gap_from, t.gap_to, t.reason, t.missed_estimate),
        (1, 3, "recreated", 3)
    );
    assert_eq!(start, 0);
    let (t, _) = plan(5, &wm(0, 1, LossFloors::default()));
    assert_eq!(t.unwrap().missed_estimate, 1);
}

#[test]
fn eviction_past_cursor_tombstones_with_reason() {
    let floors = LossFloors {
        cap: 10,
        ttl: 0,
        source_trim: 0,
    };
    let (t, start) = plan(4, &wm(20, 11, floors));
    let t = t.unwrap();
    assert_eq!(
        (
            t.gap_from,
            t.gap_to,
            t.reason,
            t.missed_estimate,
            t.earliest_seq
        ),
        (5, 10, "cap", 6, 11)
    );
    assert_eq!(start, 10);
    let floors = LossFloors {
        cap: 10,
        ttl: 7,
        source_trim: 0,
    };
    assert_eq!(plan(4, &wm(20, 11, floors)).0.unwrap().reason, "mixed");
    assert_eq!(plan(8, &wm(20, 11, floors)).0.unwrap().reason, "cap");
    let floors = LossFloors {
        cap: 0,
        ttl: 7,
        source_trim: 0,
    };
    assert_eq!(plan(2, &wm(20, 8, floors)).0.unwrap().reason, "ttl");
    // A cursor just below E reads silently.
    assert_eq!(plan(7, &wm(20, 8, floors)).0, None);
}

#[test]
fn scan_respects_limit_budget_and_node_filter() {
    let recs = [
        rec(1, None, 4),
        rec(2, Some("me"), 4),
        rec(3, None, 4),
        rec(5, None, 4),
    ];
    let seqs = |o: &ScanOutcome| o.taken.iter().map(|r| r.seq).collect::<Vec<_>>();
    let nodes = vec!["me".to_string()];
    let lim = ScanLimits {
        limit: 2,
        budget_bytes: 100,
        include_meta: true,
        skip_nodes: &nodes,
    };
    let out = walk(recs.iter().cloned(), 0, 6, &lim);
    assert_eq!(
        (seqs(&out), out.next_from_seq, out.scanned),
        (vec![1, 3], 3, 3)
    );
    let lim = ScanLimits {
        limit: 10,
        budget_bytes: 100,
        include_meta: true,
        skip_nodes: &nodes,
    };
    let out = walk(recs.iter().cloned(), 0, 6, &lim);
    assert_eq!((out.taken.len(), out.next_from_seq, out.scanned), (3, 6, 4));
    let lim = ScanLimits {
        limit: 10,
        budget_bytes: 5,
        include_meta: true,
        skip_nodes: &[],
    };
    let out = walk(recs.iter().cloned(), 0, 6, &lim);
    assert_eq!((seqs(&out), out.next_from_seq), (vec![1], 1));
    let lim = ScanLimits {
        limit: 10,
        budget_bytes: 1,
        include_meta: true,
        skip_nodes: &[],
    };
    assert_eq!(
        seqs(&walk(recs.iter().cloned(), 0, 6, &lim)),
        vec![1],
        "one record always fits"
    );
    assert_eq!(walk(std::iter::empty(), 3, 6, &lim).next_from_seq, 6);
}

fn loss(from: u64, to: u64) -> Item {
    Item::Loss(LossRange {
        gap_from: from,
        gap_to: to,
        reason: "corrupt",
    })
}

fn lim(limit: usize) -> ScanLimits<'static> {
    ScanLimits {
        limit,
        budget_bytes: 100,
        include_meta: true,
        skip_nodes: &[],
    }
}

fn seqs(o: &ScanOutcome) -> Vec<u64> {
    o.taken.iter().map(|r| r.seq).collect()
}

#[test]
fn a_loss_range_met_first_becomes_the_tombstone_and_the_walk_goes_on() {
    let floors = LossFloors {
        cap: 2,
        ttl: 0,
        source_trim: 0,
    };
    let w = wm(9, 6, floors);
    let start = plan_start(2, &w);
    let items = vec![
        loss(3, 5),
        Item::Record(rec(6, None, 1)),
        Item::Record(rec(8, None, 1)),
    ];
    let out = scan(items, start, &w, &lim(10));
    let t = out.tombstone.clone().unwrap();
    assert_eq!(
        (t.gap_from, t.gap_to, t.reason, t.missed_estimate),
        (3, 5, "corrupt", 3)
    );
    assert_eq!(
        (t.earliest_seq, t.head_seq),
        (3, 9),
        "E and H, as in API.md §6"
    );
    assert_eq!((seqs(&out), out.next_from_seq), (vec![6, 8], 9));
    // The limit reached right after the range: the cursor moves past the range.
    let out = scan(
        vec![
            loss(3, 5),
            Item::Record(rec(6, None, 1)),
            Item::Record(rec(8, None, 1)),
        ],
        plan_start(2, &w),
        &w,
        &lim(1),
    );
    assert_eq!((seqs(&out), out.next_from_seq), (vec![6], 6));
    let out = scan(vec![loss(3, 5), loss(7, 7)], plan_start(2, &w), &w, &lim(0));
    assert_eq!(out.next_from_seq, 2, "a zero limit stops before anything");
}

#[test]
fn a_loss_range_after_a_taken_record_stops_the_walk_before_it() {
    let w = wm(9, 1, LossFloors::default());
    let items = vec![
        Item::Record(rec(1, None, 1)),
        loss(2, 3),
        Item::Record(rec(4, None, 1)),
    ];
    let out = scan(items, plan_start(0, &w), &w, &lim(10));
    assert_eq!(
        (seqs(&out), out.tombstone, out.next_from_seq),
        (vec![1], None, 1)
    );
    // The next read, from the cursor it was given, reports the range.
    let items = vec![loss(2, 3), Item::Record(rec(4, None, 1))];
    let out = scan(items, plan_start(1, &w), &w, &lim(10));
    assert_eq!(
        out.tombstone.as_ref().map(|t| (t.gap_from, t.gap_to)),
        Some((2, 3))
    );
    assert_eq!((seqs(&out), out.next_from_seq), (vec![4], 9));
}

#[test]
fn a_second_loss_range_waits_for_the_next_read() {
    let w = wm(9, 1, LossFloors::default());
    let items = vec![loss(1, 2), loss(4, 4), Item::Record(rec(5, None, 1))];
    let out = scan(items, plan_start(0, &w), &w, &lim(10));
    assert_eq!(
        out.tombstone.as_ref().map(|t| (t.gap_from, t.gap_to)),
        Some((1, 2))
    );
    assert_eq!((seqs(&out), out.next_from_seq), (vec![], 2));
    // Skipped (node-filtered) records before a range take nothing: the range is reported.
    let me = vec!["me".to_string()];
    let l = ScanLimits {
        skip_nodes: &me,
        ..lim(10)
    };
    let items = vec![Item::Record(rec(3, Some("me"), 1)), loss(4, 4)];
    let out = scan(items, plan_start(2, &w), &w, &l);
    assert_eq!(out.tombstone.as_ref().map(|t| t.gap_from), Some(4));
    assert_eq!(out.next_from_seq, 9);
}

#[test]
fn a_loss_range_after_an_eviction_tombstone_stops_the_walk_and_is_not_skipped() {
    let floors = LossFloors {
        cap: 4,
        ttl: 0,
        source_trim: 0,
    };
    // Records 1..=4 evicted, 5..=6 lost (known range), 7 is the first live record.
    let w = Watermarks {
        first_loss: Some(5),
        ..wm(9, 7, floors)
    };
    let start = plan_start(0, &w);
    assert_eq!(
        start.after, 4,
        "the scan starts below the loss range, not at L"
    );
    let out = scan(
        vec![loss(5, 6), Item::Record(rec(7, None, 1))],
        start,
        &w,
        &lim(10),
    );
    assert_eq!(
        out.tombstone.as_ref().map(|t| (t.gap_to, t.reason)),
        Some((4, "cap"))
    );
    assert_eq!((seqs(&out), out.next_from_seq), (vec![], 4));
    let out = scan(
        vec![loss(5, 6), Item::Record(rec(7, None, 1))],
        plan_start(4, &w),
        &w,
        &lim(10),
    );
    assert_eq!(
        out.tombstone.as_ref().map(|t| (t.gap_from, t.gap_to)),
        Some((5, 6))
    );
    assert_eq!(seqs(&out), vec![7]);
}

#[test]
fn a_loss_range_is_cut_at_the_head() {
    let w = wm(6, 1, LossFloors::default());
    let out = scan(vec![loss(5, 20)], plan_start(4, &w), &w, &lim(10));
    let t = out.tombstone.unwrap();
    assert_eq!((t.gap_to, t.missed_estimate, out.next_from_seq), (6, 2, 6));
    let out = scan(vec![loss(7, 9)], plan_start(4, &w), &w, &lim(10));
    assert_eq!((out.tombstone, out.next_from_seq), (None, 6));
}
