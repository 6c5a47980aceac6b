//! The routes the server registers, read from the source of `src/http/`: every
//! `.route("<path>", get(..).put(..)…)` call. The reader is strict on purpose: any other way
//! of adding a route (`route_service`, `nest`, a fallback service, a method router it does
//! not know, a path that is not a string literal) is an error, so a route cannot slip past
//! the document by being registered differently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (METHOD, path) pairs, e.g. `("GET", "/v0/topics/{topic}")`.
pub type Routes = BTreeSet<(String, String)>;

const METHODS: &[&str] = &[
    "get", "post", "put", "delete", "patch", "head", "options", "trace",
];

/// Calls that would add routes or catch-all handlers this reader cannot account for.
const FORBIDDEN: &[&str] = &[
    ".route_service(",
    ".nest(",
    ".nest_service(",
    ".fallback_service(",
];

/// Fallback handlers that answer errors and serve nothing: `(call, the one allowed handler)`.
const FALLBACKS: &[(&str, &str)] = &[
    (".fallback(", "not_found"),
    (".method_not_allowed_fallback(", "method_not_allowed"),
];

/// Every route registered by the `.rs` files under `dir` (recursively).
pub fn registered_in(dir: &Path) -> Result<Routes, String> {
    let mut out = Routes::new();
    for file in rust_files(dir)? {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let found = parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        out.extend(found);
    }
    Ok(out)
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in entries {
            let path = e.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The routes registered in one source file. Whole-line `//` comments are skipped.
pub fn parse(source: &str) -> Result<Routes, String> {
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for call in FORBIDDEN {
        if code.contains(call) {
            return Err(format!("unrecognised route registration `{call}`"));
        }
    }
    for (call, allowed) in FALLBACKS {
        for (at, _) in code.match_indices(call) {
            let (arg, _) = balanced(&code[at + call.len()..])?;
            if arg.trim() != *allowed {
                return Err(format!("unrecognised fallback `{call}{arg})`"));
            }
        }
    }
    let mut out = Routes::new();
    for (at, _) in code.match_indices(".route(") {
        let (args, _) = balanced(&code[at + ".route(".len()..])?;
        let (path, methods) = route_args(args).map_err(|e| format!("{e} in `.route({args})`"))?;
        for m in methods {
            out.insert((m.to_ascii_uppercase(), path.clone()));
        }
    }
    Ok(out)
}

/// `"<path>", m1(..).m2(..)` → the path and the method names.
fn route_args(args: &str) -> Result<(String, Vec<String>), String> {
    let rest = args.trim_start();
    let rest = rest
        .strip_prefix('"')
        .ok_or("the path is not a string literal")?;
    let end = rest.find('"').ok_or("unterminated path literal")?;
    let path = &rest[..end];
    if path.contains('\\') {
        return Err("escapes in the path literal".into());
    }
    let mut chain = rest[end + 1..]
        .trim_start()
        .strip_prefix(',')
        .ok_or("no method router after the path")?
        .trim()
        .trim_end_matches(',')
        .trim_end();
    let mut methods = Vec::new();
    while !chain.is_empty() {
        chain = chain.strip_prefix('.').unwrap_or(chain).trim_start();
        let name_len = chain
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(chain.len());
        let name = &chain[..name_len];
        if !METHODS.contains(&name) {
            return Err(format!("unknown method router `{name}`"));
        }
        let after = chain[name_len..]
            .trim_start()
            .strip_prefix('(')
            .ok_or_else(|| format!("`{name}` is not called"))?;
        let (_, rest) = balanced(after)?;
        methods.push(name.to_string());
        chain = rest.trim();
    }
    match methods.is_empty() {
        true => Err("no method".into()),
        false => Ok((path.to_string(), methods)),
    }
}

/// Split `s` (just after an opening parenthesis) at its matching `)`: (inside, after).
/// Parentheses inside string and char literals do not count.
fn balanced(s: &str) -> Result<(&str, &str), String> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match (in_str, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => in_str = false,
            (true, _) => {}
            (false, '"') => in_str = true,
            (false, '(') => depth += 1,
            (false, ')') if depth == 0 => return Ok((&s[..i], &s[i + 1..])),
            (false, ')') => depth -= 1,
            _ => {}
        }
    }
    Err(format!(
        "unbalanced parentheses after `{}`",
        s.chars().take(40).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(r: &Routes) -> Vec<String> {
        r.iter().map(|(m, p)| format!("{m} {p}")).collect()
    }

    #[test]
    fn reads_method_chains_and_closures() {
        let src = r#"
            let r = Router::new()
                .route("/a/{x}", get(a::get).put(a::put)
                    .delete(a::delete))
                // .route("/commented", get(x))
                .route(
                    "/b",
                    post(move |b: Bytes| handle(clock.clone(), b, ")")),
                )
                .fallback(not_found)
                .method_not_allowed_fallback(method_not_allowed);
        "#;
        let r = parse(src).unwrap();
        assert_eq!(
            pairs(&r),
            ["DELETE /a/{x}", "GET /a/{x}", "POST /b", "PUT /a/{x}"]
        );
    }

    #[test]
    fn refuses_registrations_it_cannot_account_for() {
        for src in [
            r#"r.route("/a", any(h))"#,
            r#"r.route("/a", on(MethodFilter::GET, h))"#,
            r#"r.route(PATH, get(h))"#,
            r#"r.route("/a", get(h).layer(l))"#,
            r#"r.route_service("/a", svc)"#,
            r#"r.nest("/v1", inner)"#,
            r#"r.fallback_service(ServeDir::new("web"))"#,
            r#"r.fallback(console::index)"#,
            r#"r.route("/a", get(h)"#,
        ] {
            assert!(parse(src).is_err(), "accepted {src}");
        }
    }
}
