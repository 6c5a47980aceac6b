//! Sealing away from the actor: a topic keeps answering while its segment is written, deletes
//! and evictions made meanwhile hold after the swap and after a restart, and a checkpoint
//! taken while a segment is in flight neither refers to it nor collects its file.

use super::testkit::{draft, temp_dir, visible_seqs, Harness};
use super::{AppendRequest, DeleteRequest, TopicHandle};
use crate::clock::ManualClock;
use crate::model::predicate::TagPredicate;
use crate::model::topic_config::{Durability, TopicConfig};
use crate::storage::fs::{AppendFile, Fs, RealFs};
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a step may take before the test calls it a hang (nothing here is timed).
const HANG: Duration = Duration::from_secs(10);

/// The real file system, except that the first directory fsync of the segment directory
/// after `arm` blocks until `release`: a seal held after its rename, before it is durable.
#[derive(Debug, Default)]
struct HeldFs {
    state: Mutex<Hold>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Hold {
    #[default]
    Open,
    Armed,
    Holding,
}

impl HeldFs {
    fn arm(&self) {
        *self.state.lock().unwrap() = Hold::Armed;
    }

    fn wait_holding(&self) {
        let g = self.state.lock().unwrap();
        let (g, _) = self
            .changed
            .wait_timeout_while(g, HANG, |h| *h != Hold::Holding)
            .unwrap();
        assert_eq!(
            *g,
            Hold::Holding,
            "no seal reached the segment directory fsync"
        );
    }

    fn release(&self) {
        *self.state.lock().unwrap() = Hold::Open;
        self.changed.notify_all();
    }
}

/// Releases the hold when a test ends, failed or not: a seal left held would keep the
/// runtime's shutdown waiting for its blocking thread forever.
struct Unhold(Arc<HeldFs>);

impl Drop for Unhold {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Fs for HeldFs {
    fn create_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        RealFs.create_append(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        RealFs.write_file(path, data)
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        RealFs.sync_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        RealFs.remove(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        RealFs.truncate(path, len)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if dir.file_name().is_some_and(|n| n == "segments") {
            let mut g = self.state.lock().unwrap();
            if *g == Hold::Armed {
                *g = Hold::Holding;
                self.changed.notify_all();
                while *g == Hold::Holding {
                    g = self.changed.wait(g).unwrap();
                }
            }
        }
        RealFs.sync_dir(dir)
    }
}

fn config(cap_records: u64) -> TopicConfig {
    TopicConfig {
        durability: Durability::Fsync,
        durable: true,
        cap_records,
        ..TopicConfig::default()
    }
}

/// Write `n` records tagged "a" (odd seqs of a fresh topic) and "b" (even ones).
async fn write(t: &TopicHandle, n: u64) {
    let records = (0..n)
        .map(|i| {
            draft(
                Some(if i % 2 == 0 { "a" } else { "b" }),
                Bytes::from(i.to_string()),
            )
        })
        .collect();
    let req = AppendRequest {
        records,
        idempotency_key: None,
    };
    let step = tokio::time::timeout(HANG, t.append(req));
    step.await.expect("the write hung").unwrap();
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let seg = crate::storage::segment::dir(dir);
    let Ok(entries) = std::fs::read_dir(seg) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

async fn start_held() -> (Harness, Unhold, TopicHandle) {
    let fs = Arc::new(HeldFs::default());
    let h = Harness::start_with_fs(temp_dir("seal"), ManualClock::new(1), fs.clone());
    let (t, _) = h.registry.get_or_create("t", config(0)).await.unwrap();
    (h, Unhold(fs), t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_keeps_answering_while_its_segment_is_written() {
    let (h, fs, t) = start_held().await;
    fs.0.arm();
    write(&t, 4).await; // the harness seals at 4 hot records
    fs.0.wait_holding();
    assert_eq!(h.registry.segments_in_flight().len(), 1);
    // The seal is stuck before its directory fsync; the topic still acks fsync writes and
    // answers reads from the hot tier.
    write(&t, 2).await;
    let seqs = tokio::time::timeout(HANG, visible_seqs(&t));
    assert_eq!(seqs.await.expect("the read hung"), vec![1, 2, 3, 4, 5, 6]);
    fs.0.release();
    h.seals_settled(&t).await;
    assert_eq!(segment_files(&h.dir).len(), 1, "the segment was swapped in");
    assert_eq!(visible_seqs(&t).await, vec![1, 2, 3, 4, 5, 6]);
    drop(t);
    let h = h.restart(false).await;
    let t = h.registry.get("t").unwrap();
    assert_eq!(visible_seqs(&t).await, vec![1, 2, 3, 4, 5, 6]);
    let _ = std::fs::remove_dir_all(&h.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_evictions_during_a_seal_hold_after_the_swap_and_a_restart() {
    let (h, fs, t) = start_held().await;
    fs.0.arm();
    write(&t, 8).await; // one segment of seqs 1..=8
    fs.0.wait_holding();
    let del = |before_seq, pred| DeleteRequest { before_seq, pred };
    let pred = Some(TagPredicate::Eq("a".into()));
    t.delete_records(del(None, pred)).await.unwrap(); // 1, 3, 5, 7
    t.delete_records(del(Some(3), None)).await.unwrap(); // 2
                                                         // The cap keeps the newest 3 seqs: at head 8 it evicts 4, at head 9 (one more write) 6.
    t.put_config(config(3)).await.unwrap();
    write(&t, 1).await;
    let expect = vec![8, 9];
    assert_eq!(visible_seqs(&t).await, expect);
    fs.0.release();
    h.seals_settled(&t).await;
    assert_eq!(visible_seqs(&t).await, expect);
    let state = t.state(false).await.unwrap();
    assert_eq!((state.count, state.earliest_seq), (2, 8));
    // A checkpoint now refers to the segment with its delete marks; then the WAL tail.
    h.checkpoint().await;
    drop(t);
    let h = h.restart(false).await;
    let t = h.registry.get("t").unwrap();
    assert_eq!(visible_seqs(&t).await, expect);
    assert_eq!(t.state(false).await.unwrap().count, 2);
    let _ = std::fs::remove_dir_all(&h.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_during_a_seal_keeps_its_file_and_recovery_finds_every_record() {
    let (h, fs, t) = start_held().await;
    fs.0.arm();
    write(&t, 4).await;
    fs.0.wait_holding();
    // The file is in place under its final name but not yet durable or swapped in: the
    // checkpoint lists it, its image has the records as hot ones, and GC must keep it.
    let file = segment_files(&h.dir);
    assert_eq!(file.len(), 1);
    tokio::time::timeout(HANG, h.checkpoint())
        .await
        .expect("the checkpoint hung");
    assert!(
        file[0].exists(),
        "checkpoint GC collected a segment in flight"
    );
    fs.0.release();
    h.seals_settled(&t).await;
    write(&t, 1).await;
    h.checkpoint().await; // refers to the segment now
    drop(t);
    let h = h.restart(false).await;
    let t = h.registry.get("t").unwrap();
    assert_eq!(visible_seqs(&t).await, vec![1, 2, 3, 4, 5]);
    let _ = std::fs::remove_dir_all(&h.dir);
}

/// A topic whose seal is stuck (between its rename and its directory fsync) and whose hot
/// tier is at the backlog limit: up to two batches' worth (131,072 records) it takes writes
/// while its seal is stuck; past that a write waits for the seal (memory stays bounded).
/// Returns the harness, the held file system, the topic and its hot record count.
async fn at_the_backlog_limit() -> (Harness, Unhold, TopicHandle, u64) {
    let (h, fs, t) = start_held().await;
    fs.0.arm();
    write(&t, 4).await;
    fs.0.wait_holding();
    let mut hot = 4;
    while hot < 2 * 65_536 {
        write(&t, 1000).await;
        hot += 1000;
    }
    (h, fs, t, hot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_answered_while_writes_wait_for_the_seal_and_the_writes_keep_their_order() {
    let (h, fs, t, hot) = at_the_backlog_limit().await;
    // Two writes past the backlog limit wait for the stuck seal, in the order they came.
    let one = |t: TopicHandle| async move {
        let records = vec![draft(None, Bytes::from_static(b"1"))];
        let req = AppendRequest {
            records,
            idempotency_key: None,
        };
        t.append(req).await.expect("append").first_seq
    };
    let mut first = tokio::spawn(one(t.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = tokio::spawn(one(t.clone()));
    let early = tokio::time::timeout(Duration::from_millis(200), &mut first).await;
    assert!(
        early.is_err(),
        "a write past the backlog limit did not wait"
    );
    // Reads go on meanwhile: the state, and a read of what is already acknowledged.
    let state = tokio::time::timeout(Duration::from_secs(2), t.state(false))
        .await
        .expect("a state read waited for the seal")
        .unwrap();
    assert_eq!(state.count, hot, "parked writes are not visible");
    let req = super::ReadRequest {
        from_seq: 0,
        limit: 10,
        budget_bytes: 1 << 20,
        skip_nodes: vec![],
        include_meta: false,
    };
    let read = tokio::time::timeout(Duration::from_secs(2), t.read(req))
        .await
        .expect("a read waited for the seal")
        .unwrap();
    assert_eq!(read.records.len(), 10);
    fs.0.release();
    let a = tokio::time::timeout(HANG, &mut first)
        .await
        .expect("first write")
        .unwrap();
    let b = tokio::time::timeout(HANG, &mut second)
        .await
        .expect("second write")
        .unwrap();
    assert!(a < b, "parked writes keep their order: {a} then {b}");
    h.seals_settled(&t).await;
    assert_eq!(t.state(false).await.unwrap().count, hot + 2);
    drop(t);
    let _ = std::fs::remove_dir_all(&h.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_outrun_sealing_wait_for_the_seal_in_flight() {
    let (h, fs, t, hot) = at_the_backlog_limit().await;
    let t2 = t.clone();
    let mut blocked = tokio::spawn(async move { write(&t2, 1).await });
    let early = tokio::time::timeout(Duration::from_millis(300), &mut blocked).await;
    assert!(
        early.is_err(),
        "a write past the backlog limit did not wait"
    );
    fs.0.release();
    tokio::time::timeout(HANG, blocked)
        .await
        .expect("the write never went on after the seal")
        .unwrap();
    h.seals_settled(&t).await;
    assert_eq!(t.state(false).await.unwrap().count, hot + 1);
    drop(t);
    let _ = std::fs::remove_dir_all(&h.dir);
}
