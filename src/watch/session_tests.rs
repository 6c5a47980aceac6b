use super::*;

fn opts() -> WatchOpts {
    WatchOpts {
        owner: None,
        skip_nodes: Vec::new(),
        limit: 256,
        budget_bytes: 1 << 18,
        heartbeat: Duration::from_secs(15),
        include: Include {
            tags: false,
            meta: true,
            data: true,
        },
    }
}

fn cursors(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

const TTL: Duration = Duration::from_millis(300_000);

#[test]
fn idle_session_is_reclaimed_only_past_the_ttl() {
    let s = Arc::new(Sessions::new(TTL, 0, 0));
    let t0 = Instant::now();
    s.create("w1".into(), cursors(&[("a", 0)]), opts(), t0)
        .unwrap();
    assert!(
        s.open("w1", t0 + TTL).is_ok(),
        "exactly the TTL is not older"
    );
    // The guard dropped just now (real time), so it is the last access.
    let later = Instant::now() + TTL + Duration::from_millis(1);
    assert_eq!(s.open("w1", later).err(), Some(WatchError::UnknownSession));
    assert!(s.is_empty());
}

#[test]
fn a_session_with_an_open_stream_is_never_reclaimed() {
    let s = Arc::new(Sessions::new(TTL, 0, 0));
    let t0 = Instant::now();
    s.create("w1".into(), cursors(&[("a", 0)]), opts(), t0)
        .unwrap();
    let guard = s.open("w1", t0).unwrap();
    let far = t0 + TTL * 10;
    s.create("w2".into(), cursors(&[("a", 0)]), opts(), far)
        .unwrap();
    assert_eq!(s.len(), 2, "w1 is streaming");
    drop(guard);
    s.create("w3".into(), cursors(&[]), opts(), far + TTL * 2)
        .unwrap();
    assert_eq!(s.len(), 1, "w1 and w2 idle past the TTL, only w3 left");
}

#[test]
fn session_cap_counts_after_reclamation() {
    let s = Arc::new(Sessions::new(TTL, 1, 0));
    let t0 = Instant::now();
    s.create("w1".into(), cursors(&[]), opts(), t0).unwrap();
    let err = s.create("w2".into(), cursors(&[]), opts(), t0).err();
    assert_eq!(err, Some(WatchError::SessionLimit { max: 1 }));
    let late = t0 + TTL + Duration::from_millis(1);
    assert!(s.create("w2".into(), cursors(&[]), opts(), late).is_ok());
}

#[test]
fn stream_cap_frees_its_slot_when_the_stream_ends() {
    let s = Arc::new(Sessions::new(TTL, 0, 1));
    let t0 = Instant::now();
    s.create("w1".into(), cursors(&[]), opts(), t0).unwrap();
    let g = s.open("w1", t0).unwrap();
    assert_eq!(
        s.open("w1", t0).err(),
        Some(WatchError::StreamLimit { max: 1 })
    );
    assert_eq!(
        s.open("nope", t0).err(),
        Some(WatchError::UnknownSession),
        "an unknown wid is reported before the cap"
    );
    drop(g);
    assert!(s.open("w1", t0).is_ok());
}

#[test]
fn rewind_only_moves_cursors_back_and_ignores_unknown_topics() {
    let s = Sessions::new(TTL, 0, 0);
    let t0 = Instant::now();
    let sess = s
        .create("w".into(), cursors(&[("a", 10), ("b", 5)]), opts(), t0)
        .unwrap();
    sess.rewind(&cursors(&[("a", 7), ("b", 9), ("zz", 1)]));
    assert_eq!((sess.cursor("a"), sess.cursor("b")), (Some(7), Some(5)));
    assert_eq!(sess.cursor("zz"), None);
}
