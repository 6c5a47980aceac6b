use super::*;
use proptest::prelude::*;

fn draft(data: &str, node: Option<&str>, tag: Option<&str>, meta: Option<&str>) -> RecordDraft {
    RecordDraft {
        node: node.map(Arc::from),
        tag: tag.map(Arc::from),
        data: Bytes::copy_from_slice(data.as_bytes()),
        meta: meta.map(|m| Bytes::copy_from_slice(m.as_bytes())),
        hops: 0,
    }
}

fn all_frames(buf: &Bytes) -> Vec<Frame> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let (f, next) = decode(buf, at).expect("valid frame");
        out.push(f);
        at = next;
    }
    out
}

#[test]
fn every_kind_round_trips() {
    let mut out = Vec::new();
    encode_config(&mut out, 7, "orders", br#"{"type":"log"}"#);
    encode_delete(&mut out, 7);
    encode_reserve(&mut out, 8, 512);
    encode_head(&mut out, 8, 300);
    let recs = [
        draft("1", Some("n"), Some("t"), Some("{}")),
        draft("null", None, None, None),
    ];
    encode_append(&mut out, 9, 41, 1234, Some("k1"), &recs);
    let floors = LossFloors {
        cap: 3,
        ttl: 9,
        source_trim: 1,
    };
    encode_floors(&mut out, 9, &floors);
    encode_delete_records(&mut out, 9, 50, None);
    encode_delete_records(&mut out, 9, 51, Some(&TagPredicate::Prefix("a:".into())));
    encode_delete_records(&mut out, 9, 52, Some(&TagPredicate::Eq("b".into())));
    let frames = all_frames(&Bytes::from(out));
    assert_eq!(frames.len(), 9);
    assert_eq!(
        frames[5],
        Frame::Floors {
            topic_id: 9,
            floors
        }
    );
    assert_eq!(
        frames[6],
        Frame::DeleteRecords {
            topic_id: 9,
            bound: 50,
            pred: None
        }
    );
    assert_eq!(
        frames[7],
        Frame::DeleteRecords {
            topic_id: 9,
            bound: 51,
            pred: Some(TagPredicate::Prefix("a:".into()))
        }
    );
    assert_eq!(
        frames[8],
        Frame::DeleteRecords {
            topic_id: 9,
            bound: 52,
            pred: Some(TagPredicate::Eq("b".into()))
        }
    );
    assert_eq!(
        frames[0],
        Frame::Config {
            topic_id: 7,
            name: "orders".into(),
            config: Bytes::from_static(br#"{"type":"log"}"#)
        }
    );
    assert_eq!(frames[1], Frame::Delete { topic_id: 7 });
    assert_eq!(
        frames[2],
        Frame::Reserve {
            topic_id: 8,
            ceiling: 512
        }
    );
    assert_eq!(
        frames[3],
        Frame::Head {
            topic_id: 8,
            head_seq: 300
        }
    );
    let Frame::Append(a) = &frames[4] else {
        panic!("append expected")
    };
    assert_eq!(a.topic_id, 9);
    assert_eq!(a.idempotency_key.as_deref(), Some("k1"));
    assert_eq!(a.records[0].clone(), recs[0].clone().into_record(41, 1234));
    assert_eq!(a.records[1].clone(), recs[1].clone().into_record(42, 1234));
}

#[test]
fn every_strict_prefix_is_truncated() {
    let mut out = Vec::new();
    encode_append(
        &mut out,
        1,
        1,
        0,
        None,
        &[draft(r#"{"a":1}"#, Some("n"), None, None)],
    );
    for cut in 0..out.len() {
        let buf = Bytes::copy_from_slice(&out[..cut]);
        assert_eq!(
            decode(&buf, 0).unwrap_err(),
            DecodeError::Truncated,
            "cut at {cut}"
        );
    }
}

#[test]
fn any_flipped_bit_is_rejected() {
    let mut out = Vec::new();
    encode_append(
        &mut out,
        1,
        1,
        0,
        None,
        &[draft(r#"{"a":1}"#, None, Some("t"), None)],
    );
    for byte in 0..out.len() {
        for bit in 0..8 {
            let mut bad = out.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                decode(&Bytes::from(bad), 0).is_err(),
                "flip {byte}:{bit} accepted"
            );
        }
    }
}

#[test]
fn file_header_round_trips_and_rejects_other_versions() {
    let h = FileHeader { shard: 3, boot: 77 };
    let enc = h.encode();
    assert_eq!(FileHeader::decode(&enc), Ok(h));
    let mut bad = enc;
    bad[8] = 9;
    assert_eq!(FileHeader::decode(&bad), Err(DecodeError::Corrupt));
    assert_eq!(FileHeader::decode(&enc[..5]), Err(DecodeError::Truncated));
}

#[test]
fn oversized_length_is_corrupt_not_an_allocation() {
    let mut buf = vec![0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
    buf.extend_from_slice(&[0u8; 32]);
    assert_eq!(
        decode(&Bytes::from(buf), 0).unwrap_err(),
        DecodeError::Corrupt
    );
}

proptest! {
    #[test]
    fn decoder_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let buf = Bytes::from(bytes);
        let mut at = 0;
        while let Ok((_, next)) = decode(&buf, at) {
            prop_assert!(next > at);
            at = next;
        }
    }

    #[test]
    fn random_batches_round_trip(
        first_seq in 1u64..1_000_000,
        ts in any::<i64>(),
        recs in prop::collection::vec(
            ("[ -~]{0,20}", prop::option::of("[a-z]{0,8}"), prop::option::of("[a-z]{0,8}"),
             prop::option::of("[ -~]{0,20}"), any::<u8>()),
            1..20),
        key in prop::option::of("[a-z0-9]{1,16}"),
    ) {
        let drafts: Vec<RecordDraft> = recs.iter().map(|(d, n, t, m, h)| {
            let mut r = draft(d, n.as_deref(), t.as_deref(), m.as_deref());
            r.hops = *h;
            r
        }).collect();
        let mut out = Vec::new();
        encode_append(&mut out, 5, first_seq, ts, key.as_deref(), &drafts);
        let buf = Bytes::from(out);
        let (frame, end) = decode(&buf, 0).unwrap();
        prop_assert_eq!(end, buf.len());
        let Frame::Append(a) = frame else { panic!() };
        prop_assert_eq!(a.idempotency_key, key);
        for (i, (got, want)) in a.records.iter().zip(drafts).enumerate() {
            prop_assert_eq!(got, &want.into_record(first_seq + i as u64, ts));
        }
    }
}

#[test]
fn bookkeeping_frames_round_trip() {
    let mut out = Vec::new();
    encode_sync(&mut out, 4096, 6, false);
    encode_sync(&mut out, 8192, 6, true);
    encode_stop(&mut out);
    encode_loss_range(&mut out, 9, 51, 259, 1);
    assert_eq!(
        all_frames(&Bytes::from(out)),
        vec![
            Frame::Sync {
                synced: 4096,
                prev_boot: 6,
                closing: false
            },
            Frame::Sync {
                synced: 8192,
                prev_boot: 6,
                closing: true
            },
            Frame::Stop,
            Frame::LossRange {
                topic_id: 9,
                from: 51,
                to: 259,
                reason: 1
            },
        ]
    );
}

/// The sync mark's bytes are part of the format recovery relies on (its magic is searched
/// for past damage, and the writer sizes its reserve by its length): pinned byte for byte.
#[test]
fn sync_mark_golden_bytes() {
    let mut out = Vec::new();
    encode_sync(&mut out, 0x1122, 3, true);
    let body: Vec<u8> = [
        &[12u8][..],
        &0u64.to_le_bytes(),
        b"TWALSYNC",
        &0x1122u64.to_le_bytes(),
        &3u32.to_le_bytes(),
        &[1u8],
    ]
    .concat();
    let mut want = (body.len() as u32).to_le_bytes().to_vec();
    want.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    want.extend_from_slice(&body);
    assert_eq!(out, want);
    assert_eq!(out.len(), 38, "the writer reserves 38 bytes per mark");
    assert_eq!(&out[SYNC_MAGIC_OFFSET..SYNC_MAGIC_OFFSET + 8], b"TWALSYNC");
    assert!(is_control(&out));
}

#[test]
fn a_sync_frame_with_a_bad_magic_or_flag_is_corrupt() {
    let mut out = Vec::new();
    encode_sync(&mut out, 1, 1, false);
    for (at, v) in [(SYNC_MAGIC_OFFSET, b'X'), (out.len() - 1, 2u8)] {
        let mut bad = out.clone();
        bad[at] = v;
        let body = bad[FRAME_HEADER_LEN..].to_vec();
        bad[4..8].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
        assert_eq!(
            decode(&Bytes::from(bad), 0).unwrap_err(),
            DecodeError::Corrupt
        );
    }
}

fn pos(cursor: u64, forwarded_total: u64, dest_mark: u64) -> crate::model::router::Position {
    crate::model::router::Position {
        cursor,
        forwarded_total,
        dest_mark,
    }
}

#[test]
fn router_frames_round_trip() {
    let mut out = Vec::new();
    encode_router_def(&mut out, 3, "a->b", br#"{"source":"a"}"#, pos(41, 40, 7));
    encode_router_cursor(&mut out, 3, pos(57, 52, 9));
    encode_router_delete(&mut out, 3);
    assert_eq!(
        all_frames(&Bytes::from(out)),
        vec![
            Frame::RouterDef {
                router_id: 3,
                name: "a->b".into(),
                def: Bytes::from_static(br#"{"source":"a"}"#),
                pos: pos(41, 40, 7),
            },
            Frame::RouterCursor {
                router_id: 3,
                pos: pos(57, 52, 9),
            },
            Frame::RouterDelete { router_id: 3 },
        ]
    );
}

#[test]
fn router_cursor_golden_bytes() {
    // len 33 | crc | kind 17 | router id 2 | cursor 9 | forwarded_total 4 | dest mark 6
    // (all little-endian).
    let mut out = Vec::new();
    encode_router_cursor(&mut out, 2, pos(9, 4, 6));
    let body: Vec<u8> = [17u8]
        .into_iter()
        .chain(2u64.to_le_bytes())
        .chain(9u64.to_le_bytes())
        .chain(4u64.to_le_bytes())
        .chain(6u64.to_le_bytes())
        .collect();
    assert_eq!(&out[..4], &33u32.to_le_bytes());
    assert_eq!(&out[4..8], &crc32fast::hash(&body).to_le_bytes());
    assert_eq!(&out[8..], &body[..]);
}

/// A cursor frame written before the dest mark existed (no third field) reads as mark 0.
#[test]
fn a_router_cursor_without_a_dest_mark_reads_as_mark_zero() {
    let body: Vec<u8> = [17u8]
        .into_iter()
        .chain(2u64.to_le_bytes())
        .chain(9u64.to_le_bytes())
        .chain(4u64.to_le_bytes())
        .collect();
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    assert_eq!(
        all_frames(&Bytes::from(out)),
        vec![Frame::RouterCursor {
            router_id: 2,
            pos: pos(9, 4, 0),
        }]
    );
}
