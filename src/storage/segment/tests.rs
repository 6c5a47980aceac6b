use super::layout::{ENTRY_V2, HEADER_V2};
use super::*;
use proptest::prelude::*;
use std::sync::Arc;

/// The golden files hold these records: v1 as the previous build wrote them, v2 as this one
/// writes them. A change to the encoder that the decoder mirrors still fails here.
const GOLDEN_V1: &[u8] = include_bytes!("fixtures/v1.seg");
const GOLDEN_V2: &[u8] = include_bytes!("fixtures/v2.seg");

fn rec(seq: u64, tag: Option<&str>, data: &str, meta: bool) -> Record {
    Record {
        seq,
        ts: seq as i64 * 10,
        node: Some(Arc::from("n")),
        tag: tag.map(Arc::from),
        data: Bytes::copy_from_slice(data.as_bytes()),
        meta: meta.then(|| Bytes::from_static(b"{}")),
        hops: 1,
    }
}

fn golden_records() -> Vec<Record> {
    vec![
        rec(3, Some("a:1"), "1", false),
        rec(4, None, "[2]", true),
        rec(7, Some("b"), "\"x\"", false),
    ]
}

fn seg(bytes: &[u8]) -> Result<Segment, Damage> {
    Segment::from_bytes(PathBuf::from("t.seg"), Bytes::copy_from_slice(bytes))
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x10;
    b
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("topics-seg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn writer_output_matches_the_v2_golden_file() {
    assert_eq!(write::encode(5, &golden_records()), GOLDEN_V2);
    // The layout, pinned independently of the encoder.
    assert_eq!(&GOLDEN_V2[..8], b"TOPICSEG");
    assert_eq!(&GOLDEN_V2[8..10], &[2, 0], "version 2");
    assert_eq!(&GOLDEN_V2[12..16], &[3, 0, 0, 0], "count");
    assert_eq!(&GOLDEN_V2[16..24], &5u64.to_le_bytes(), "topic id");
    assert_eq!(
        crc32fast::hash(&GOLDEN_V2[..44]).to_le_bytes(),
        GOLDEN_V2[44..48],
        "header crc"
    );
    assert_eq!(&GOLDEN_V2[HEADER_V2..HEADER_V2 + 8], &3u64.to_le_bytes());
    assert_eq!(&GOLDEN_V2[GOLDEN_V2.len() - 4..], b"SEGE");
}

#[test]
fn golden_files_of_both_versions_read_back() {
    for (bytes, version) in [(GOLDEN_V1, 1), (GOLDEN_V2, 2)] {
        let s = seg(bytes).unwrap();
        assert_eq!((s.version(), s.topic_id(), s.len()), (version, 5, 3));
        assert_eq!((s.first_seq(), s.last_seq()), (3, 7));
        for (i, r) in golden_records().iter().enumerate() {
            assert_eq!(s.read(i).as_ref(), Ok(r), "v{version} record {i}");
        }
        assert!(s.verify_footer().is_ok());
        assert_eq!(s.tagged(&TagPredicate::Prefix("".into())), vec![3, 7]);
    }
}

/// Corrupt fixtures: the v2 golden file with one byte flipped in each part.
#[test]
fn a_flip_in_header_index_or_tag_table_fails_open() {
    let data_start = HEADER_V2 + 3 * ENTRY_V2;
    let tags_start = GOLDEN_V2.len() - 8 - 4 - 2 * 4 - (2 + 3 + 4 + 8) - (2 + 1 + 4 + 8);
    for (at, what) in [
        (2, "not a segment file (magic or size)"),
        (9, "unknown segment format version"),
        (13, "header crc mismatch"),
        (45, "header crc mismatch"),
        (HEADER_V2 + 1, "index crc mismatch"),
        (HEADER_V2 + ENTRY_V2 + 20, "index crc mismatch"),
        (data_start - 1, "index crc mismatch"),
        (tags_start, "tag table crc mismatch"),
        (GOLDEN_V2.len() - 9, "tag table crc mismatch"),
    ] {
        let err = seg(&flipped(GOLDEN_V2, at)).unwrap_err();
        assert_eq!(err.what, what, "flip at {at}");
    }
}

#[test]
fn a_flip_in_a_record_fails_only_that_record() {
    let data_start = HEADER_V2 + 3 * ENTRY_V2;
    let golden = golden_records();
    // Record 0's body is 15 bytes: flags, hops, node (2 + 1), tag (2 + 3), data (4 + 1).
    for (at, bad) in [(data_start, 0), (data_start + 14, 0), (data_start + 15, 1)] {
        let s = seg(&flipped(GOLDEN_V2, at)).expect("index and tags are intact");
        for (i, r) in golden.iter().enumerate() {
            let got = s.read(i);
            if i == bad {
                assert_eq!(got.unwrap_err().what, "record crc mismatch", "flip at {at}");
            } else {
                assert_eq!(got.as_ref(), Ok(r), "flip at {at}, record {i}");
            }
        }
        assert!(s.verify_footer().is_err(), "the footer crc sees it too");
    }
}

#[test]
fn a_flip_in_the_footer_leaves_every_record_readable() {
    let at = GOLDEN_V2.len() - 6;
    let s = seg(&flipped(GOLDEN_V2, at)).unwrap();
    assert!((0..3).all(|i| s.read(i).is_ok()));
    assert_eq!(s.verify_footer().unwrap_err().what, "footer crc mismatch");
}

#[test]
fn check_file_reports_each_damaged_record_with_its_seq() {
    let d = tmp("check");
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("x.seg");
    let data_start = HEADER_V2 + 3 * ENTRY_V2;
    std::fs::write(&p, flipped(GOLDEN_V2, data_start + 15)).unwrap();
    let c = check_file(&p).unwrap();
    let seqs: Vec<_> = c.problems.iter().map(|(d, s)| (d.what, *s)).collect();
    assert_eq!(
        seqs,
        vec![
            ("footer crc mismatch", None),
            ("record crc mismatch", Some(4))
        ]
    );
    std::fs::write(&p, GOLDEN_V2).unwrap();
    assert_eq!(
        check_file(&p).unwrap(),
        FileCheck {
            records: 3,
            version: Some(2),
            problems: vec![]
        }
    );
}

#[test]
fn round_trips_records_index_and_tags() {
    let d = tmp("rt");
    let recs = vec![
        rec(3, Some("a:1"), "1", false),
        rec(4, None, "[2]", true),
        rec(7, Some("b"), "\"x\"", false),
        rec(9, Some("a:2"), "{}", true),
    ];
    let p = write(&crate::storage::fs::RealFs, &d, 5, 2, &recs).unwrap();
    assert!(p.ends_with(file_name(5, 3, 2)));
    let s = Segment::open(&p).unwrap();
    s.verify_footer().unwrap();
    assert_eq!((s.len(), s.first_seq(), s.last_seq()), (4, 3, 9));
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(s.read(i).as_ref(), Ok(r));
        let e = Entry {
            seq: r.seq,
            ts: r.ts,
            payload: r.payload_bytes(),
        };
        assert_eq!(s.entry(i), e);
    }
    let after = [0, 4, 9].map(|q| s.position_after(q));
    assert_eq!(after, [0, 2, 4]);
    assert_eq!((s.position_of(7), s.position_of(5)), (Some(2), None));
    assert_eq!(s.tagged(&TagPredicate::Prefix("a:".into())), vec![3, 9]);
    assert_eq!(s.tagged(&TagPredicate::Eq("b".into())), vec![7]);
    assert!(s.tagged(&TagPredicate::Eq("a".into())).is_empty());
    assert_eq!(
        s.tagged(&TagPredicate::Prefix(String::new())),
        vec![3, 7, 9]
    );
}

#[test]
fn a_missing_file_is_an_io_error_not_damage() {
    let err = Segment::open(&tmp("missing").join("none.seg")).unwrap_err();
    assert!(matches!(err, OpenError::Io(_)), "{err}");
}

#[test]
fn a_newer_format_is_unsupported_but_a_flipped_version_field_is_damage() {
    let mut newer = GOLDEN_V2.to_vec();
    newer[8] = 3;
    let header_crc = crc32fast::hash(&newer[..44]);
    newer[44..48].copy_from_slice(&header_crc.to_le_bytes());
    assert_eq!(layout::unsupported_version(&newer), Some(3));
    let d = tmp("newer");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("n.seg"), &newer).unwrap();
    let err = Segment::open(&d.join("n.seg")).unwrap_err();
    assert!(matches!(err, OpenError::Unsupported(3)), "{err}");
    for at in [8, 9] {
        let flipped = flipped(GOLDEN_V2, at);
        assert_eq!(layout::unsupported_version(&flipped), None, "flip at {at}");
        std::fs::write(d.join("f.seg"), &flipped).unwrap();
        let err = Segment::open(&d.join("f.seg")).unwrap_err();
        assert!(matches!(err, OpenError::Damaged(_)), "flip at {at}: {err}");
    }
    assert_eq!(layout::unsupported_version(GOLDEN_V1), None);
}

/// Every single-bit flip anywhere in a v2 file: `open` fails, or every record read is the
/// original or an error. Damaged bytes never come back as a record.
#[test]
fn no_single_bit_flip_is_ever_served() {
    let golden = golden_records();
    for at in 0..GOLDEN_V2.len() {
        for bit in 0..8 {
            let mut b = GOLDEN_V2.to_vec();
            b[at] ^= 1 << bit;
            let Ok(s) = seg(&b) else { continue };
            for (i, r) in golden.iter().enumerate() {
                if let Ok(got) = s.read(i) {
                    assert_eq!(&got, r, "flip of bit {bit} at {at} served record {i}");
                }
            }
            let tags = s.tagged(&TagPredicate::Prefix(String::new()));
            assert_eq!(tags, vec![3, 7], "flip of bit {bit} at {at}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes (behind a valid magic, half the time) never panic `open` or any accessor.
    #[test]
    fn decoding_random_bytes_never_panics(
        junk in proptest::collection::vec(any::<u8>(), 0..400),
        magic in any::<bool>(),
        version in 0u16..4,
    ) {
        let mut b = junk;
        if magic && b.len() >= 10 {
            b[..8].copy_from_slice(b"TOPICSEG");
            b[8..10].copy_from_slice(&version.to_le_bytes());
        }
        if let Ok(s) = seg(&b) {
            for i in 0..s.len().min(8) {
                let _ = s.read(i);
                let _ = s.entry(i);
            }
            let _ = (s.first_seq(), s.last_seq(), s.position_of(3), s.verify_footer());
            let _ = s.tagged(&TagPredicate::Prefix(String::new()));
        }
    }

    /// A valid file of either version cut anywhere and with any byte replaced never panics,
    /// and a v2 one never serves a record other than the original.
    #[test]
    fn cut_or_garbled_files_never_panic(cut in 0usize..400, at in 0usize..400, byte in any::<u8>()) {
        for golden in [GOLDEN_V1, GOLDEN_V2] {
            let mut b = golden[..cut.min(golden.len())].to_vec();
            if let Some(x) = b.get_mut(at) {
                *x = byte;
            }
            if let Ok(s) = seg(&b) {
                for (i, r) in golden_records().iter().enumerate().take(s.len()) {
                    let got = s.read(i);
                    if golden == GOLDEN_V2 && got.is_ok() {
                        prop_assert_eq!(got.as_ref(), Ok(r));
                    }
                }
                let _ = s.tagged(&TagPredicate::Eq("a:1".into()));
            }
        }
    }
}

#[test]
fn only_names_this_server_writes_are_its_own() {
    let own = file_name(0xab, 12, 3);
    assert!(is_own_file_name(&own));
    assert!(is_own_temp_name(&format!("{own}.tmp")));
    for foreign in [
        "notes.seg",
        "ab-12-3.seg",
        &own.to_uppercase(),
        &own.replace(".seg", ".seg.bak"),
        &format!("+{}", &own[1..]),
        &format!("x{own}"),
        "notes.seg.tmp",
    ] {
        assert!(!is_own_file_name(foreign), "{foreign}");
    }
    assert!(!is_own_temp_name(&own));
    assert!(!is_own_temp_name("notes.seg.tmp"));
}
