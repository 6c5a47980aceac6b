//! Where a power cut landed inside a WAL rotation, so the sweeps can show (and assert) that
//! their cuts hit every step of it: before the closing mark, between it and its fdatasync,
//! while the next file is created, preallocated and gets its header, and before the closed
//! file is shrunk.

use crate::storage::fs::fault::{is_closing_mark, Attempt, FaultFs, Op};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Point {
    /// The closing mark was never appended.
    ClosingMark,
    /// The closing mark was appended, not synced.
    ClosingSync,
    /// The next file was not created.
    NextCreate,
    /// The next file exists, its space is not reserved.
    NextPreallocate,
    /// The next file's header was not written or not synced.
    NextHeader,
    /// The next file is durable; the closed one still has its preallocated tail.
    Shrink,
}

pub const ALL: [Point; 6] = [
    Point::ClosingMark,
    Point::ClosingSync,
    Point::NextCreate,
    Point::NextPreallocate,
    Point::NextHeader,
    Point::Shrink,
];

/// A WAL file a rotation created (index 1 or more; index 0 is created at start-up).
fn is_rotated_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let index = name
        .as_deref()
        .and_then(|n| n.strip_suffix(".wal"))
        .and_then(|n| n.rsplit('-').next())
        .and_then(|i| i.parse::<u32>().ok());
    index.is_some_and(|i| i > 0)
}

/// The rotation step an operation performs, if any.
pub fn classify(a: &Attempt) -> Option<Point> {
    let closing = a.data.as_deref().is_some_and(is_closing_mark);
    let rotated = is_rotated_file(&a.path);
    match a.op {
        Op::Append if closing => Some(Point::ClosingMark),
        Op::SyncData if a.after_closing_mark => Some(Point::ClosingSync),
        Op::Shrink => Some(Point::Shrink),
        Op::CreateAppend if rotated => Some(Point::NextCreate),
        Op::Preallocate if rotated => Some(Point::NextPreallocate),
        Op::Append if rotated && a.appends_before == 0 => Some(Point::NextHeader),
        Op::SyncData if rotated && a.appends_before == 1 => Some(Point::NextHeader),
        _ => None,
    }
}

/// The rotation steps of a finished run, by their index in its operation log (the cut that
/// lands on that operation).
pub fn in_log(fs: &FaultFs) -> Vec<(usize, Point)> {
    let mut appends: HashMap<PathBuf, (usize, bool)> = HashMap::new();
    let mut found = Vec::new();
    for (i, (op, path)) in fs.log().into_iter().enumerate() {
        let (before, after_closing_mark) = appends.get(&path).copied().unwrap_or_default();
        let data = fs.appended(i);
        let a = Attempt {
            op,
            path: path.clone(),
            appends_before: before,
            after_closing_mark,
            data: data.clone(),
        };
        found.extend(classify(&a).map(|p| (i, p)));
        if let Some(d) = data {
            appends.insert(path, (before + 1, is_closing_mark(&d)));
        }
    }
    found
}

/// How often each rotation step was the cut point.
#[derive(Debug, Default)]
pub struct Coverage(BTreeMap<Point, usize>);

impl Coverage {
    pub fn note(&mut self, fs: &FaultFs) {
        if let Some(p) = fs.refused().as_ref().and_then(classify) {
            *self.0.entry(p).or_default() += 1;
        }
    }

    pub fn missing(&self) -> Vec<Point> {
        ALL.into_iter()
            .filter(|p| !self.0.contains_key(p))
            .collect()
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(p, n)| format!("{p:?} {n}")).collect();
        f.write_str(&parts.join(", "))
    }
}
