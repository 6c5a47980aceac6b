//! Criterion micro-benchmarks of the hot paths: record validation/compaction, WAL frame
//! encode and decode, the read walk, and response splicing.
//! Run with `cargo bench --bench engine`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use topics::model::json::compact;
use topics::model::read::{scan, Item, LossFloors, ScanLimits, ScanStart, Watermarks};
use topics::model::record::{Record, RecordDraft, RecordInput, WriteLimits};
use topics::storage::frame;

const DATA: &str = r#"{"k":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","i":42}"#;

fn draft(i: usize) -> RecordDraft {
    RecordDraft {
        node: Some(Arc::from("eu-1")),
        tag: i.is_multiple_of(2).then(|| Arc::from("cust-42:order")),
        data: Bytes::from_static(DATA.as_bytes()),
        meta: None,
        hops: 0,
    }
}

fn limits() -> WriteLimits {
    topics::config::Config::default().limits.write_limits()
}

fn validation(c: &mut Criterion) {
    let body = Bytes::from_static(DATA.as_bytes());
    let pretty =
        serde_json::to_vec_pretty(&serde_json::from_str::<serde_json::Value>(DATA).unwrap())
            .unwrap();
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    g.bench_function("validate_compact_record", |b| {
        let lim = limits();
        b.iter(|| {
            let input = RecordInput {
                data: &body[..],
                meta: None,
                tag: Some("t"),
                node: None,
            };
            black_box(lim.draft(0, input, &body, None).unwrap())
        })
    });
    g.bench_function("compact_pretty_json", |b| {
        b.iter(|| black_box(compact(&pretty).len()))
    });
    g.throughput(Throughput::Elements(100));
    g.bench_function("parse_write_body_100_as_value", |b| {
        let recs: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"data":{{"k":"x","i":{i}}}}}"#))
            .collect();
        let body = format!(r#"{{"records":[{}]}}"#, recs.join(","));
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_str(black_box(&body)).unwrap();
            black_box(v)
        })
    });
    g.finish();
}

fn frames(c: &mut Criterion) {
    let batch: Vec<RecordDraft> = (0..100).map(draft).collect();
    let mut encoded = Vec::new();
    frame::encode_append(&mut encoded, 7, 1, 1_700_000_000_000, None, &batch);
    let encoded = Bytes::from(encoded);
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(100));
    g.bench_function("encode_append_b100", |b| {
        b.iter_batched(
            || Vec::with_capacity(16 << 10),
            |mut out| {
                frame::encode_append(&mut out, 7, 1, 1_700_000_000_000, None, &batch);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decode_append_b100", |b| {
        b.iter(|| black_box(frame::decode(&encoded, 0).unwrap()))
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    let records: Vec<Record> = (0..10_000)
        .map(|i| draft(i).into_record(i as u64 + 1, 0))
        .collect();
    let skip = vec!["us-2".to_string()];
    let lim = ScanLimits {
        limit: 1000,
        budget_bytes: 1 << 20,
        include_meta: true,
        skip_nodes: &skip,
    };
    let w = Watermarks {
        head_seq: 10_000,
        earliest_seq: 1,
        floors: LossFloors::default(),
        first_loss: None,
    };
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("scan_limit1000", |b| {
        b.iter(|| {
            let start = ScanStart {
                after: 5000,
                tombstone: None,
            };
            let run = records.iter().skip(5000).cloned().map(Item::Record);
            black_box(scan(run, start, &w, &lim).taken.len())
        })
    });
    g.finish();
}

criterion_group!(benches, validation, frames, reads);
criterion_main!(benches);
