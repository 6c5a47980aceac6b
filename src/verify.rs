//! `topics verify PATH` (or `--data-dir DIR`): check every checksum in a data directory — or
//! in a backup archive, unpacked into a temporary directory first — and print one line per
//! problem (file, offset, what) and a summary. Exit status: 0 clean (notes such as a torn WAL
//! tail allowed), 1 damage found (an archive that is damaged or incomplete included), 2 usage
//! error.
//!
//! It takes no lock and writes nothing, so it may run beside a server: segments and
//! snapshots are immutable once named, files a checkpoint deletes meanwhile are skipped, and
//! the WAL file a server is appending to can only show a torn tail, which is a note.

use crate::storage::verify::{verify_segments, verify_snapshots, verify_wal, Problem, Severity};
use crate::storage::wal_dir;
use std::io::Write;
use std::path::Path;

pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_DAMAGE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Check a data directory or a backup archive (`topics backup` writes either).
pub fn run_path(path: &Path, out: &mut dyn Write) -> u8 {
    if path.is_dir() {
        return run(path, out);
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return EXIT_USAGE;
        }
    };
    let scratch = std::env::temp_dir().join(format!("topics-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        eprintln!("error: {}: {e}", scratch.display());
        return EXIT_USAGE;
    }
    let reader = std::io::BufReader::new(file);
    let code = match crate::backup::tar::extract(reader, &scratch) {
        Ok(_) => {
            let _ = writeln!(out, "archive {}: unpacked whole", path.display());
            run(&scratch, out)
        }
        Err(e) => {
            let _ = writeln!(out, "{}: {e}", path.display());
            EXIT_DAMAGE
        }
    };
    let _ = std::fs::remove_dir_all(&scratch);
    code
}

/// Check `data_dir`, report to `out` (a usage error to stderr); returns the exit status.
pub fn run(data_dir: &Path, out: &mut dyn Write) -> u8 {
    if !data_dir.is_dir() {
        eprintln!("error: {} is not a directory", data_dir.display());
        return EXIT_USAGE;
    }
    let segments = verify_segments(data_dir);
    let (snapshots, newest) = verify_snapshots(data_dir);
    let wal = verify_wal(data_dir);
    let wal_files = std::fs::read_dir(wal_dir(data_dir)).map_or(0, |d| d.count());
    let problems: Vec<&Problem> = segments
        .problems
        .iter()
        .chain(&snapshots.problems)
        .chain(&wal)
        .collect();
    for p in &problems {
        let note = if p.severity == Severity::Note {
            "note: "
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{}: offset {}: {note}{}",
            p.file.display(),
            p.offset,
            p.what
        );
    }
    let damaged = problems
        .iter()
        .filter(|p| p.severity == Severity::Damage)
        .count();
    let newest = newest.map_or("none".to_string(), |n| n.to_string());
    let verdict = if damaged == 0 {
        "clean".to_string()
    } else {
        format!("{damaged} problems")
    };
    let _ = writeln!(
        out,
        "verified {}: {} segments ({} records), {} snapshots (newest valid: {newest}), {wal_files} WAL files: {verdict}",
        data_dir.display(),
        segments.files,
        segments.items,
        snapshots.files,
    );
    if damaged == 0 {
        EXIT_CLEAN
    } else {
        EXIT_DAMAGE
    }
}
