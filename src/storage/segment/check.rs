//! The full check of one segment file, for `topics verify`: everything `open` checks, the
//! whole-file crc, the end magic, and every record's own check. Reads the file with plain
//! reads (no mapping), so it is safe on any file, whatever its state.

use super::layout::{self, Damage, END_MAGIC, FOOTER};
use super::Segment;
use bytes::Bytes;
use std::path::Path;

/// What checking one segment file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCheck {
    /// Records whose own check ran (0 when the index could not be trusted).
    pub records: usize,
    /// Format version, when the header could be trusted.
    pub version: Option<u16>,
    /// What failed where, with the record's seq when the damage is one record's.
    pub problems: Vec<(Damage, Option<u64>)>,
}

pub fn check_file(path: &Path) -> std::io::Result<FileCheck> {
    let buf = Bytes::from(std::fs::read(path)?);
    let mut out = FileCheck::default();
    let seg = match Segment::from_bytes(path.to_path_buf(), buf.clone()) {
        Ok(seg) => seg,
        Err(d) => {
            out.problems.push((d, None));
            if !layout::footer_ok(&buf) {
                out.problems
                    .push((footer_damage(&buf, "footer crc mismatch"), None));
            }
            return Ok(out);
        }
    };
    if let Err(d) = seg.verify_footer() {
        out.problems.push((d, None));
    }
    if buf.get(buf.len() - END_MAGIC.len()..) != Some(&END_MAGIC[..]) {
        out.problems
            .push((footer_damage(&buf, "footer magic missing"), None));
    }
    for i in 0..seg.len() {
        if let Err(d) = seg.read(i) {
            out.problems.push((d, Some(seg.entry(i).seq)));
        }
    }
    out.records = seg.len();
    out.version = Some(seg.version());
    Ok(out)
}

fn footer_damage(buf: &[u8], what: &'static str) -> Damage {
    Damage {
        offset: buf.len().saturating_sub(FOOTER) as u64,
        what,
    }
}
