//! API keys and what each route needs (API.md §1), pure: the key entry syntax, the scope
//! sets, the prefix allowlist, and the route table that says which scopes a request needs
//! and which name in its path the allowlist applies to.
//!
//! Invariants: a key is kept only as its SHA-256 digest; a token is compared against every
//! configured digest in constant time (the loop never stops early); an unknown route or
//! method needs the strongest scope that could apply (fail closed).

use sha2::{Digest, Sha256};

pub const READ: u8 = 1;
pub const WRITE: u8 = 2;
pub const DELETE: u8 = 4;
pub const ADMIN: u8 = 8;
pub const ALL: u8 = READ | WRITE | DELETE | ADMIN;

/// One configured key: its digest, scopes and name prefixes (empty = any name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub digest: [u8; 32],
    pub scopes: u8,
    pub prefixes: Vec<String>,
}

impl AsRef<ApiKey> for ApiKey {
    fn as_ref(&self) -> &ApiKey {
        self
    }
}

impl ApiKey {
    pub fn has(&self, scopes: u8) -> bool {
        self.scopes & scopes == scopes
    }

    /// May this key touch the topic or router named `name`?
    pub fn allows(&self, name: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Parse key entries (each item may hold several comma-separated entries, as
/// `TOPICS_API_KEYS` does): `secret`, `secret:scopes`, `secret:scopes:prefixes`,
/// `secret::prefixes`. An unknown scope or an empty secret is an error (startup refuses).
pub fn parse_keys(items: &[String]) -> Result<Vec<ApiKey>, String> {
    let mut keys = Vec::new();
    for entry in items.iter().flat_map(|i| i.split(',')) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let mut parts = entry.splitn(3, ':');
        let secret = parts.next().unwrap_or("");
        if secret.is_empty() {
            return Err("an API key entry has an empty secret".into());
        }
        let scopes = parse_scopes(parts.next().unwrap_or(""))?;
        let prefixes = match parts.next() {
            None | Some("") => Vec::new(),
            Some(p) => p.split('|').map(String::from).collect(),
        };
        keys.push(ApiKey {
            digest: digest(secret),
            scopes,
            prefixes,
        });
    }
    Ok(keys)
}

fn parse_scopes(s: &str) -> Result<u8, String> {
    if s.is_empty() {
        return Ok(ALL);
    }
    let mut out = 0;
    for t in s.split('+') {
        out |= match t.to_ascii_lowercase().as_str() {
            "read" | "r" => READ,
            "write" | "w" => WRITE,
            "delete" | "del" | "d" => DELETE,
            "admin" | "a" => ADMIN,
            "rw" => READ | WRITE,
            other => return Err(format!("unknown scope {other:?} in an API key entry")),
        };
    }
    Ok(out)
}

/// The key whose digest matches `token`, comparing against every key in constant time.
pub fn authenticate<'a, K: AsRef<ApiKey>>(keys: &'a [K], token: &str) -> Option<&'a K> {
    let d = digest(token);
    let mut found = None;
    for k in keys {
        let diff = k
            .as_ref()
            .digest
            .iter()
            .zip(d.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 && found.is_none() {
            found = Some(k);
        }
    }
    found
}

/// What a request needs before its handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// No key (probes without `probe_auth`, the watch stream GET).
    Open,
    /// Any valid key (probes with `probe_auth`, unknown routes).
    Key,
    /// These scopes, and the allowlist for the named topic or router, if any.
    Scopes { scopes: u8, name: Option<String> },
}

/// The route table of API.md §1 for `method` and a percent-decoded `path`.
pub fn need(method: &str, path: &str, probe_auth: bool) -> Need {
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let scopes = |scopes: u8, name: Option<&str>| Need::Scopes {
        scopes,
        name: name.map(String::from),
    };
    match (method, seg.as_slice()) {
        (_, ["v0", "health"] | ["healthz"] | ["v0", "ready"] | ["readyz"]) => match probe_auth {
            true => Need::Key,
            false => Need::Open,
        },
        ("GET", ["v0", "metrics"]) => scopes(READ, None),
        ("GET", ["v0", "topics"]) => scopes(READ, None),
        (m, ["v0", "topics", t]) => match m {
            "GET" => scopes(READ, Some(t)),
            "POST" => scopes(WRITE, Some(t)),
            "PUT" => scopes(ADMIN, Some(t)),
            "DELETE" => scopes(DELETE, Some(t)),
            _ => scopes(ALL, Some(t)),
        },
        (m, ["v0", "topics", t, sub]) => match (m, *sub) {
            ("POST", "diff") => scopes(READ, Some(t)),
            ("POST", "delete") => scopes(DELETE, Some(t)),
            ("POST", "claim") | ("GET", "work") => scopes(READ | WRITE, Some(t)),
            ("POST", "ack" | "nack" | "extend") => scopes(WRITE, Some(t)),
            _ => scopes(WRITE, Some(t)),
        },
        ("GET", ["v0", "routers"]) => scopes(READ, None),
        (m, ["v0", "routers", r]) => match m {
            "GET" => scopes(READ, Some(r)),
            "DELETE" => scopes(DELETE, Some(r)),
            _ => scopes(ADMIN, Some(r)),
        },
        // Kafka sinks (feature `kafka`): every method needs `admin` (a sink holds cluster
        // credentials and reads a whole topic). Without the feature the paths are unknown.
        #[cfg(feature = "kafka")]
        (_, ["v0", "sinks"]) => scopes(ADMIN, None),
        #[cfg(feature = "kafka")]
        (_, ["v0", "sinks", s]) => scopes(ADMIN, Some(s)),
        ("POST", ["v0", "watch"]) => scopes(READ, None),
        ("GET", ["v0", "watch", _]) => Need::Open,
        (_, ["v0", "backup"]) => scopes(ADMIN, None),
        (_, ["v0", "_test", ..]) => scopes(ADMIN, None),
        (_, ["v0", "topics", t, ..]) => scopes(WRITE, Some(t)),
        _ => Need::Key,
    }
}

/// Decode `%XX` escapes of a path (names are matched against prefixes decoded).
pub fn percent_decode(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
