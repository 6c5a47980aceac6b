//! One small JSON file per sink under `DATA_DIR/sinks/` (docs/STORAGE.md): the definition,
//! the epoch, the source topic id the cursor refers to, the cursor and the counters.
//! Written whole through `Fs::write_atomic` (temp file, fsync, rename, directory fsync), so a
//! crash leaves the old or the new file, never a torn one. Not part of the WAL or snapshots.
//! Invariant: the cursor written here was acknowledged by Kafka (at_least_once) or committed
//! (exactly_once, where it is only a hint: the progress topic is the truth).

use crate::model::sink::{def_to_json, is_valid_sink_name, parse_def, SinkDef};
use crate::storage::fs::Fs;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Format version in every file; a file with another version is refused at startup.
pub const FILE_VERSION: u64 = 1;

/// Everything a sink keeps across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkFile {
    pub name: String,
    pub def: SinkDef,
    /// Set when the sink is created (ms since the epoch); a progress record of another
    /// epoch belongs to an earlier sink of the same name and is not resumed from.
    pub epoch: u64,
    /// Internal id of the source topic the cursor counts in; `0` before the sink first saw
    /// it. A re-created topic (new id) restarts the sink at its `from_seq`.
    pub topic_id: u64,
    pub cursor: u64,
    pub forwarded_total: u64,
    pub gap_markers_total: u64,
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sinks")
}

/// The file of sink `name`: the name follows the topic name rule (letters, digits, `._:-`,
/// first a letter or digit), so it is a safe file name as it is.
pub fn path(data_dir: &Path, name: &str) -> PathBuf {
    dir(data_dir).join(format!("{name}.json"))
}

impl SinkFile {
    pub fn encode(&self) -> Vec<u8> {
        let v = json!({
            "version": FILE_VERSION, "name": self.name, "definition": def_to_json(&self.def, false),
            "epoch": self.epoch, "topic_id": self.topic_id, "cursor": self.cursor,
            "forwarded_total": self.forwarded_total, "gap_markers_total": self.gap_markers_total,
        });
        let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SinkFile, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let num = |k: &str| v.get(k).and_then(Value::as_u64).ok_or(format!("no {k}"));
        if num("version")? != FILE_VERSION {
            return Err(format!("unknown version (this build reads {FILE_VERSION})"));
        }
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if !is_valid_sink_name(name) {
            return Err("invalid sink name".into());
        }
        let body = v
            .get("definition")
            .and_then(Value::as_object)
            .ok_or("no definition")?;
        let def = parse_def(name, body).map_err(|e| format!("bad definition: {e:?}"))?;
        Ok(SinkFile {
            name: name.to_string(),
            def,
            epoch: num("epoch")?,
            topic_id: num("topic_id")?,
            cursor: num("cursor")?,
            forwarded_total: num("forwarded_total")?,
            gap_markers_total: num("gap_markers_total")?,
        })
    }

    pub fn save(&self, fs: &dyn Fs, data_dir: &Path) -> std::io::Result<()> {
        private_dir(fs, data_dir)?;
        fs.write_atomic(&path(data_dir, &self.name), &self.encode())
    }
}

/// `sinks/`, created readable by the server's user only: the files hold Kafka credentials.
/// Its creation is made durable in the data directory before any file goes in.
fn private_dir(fs: &dyn Fs, data_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let d = dir(data_dir);
    if d.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)?;
    fs.sync_dir(data_dir)
}

pub fn remove(fs: &dyn Fs, data_dir: &Path, name: &str) -> std::io::Result<()> {
    match fs.remove(&path(data_dir, name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => fs.sync_dir(&dir(data_dir)),
    }
}

/// Every sink file of the data directory, in name order. A file that cannot be read or
/// decoded stops startup (naming it): silently dropping a sink would stop its forwarding.
/// Leftover `.tmp` files of an interrupted write are ignored.
pub fn load_all(data_dir: &Path) -> Result<Vec<SinkFile>, String> {
    let d = dir(data_dir);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", d.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let p = entry
            .map_err(|e| format!("cannot read {}: {e}", d.display()))?
            .path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let file =
            SinkFile::decode(&bytes).map_err(|e| format!("sink file {}: {e}", p.display()))?;
        if p.file_stem().and_then(|s| s.to_str()) != Some(file.name.as_str()) {
            return Err(format!(
                "sink file {} names sink {:?}",
                p.display(),
                file.name
            ));
        }
        out.push(file);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SinkFile {
        let body = json!({"source": "orders", "bootstrap_servers": "h:1", "kafka_topic": "t",
            "properties": {"sasl.password": "p"}, "guarantee": "exactly_once"});
        SinkFile {
            name: "s1".into(),
            def: parse_def("s1", body.as_object().unwrap()).unwrap(),
            epoch: 1_700_000_000_000,
            topic_id: 4,
            cursor: 99,
            forwarded_total: 98,
            gap_markers_total: 1,
        }
    }

    #[test]
    fn a_file_round_trips_with_its_secrets() {
        let f = sample();
        assert_eq!(SinkFile::decode(&f.encode()).unwrap(), f);
    }

    #[test]
    fn damaged_or_foreign_files_are_refused() {
        let good: Value = serde_json::from_slice(&sample().encode()).unwrap();
        assert!(SinkFile::decode(b"{").is_err());
        for (k, v) in [
            ("version", json!(2)),
            ("cursor", json!(-1)),
            ("name", json!("a/b")),
        ] {
            let mut bad = good.clone();
            bad[k] = v;
            let err = SinkFile::decode(bad.to_string().as_bytes()).unwrap_err();
            assert!(!err.is_empty(), "{k}");
        }
    }

    #[test]
    fn saved_files_load_back_and_temp_files_are_ignored() {
        let tmp = std::env::temp_dir().join(format!("sinkfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let f = sample();
        f.save(&crate::storage::fs::RealFs, &tmp).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir(&tmp)).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "sinks/ is private to the server's user"
        );
        std::fs::write(dir(&tmp).join("s2.json.tmp"), b"torn").unwrap();
        assert_eq!(load_all(&tmp).unwrap(), vec![f.clone()]);
        remove(&crate::storage::fs::RealFs, &tmp, "s1").unwrap();
        assert_eq!(load_all(&tmp).unwrap(), vec![]);
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
