//! The backup archive: POSIX ustar, the format `tar -xf` reads everywhere, written and read
//! here for the few shapes a backup holds (directories and regular files with short relative
//! names). Written by the server as it streams; read by `topics backup` and `topics verify`,
//! which refuse anything else (links, absolute or `..` names, a bad header checksum, an
//! archive without its end marker) rather than extract it.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

pub const BLOCK: usize = 512;
/// ustar's size field: 11 octal digits.
pub const MAX_SIZE: u64 = (1 << 33) - 1;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// The 512-byte header of one entry. `name` must be relative and under 100 bytes.
pub fn header(name: &str, kind: Kind, size: u64, mtime: u64) -> io::Result<[u8; BLOCK]> {
    if name.len() >= 100 || size > MAX_SIZE {
        return Err(io::Error::other(format!(
            "{name}: name or size does not fit a ustar header"
        )));
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let (mode, flag) = match kind {
        Kind::File => (0o644, b'0'),
        Kind::Dir => (0o755, b'5'),
    };
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], 0); // uid
    octal(&mut h[116..124], 0); // gid
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = flag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field read as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
    Ok(h)
}

/// Zero bytes that pad an entry of `size` bytes to a whole block.
pub fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// Two zero blocks end an archive.
pub const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// `value` as zero-padded octal filling `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// A header that decoded: a name that stays inside the destination, a kind, a size.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn parse_header(h: &[u8; BLOCK]) -> io::Result<Entry> {
    let stored = parse_octal(&h[148..156]).ok_or_else(|| bad("unreadable header checksum"))?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| u64::from(if (148..156).contains(&i) { b' ' } else { b }))
        .sum();
    if sum != stored {
        return Err(bad("header checksum mismatch: the archive is damaged"));
    }
    let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name = std::str::from_utf8(&h[..name_end])
        .map_err(|_| bad("entry name is not UTF-8"))?
        .trim_end_matches('/')
        .to_string();
    let kind = match h[156] {
        b'0' | 0 => Kind::File,
        b'5' => Kind::Dir,
        other => return Err(bad(format!("{name}: entry type {other:?} is not allowed"))),
    };
    let size = parse_octal(&h[124..136]).ok_or_else(|| bad(format!("{name}: bad size")))?;
    safe_relative(&name)?;
    Ok(Entry { name, kind, size })
}

/// Only plain relative names: an archive must not write outside its destination.
fn safe_relative(name: &str) -> io::Result<()> {
    let path = Path::new(name);
    let plain = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    match plain {
        true => Ok(()),
        false => Err(bad(format!(
            "{name:?}: entry name is not a plain relative path"
        ))),
    }
}

/// Unpack an archive into `dest` (which must exist): every file written and fsynced, every
/// directory fsynced. Fails on damage, on a disallowed entry and on a missing end marker
/// (a stream that was cut). Returns the files written, in archive order.
pub fn extract(mut input: impl Read, dest: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![dest.to_path_buf()];
    loop {
        let mut h = [0u8; BLOCK];
        read_block(&mut input, &mut h, "an entry header")?;
        if h.iter().all(|&b| b == 0) {
            read_block(&mut input, &mut h, "the end marker")?;
            break;
        }
        let entry = parse_header(&h)?;
        let path = dest.join(&entry.name);
        match entry.kind {
            Kind::Dir => {
                std::fs::create_dir_all(&path)?;
                dirs.push(path);
            }
            Kind::File => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                copy_exact(&mut input, &path, entry.size)?;
                skip(&mut input, padding(entry.size) as u64)?;
                files.push(path);
            }
        }
    }
    for d in dirs {
        std::fs::File::open(&d)?.sync_all()?;
    }
    Ok(files)
}

fn read_block(input: &mut impl Read, h: &mut [u8; BLOCK], what: &str) -> io::Result<()> {
    input.read_exact(h).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => bad(format!(
            "the archive ends before {what}: it is incomplete (was the transfer cut?)"
        )),
        _ => e,
    })
}

fn copy_exact(input: &mut impl Read, path: &Path, size: u64) -> io::Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let copied = io::copy(&mut input.take(size), &mut out)?;
    if copied != size {
        return Err(bad(format!(
            "{}: the archive ends inside this file ({copied} of {size} bytes): it is incomplete",
            path.display()
        )));
    }
    out.flush()?;
    out.sync_all()
}

fn skip(input: &mut impl Read, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut input.take(n), &mut io::sink())?;
    match skipped == n {
        true => Ok(()),
        false => Err(bad("the archive ends inside padding: it is incomplete")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, Kind, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, data) in entries {
            out.extend_from_slice(&header(name, *kind, data.len() as u64, 0).unwrap());
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0, padding(data.len() as u64)));
        }
        out.extend_from_slice(&END);
        out
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("topics-tar-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_through_extract() {
        let bytes = archive(&[
            ("wal", Kind::Dir, b""),
            ("wal/a.wal", Kind::File, b"hello"),
            ("snapshots/1.snap", Kind::File, &[7u8; 1024]),
        ]);
        assert_eq!(bytes.len() % BLOCK, 0);
        let d = tmp("round");
        let files = extract(&bytes[..], &d).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(std::fs::read(d.join("wal/a.wal")).unwrap(), b"hello");
        assert_eq!(
            std::fs::read(d.join("snapshots/1.snap")).unwrap(),
            [7u8; 1024]
        );
    }

    #[test]
    fn system_tar_reads_what_we_write() {
        // The archive is meant for `tar -xf` too; skip quietly only where no tar exists.
        let Ok(out) = std::process::Command::new("tar").arg("--version").output() else {
            return;
        };
        assert!(out.status.success());
        let d = tmp("system");
        std::fs::write(
            d.join("a.tar"),
            archive(&[("x", Kind::Dir, b""), ("x/y.seg", Kind::File, b"abc")]),
        )
        .unwrap();
        let st = std::process::Command::new("tar")
            .args(["-xf", "a.tar"])
            .current_dir(&d)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::read(d.join("x/y.seg")).unwrap(), b"abc");
    }

    #[test]
    fn a_cut_archive_is_refused() {
        let bytes = archive(&[("a.seg", Kind::File, &[1u8; 2000])]);
        for cut in [100, BLOCK + 10, 3 * BLOCK, bytes.len() - BLOCK] {
            let d = tmp(&format!("cut{cut}"));
            let e = extract(&bytes[..cut], &d).unwrap_err();
            assert!(e.to_string().contains("incomplete"), "cut {cut}: {e}");
        }
    }

    #[test]
    fn damaged_headers_and_escaping_names_are_refused() {
        let mut bytes = archive(&[("a.seg", Kind::File, b"abc")]);
        bytes[3] ^= 1;
        let e = extract(&bytes[..], &tmp("flip")).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        for name in ["../x", "/etc/x", "a/../../x"] {
            let bytes = archive(&[(name, Kind::File, b"abc")]);
            let e = extract(&bytes[..], &tmp("escape")).unwrap_err();
            assert!(e.to_string().contains("plain relative"), "{name}: {e}");
        }
        let mut link = archive(&[("l", Kind::File, b"")]);
        link[156] = b'2';
        // Fix the checksum so only the type is wrong.
        let mut h = [0u8; BLOCK];
        h.copy_from_slice(&link[..BLOCK]);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        octal(&mut h[148..155], u64::from(sum));
        h[155] = b' ';
        link[..BLOCK].copy_from_slice(&h);
        let e = extract(&link[..], &tmp("link")).unwrap_err();
        assert!(e.to_string().contains("not allowed"), "{e}");
    }
}
