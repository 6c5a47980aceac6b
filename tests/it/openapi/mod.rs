//! `GET /v0/openapi.json` against the code and the running server: every route `src/http/`
//! registers is documented and every documented operation is served; every example and
//! default in the document matches its schema; and the live server's answers, successes and
//! errors, match the schemas documented for their status and content type.

mod live;
mod routes;
mod schema;

use routes::Routes;
use schema::Validator;
use serde_json::Value;
use std::path::Path;

/// Registered only when the server runs with a manual test clock; not part of the API.
const TEST_ONLY: &[(&str, &str)] = &[("POST", "/v0/_test/clock")];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// The document as the source tree holds it (the binary embeds the same file).
pub fn document() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One documented operation.
pub struct Operation<'d> {
    pub method: &'static str,
    pub path: &'d str,
    pub op: &'d Value,
    /// Path-level parameters followed by the operation's own.
    pub params: Vec<&'d Value>,
}

pub fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let params = [&item["parameters"], &op["parameters"]]
                .into_iter()
                .filter_map(Value::as_array)
                .flatten()
                .map(|p| resolved(doc, p))
                .collect();
            out.push(Operation {
                method,
                path,
                op,
                params,
            });
        }
    }
    out
}

/// Is the operation served by the binary under test? An operation marked `x-feature` exists
/// only in a build with that cargo feature (`kafka`: the sink routes, API.md §15); its route
/// is registered in the source either way.
pub fn in_this_build(op: &Operation) -> bool {
    match op.op.get("x-feature").and_then(Value::as_str) {
        None => true,
        Some("kafka") => cfg!(feature = "kafka"),
        Some(_) => false,
    }
}

/// A `$ref`'d object (parameter, response, header) or the object itself.
pub fn resolved<'d>(doc: &'d Value, v: &'d Value) -> &'d Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => v,
    }
}

fn documented(doc: &Value) -> Routes {
    operations(doc)
        .iter()
        .map(|o| (o.method.to_ascii_uppercase(), o.path.to_string()))
        .collect()
}

#[test]
fn every_served_route_is_documented_and_every_documented_route_is_registered() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut served = routes::registered_in(&src).unwrap_or_else(|e| panic!("{e}"));
    for (m, p) in TEST_ONLY {
        assert!(
            served.remove(&(m.to_string(), p.to_string())),
            "{m} {p} is no longer registered"
        );
    }
    assert!(
        served.len() > 20,
        "the route reader found too little: {served:?}"
    );
    let doc = document();
    let documented = documented(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in src/http/openapi.json: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not registered: {unserved:?}"
    );
}

#[test]
fn every_schema_example_and_default_in_the_document_checks_out() {
    let doc = document();
    let v = Validator::new(&doc, true);
    let mut errs = Vec::new();
    for (name, s) in doc["components"]["schemas"].as_object().expect("schemas") {
        errs.extend(v.lint(s, &format!("#/components/schemas/{name}")));
    }
    let mut checked = 0;
    walk(&v, &doc, "#", &mut errs, &mut checked);
    assert!(
        errs.is_empty(),
        "{} problems:\n{}",
        errs.len(),
        errs.join("\n")
    );
    assert!(checked > 40, "only {checked} examples found");
}

/// Every object outside `components/schemas` that has a `schema` (parameters, headers, media
/// types): lint the schema and check its `example`/`examples` against it. An example anywhere
/// else would go unchecked, so it is an error.
fn walk(v: &Validator, node: &Value, at: &str, errs: &mut Vec<String>, checked: &mut usize) {
    match node {
        Value::Object(o) => {
            if at == "#/components/schemas" {
                return;
            }
            if let Some(schema) = o.get("schema") {
                errs.extend(v.lint(schema, &format!("{at}/schema")));
                let mut examples: Vec<(String, &Value)> = Vec::new();
                if let Some(e) = o.get("example") {
                    examples.push((format!("{at}/example"), e));
                }
                for (name, e) in o
                    .get("examples")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    match e.get("value") {
                        Some(val) => examples.push((format!("{at}/examples/{name}"), val)),
                        None => errs.push(format!("{at}/examples/{name}: no value")),
                    }
                }
                for (where_, e) in examples {
                    *checked += 1;
                    errs.extend(
                        v.validate(schema, e)
                            .into_iter()
                            .map(|m| format!("{where_}: {m}")),
                    );
                }
            } else if o.contains_key("example") || o.contains_key("examples") {
                errs.push(format!(
                    "{at}: an example without a schema to check it against"
                ));
            }
            for (k, child) in o {
                if k != "schema" && k != "example" && k != "examples" {
                    walk(v, child, &format!("{at}/{k}"), errs, checked);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                walk(v, child, &format!("{at}/{i}"), errs, checked);
            }
        }
        _ => {}
    }
}
