//! WAL frame codec. Every WAL file starts with a 16-byte header (magic, format version, shard,
//! boot); then frames: `len u32 | crc32 u32 | body[len]`, little-endian, crc over the body.
//! The decoder checks the length before trusting it and never panics on any input: a frame is
//! either fully valid or reported as torn/corrupt. Layouts are documented in docs/STORAGE.md.

use crate::model::predicate::TagPredicate;
use crate::model::read::LossFloors;
use crate::model::record::{Record, RecordDraft};
use bytes::Bytes;
use std::sync::Arc;

pub const WAL_MAGIC: [u8; 8] = *b"TOPICWAL";
/// Version 2 adds sync marks (`Frame::Sync`) and preallocated, zero-filled files; version 1
/// files (no marks) are still replayed, under the rules that held for them.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest WAL format version this build replays.
pub const FORMAT_VERSION_MIN: u16 = 1;
pub const FILE_HEADER_LEN: usize = 16;
pub const FRAME_HEADER_LEN: usize = 8;
/// No legitimate frame is larger (a body is capped far below this); a bigger length is corrupt.
pub const MAX_FRAME_BODY: usize = 256 << 20;

const KIND_CONFIG: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_APPEND: u8 = 3;
const KIND_RESERVE: u8 = 4;
const KIND_HEAD: u8 = 5;
const KIND_FLOORS: u8 = 6;
const KIND_DELETE_RECORDS: u8 = 7;
const KIND_RECORDS: u8 = 8;
const KIND_IDEMPOTENCY: u8 = 9;
const KIND_SNAPSHOT_END: u8 = 10;
const KIND_SEGMENT: u8 = 11;
const KIND_SYNC: u8 = 12;
const KIND_STOP: u8 = 13;
const KIND_LOSS_RANGE: u8 = 14;

/// Inside every Sync frame, so recovery can find sync marks past a damaged region without
/// trusting any length field (it searches for these bytes and re-checks the frame's crc).
pub const SYNC_MAGIC: [u8; 8] = *b"TWALSYNC";
/// Offset of `SYNC_MAGIC` inside a Sync frame: frame header, kind, topic id.
pub const SYNC_MAGIC_OFFSET: usize = FRAME_HEADER_LEN + 1 + 8;

const PRED_NONE: u8 = 0;
const PRED_EQ: u8 = 1;
const PRED_PREFIX: u8 = 2;

const FLAG_NODE: u8 = 1;
const FLAG_TAG: u8 = 2;
const FLAG_META: u8 = 4;

/// A decoded frame. Byte fields share the buffer the frame was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Topic created or its config replaced; `config` is the stored config as JSON.
    Config {
        topic_id: u64,
        name: String,
        config: Bytes,
    },
    /// Topic deleted; every frame of this id is dead.
    Delete { topic_id: u64 },
    /// One write batch: records `first_seq..first_seq+n`, all stamped `ts`.
    Append(AppendFrame),
    /// Seqs up to `ceiling` may have been issued.
    Reserve { topic_id: u64, ceiling: u64 },
    /// Exact head at a graceful shutdown.
    Head { topic_id: u64, head_seq: u64 },
    /// Highest seq lost to cap eviction, TTL expiry and source trim (tombstone floors).
    Floors { topic_id: u64, floors: LossFloors },
    /// Permanent delete of live records with seq < `bound` matching `pred` (all if `None`).
    DeleteRecords {
        topic_id: u64,
        bound: u64,
        pred: Option<TagPredicate>,
    },
    /// Snapshot only: live records with explicit seqs.
    Records { topic_id: u64, records: Vec<Record> },
    /// Snapshot only: one idempotency entry.
    Idempotency {
        topic_id: u64,
        key: String,
        entry: IdemFields,
    },
    /// Snapshot only: a sealed segment of the topic and its state.
    Segment { topic_id: u64, seg: SegmentRef },
    /// Snapshot only: the end marker.
    SnapshotEnd { next_topic_id: u64, topics: u64 },
    /// WAL only: every byte of this file before offset `synced` was covered by a completed
    /// fdatasync when this frame was written. `prev_boot` is the boot this run followed;
    /// `closing` marks the last frame of a file that was closed (synced whole) by rotation.
    Sync {
        synced: u64,
        prev_boot: u32,
        closing: bool,
    },
    /// WAL only: the writer of this shard stopped cleanly with nothing left unwritten.
    Stop,
    /// Snapshot only: seqs `from..=to` of a topic were lost, and why (a `LossReason` code).
    LossRange {
        topic_id: u64,
        from: u64,
        to: u64,
        reason: u8,
    },
    /// A router created or re-configured; in a snapshot, its whole state.
    RouterDef {
        router_id: u64,
        name: String,
        def: Bytes,
        pos: crate::model::router::Position,
    },
    /// A router removed; every frame of this id is dead.
    RouterDelete { router_id: u64 },
    /// A router consumed its source up to `cursor`.
    RouterCursor {
        router_id: u64,
        pos: crate::model::router::Position,
    },
    /// Permanent delete of exactly these seqs (queue acks and dead-letter moves).
    DeleteSeqs { topic_id: u64, seqs: Vec<u64> },
    /// A queue seq's lasting state (deliveries, lease, delay); the last one replayed wins.
    QueueSeq {
        topic_id: u64,
        seq: u64,
        state: crate::model::queue::SeqState,
    },
    /// A queue's counters.
    QueueMeta {
        topic_id: u64,
        last_lease: u64,
        dead_lettered: u64,
    },
    /// A dead-letter move of `seq` began while its dead-letter topic's head was `dlq_mark`.
    DeadLetter {
        topic_id: u64,
        seq: u64,
        dlq_mark: u64,
    },
}

/// A snapshot's description of one sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    pub first_seq: u64,
    /// The boot that sealed it (part of the file name).
    pub gen: u32,
    pub front_seq: u64,
    pub live_count: u64,
    pub live_bytes: u64,
    pub deleted: Vec<u64>,
}

/// An idempotency entry as stored (the topic layer owns its meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdemFields {
    pub created_ms: i64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub head_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendFrame {
    pub topic_id: u64,
    pub idempotency_key: Option<String>,
    pub records: Vec<Record>,
}

/// File header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub shard: u16,
    pub boot: u32,
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ends inside the frame: a torn tail.
    Truncated,
    /// Length out of range, crc mismatch or malformed body.
    Corrupt,
}

impl FileHeader {
    /// The format version of a file whose header decoded.
    pub fn version_of(buf: &[u8]) -> u16 {
        buf.get(8..10)
            .map_or(0, |v| u16::from_le_bytes([v[0], v[1]]))
    }

    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut h = [0u8; FILE_HEADER_LEN];
        h[..8].copy_from_slice(&WAL_MAGIC);
        h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[10..12].copy_from_slice(&self.shard.to_le_bytes());
        h[12..16].copy_from_slice(&self.boot.to_le_bytes());
        h
    }

    pub fn decode(buf: &[u8]) -> Result<FileHeader, DecodeError> {
        if buf.len() < FILE_HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        let version = u16::from_le_bytes([buf[8], buf[9]]);
        if buf[..8] != WAL_MAGIC || !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version) {
            return Err(DecodeError::Corrupt);
        }
        Ok(FileHeader {
            shard: u16::from_le_bytes([buf[10], buf[11]]),
            boot: u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]),
        })
    }
}

/// Builds one frame in place: reserve the header, write the body, then seal.
struct FrameBuf<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> FrameBuf<'a> {
    fn begin(out: &'a mut Vec<u8>, kind: u8, topic_id: u64) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
        out.push(kind);
        out.extend_from_slice(&topic_id.to_le_bytes());
        FrameBuf { out, start }
    }

    fn seal(self) {
        let body = &self.out[self.start + FRAME_HEADER_LEN..];
        let len = body.len() as u32;
        let crc = crc32fast::hash(body);
        self.out[self.start..self.start + 4].copy_from_slice(&len.to_le_bytes());
        self.out[self.start + 4..self.start + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

pub fn encode_config(out: &mut Vec<u8>, topic_id: u64, name: &str, config_json: &[u8]) {
    let f = FrameBuf::begin(out, KIND_CONFIG, topic_id);
    put_bytes16(f.out, name.as_bytes());
    put_bytes32(f.out, config_json);
    f.seal();
}

pub fn encode_delete(out: &mut Vec<u8>, topic_id: u64) {
    FrameBuf::begin(out, KIND_DELETE, topic_id).seal();
}

pub fn encode_reserve(out: &mut Vec<u8>, topic_id: u64, ceiling: u64) {
    let f = FrameBuf::begin(out, KIND_RESERVE, topic_id);
    f.out.extend_from_slice(&ceiling.to_le_bytes());
    f.seal();
}

pub fn encode_head(out: &mut Vec<u8>, topic_id: u64, head_seq: u64) {
    let f = FrameBuf::begin(out, KIND_HEAD, topic_id);
    f.out.extend_from_slice(&head_seq.to_le_bytes());
    f.seal();
}

pub fn encode_floors(out: &mut Vec<u8>, topic_id: u64, floors: &LossFloors) {
    let f = FrameBuf::begin(out, KIND_FLOORS, topic_id);
    for v in [floors.cap, floors.ttl, floors.source_trim] {
        f.out.extend_from_slice(&v.to_le_bytes());
    }
    f.seal();
}

pub fn encode_delete_records(
    out: &mut Vec<u8>,
    topic_id: u64,
    bound: u64,
    pred: Option<&TagPredicate>,
) {
    let f = FrameBuf::begin(out, KIND_DELETE_RECORDS, topic_id);
    f.out.extend_from_slice(&bound.to_le_bytes());
    let (kind, value) = match pred {
        None => (PRED_NONE, ""),
        Some(TagPredicate::Eq(v)) => (PRED_EQ, v.as_str()),
        Some(TagPredicate::Prefix(p)) => (PRED_PREFIX, p.as_str()),
    };
    f.out.push(kind);
    put_bytes16(f.out, value.as_bytes());
    f.seal();
}

/// One write batch; records get seqs `first_seq..` in order and the shared `ts`.
pub fn encode_append(
    out: &mut Vec<u8>,
    topic_id: u64,
    first_seq: u64,
    ts: i64,
    idempotency_key: Option<&str>,
    records: &[RecordDraft],
) {
    let f = FrameBuf::begin(out, KIND_APPEND, topic_id);
    f.out.extend_from_slice(&first_seq.to_le_bytes());
    f.out.extend_from_slice(&ts.to_le_bytes());
    f.out
        .extend_from_slice(&(records.len() as u32).to_le_bytes());
    put_bytes16(f.out, idempotency_key.unwrap_or("").as_bytes());
    for r in records {
        put_record_body(f.out, &r.node, &r.tag, &r.data, &r.meta, r.hops);
    }
    f.seal();
}

/// flags u8 | hops u8 | [node] | [tag] | data | [meta]
fn put_record_body(
    out: &mut Vec<u8>,
    node: &Option<Arc<str>>,
    tag: &Option<Arc<str>>,
    data: &[u8],
    meta: &Option<Bytes>,
    hops: u8,
) {
    let flags = (node.is_some() as u8 * FLAG_NODE)
        | (tag.is_some() as u8 * FLAG_TAG)
        | (meta.is_some() as u8 * FLAG_META);
    out.push(flags);
    out.push(hops);
    if let Some(node) = node {
        put_bytes16(out, node.as_bytes());
    }
    if let Some(tag) = tag {
        put_bytes16(out, tag.as_bytes());
    }
    put_bytes32(out, data);
    if let Some(meta) = meta {
        put_bytes32(out, meta);
    }
}

/// Snapshot form of live records: each with its own seq and ts (holes and deletes allowed).
pub fn encode_records(out: &mut Vec<u8>, topic_id: u64, records: &[Record]) {
    let f = FrameBuf::begin(out, KIND_RECORDS, topic_id);
    f.out
        .extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        f.out.extend_from_slice(&r.seq.to_le_bytes());
        f.out.extend_from_slice(&r.ts.to_le_bytes());
        put_record_body(f.out, &r.node, &r.tag, &r.data, &r.meta, r.hops);
    }
    f.seal();
}

/// Snapshot form of one idempotency entry.
pub fn encode_idempotency(out: &mut Vec<u8>, topic_id: u64, key: &str, e: &IdemFields) {
    let f = FrameBuf::begin(out, KIND_IDEMPOTENCY, topic_id);
    put_bytes16(f.out, key.as_bytes());
    for v in [e.created_ms as u64, e.first_seq, e.last_seq, e.head_seq] {
        f.out.extend_from_slice(&v.to_le_bytes());
    }
    f.seal();
}

pub fn encode_segment(out: &mut Vec<u8>, topic_id: u64, s: &SegmentRef) {
    let f = FrameBuf::begin(out, KIND_SEGMENT, topic_id);
    for v in [s.first_seq, s.front_seq, s.live_count, s.live_bytes] {
        f.out.extend_from_slice(&v.to_le_bytes());
    }
    f.out.extend_from_slice(&s.gen.to_le_bytes());
    f.out
        .extend_from_slice(&(s.deleted.len() as u32).to_le_bytes());
    for d in &s.deleted {
        f.out.extend_from_slice(&d.to_le_bytes());
    }
    f.seal();
}

/// Last frame of a snapshot: its presence (with a valid crc) marks the snapshot complete.
pub fn encode_snapshot_end(out: &mut Vec<u8>, next_topic_id: u64, topics: u64) {
    let f = FrameBuf::begin(out, KIND_SNAPSHOT_END, 0);
    f.out.extend_from_slice(&next_topic_id.to_le_bytes());
    f.out.extend_from_slice(&topics.to_le_bytes());
    f.seal();
}

/// Small bookkeeping frames (reservations, heads, floors, marks) that the WAL still writes,
/// into space kept back for them, while the disk is full; `bytes` is one encoded frame.
pub fn is_control(bytes: &[u8]) -> bool {
    matches!(
        bytes.get(FRAME_HEADER_LEN).copied(),
        Some(KIND_RESERVE | KIND_HEAD | KIND_FLOORS | KIND_SYNC | KIND_STOP)
    )
}

/// A sync mark (see `Frame::Sync`).
pub fn encode_sync(out: &mut Vec<u8>, synced: u64, prev_boot: u32, closing: bool) {
    let f = FrameBuf::begin(out, KIND_SYNC, 0);
    f.out.extend_from_slice(&SYNC_MAGIC);
    f.out.extend_from_slice(&synced.to_le_bytes());
    f.out.extend_from_slice(&prev_boot.to_le_bytes());
    f.out.push(u8::from(closing));
    f.seal();
}

/// The clean-stop mark of a shard (see `Frame::Stop`).
pub fn encode_stop(out: &mut Vec<u8>) {
    FrameBuf::begin(out, KIND_STOP, 0).seal();
}

pub fn encode_loss_range(out: &mut Vec<u8>, topic_id: u64, from: u64, to: u64, reason: u8) {
    let f = FrameBuf::begin(out, KIND_LOSS_RANGE, topic_id);
    f.out.extend_from_slice(&from.to_le_bytes());
    f.out.extend_from_slice(&to.to_le_bytes());
    f.out.push(reason);
    f.seal();
}

fn put_bytes16(out: &mut Vec<u8>, b: &[u8]) {
    // Names, tags, nodes and keys are capped far below 64 KiB by validation.
    out.extend_from_slice(&(b.len().min(u16::MAX as usize) as u16).to_le_bytes());
    out.extend_from_slice(&b[..b.len().min(u16::MAX as usize)]);
}

fn put_bytes32(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Decode the frame starting at `buf[at..]`; returns it and the offset just past it.
pub fn decode(buf: &Bytes, at: usize) -> Result<(Frame, usize), DecodeError> {
    let rest = buf.get(at..).ok_or(DecodeError::Truncated)?;
    if rest.len() < FRAME_HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 || len > MAX_FRAME_BODY {
        return Err(DecodeError::Corrupt);
    }
    let end = at + FRAME_HEADER_LEN + len;
    if end > buf.len() {
        return Err(DecodeError::Truncated);
    }
    let body = buf.slice(at + FRAME_HEADER_LEN..end);
    if crc32fast::hash(&body) != crc {
        return Err(DecodeError::Corrupt);
    }
    let frame = decode_body(&body).ok_or(DecodeError::Corrupt)?;
    Ok((frame, end))
}

fn decode_body(body: &Bytes) -> Option<Frame> {
    let mut r = Reader { buf: body, pos: 0 };
    let kind = r.u8()?;
    let topic_id = r.u64()?;
    let frame = match kind {
        KIND_CONFIG => {
            let name = r.string16()?;
            let config = r.bytes32()?;
            Frame::Config {
                topic_id,
                name,
                config,
            }
        }
        KIND_DELETE => Frame::Delete { topic_id },
        KIND_RESERVE => Frame::Reserve {
            topic_id,
            ceiling: r.u64()?,
        },
        KIND_HEAD => Frame::Head {
            topic_id,
            head_seq: r.u64()?,
        },
        KIND_APPEND => Frame::Append(decode_append(&mut r, topic_id)?),
        KIND_FLOORS => Frame::Floors {
            topic_id,
            floors: LossFloors {
                cap: r.u64()?,
                ttl: r.u64()?,
                source_trim: r.u64()?,
            },
        },
        KIND_RECORDS => Frame::Records {
            topic_id,
            records: decode_records(&mut r)?,
        },
        KIND_IDEMPOTENCY => Frame::Idempotency {
            topic_id,
            key: r.string16()?,
            entry: IdemFields {
                created_ms: r.u64()? as i64,
                first_seq: r.u64()?,
                last_seq: r.u64()?,
                head_seq: r.u64()?,
            },
        },
        KIND_SEGMENT => Frame::Segment {
            topic_id,
            seg: decode_segment_ref(&mut r)?,
        },
        KIND_SNAPSHOT_END => Frame::SnapshotEnd {
            next_topic_id: r.u64()?,
            topics: r.u64()?,
        },
        KIND_DELETE_RECORDS => {
            let bound = r.u64()?;
            Frame::DeleteRecords {
                topic_id,
                bound,
                pred: decode_predicate(&mut r)?,
            }
        }
        queue::KIND_DELETE_SEQS
        | queue::KIND_QUEUE_SEQ
        | queue::KIND_QUEUE_META
        | queue::KIND_DEAD_LETTER => queue::decode(kind, topic_id, &mut r)?,
        router::KIND_ROUTER_DEF | router::KIND_ROUTER_DELETE | router::KIND_ROUTER_CURSOR => {
            router::decode(kind, topic_id, &mut r)?
        }
        _ => decode_bookkeeping(kind, topic_id, &mut r)?,
    };
    // Trailing garbage inside a checksummed body means a writer bug or a forged frame.
    (r.pos == body.len()).then_some(frame)
}

/// Sync marks, Stop frames and LossRange frames: the WAL's and snapshots' own bookkeeping.
fn decode_bookkeeping(kind: u8, topic_id: u64, r: &mut Reader<'_>) -> Option<Frame> {
    let frame = match kind {
        KIND_SYNC => {
            if r.take(8)? != SYNC_MAGIC {
                return None;
            }
            let (synced, prev_boot) = (r.u64()?, r.u32()?);
            let closing = match r.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            Frame::Sync {
                synced,
                prev_boot,
                closing,
            }
        }
        KIND_STOP => Frame::Stop,
        KIND_LOSS_RANGE => {
            let (from, to, reason) = (r.u64()?, r.u64()?, r.u8()?);
            if from == 0 || to < from {
                return None;
            }
            Frame::LossRange {
                topic_id,
                from,
                to,
                reason,
            }
        }
        _ => return None,
    };
    Some(frame)
}

fn decode_segment_ref(r: &mut Reader<'_>) -> Option<SegmentRef> {
    let (first_seq, front_seq, live_count, live_bytes) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let gen = r.u32()?;
    let n = r.u32()? as usize;
    if n > r.remaining() / 8 {
        return None;
    }
    let deleted = (0..n).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
    Some(SegmentRef {
        first_seq,
        gen,
        front_seq,
        live_count,
        live_bytes,
        deleted,
    })
}

/// `Some(None)`: delete everything below the bound; `None`: malformed.
fn decode_predicate(r: &mut Reader<'_>) -> Option<Option<TagPredicate>> {
    let kind = r.u8()?;
    let value = r.string16()?;
    match kind {
        PRED_NONE if value.is_empty() => Some(None),
        PRED_EQ => Some(Some(TagPredicate::Eq(value))),
        PRED_PREFIX => Some(Some(TagPredicate::Prefix(value))),
        _ => None,
    }
}

fn decode_append(r: &mut Reader<'_>, topic_id: u64) -> Option<AppendFrame> {
    let first_seq = r.u64()?;
    let ts = r.u64()? as i64;
    let count = r.u32()? as usize;
    let key = r.string16()?;
    // Each record takes at least 6 bytes, so a count the body cannot hold is corrupt.
    if count == 0 || count > r.remaining() / 6 || first_seq == 0 {
        return None;
    }
    first_seq.checked_add(count as u64)?;
    let mut records = Vec::with_capacity(count);
    for i in 0..count as u64 {
        records.push(read_record_body(r, first_seq + i, ts)?);
    }
    let idempotency_key = (!key.is_empty()).then_some(key);
    Some(AppendFrame {
        topic_id,
        idempotency_key,
        records,
    })
}

fn decode_records(r: &mut Reader<'_>) -> Option<Vec<Record>> {
    let count = r.u32()? as usize;
    // seq + ts + the smallest record body: 22 bytes each.
    if count > r.remaining() / 22 {
        return None;
    }
    let mut records: Vec<Record> = Vec::with_capacity(count);
    for _ in 0..count {
        let seq = r.u64()?;
        let ts = r.u64()? as i64;
        if seq == 0 || records.last().is_some_and(|p| p.seq >= seq) {
            return None;
        }
        records.push(read_record_body(r, seq, ts)?);
    }
    Some(records)
}

/// Append one record body (the Append frame's per-record layout) to `out`.
pub fn encode_record_body(out: &mut Vec<u8>, r: &Record) {
    put_record_body(out, &r.node, &r.tag, &r.data, &r.meta, r.hops);
}

/// Decode one record body occupying exactly `buf[start..end]`; byte fields share `buf`.
pub fn decode_record_body(
    buf: &Bytes,
    start: usize,
    end: usize,
    seq: u64,
    ts: i64,
) -> Option<Record> {
    let body = buf.get(start..end).map(|_| buf.slice(start..end))?;
    let mut r = Reader { buf: &body, pos: 0 };
    let rec = read_record_body(&mut r, seq, ts)?;
    (r.pos == body.len()).then_some(rec)
}

fn read_record_body(r: &mut Reader<'_>, seq: u64, ts: i64) -> Option<Record> {
    let flags = r.u8()?;
    let hops = r.u8()?;
    if flags & !(FLAG_NODE | FLAG_TAG | FLAG_META) != 0 {
        return None;
    }
    let node = if flags & FLAG_NODE != 0 {
        Some(Arc::from(r.string16()?))
    } else {
        None
    };
    let tag = if flags & FLAG_TAG != 0 {
        Some(Arc::from(r.string16()?))
    } else {
        None
    };
    let data = r.bytes32()?;
    let meta = if flags & FLAG_META != 0 {
        Some(r.bytes32()?)
    } else {
        None
    };
    Some(Record {
        seq,
        ts,
        node,
        tag,
        data,
        meta,
        hops,
    })
}

/// Bounds-checked little-endian reader; every accessor returns `None` past the end.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    fn string16(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    fn bytes32(&mut self) -> Option<Bytes> {
        let n = self.u32()? as usize;
        let start = self.pos;
        self.take(n)?;
        Some(self.buf.slice(start..start + n))
    }
}

mod queue;
mod router;
pub use queue::{encode_dead_letter, encode_delete_seqs, encode_queue_meta, encode_queue_seq};
pub use router::{encode_router_cursor, encode_router_def, encode_router_delete};

#[cfg(test)]
mod tests;
