use super::*;
use crate::storage::fs::RealFs;
use std::collections::HashSet;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("topics-snap-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn barrier(boot: u32) -> Barrier {
    Barrier {
        boot,
        start: vec![1, 2],
    }
}

fn write_one(dir: &Path, n: u64, ceiling: u64) {
    write(&RealFs, dir, n, &barrier(n as u32), (9, 1), |w| {
        let mut b = Vec::new();
        frame::encode_reserve(&mut b, 1, ceiling);
        w.write_all(&b)
    })
    .unwrap();
}

#[test]
fn round_trips_with_barrier_and_end_marker() {
    let d = tmp("rt");
    write_one(&d, 3, 77);
    let s = load_latest(&RealFs, &d).unwrap().unwrap();
    assert_eq!((s.number, s.barrier.clone()), (3, barrier(3)));
    assert_eq!(
        s.frames[0],
        Frame::Reserve {
            topic_id: 1,
            ceiling: 77
        }
    );
    assert_eq!(
        s.frames[1],
        Frame::SnapshotEnd {
            next_topic_id: 9,
            topics: 1
        }
    );
}

#[test]
fn a_torn_newest_snapshot_falls_back_to_the_previous() {
    let d = tmp("fallback");
    write_one(&d, 1, 10);
    write_one(&d, 2, 20);
    let p = d.join(file_name(2));
    let bytes = std::fs::read(&p).unwrap();
    for cut in [bytes.len() - 1, bytes.len() - 20, 30, 5] {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert_eq!(
            load_latest(&RealFs, &d).unwrap().unwrap().number,
            1,
            "cut at {cut}"
        );
    }
}

#[test]
fn no_valid_snapshot_refuses_to_start() {
    let d = tmp("none");
    write_one(&d, 1, 10);
    let p = d.join(file_name(1));
    let mut bytes = std::fs::read(&p).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    assert!(load_latest(&RealFs, &d).is_err());
}

#[test]
fn temp_files_of_interrupted_writes_are_ignored_and_removed() {
    let d = tmp("tmpfile");
    write_one(&d, 1, 10);
    std::fs::write(d.join("00000000000000000002.snap.tmp"), b"partial").unwrap();
    assert_eq!(load_latest(&RealFs, &d).unwrap().unwrap().number, 1);
    assert!(!d.join("00000000000000000002.snap.tmp").exists());
}

#[test]
fn files_not_named_like_ours_are_never_loaded_or_removed() {
    let d = tmp("foreign");
    for n in 1..=3 {
        write_one(&d, n, n * 10);
    }
    let foreign = [
        "README",
        "notes.tmp",
        "7.snap",
        "1.snap.tmp",
        "00000000000000000001.snap.bak",
    ];
    for name in foreign {
        std::fs::write(d.join(name), b"not ours").unwrap();
    }
    assert_eq!(list(&RealFs, &d).unwrap(), vec![1, 2, 3]);
    assert_eq!(
        prune(&RealFs, &d, &HashSet::new()).unwrap(),
        Some(barrier(2))
    );
    assert_eq!(load_latest(&RealFs, &d).unwrap().unwrap().number, 3);
    for name in foreign {
        assert!(d.join(name).exists(), "{name} was removed");
    }
}

#[test]
fn prune_keeps_two_and_reports_the_older_barrier() {
    let d = tmp("prune");
    for n in 1..=4 {
        write_one(&d, n, n * 10);
    }
    assert_eq!(
        prune(&RealFs, &d, &HashSet::new()).unwrap(),
        Some(barrier(3))
    );
    assert_eq!(list(&RealFs, &d).unwrap(), vec![3, 4]);
}

#[test]
fn prune_keeps_a_pinned_snapshot_but_reports_the_newest_twos_barrier() {
    let d = tmp("prune-pinned");
    for n in 1..=5 {
        write_one(&d, n, n * 10);
    }
    assert_eq!(
        prune(&RealFs, &d, &HashSet::from([2])).unwrap(),
        Some(barrier(4))
    );
    assert_eq!(list(&RealFs, &d).unwrap(), vec![2, 4, 5]);
}

#[test]
fn barrier_covers_later_boots_and_later_files() {
    let b = Barrier {
        boot: 5,
        start: vec![2, 0],
    };
    assert!(!b.covers(4, 0, 9));
    assert!(!b.covers(5, 0, 1));
    assert!(b.covers(5, 0, 2));
    assert!(b.covers(5, 1, 0));
    assert!(b.covers(6, 0, 0));
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Random bytes, and random corruptions of a valid snapshot, never panic the loader and
        /// never load as a valid snapshot unless untouched.
        #[test]
        fn loader_never_panics_or_accepts_corruption(
            junk in prop::collection::vec(any::<u8>(), 0..300),
            flip_at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let d = tmp("fuzz");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(file_name(1)), &junk).unwrap();
            prop_assert!(load(&d, 1).is_none());
            write_one(&d, 2, 42);
            let p = d.join(file_name(2));
            let mut bytes = std::fs::read(&p).unwrap();
            let i = flip_at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            std::fs::write(&p, &bytes).unwrap();
            prop_assert!(load(&d, 2).is_none(), "a flipped bit at {} was accepted", i);
        }
    }
}
