//! The WAL check, by the rules recovery applies: a bad frame in the last file of a (boot,
//! shard) run is a torn tail (a crash mid-write, or a server still writing it) that the next
//! start cuts — a note; anywhere else it is damage, and the server refuses to start.

use super::Problem;
use crate::storage::frame::{self, DecodeError, FileHeader, FILE_HEADER_LEN};
use crate::storage::recovery::list_files;
use bytes::Bytes;
use std::path::Path;

/// The first bad frame of every WAL file in `dir`, with its offset.
pub fn verify_wal(dir: &Path) -> Vec<Problem> {
    let files = match list_files(dir) {
        Ok(f) => f,
        Err(e) => return vec![Problem::damage(dir, 0, e)],
    };
    let mut out = Vec::new();
    for (i, (id, path, _)) in files.iter().enumerate() {
        let tail = files
            .get(i + 1)
            .is_none_or(|(next, ..)| (next.boot, next.shard) != (id.boot, id.shard));
        match std::fs::read(path) {
            Ok(buf) => out.extend(check_file(path, &Bytes::from(buf), tail)),
            // Deleted by a running server's checkpoint meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => out.push(Problem::damage(path, 0, format!("cannot read: {e}"))),
        }
    }
    out
}

fn check_file(path: &Path, buf: &Bytes, tail: bool) -> Option<Problem> {
    match FileHeader::decode(buf) {
        Err(DecodeError::Truncated) if tail => {
            let what = "torn while being created; the next start removes it";
            return Some(Problem::note(path, 0, what));
        }
        Err(_) => {
            let what = "not a WAL file of this format version";
            return Some(Problem::damage(path, 0, what));
        }
        Ok(_) => {}
    }
    let mut at = FILE_HEADER_LEN;
    while at < buf.len() {
        match frame::decode(buf, at) {
            Ok((_, next)) => at = next,
            Err(e) if tail => {
                let what = format!("torn tail ({e:?} frame); the next start cuts the file here");
                return Some(Problem::note(path, at as u64, what));
            }
            Err(e) => {
                let what = format!(
                    "{e:?} frame in a file that is not the last of its run; the server refuses to start"
                );
                return Some(Problem::damage(path, at as u64, what));
            }
        }
    }
    None
}
