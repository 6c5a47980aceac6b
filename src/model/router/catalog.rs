//! Folding replayed router frames into router states, pure. Definitions and removals of a
//! router go to one WAL shard (its name's), so they replay in order; cursors go to the dest's
//! shard, so a cursor may replay before the definition it belongs to. Cursors are therefore
//! kept by router id until the end and merged with `max`: a cursor only ever moves forward,
//! and ids are never reused, so a stray cursor of a removed router is simply dropped.

use super::{parse_def, Position, RouterDef};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// A router rebuilt from the log, before its task starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredRouter {
    pub id: u64,
    pub name: String,
    pub def: RouterDef,
    pub pos: Position,
}

#[derive(Debug, Default)]
pub struct RouterCatalog {
    /// Live definitions by id: name, stored definition JSON.
    defs: BTreeMap<u64, (String, bytes::Bytes)>,
    /// Highest position seen per id, whether or not its definition was seen yet.
    cursors: HashMap<u64, Position>,
}

impl RouterCatalog {
    pub fn define(&mut self, id: u64, name: String, def: bytes::Bytes, pos: Position) {
        // Another id under the same name is an older incarnation whose removal replayed
        // from a snapshot taken after it; the newer id wins.
        self.defs.retain(|&other, (n, _)| *n != name || other > id);
        if self.defs.values().any(|(n, _)| *n == name) {
            return;
        }
        self.defs.insert(id, (name, def));
        self.advance(id, pos);
    }

    pub fn remove(&mut self, id: u64) {
        self.defs.remove(&id);
    }

    pub fn advance(&mut self, id: u64, pos: Position) {
        let e = self.cursors.entry(id).or_default();
        *e = e.merge(pos);
    }

    /// The live routers whose source and dest both exist, in name order. A stored definition
    /// that no longer parses is an error, like an unreadable topic config.
    pub fn finish(
        self,
        topic_exists: impl Fn(&str) -> bool,
    ) -> Result<Vec<RecoveredRouter>, String> {
        let mut out = Vec::with_capacity(self.defs.len());
        for (id, (name, json)) in self.defs {
            let body: Map<String, Value> = serde_json::from_slice(&json)
                .map_err(|e| format!("router {name}: unreadable stored definition: {e}"))?;
            let def = parse_def(&name, &body)
                .map_err(|e| format!("router {name}: invalid stored definition: {e:?}"))?;
            // A topic delete removes its routers durably first; a router whose topic is
            // missing can only be one whose removal was cut by a crash, so it is dropped.
            if !topic_exists(&def.source) || !topic_exists(&def.dest) {
                continue;
            }
            let pos = self.cursors.get(&id).copied().unwrap_or_default();
            out.push(RecoveredRouter { id, name, def, pos });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(cursor: u64, forwarded_total: u64) -> Position {
        Position {
            cursor,
            forwarded_total,
            dest_mark: 0,
        }
    }

    fn def_json(source: &str, dest: &str) -> bytes::Bytes {
        bytes::Bytes::from(format!(r#"{{"source":"{source}","dest":"{dest}"}}"#))
    }

    fn finish(c: RouterCatalog) -> Vec<(u64, String, u64, u64)> {
        c.finish(|t| t != "gone")
            .expect("valid")
            .into_iter()
            .map(|r| (r.id, r.name, r.pos.cursor, r.pos.forwarded_total))
            .collect()
    }

    #[test]
    fn a_cursor_replayed_before_its_definition_still_counts() {
        let mut c = RouterCatalog::default();
        c.advance(5, pos(30, 12));
        c.define(5, "r".into(), def_json("a", "b"), pos(10, 0));
        assert_eq!(finish(c), vec![(5, "r".into(), 30, 12)]);
    }

    #[test]
    fn a_redefinition_never_moves_the_cursor_back() {
        let mut c = RouterCatalog::default();
        c.define(5, "r".into(), def_json("a", "b"), pos(10, 0));
        c.advance(5, pos(30, 12));
        c.define(5, "r".into(), def_json("a", "b"), pos(0, 0));
        assert_eq!(finish(c), vec![(5, "r".into(), 30, 12)]);
    }

    #[test]
    fn a_removed_router_stays_removed_and_its_cursors_are_dropped() {
        let mut c = RouterCatalog::default();
        c.define(5, "r".into(), def_json("a", "b"), pos(10, 0));
        c.remove(5);
        c.advance(5, pos(30, 12));
        assert!(finish(c).is_empty());
    }

    #[test]
    fn a_new_incarnation_starts_from_its_own_cursor() {
        let mut c = RouterCatalog::default();
        c.define(5, "r".into(), def_json("a", "b"), pos(10, 0));
        c.advance(5, pos(30, 12));
        c.remove(5);
        c.define(9, "r".into(), def_json("a", "b"), pos(40, 0));
        assert_eq!(finish(c), vec![(9, "r".into(), 40, 0)]);
    }

    #[test]
    fn routers_of_missing_topics_are_dropped() {
        let mut c = RouterCatalog::default();
        c.define(5, "r".into(), def_json("a", "gone"), pos(10, 0));
        c.define(6, "s".into(), def_json("gone", "b"), pos(10, 0));
        assert!(finish(c).is_empty());
    }

    #[test]
    fn an_unreadable_definition_stops_recovery() {
        let mut c = RouterCatalog::default();
        c.define(5, "r".into(), bytes::Bytes::from_static(b"{"), pos(10, 0));
        assert!(c.finish(|_| true).is_err());
    }
}
