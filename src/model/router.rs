//! Router rules (API.md §12), pure: the PUT body and its field checks, the graph checks a new
//! or re-configured router must pass (fan-in, re-point, cycle with its path), and the
//! per-record forwarding decision (hop cap, filter, `preserve_*`).
//! No I/O and no router state lives here; `router/` (the forwarding tasks) and `http/` apply
//! these rules. Invariant: the graph checks look only at the definitions they are given, so
//! the caller must hold whatever lock makes "the existing routers" a consistent set.

use super::name::{is_valid_router_name, is_valid_topic_name};
use super::predicate::TagPredicate;
use super::record::{Record, RecordDraft};
use serde_json::{Map, Value};

/// Delivery guarantee (API.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    AtLeastOnce,
    ExactlyOnce,
}

impl Guarantee {
    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::AtLeastOnce => "at_least_once",
            Guarantee::ExactlyOnce => "exactly_once",
        }
    }
}

/// A router definition as stored: everything a PUT sets. The cursor is not part of it, so a
/// re-PUT (which replaces the definition) can never move the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterDef {
    pub source: String,
    pub dest: String,
    pub preserve_node: bool,
    pub preserve_tag: bool,
    pub create_dest: bool,
    pub filter: Option<TagPredicate>,
    pub allow_cycle: bool,
    pub guarantee: Guarantee,
}

/// Where a router stands, as logged and recovered: the last source seq consumed, the
/// source records accounted into the dest, and the dest's seq after its last copy (where a
/// recovery scan for copies the cursor does not cover starts). All three only grow, so
/// replay merges positions field by field with `max`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub cursor: u64,
    pub forwarded_total: u64,
    pub dest_mark: u64,
}

impl Position {
    pub fn merge(self, o: Position) -> Position {
        Position {
            cursor: self.cursor.max(o.cursor),
            forwarded_total: self.forwarded_total.max(o.forwarded_total),
            dest_mark: self.dest_mark.max(o.dest_mark),
        }
    }
}

/// Why a PUT body is refused before any state is consulted; all are `400 invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefError {
    /// A field is missing or has the wrong type; names the field.
    Field(&'static str, String),
    RouterName,
    SameTopic,
    SourceName,
    DestName,
}

/// The `source`/`dest` strings of a body, for the allowlist check that precedes every other
/// check (API.md §12). `None` when either is missing or not a string (the full parse reports it).
pub fn endpoints(body: &Map<String, Value>) -> Option<(&str, &str)> {
    Some((body.get("source")?.as_str()?, body.get("dest")?.as_str()?))
}

/// Parse a PUT body for router `name`, in the contract's order after the allowlist: field
/// types, router name, `source == dest`, then the source and dest names.
pub fn parse_def(name: &str, body: &Map<String, Value>) -> Result<RouterDef, DefError> {
    let source = required_str(body, "source")?;
    let dest = required_str(body, "dest")?;
    let def = RouterDef {
        preserve_node: opt_bool(body, "preserve_node", true)?,
        preserve_tag: opt_bool(body, "preserve_tag", true)?,
        create_dest: opt_bool(body, "create_dest", true)?,
        allow_cycle: opt_bool(body, "allow_cycle", false)?,
        filter: match body.get("filter") {
            None | Some(Value::Null) => None,
            Some(v) => Some(TagPredicate::parse(v).map_err(|e| DefError::Field("filter", e))?),
        },
        guarantee: match body.get("guarantee") {
            None => Guarantee::AtLeastOnce,
            Some(v) if v == "at_least_once" => Guarantee::AtLeastOnce,
            Some(v) if v == "exactly_once" => Guarantee::ExactlyOnce,
            Some(_) => return Err(field("guarantee", "at_least_once or exactly_once")),
        },
        source: source.to_string(),
        dest: dest.to_string(),
    };
    if !is_valid_router_name(name) {
        return Err(DefError::RouterName);
    }
    if def.source == def.dest {
        return Err(DefError::SameTopic);
    }
    if !is_valid_topic_name(&def.source) {
        return Err(DefError::SourceName);
    }
    if !is_valid_topic_name(&def.dest) {
        return Err(DefError::DestName);
    }
    Ok(def)
}

fn field(name: &'static str, want: &str) -> DefError {
    DefError::Field(name, format!("{name} must be {want}"))
}

fn required_str<'a>(body: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, DefError> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| field(name, "a string"))
}

fn opt_bool(
    body: &Map<String, Value>,
    name: &'static str,
    default: bool,
) -> Result<bool, DefError> {
    match body.get(name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(field(name, "a boolean")),
    }
}

/// One existing router as the graph checks see it.
#[derive(Debug, Clone, Copy)]
pub struct Edge<'a> {
    pub router: &'a str,
    pub source: &'a str,
    pub dest: &'a str,
}

/// Why the graph refuses a router (API.md §12), in check order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// `dest` is already fed by a router with another source.
    FanIn { topic: String },
    /// The router exists with another source or dest.
    Repoint {
        existing_source: String,
        existing_dest: String,
    },
    /// Closing a directed cycle; the topic path from `source` back to `source`.
    Cycle(Vec<String>),
}

/// Fan-in, then re-point. (The cycle check comes after `max_routers`, so it is separate.)
pub fn check_shape(edges: &[Edge<'_>], router: &str, def: &RouterDef) -> Result<(), GraphError> {
    let fan_in = edges
        .iter()
        .any(|e| e.router != router && e.dest == def.dest && e.source != def.source);
    if fan_in {
        return Err(GraphError::FanIn {
            topic: def.dest.clone(),
        });
    }
    match edges.iter().find(|e| e.router == router) {
        Some(e) if e.source != def.source || e.dest != def.dest => Err(GraphError::Repoint {
            existing_source: e.source.to_string(),
            existing_dest: e.dest.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Would `source → dest` close a cycle through the other routers? The shortest path (ties
/// broken by the order of `edges`, which callers keep sorted by router name) so the reported
/// cycle is deterministic. The router's own edge is left out: re-configuring it must not be
/// refused because of itself.
pub fn find_cycle(
    edges: &[Edge<'_>],
    router: &str,
    source: &str,
    dest: &str,
) -> Option<Vec<String>> {
    use std::collections::{HashMap, VecDeque};
    // Breadth-first from dest; `came_from` doubles as the visited set. Bounded by the edges.
    let mut came_from: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([dest]);
    while let Some(at) = queue.pop_front() {
        if at == source {
            let mut path = vec![source.to_string()];
            let mut cur = source;
            while cur != dest {
                cur = came_from.get(cur).copied()?;
                path.push(cur.to_string());
            }
            path.push(source.to_string());
            path.reverse();
            return Some(path);
        }
        for e in edges
            .iter()
            .filter(|e| e.router != router && e.source == at)
        {
            if e.dest != dest && !came_from.contains_key(e.dest) {
                came_from.insert(e.dest, at);
                queue.push_back(e.dest);
            }
        }
    }
    None
}

/// The copy of `rec` a router appends to its dest, or `None` when it is skipped (hop cap,
/// then filter; API.md §12). Deleted and expired records never reach this: the read skips them.
pub fn forward(def: &RouterDef, rec: &Record, max_hops: u8) -> Option<RecordDraft> {
    if rec.hops >= max_hops {
        return None;
    }
    if let Some(f) = &def.filter {
        if !f.matches(rec.tag.as_deref()) {
            return None;
        }
    }
    Some(RecordDraft {
        node: rec.node.clone().filter(|_| def.preserve_node),
        tag: rec.tag.clone().filter(|_| def.preserve_tag),
        data: rec.data.clone(),
        meta: rec.meta.clone(),
        hops: rec.hops.saturating_add(1),
    })
}

#[cfg(test)]
mod tests;

pub mod catalog;
pub mod stamp;

/// The stored form of a definition: the PUT body's fields, so `parse_def` reads it back.
pub fn def_to_json(def: &RouterDef) -> Value {
    serde_json::json!({
        "source": def.source, "dest": def.dest,
        "preserve_node": def.preserve_node, "preserve_tag": def.preserve_tag,
        "create_dest": def.create_dest, "allow_cycle": def.allow_cycle,
        "filter": def.filter.as_ref().map(TagPredicate::to_wire),
        "guarantee": def.guarantee.as_str(),
    })
}
