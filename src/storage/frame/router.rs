//! Router frames (kinds 15–17): a router's definition, its removal, and its cursor. The
//! header's id slot holds the router id (an incarnation number, never reused), so frames of a
//! deleted router can never be applied to a later router of the same name.

use super::{put_bytes16, put_bytes32, Frame, FrameBuf, Reader};
use crate::model::router::Position;

pub(super) const KIND_ROUTER_DEF: u8 = 15;
pub(super) const KIND_ROUTER_DELETE: u8 = 16;
pub(super) const KIND_ROUTER_CURSOR: u8 = 17;

/// A router created or re-configured (WAL), or a router's whole state (snapshot). The
/// position is applied with `max`, so a re-configuration never moves it back.
pub fn encode_router_def(
    out: &mut Vec<u8>,
    router_id: u64,
    name: &str,
    def_json: &[u8],
    pos: Position,
) {
    let f = FrameBuf::begin(out, KIND_ROUTER_DEF, router_id);
    put_bytes16(f.out, name.as_bytes());
    put_bytes32(f.out, def_json);
    put_position(f.out, pos);
    f.seal();
}

pub fn encode_router_delete(out: &mut Vec<u8>, router_id: u64) {
    FrameBuf::begin(out, KIND_ROUTER_DELETE, router_id).seal();
}

/// The router consumed its source up to the position's cursor (applied with `max`).
pub fn encode_router_cursor(out: &mut Vec<u8>, router_id: u64, pos: Position) {
    let f = FrameBuf::begin(out, KIND_ROUTER_CURSOR, router_id);
    put_position(f.out, pos);
    f.seal();
}

fn put_position(out: &mut Vec<u8>, pos: Position) {
    out.extend_from_slice(&pos.cursor.to_le_bytes());
    out.extend_from_slice(&pos.forwarded_total.to_le_bytes());
    out.extend_from_slice(&pos.dest_mark.to_le_bytes());
}

/// Frames written before the dest mark existed end after the count: their mark is 0 (a
/// recovery scan then starts at the dest's beginning, which is only slower).
fn position(r: &mut Reader<'_>) -> Option<Position> {
    let (cursor, forwarded_total) = (r.u64()?, r.u64()?);
    let dest_mark = if r.remaining() >= 8 { r.u64()? } else { 0 };
    Some(Position {
        cursor,
        forwarded_total,
        dest_mark,
    })
}

pub(super) fn decode(kind: u8, router_id: u64, r: &mut Reader<'_>) -> Option<Frame> {
    Some(match kind {
        KIND_ROUTER_DEF => Frame::RouterDef {
            router_id,
            name: r.string16()?,
            def: r.bytes32()?,
            pos: position(r)?,
        },
        KIND_ROUTER_DELETE => Frame::RouterDelete { router_id },
        KIND_ROUTER_CURSOR => Frame::RouterCursor {
            router_id,
            pos: position(r)?,
        },
        _ => return None,
    })
}
