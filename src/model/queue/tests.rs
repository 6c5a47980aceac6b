use super::*;

fn node(s: &str) -> Arc<str> {
    Arc::from(s)
}

fn leased(b: &mut LeaseBook, seq: u64, who: &str, deadline: i64) -> u64 {
    b.bump(seq);
    b.grant(seq, node(who), deadline, None).lease_no
}

#[test]
fn lease_ids_round_trip_and_reject_malformed_ones() {
    assert_eq!(lease_id(500), "lease_1f4");
    assert_eq!(parse_lease_id("lease_1f4"), Some(500));
    for bad in [
        "lease_",
        "lease_xyz",
        "1f4",
        "lease_1F4g",
        "lease_11111111111111111",
    ] {
        assert_eq!(parse_lease_id(bad), None, "{bad}");
    }
}

#[test]
fn lease_numbers_count_up_and_only_the_holder_with_its_fence_holds() {
    let mut b = LeaseBook::default();
    assert_eq!(leased(&mut b, 3, "a", 100), 1);
    assert_eq!(leased(&mut b, 4, "b", 100), 2);
    assert!(b.holds(3, "a", None, 100));
    assert!(b.holds(3, "a", Some(1), 50));
    assert!(!b.holds(3, "a", Some(2), 50), "stale lease id");
    assert!(!b.holds(3, "b", None, 50), "not the holder");
    assert!(!b.holds(3, "a", None, 101), "expired");
    assert!(!b.holds(9, "a", None, 0), "never leased");
}

#[test]
fn expiry_is_lazy_and_moves_leases_and_due_delays_to_reclaim_lowest_first() {
    let mut b = LeaseBook::default();
    leased(&mut b, 7, "a", 100);
    leased(&mut b, 5, "a", 200);
    leased(&mut b, 9, "a", 100);
    b.release(9, 150, 100); // delayed nack, due at 150
    assert_eq!(
        b.expire(100, None),
        Vec::<u64>::new(),
        "now == deadline is still valid"
    );
    assert_eq!(b.expire(101, None), vec![7]);
    assert_eq!(b.take_reclaimed(10), vec![7]);
    b.put_back(7);
    assert_eq!(b.expire(150, None), Vec::<u64>::new());
    assert_eq!(b.take_reclaimed(1), vec![7]);
    assert_eq!(b.take_reclaimed(5), vec![9], "the delay is over");
    assert!(b.tracked(5) && !b.tracked(6));
}

#[test]
fn deliveries_survive_release_and_go_with_forget() {
    let mut b = LeaseBook::default();
    leased(&mut b, 1, "a", 10);
    b.release(1, 0, 0);
    leased(&mut b, 1, "a", 20);
    assert_eq!(b.deliveries(1), 2);
    b.extend(1, 99);
    assert_eq!(b.lease(1).map(|l| l.deadline), Some(99));
    b.forget(1);
    assert_eq!(b.deliveries(1), 0);
    assert!(!b.tracked(1));
}

#[test]
fn a_closed_connection_releases_only_its_own_leases() {
    let mut b = LeaseBook::default();
    b.bump(1);
    b.grant(1, node("w"), 100, Some(7));
    b.bump(2);
    b.grant(2, node("w"), 100, None);
    assert_eq!(b.held_by_conn(7, 0), 1);
    assert_eq!(b.release_conn(7), vec![1]);
    assert_eq!(b.take_reclaimed(5), vec![1]);
    assert!(b.holds(2, "w", None, 0));
}

#[test]
fn restore_keeps_leases_counters_and_delays_and_never_reissues_a_lease_number() {
    let mut b = LeaseBook::default();
    leased(&mut b, 1, "a", 100);
    leased(&mut b, 2, "a", 100);
    b.release(2, 500, 0);
    leased(&mut b, 3, "a", 100);
    b.release(3, 0, 0);
    let r = LeaseBook::restore(b.states(), b.last_lease(), 4);
    assert!(r.holds(1, "a", Some(1), 50));
    assert_eq!((r.deliveries(2), r.delayed_count()), (1, 1));
    assert_eq!(r.dead_lettered, 4);
    let mut r = r;
    assert_eq!(r.take_reclaimed(5), vec![3]);
    assert_eq!(leased(&mut r, 3, "b", 10), 4);
    assert_eq!(r.deliveries(3), 2);
}

#[test]
fn in_flight_counts_unexpired_leases() {
    let mut b = LeaseBook::default();
    leased(&mut b, 1, "a", 10);
    leased(&mut b, 2, "a", 20);
    assert_eq!(b.in_flight(5), 2);
    assert_eq!(b.in_flight(15), 1);
}

#[test]
fn backoff_grows_exponentially_with_jitter_within_half_and_full_and_caps_at_max() {
    let b = Backoff {
        base_ms: 1000,
        max_ms: 10_000,
    };
    for seq in 1..50 {
        for (deliveries, full) in [
            (1, 1000),
            (2, 2000),
            (3, 4000),
            (4, 8000),
            (5, 10_000),
            (30, 10_000),
        ] {
            let d = b.delay_ms(seq, deliveries);
            assert!(
                (full / 2..=full).contains(&d),
                "seq {seq} #{deliveries}: {d}"
            );
        }
    }
    let spread: std::collections::HashSet<u64> = (1..50).map(|s| b.delay_ms(s, 3)).collect();
    assert!(
        spread.len() > 10,
        "jitter spreads jobs that failed together"
    );
}

#[test]
fn a_backoff_hides_the_seq_then_queues_it_behind_the_fresh_work_waiting_when_it_ended() {
    let b = Backoff {
        base_ms: 100,
        max_ms: 100,
    };
    let mut book = LeaseBook::default();
    leased(&mut book, 1, "a", 10);
    book.advance_cursor(1);
    book.back_off(1, 0, b);
    assert!(book.tracked(1));
    assert_eq!(
        book.take_reclaimed(5),
        Vec::<u64>::new(),
        "hidden while backing off"
    );
    book.note_head(5); // fresh seqs 2..=5 were written meanwhile
    book.expire(100, Some(b));
    assert_eq!(
        book.take_reclaimed(5),
        Vec::<u64>::new(),
        "behind fresh work up to 5"
    );
    book.advance_cursor(4);
    assert_eq!(book.take_reclaimed(5), Vec::<u64>::new());
    book.advance_cursor(5);
    assert_eq!(book.take_reclaimed(5), vec![1]);
}

#[test]
fn an_expired_lease_backs_off_when_a_backoff_is_set() {
    let b = Backoff {
        base_ms: 50,
        max_ms: 50,
    };
    let mut book = LeaseBook::default();
    leased(&mut book, 1, "a", 10);
    assert_eq!(book.expire(11, Some(b)), vec![1]);
    assert_eq!(book.delayed_count(), 1);
    book.expire(61, Some(b));
    assert_eq!(
        book.take_reclaimed(1),
        vec![1],
        "gate 0: no fresh work waited"
    );
}

#[test]
fn the_last_nack_reason_is_kept_restored_and_forgotten() {
    let mut book = LeaseBook::default();
    leased(&mut book, 1, "a", 10);
    book.set_reason(1, "smtp 550".into());
    book.release(1, 0, 0);
    let r = LeaseBook::restore(book.states(), book.last_lease(), 0);
    assert_eq!(r.reason(1), Some("smtp 550"));
    book.forget(1);
    assert_eq!(book.reason(1), None);
}

#[test]
fn the_oldest_unexpired_lease_age_is_reported() {
    let mut b = LeaseBook::default();
    assert_eq!(b.oldest_lease_ms(100), 0);
    leased(&mut b, 1, "a", 1000);
    b.note_granted(1, 100);
    leased(&mut b, 2, "a", 400);
    b.note_granted(2, 50);
    assert_eq!(b.oldest_lease_ms(300), 250, "seq 2, granted at 50");
    assert_eq!(
        b.oldest_lease_ms(500),
        400,
        "seq 2 expired: seq 1, granted at 100"
    );
    b.forget(1);
    assert_eq!(b.oldest_lease_ms(500), 0);
}

#[test]
fn the_deadline_index_follows_extends_releases_and_expiry() {
    let mut b = LeaseBook::default();
    leased(&mut b, 1, "a", 10);
    leased(&mut b, 2, "a", 20);
    b.extend(1, 30);
    assert_eq!(b.in_flight(25), 1, "seq 2 expired, seq 1 extended to 30");
    assert_eq!(b.expire(25, None), vec![2]);
    assert_eq!(b.in_flight(25), 1);
    b.release(1, 0, 25);
    assert_eq!(
        (b.in_flight(0), b.expire(100, None)),
        (0, Vec::<u64>::new())
    );
    assert_eq!(b.take_reclaimed(5), vec![1, 2]);
}
