//! Model-based property test of the loss contract: for any interleaving of writes, evictions,
//! expiries (manual clock), deletes, restarts and reads, every record a reader misses is inside
//! a tombstone range it was given or was voluntarily deleted — never silently missing, never
//! delivered after its delete — and without retention no tombstone ever appears.

use super::testkit::{draft, temp_dir, Harness};
use super::{AppendRequest, DeleteRequest, ReadRequest};
use crate::clock::ManualClock;
use crate::model::predicate::TagPredicate;
use crate::model::topic_config::{Durability, TopicConfig};
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const TOPIC: &str = "p";
const TAGS: [&str; 3] = ["a:1", "a:2", "b"];

#[derive(Debug, Clone)]
enum Op {
    Write { n: u8, tag: u8 },
    Advance { ms: u16 },
    Retention { variant: u8 },
    DeleteBefore { back: u8 },
    DeleteTag { tag: u8, prefix: bool },
    Restart { graceful: bool },
    Checkpoint,
    Read { reader: u8 },
}

fn op(retention: bool) -> impl Strategy<Value = Op> {
    let base = prop_oneof![
        4 => (1u8..4, 0u8..4).prop_map(|(n, tag)| Op::Write { n, tag }),
        2 => (0u16..40).prop_map(|ms| Op::Advance { ms }),
        1 => (0u8..6).prop_map(|back| Op::DeleteBefore { back }),
        1 => (0u8..3, any::<bool>()).prop_map(|(tag, prefix)| Op::DeleteTag { tag, prefix }),
        1 => any::<bool>().prop_map(|graceful| Op::Restart { graceful }),
        1 => Just(Op::Checkpoint),
        3 => (0u8..3).prop_map(|reader| Op::Read { reader }),
    ];
    let variants = if retention { 4u8 } else { 1 };
    prop_oneof![8 => base, 1 => (0..variants).prop_map(|variant| Op::Retention { variant })]
}

fn config(variant: u8) -> TopicConfig {
    let mut c = TopicConfig {
        durability: Durability::Fsync,
        durable: true,
        ..TopicConfig::default()
    };
    match variant {
        1 => c.ttl_ms = 50,
        2 => c.cap_records = 5,
        3 => c.cap_bytes = 24,
        _ => {}
    }
    c
}

/// What the test knows: every acked record, and which were voluntarily deleted.
#[derive(Default)]
struct Model {
    acked: BTreeMap<u64, (Option<&'static str>, Bytes)>,
    deleted: BTreeSet<u64>,
    head: u64,
    counter: u64,
    readers: [u64; 3],
}

impl Model {
    async fn write(&mut self, h: &Harness, n: u8, tag: u8) {
        let tag = TAGS.get(tag as usize).copied();
        let datas: Vec<Bytes> = (0..n)
            .map(|_| {
                self.counter += 1;
                Bytes::from(self.counter.to_string())
            })
            .collect();
        let records = datas.iter().map(|d| draft(tag, d.clone())).collect();
        let (topic, _) = h.registry.get_or_create(TOPIC, config(0)).await.unwrap();
        let ok = topic
            .append(AppendRequest {
                records,
                idempotency_key: None,
            })
            .await
            .unwrap();
        for (i, d) in datas.into_iter().enumerate() {
            self.acked.insert(ok.first_seq + i as u64, (tag, d));
        }
        self.head = ok.last_seq;
    }

    async fn delete(&mut self, h: &Harness, before_seq: Option<u64>, pred: Option<TagPredicate>) {
        let Some(topic) = h.registry.get(TOPIC) else {
            return;
        };
        let bound = (self.head + 1).min(before_seq.unwrap_or(u64::MAX));
        let ok = topic
            .delete_records(DeleteRequest {
                before_seq,
                pred: pred.clone(),
            })
            .await
            .unwrap();
        assert_eq!(ok.head_seq, self.head);
        for (&seq, (tag, _)) in self.acked.range(..bound) {
            if pred.as_ref().is_none_or(|p| p.matches(*tag)) {
                self.deleted.insert(seq);
            }
        }
    }

    /// Read from the reader's cursor until caught up and check the loss contract.
    async fn read(&mut self, h: &Harness, reader: usize, retention_ever: bool) {
        let Some(topic) = h.registry.get(TOPIC) else {
            return;
        };
        let start = self.readers[reader];
        let mut cursor = start;
        let mut seen = BTreeSet::new();
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        for _ in 0..10_000 {
            let req = ReadRequest {
                from_seq: cursor,
                limit: 3,
                budget_bytes: 1 << 20,
                skip_nodes: vec![],
                include_meta: true,
            };
            let r = topic.read(req).await.unwrap();
            if let Some(t) = &r.tombstone {
                assert!(retention_ever, "tombstone without any retention: {t:?}");
                assert!(
                    t.gap_from > cursor && t.gap_from <= t.gap_to,
                    "{t:?} at cursor {cursor}"
                );
                gaps.push((t.gap_from, t.gap_to));
            }
            for rec in &r.records {
                assert!(
                    rec.seq > cursor,
                    "seq {} delivered at cursor {cursor}",
                    rec.seq
                );
                assert!(
                    !self.deleted.contains(&rec.seq),
                    "deleted seq {} delivered",
                    rec.seq
                );
                let (tag, data) = self
                    .acked
                    .get(&rec.seq)
                    .expect("delivered seq was never acked");
                assert_eq!(&rec.data, data, "data of seq {}", rec.seq);
                assert_eq!(rec.tag.as_deref(), *tag);
                assert!(seen.insert(rec.seq), "seq {} delivered twice", rec.seq);
            }
            assert!(r.next_from_seq >= cursor);
            cursor = r.next_from_seq;
            if r.caught_up {
                break;
            }
        }
        for &seq in self
            .acked
            .range(start + 1..)
            .take_while(|(s, _)| **s <= cursor)
            .map(|(s, _)| s)
        {
            let covered = seen.contains(&seq)
                || self.deleted.contains(&seq)
                || gaps.iter().any(|&(a, b)| (a..=b).contains(&seq));
            assert!(
                covered,
                "seq {seq} silently missed by a reader from {start} (gaps {gaps:?})"
            );
        }
        self.readers[reader] = cursor;
    }
}

async fn run(ops: Vec<Op>) {
    let clock = ManualClock::new(1_000_000);
    let mut h = Harness::start(temp_dir("model"), clock.clone());
    let mut m = Model::default();
    let mut retention_ever = false;
    for op in ops {
        match op {
            Op::Write { n, tag } => m.write(&h, n, tag).await,
            Op::Advance { ms } => clock.advance(i64::from(ms)),
            Op::Retention { variant } => {
                retention_ever |= variant != 0;
                let (topic, _) = h
                    .registry
                    .get_or_create(TOPIC, config(variant))
                    .await
                    .unwrap();
                topic.put_config(config(variant)).await.unwrap();
            }
            Op::DeleteBefore { back } => {
                m.delete(&h, Some(m.head.saturating_sub(u64::from(back))), None)
                    .await
            }
            Op::DeleteTag { tag, prefix } => {
                let pred = match (TAGS[tag as usize], prefix) {
                    (t, true) => TagPredicate::Prefix(t[..1].to_string()),
                    (t, false) => TagPredicate::Eq(t.to_string()),
                };
                m.delete(&h, None, Some(pred)).await
            }
            Op::Restart { graceful } => h = h.restart(graceful).await,
            Op::Checkpoint => {
                h.checkpoint().await;
            }
            Op::Read { reader } => m.read(&h, reader as usize, retention_ever).await,
        }
    }
    for reader in 0..3 {
        m.read(&h, reader, retention_ever).await;
    }
    let _ = std::fs::remove_dir_all(&h.dir);
}

fn block_on(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_missed_record_is_tombstoned_or_deleted(ops in prop::collection::vec(op(true), 1..60)) {
        block_on(run(ops));
    }

    #[test]
    fn without_retention_no_read_ever_carries_a_tombstone(ops in prop::collection::vec(op(false), 1..60)) {
        block_on(run(ops));
    }
}
