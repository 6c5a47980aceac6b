//! Router frames (kinds 15–17): a router's definition, its removal, and its cursor. The
//! header's id slot holds the router id (an incarnation number, never reused), so frames of a
//! deleted router can never be applied to a later router of the same name.

use super::{put_bytes16, put_bytes32, Frame, FrameBuf, Reader};

pub(super) const KIND_ROUTER_DEF: u8 = 15;
pub(super) const KIND_ROUTER_DELETE: u8 = 16;
pub(super) const KIND_ROUTER_CURSOR: u8 = 17;

/// A router created or re-configured (WAL), or a router's whole state (snapshot). `cursor`
/// and `forwarded_total` are applied with `max`, so a re-configuration never moves them back.
pub fn encode_router_def(
    out: &mut Vec<u8>,
    router_id: u64,
    name: &str,
    def_json: &[u8],
    cursor: u64,
    forwarded_total: u64,
) {
    let f = FrameBuf::begin(out, KIND_ROUTER_DEF, router_id);
    put_bytes16(f.out, name.as_bytes());
    put_bytes32(f.out, def_json);
    f.out.extend_from_slice(&cursor.to_le_bytes());
    f.out.extend_from_slice(&forwarded_total.to_le_bytes());
    f.seal();
}

pub fn encode_router_delete(out: &mut Vec<u8>, router_id: u64) {
    FrameBuf::begin(out, KIND_ROUTER_DELETE, router_id).seal();
}

/// The router consumed its source up to `cursor` (applied with `max`).
pub fn encode_router_cursor(out: &mut Vec<u8>, router_id: u64, cursor: u64, forwarded_total: u64) {
    let f = FrameBuf::begin(out, KIND_ROUTER_CURSOR, router_id);
    f.out.extend_from_slice(&cursor.to_le_bytes());
    f.out.extend_from_slice(&forwarded_total.to_le_bytes());
    f.seal();
}

pub(super) fn decode(kind: u8, router_id: u64, r: &mut Reader<'_>) -> Option<Frame> {
    Some(match kind {
        KIND_ROUTER_DEF => Frame::RouterDef {
            router_id,
            name: r.string16()?,
            def: r.bytes32()?,
            cursor: r.u64()?,
            forwarded_total: r.u64()?,
        },
        KIND_ROUTER_DELETE => Frame::RouterDelete { router_id },
        KIND_ROUTER_CURSOR => Frame::RouterCursor {
            router_id,
            cursor: r.u64()?,
            forwarded_total: r.u64()?,
        },
        _ => return None,
    })
}
